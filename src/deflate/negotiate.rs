//! permessage-deflate negotiation (RFC 7692 §5, §7.1), both roles, as pure functions over
//! `Sec-WebSocket-Extensions` header values.

use super::header::{self, Element, Param};
use crate::Role;
use alloc::string::String;
use core::fmt::Write as _;
use core::time::Duration;

/// The extension token (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The largest LZ77 window, 32 KiB, which a peer may use when nothing smaller was agreed.
pub const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window RFC 7692 lets a peer ask for, 256 bytes.
pub const MIN_WINDOW_BITS: u8 = 8;
/// The window a server allows each direction when its config names none: 4 KiB, so an idle
/// connection with context takeover holds 8 KiB of history (benches/README.md, "deflate").
pub const DEFAULT_SERVER_WINDOW_BITS: u8 = 12;

/// How long a connection must have been idle before [`MemoryPolicy::ReleaseWhenIdle`], the
/// default, frees its compressor and decompressor: 1 second.
///
/// Rebuilding a freed stream costs about as much as compressing one more chat message
/// (benches/README.md, "deflate"), so with one second a connection that sends or receives
/// less often than that pays at most one rebuild per second, while one that is quiet for
/// longer goes back to holding only its windows.
pub const DEFAULT_RELEASE_AFTER: Duration = Duration::from_secs(1);

/// How the codec keeps its DEFLATE state between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryPolicy {
    /// Allocate each direction's compressor or decompressor when a message needs it and free
    /// it when the message is done. A direction with context takeover keeps only its LZ77
    /// window (the last `2^window_bits` bytes of history) between messages and primes the
    /// next message's fresh state with it, so an idle connection holds at most the two
    /// windows. Costs an allocation, a zeroed hash table and a dictionary copy per message.
    PerMessage,
    /// Keep each direction's compressor and decompressor for the life of the connection
    /// (resetting it between messages where there is no context takeover). Fastest; a server
    /// pays ~130-330 KiB per compressor and ~43 KiB per decompressor on every connection
    /// that has used them, idle or not (benches/README.md, "deflate").
    Retain,
    /// Keep the compressor and decompressor while the connection is busy, as
    /// [`Retain`](Self::Retain) does, and free them once it has handled no compressed
    /// message for this long, keeping only the LZ77 windows that context takeover needs (as
    /// [`PerMessage`](Self::PerMessage) does between messages). The default, with
    /// [`DEFAULT_RELEASE_AFTER`]: a busy connection runs at `Retain`'s speed, an idle one
    /// costs what `PerMessage` costs.
    ///
    /// The connection keeps the timer ([`Extension::release_after`](crate::Extension::release_after)),
    /// so the state is freed only when the caller drives the connection's clock
    /// (`handle_timeout`, as both adapters do). A codec used on its own is freed with
    /// [`Deflater::release`](super::Deflater::release) /
    /// [`Inflater::release`](super::Inflater::release).
    ReleaseWhenIdle(Duration),
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        Self::ReleaseWhenIdle(DEFAULT_RELEASE_AFTER)
    }
}

/// permessage-deflate settings for one endpoint.
///
/// `server_*` fields are about the server-to-client direction (the server compresses, the
/// client decompresses), `client_*` fields about the client-to-server direction, whichever
/// role this endpoint plays: the names are the wire's. Out-of-range values are clamped
/// where they are used (window bits into 8..=15, level into 0..=9): no value can panic.
///
/// The defaults hold an idle server connection's deflate state to two 4 KiB windows (when
/// the client offers `client_max_window_bits`, as browsers do) while keeping most of
/// context takeover's gain on small, similar messages, and make a client's offer the one
/// browsers send; the measurements behind each are in benches/README.md, "deflate".
///
/// ```
/// use rfc6455::deflate::{DeflateConfig, MemoryPolicy};
/// let config = DeflateConfig::default()
///     .server_no_context_takeover(true)
///     .compression_level(1)
///     .memory_policy(MemoryPolicy::Retain);
/// assert!(config.enabled);
/// assert_eq!(config.compression_level, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Offer (client) or accept (server) permessage-deflate at all. Default `true`: text
    /// protocols (JSON chat, GraphQL subscriptions) shrink 3-10×, and browsers offer it on
    /// every connection.
    pub enabled: bool,
    /// The largest LZ77 window, as a power of two, for the server-to-client direction.
    /// Default `None`: a server uses [`DEFAULT_SERVER_WINDOW_BITS`] (12, 4 KiB), a client
    /// asks for nothing (as browsers do) and takes what the server announces.
    ///
    /// A server never answers with more, and less when the client offered a smaller
    /// `server_max_window_bits`; a client with `Some(n)`, n < 15, offers
    /// `server_max_window_bits=n`. With context takeover this is the history the server's
    /// compressor (and the client's decompressor) keeps between messages; on the chat corpus
    /// 12 bits lose only a few percent of ratio against 15 for an eighth of the memory.
    pub server_max_window_bits: Option<u8>,
    /// The largest LZ77 window for the client-to-server direction. Default `None`: a server
    /// asks for [`DEFAULT_SERVER_WINDOW_BITS`] when it may, a client offers the bare
    /// parameter and compresses with whatever window the server allows.
    ///
    /// A server can only impose it when the client's offer carries `client_max_window_bits`
    /// (RFC 7692 §7.1.2.2; browsers always send it); otherwise the client may use 15 bits and
    /// a server decompressing with context takeover keeps 32 KiB.
    pub client_max_window_bits: Option<u8>,
    /// Ask (client) or decide (server) that the server starts every message with an empty
    /// LZ77 window. Default `false`: context takeover is what makes small, similar messages
    /// compress, and the default [`MemoryPolicy`] bounds what an idle connection pays for it to
    /// the window.
    pub server_no_context_takeover: bool,
    /// Ask (server) or promise (client) that the client starts every message with an empty
    /// window. Default `false`, for the same reason. A server also answers with it whenever
    /// the client offered it as a hint (it costs the client nothing then).
    pub client_no_context_takeover: bool,
    /// The DEFLATE level for messages this endpoint sends, 0 (stored) to 9. Default 6: on
    /// the chat corpus level 1 compresses noticeably worse for little saved CPU on small
    /// messages, and 9 gains almost nothing over 6 for more CPU.
    pub compression_level: u8,
    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear). Default 64:
    /// below that DEFLATE's block header and Huffman tables rarely pay for themselves, and
    /// skipping them saves the per-message CPU.
    pub compression_threshold: usize,
    /// How compressor and decompressor state is kept between messages. Default
    /// [`MemoryPolicy::ReleaseWhenIdle`] after [`DEFAULT_RELEASE_AFTER`]: a busy connection
    /// keeps its streams, an idle one holds only its windows.
    pub memory_policy: MemoryPolicy,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            server_max_window_bits: None,
            client_max_window_bits: None,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            compression_level: 6,
            compression_threshold: 64,
            memory_policy: MemoryPolicy::default(),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl DeflateConfig {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets the `enabled` field.
    enabled: bool;
    /// Sets the `server_no_context_takeover` field.
    server_no_context_takeover: bool;
    /// Sets the `client_no_context_takeover` field.
    client_no_context_takeover: bool;
    /// Sets the `compression_level` field (clamped into 0..=9 where used).
    compression_level: u8;
    /// Sets the `compression_threshold` field.
    compression_threshold: usize;
    /// Sets the `memory_policy` field.
    memory_policy: MemoryPolicy;
}

impl DeflateConfig {
    /// Sets the `server_max_window_bits` field to `Some(bits)` (clamped into 8..=15 where
    /// used).
    #[must_use]
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = Some(bits);
        self
    }

    /// Sets the `client_max_window_bits` field to `Some(bits)` (clamped into 8..=15 where
    /// used).
    #[must_use]
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = Some(bits);
        self
    }

    /// The window a server allows for a direction: the config's, or the default.
    fn server_side(bits: Option<u8>) -> u8 {
        bits.unwrap_or(DEFAULT_SERVER_WINDOW_BITS)
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
    }

    /// The window a client asks for a direction: the config's, or 15 (nothing asked).
    fn client_side(bits: Option<u8>) -> u8 {
        bits.unwrap_or(MAX_WINDOW_BITS)
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
    }
}

/// The permessage-deflate parameters both endpoints agreed on in the opening handshake.
///
/// Made by [`accept_offer`] (server) or [`check_response`] (client); the connection builds
/// its [`Deflater`](super::Deflater) and [`Inflater`](super::Inflater) from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
}

/// One direction's share of the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Direction {
    pub(crate) window_bits: u8,
    pub(crate) no_context_takeover: bool,
}

impl DeflateParams {
    /// Whether the server resets its compressor after every message.
    #[must_use]
    pub const fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// Whether the client resets its compressor after every message.
    #[must_use]
    pub const fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// The server's LZ77 window, as a power of two (8..=15).
    #[must_use]
    pub const fn server_max_window_bits(&self) -> u8 {
        self.server_max_window_bits
    }

    /// The client's LZ77 window, as a power of two (8..=15).
    #[must_use]
    pub const fn client_max_window_bits(&self) -> u8 {
        self.client_max_window_bits
    }

    const fn server_direction(&self) -> Direction {
        Direction {
            window_bits: self.server_max_window_bits,
            no_context_takeover: self.server_no_context_takeover,
        }
    }

    const fn client_direction(&self) -> Direction {
        Direction {
            window_bits: self.client_max_window_bits,
            no_context_takeover: self.client_no_context_takeover,
        }
    }

    /// The direction an endpoint of `role` compresses.
    pub(crate) const fn send(&self, role: Role) -> Direction {
        match role {
            Role::Server => self.server_direction(),
            Role::Client => self.client_direction(),
        }
    }

    /// The direction an endpoint of `role` decompresses.
    pub(crate) const fn receive(&self, role: Role) -> Direction {
        match role {
            Role::Server => self.client_direction(),
            Role::Client => self.server_direction(),
        }
    }
}

/// The parameters one offer or response carried, syntax checked.
#[derive(Debug, Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

/// RFC 7692 §7.1.2.1: "This parameter has a decimal integer value without leading zeroes
/// between 8 to 15, inclusive". `None` for anything else.
fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// Reads the parameters of one permessage-deflate element. The `Err` reason is what a client
/// fails with; a server just declines the offer.
fn parse_params(params: &[Param<'_>], offer: bool) -> Result<Parsed, &'static str> {
    let mut p = Parsed::default();
    for param in params {
        let value = param.value.as_ref().map(header::Value::as_bytes);
        // RFC 7692 §5: "A server MUST decline an extension negotiation offer for this
        // extension if ... The negotiation offer contains an extension parameter not defined
        // for use in an offer" (the last arm), "an extension parameter with an invalid value"
        // (the value checks) or "multiple extension parameters with the same name" (the
        // duplicate checks); a client fails a response on the same three conditions.
        let name = param.name;
        if name.eq_ignore_ascii_case(b"server_no_context_takeover") {
            // RFC 7692 §7.1.1.1: "This extension parameter has no value."
            if value.is_some() {
                return Err("server_no_context_takeover has a value");
            }
            if p.server_no_context_takeover {
                return Err("duplicate server_no_context_takeover");
            }
            p.server_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case(b"client_no_context_takeover") {
            // RFC 7692 §7.1.1.2: "This extension parameter has no value."
            if value.is_some() {
                return Err("client_no_context_takeover has a value");
            }
            if p.client_no_context_takeover {
                return Err("duplicate client_no_context_takeover");
            }
            p.client_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case(b"server_max_window_bits") {
            if p.server_max_window_bits.is_some() {
                return Err("duplicate server_max_window_bits");
            }
            let bits = value
                .and_then(window_bits)
                .ok_or("server_max_window_bits is not an integer from 8 to 15")?;
            p.server_max_window_bits = Some(bits);
        } else if name.eq_ignore_ascii_case(b"client_max_window_bits") {
            if p.client_max_window_bits.is_some() {
                return Err("duplicate client_max_window_bits");
            }
            let bits = match value {
                // RFC 7692 §7.1.2.2: "This parameter has no value or a decimal integer value
                // without leading zeroes between 8 to 15 inclusive" in an offer; in a
                // response it "has a decimal integer value ... between 8 to 15".
                None if offer => None,
                None => return Err("client_max_window_bits without a value"),
                Some(v) => Some(
                    window_bits(v)
                        .ok_or("client_max_window_bits is not an integer from 8 to 15")?,
                ),
            };
            p.client_max_window_bits = Some(bits);
        } else {
            return Err("unknown permessage-deflate parameter");
        }
    }
    Ok(p)
}

fn is_deflate(element: &Element<'_>) -> bool {
    element.name.eq_ignore_ascii_case(EXTENSION_NAME.as_bytes())
}

/// Server side: picks the first acceptable permessage-deflate offer among all the request's
/// `Sec-WebSocket-Extensions` values (in header order) and returns the agreed parameters with
/// the exact value to send back in the response's `Sec-WebSocket-Extensions`.
///
/// `None` when deflate is disabled or no offer is acceptable. An offer with an unknown,
/// duplicated or malformed parameter, or a window outside 8..=15, is declined (skipped), as
/// is an element that breaks the header grammar: never an error, the connection just goes
/// on without compression (or with the next acceptable offer).
///
/// What the server adds on its own, as RFC 7692 lets it: `server_no_context_takeover` and
/// `client_no_context_takeover` from the config, a smaller `server_max_window_bits` from the
/// config, and `client_max_window_bits=N` only when the client offered the parameter.
///
/// ```
/// use rfc6455::deflate::{accept_offer, DeflateConfig};
/// let config = DeflateConfig::default().server_max_window_bits(15).client_max_window_bits(15);
/// let (params, response) = accept_offer(
///     &config,
///     ["x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits"],
/// )
/// .unwrap();
/// assert_eq!(response, "permessage-deflate");
/// assert_eq!(params.client_max_window_bits(), 15);
/// ```
#[must_use]
pub fn accept_offer<I, V>(
    config: &DeflateConfig,
    request_values: I,
) -> Option<(DeflateParams, String)>
where
    I: IntoIterator<Item = V>,
    V: AsRef<[u8]>,
{
    if !config.enabled {
        return None;
    }
    for value in request_values {
        for element in header::split_elements(value.as_ref()) {
            let Ok(Some(element)) = header::parse_element(element) else {
                continue; // an empty or malformed element: declined, try the next
            };
            if !is_deflate(&element) {
                continue;
            }
            if let Ok(offer) = parse_params(&element.params, true) {
                return Some(answer(config, &offer));
            }
        }
    }
    None
}

/// Builds the server's answer to one syntactically valid offer.
fn answer(config: &DeflateConfig, offer: &Parsed) -> (DeflateParams, String) {
    // RFC 7692 §7.1.1.1: "A server accepts an extension negotiation offer that includes the
    // "server_no_context_takeover" extension parameter by including the
    // "server_no_context_takeover" extension parameter in the corresponding extension
    // negotiation response" ... "A server MAY include the "server_no_context_takeover"
    // extension parameter in an extension negotiation response even if the extension
    // negotiation offer being accepted by the extension negotiation response didn't include
    // the "server_no_context_takeover" extension parameter."
    let server_nct = offer.server_no_context_takeover || config.server_no_context_takeover;
    // RFC 7692 §7.1.1.2: "A server MAY include the "client_no_context_takeover" extension
    // parameter in an extension negotiation response." A client's own
    // client_no_context_takeover is a promise it keeps anyway; echoing it lets our
    // decompressor drop its window between messages.
    let client_nct = offer.client_no_context_takeover || config.client_no_context_takeover;

    // RFC 7692 §7.1.2.1: "A server accepts an extension negotiation offer with this
    // parameter by including the "server_max_window_bits" extension parameter in the
    // extension negotiation response to send back to the client with the same or smaller
    // value as the offer." Without the parameter in the offer, a smaller window of ours is
    // announced too (the section lets a server include it on its own).
    //
    // An offered 8 is accepted as 8: our compressor then runs with a 512-byte window whose
    // matches never reach back more than 250 bytes (codec.rs, `zlib_window_bits`), inside
    // the 256 bytes the client reserves.
    let cap = DeflateConfig::server_side(config.server_max_window_bits);
    let server_bits = offer.server_max_window_bits.map_or(cap, |o| o.min(cap));
    let announce_server_bits =
        offer.server_max_window_bits.is_some() || server_bits < MAX_WINDOW_BITS;

    // RFC 7692 §7.1.2.2: "If a received extension negotiation offer doesn't have the
    // "client_max_window_bits" extension parameter, the corresponding extension negotiation
    // response to the offer MUST NOT include the "client_max_window_bits" extension
    // parameter." With it, the server may answer with "a value equal to or smaller than the
    // received value".
    let (client_bits, announce_client_bits) = match offer.client_max_window_bits {
        None => (MAX_WINDOW_BITS, false),
        Some(hint) => {
            let bits = hint
                .unwrap_or(MAX_WINDOW_BITS)
                .min(DeflateConfig::server_side(config.client_max_window_bits));
            (bits, hint.is_some() || bits < MAX_WINDOW_BITS)
        }
    };

    let params = DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    let mut response = String::from(EXTENSION_NAME);
    if server_nct {
        response.push_str("; server_no_context_takeover");
    }
    if client_nct {
        response.push_str("; client_no_context_takeover");
    }
    // Writing to a String cannot fail.
    if announce_server_bits {
        let _ = write!(response, "; server_max_window_bits={server_bits}");
    }
    if announce_client_bits {
        let _ = write!(response, "; client_max_window_bits={client_bits}");
    }
    (params, response)
}

/// Client side: the `Sec-WebSocket-Extensions` value to offer, or `None` when deflate is
/// disabled.
///
/// By default it is what browsers send, `permessage-deflate; client_max_window_bits`
/// (we can compress with any window the server picks), followed by what the config asks of
/// the server: `server_max_window_bits=N` below 15, `server_no_context_takeover`, and
/// `client_no_context_takeover` as a hint of our own behaviour. A `client_max_window_bits`
/// below 15 in the config is offered as the parameter's value.
///
/// ```
/// use rfc6455::deflate::{client_offer, DeflateConfig};
/// let config = DeflateConfig::default().server_max_window_bits(15).client_max_window_bits(15);
/// assert_eq!(
///     client_offer(&config).as_deref(),
///     Some("permessage-deflate; client_max_window_bits")
/// );
/// ```
#[must_use]
pub fn client_offer(config: &DeflateConfig) -> Option<String> {
    if !config.enabled {
        return None;
    }
    let mut offer = String::from(EXTENSION_NAME);
    // RFC 7692 §7.1.2.2: "By including this parameter in an extension negotiation offer, a
    // client informs the peer server that the client supports the "client_max_window_bits"
    // extension parameter in an extension negotiation response".
    offer.push_str("; client_max_window_bits");
    let client_bits = DeflateConfig::client_side(config.client_max_window_bits);
    if client_bits < MAX_WINDOW_BITS {
        let _ = write!(offer, "={client_bits}");
    }
    let server_bits = DeflateConfig::client_side(config.server_max_window_bits);
    if server_bits < MAX_WINDOW_BITS {
        let _ = write!(offer, "; server_max_window_bits={server_bits}");
    }
    if config.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    Some(offer)
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` values against the offer
/// [`client_offer`] made from the same `config`.
///
/// `Ok(Some(params))` when the server accepted permessage-deflate, `Ok(None)` when it did not
/// mention it (the connection goes on uncompressed).
///
/// # Errors
///
/// The reason the client must fail the handshake (RFC 7692 §5: "A client MUST _Fail the
/// WebSocket Connection_ if the peer server accepted an extension negotiation offer for this
/// extension with an extension negotiation response" that is invalid): a malformed header, an
/// extension that was not offered, permessage-deflate more than once, an unknown, duplicated
/// or valueless parameter, a window outside 8..=15 or larger than offered, or a response that
/// ignores `server_no_context_takeover` or `server_max_window_bits` we asked for.
///
/// ```
/// use rfc6455::deflate::{check_response, DeflateConfig};
/// let config = DeflateConfig::default();
/// let params = check_response(&config, ["permessage-deflate; server_max_window_bits=10"])
///     .unwrap()
///     .unwrap();
/// assert_eq!(params.server_max_window_bits(), 10);
/// assert!(check_response(&config, ["permessage-deflate; x=1"]).is_err());
/// ```
pub fn check_response<I, V>(
    config: &DeflateConfig,
    response_values: I,
) -> Result<Option<DeflateParams>, &'static str>
where
    I: IntoIterator<Item = V>,
    V: AsRef<[u8]>,
{
    let mut accepted: Option<Parsed> = None;
    for value in response_values {
        for element in header::split_elements(value.as_ref()) {
            let element = match header::parse_element(element) {
                Ok(Some(element)) => element,
                Ok(None) => continue,
                // RFC 6455 §9.1: "If a value is received by either the client or the server
                // during negotiation that does not conform to the ABNF below, the recipient
                // of such malformed data MUST immediately _Fail the WebSocket Connection_."
                Err(_) => return Err("malformed Sec-WebSocket-Extensions header"),
            };
            // RFC 6455 §9.1: "The server MUST NOT respond with an extension that was not
            // offered by the client." We offer permessage-deflate alone.
            if !is_deflate(&element) || !config.enabled {
                return Err("server accepted an extension that was not offered");
            }
            if accepted.is_some() {
                return Err("server accepted permessage-deflate more than once");
            }
            accepted = Some(parse_params(&element.params, false)?);
        }
    }
    let Some(response) = accepted else {
        return Ok(None);
    };

    let asked_server_bits = DeflateConfig::client_side(config.server_max_window_bits);
    let server_bits = match response.server_max_window_bits {
        // RFC 7692 §7.1.2.1: the server answers "with the same or smaller value as the offer".
        Some(bits) if bits > asked_server_bits => {
            return Err("server_max_window_bits is larger than offered");
        }
        Some(bits) => bits,
        None if asked_server_bits < MAX_WINDOW_BITS => {
            return Err("server did not accept the server_max_window_bits offered");
        }
        None => MAX_WINDOW_BITS,
    };
    // RFC 7692 §7.1.1.1: a server accepts server_no_context_takeover "by including" it.
    if config.server_no_context_takeover && !response.server_no_context_takeover {
        return Err("server did not accept the server_no_context_takeover offered");
    }
    let offered_client_bits = DeflateConfig::client_side(config.client_max_window_bits);
    let client_bits = match response.client_max_window_bits {
        // RFC 7692 §7.1.2.2: "a value equal to or smaller than the received value".
        Some(Some(bits)) if bits > offered_client_bits => {
            return Err("client_max_window_bits is larger than offered");
        }
        Some(Some(bits)) => bits,
        // parse_params refuses a valueless client_max_window_bits in a response.
        Some(None) => return Err("client_max_window_bits without a value"),
        // Our offer's value was only a hint; we keep to it anyway (a smaller window than the
        // server allows is always safe).
        None => offered_client_bits,
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: response.server_no_context_takeover,
        // Our own hint is a promise we keep even if the server did not echo it.
        client_no_context_takeover: response.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide() -> DeflateConfig {
        DeflateConfig::default()
            .server_max_window_bits(15)
            .client_max_window_bits(15)
    }

    fn accept(config: &DeflateConfig, values: &[&str]) -> Option<String> {
        accept_offer(config, values).map(|(_, r)| r)
    }

    #[test]
    fn rfc7692_5_server_skips_declined_offers_and_takes_the_first_acceptable() {
        let got = accept(
            &wide(),
            &[
                "permessage-deflate; server_max_window_bits=7",
                "foo, permessage-deflate; bar, permessage-deflate; server_max_window_bits=10, \
                 permessage-deflate",
            ],
        );
        assert_eq!(
            got.as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
    }

    #[test]
    fn rfc7692_5_duplicate_or_valued_flags_decline_the_offer() {
        for offer in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover=1",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
        ] {
            assert_eq!(accept(&wide(), &[offer]), None, "{offer}");
        }
    }

    #[test]
    fn rfc7692_7_1_2_2_client_window_only_answered_when_offered() {
        let narrow = DeflateConfig::default().client_max_window_bits(10);
        assert_eq!(
            accept(&narrow, &["permessage-deflate"]).as_deref(),
            Some("permessage-deflate; server_max_window_bits=12")
        );
        assert_eq!(
            accept(&narrow, &["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=10")
        );
        let (params, _) = accept_offer(&narrow, ["permessage-deflate"]).unwrap();
        assert_eq!(params.client_max_window_bits(), 15);
    }

    #[test]
    fn rfc7692_7_1_2_1_server_window_never_above_the_offer() {
        let (params, resp) =
            accept_offer(&wide(), ["permessage-deflate; server_max_window_bits=8"]).unwrap();
        assert_eq!(params.server_max_window_bits(), 8);
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=8");
    }

    #[test]
    fn client_offer_and_response_round_trip_through_the_server() {
        for config in [
            DeflateConfig::default(),
            wide(),
            wide()
                .server_no_context_takeover(true)
                .client_max_window_bits(9),
            DeflateConfig::default().client_no_context_takeover(true),
        ] {
            let offer = client_offer(&config).unwrap();
            let (server_params, response) = accept_offer(&config, [&offer]).unwrap();
            let client_params = check_response(&config, [&response]).unwrap().unwrap();
            assert_eq!(server_params, client_params, "{offer} -> {response}");
        }
    }

    #[test]
    fn rfc7692_5_client_fails_bad_responses() {
        let c = DeflateConfig::default();
        for bad in [
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=10; mystery",
            "x-other",
            "permessage-deflate; server_max_window_bits=\"1",
        ] {
            assert!(check_response(&c, [bad]).is_err(), "{bad}");
        }
        assert_eq!(check_response(&c, [""]), Ok(None));
        assert!(check_response(&c.clone().enabled(false), ["permessage-deflate"]).is_err());
        let asked = c
            .server_max_window_bits(11)
            .server_no_context_takeover(true);
        for ignored in [
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=11",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
        ] {
            assert!(check_response(&asked, [ignored]).is_err(), "{ignored}");
        }
    }
}
