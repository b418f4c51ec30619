//! Limits and switches for a connection and its handshake.

use crate::handshake::OriginPolicy;
use core::time::Duration;

/// Limits and switches, shared by the handshake and the connection.
///
/// Every field documents its default and the attack or failure it stops. No combination of
/// values can make the core panic; `u64::MAX` turns a size limit off.
///
/// ```
/// use rfc6455::Config;
/// let config = Config::default().max_message_size(1 << 20).auto_pong(false);
/// assert_eq!(config.max_message_size, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload one received frame may declare. Default 16 MiB.
    ///
    /// Checked on the header, before any payload is buffered: a peer that declares a 2 GiB
    /// frame is failed with 1009 at once. Autobahn section 9 sends 16 MiB frames.
    pub max_frame_size: u64,
    /// Largest received message, summed over its fragments. Default 64 MiB.
    ///
    /// Checked against the remaining budget at each frame header, so a fragmented message is
    /// failed with 1009 at the fragment that would cross it, before that fragment is read.
    pub max_message_size: u64,
    /// Largest frame payload this side sends; longer messages are split into fragments.
    /// Default 16 MiB, so a peer with this crate's default `max_frame_size` accepts them.
    pub max_send_frame_size: u64,
    /// Answer every Ping with a Pong automatically (RFC 6455 §5.5.2). Default `true`.
    ///
    /// Every Ping is answered while output flows; once more than 8 KiB of output waits
    /// unsent, Pongs merge into one slot holding the newest Ping's payload (RFC 6455 §5.5.3
    /// lets an endpoint answer only the most recent Ping), so a Ping flood cannot grow the
    /// queue.
    pub auto_pong: bool,
    /// How long the closing handshake may take before the transport is dropped. Default 10 s.
    ///
    /// Stops a peer that never answers our Close, or a server that never closes TCP, from
    /// holding the connection open.
    pub close_timeout: Duration,
    /// How long the opening handshake may take. Default 10 s. Stops slowloris requests.
    pub handshake_timeout: Duration,
    /// Largest HTTP head (request or response line plus headers). Default 16 KiB; beyond it a
    /// server answers 431. Bounds memory per pending handshake.
    pub max_handshake_size: usize,
    /// Most header lines in the HTTP head. Default 64; beyond it a server answers 431.
    pub max_headers: usize,
    /// Send a Ping after this long without receiving anything. Default `None` (off).
    pub keepalive_interval: Option<Duration>,
    /// With keepalive on, how long to wait for the Pong before failing with 1011.
    /// Default 20 s.
    pub keepalive_timeout: Duration,
    /// Bytes of queued output above which adapters stop accepting new messages until the peer
    /// reads. Default 1 MiB. Stops a peer that never reads from growing our memory.
    pub write_buffer_high_water: usize,
    /// Messages larger than this are delivered as they arrive, as a sequence of
    /// [`Event::Chunk`](crate::Event::Chunk)s, instead of assembled whole. Default `None`:
    /// every message is delivered whole.
    ///
    /// For messages larger than memory should hold: a message streams once its first frame
    /// declares more than this, or once its fragments add up to more. Text chunks are cut at
    /// code point boundaries and checked as they arrive; `max_message_size` and
    /// `max_frame_size` still apply (raise them to stream without a cap). The adapters'
    /// `recv` returns whole messages only, and fails with `UsageError::StreamedMessage` at a
    /// chunk rather than drop it: use `recv_event` in this mode.
    pub streaming_threshold: Option<u64>,
    /// Which browser origins a server lets upgrade. Default
    /// [`OriginPolicy::SameHost`]: a request whose `Origin` names another host than its
    /// `Host` is answered 403; a request without `Origin` (not a browser) is accepted.
    ///
    /// Stops cross-site WebSocket hijacking: a page on another site opening a WebSocket to
    /// this server with the user's cookies (RFC 6455 §10.2). Ignored by clients.
    pub origin_policy: OriginPolicy,
    /// permessage-deflate (RFC 7692): whether a client offers it and a server accepts it,
    /// and with which windows, context takeover, level and memory policy. Default: on for
    /// both roles, as browsers and python-websockets do (see
    /// [`DeflateConfig`](crate::deflate::DeflateConfig) for each default and why).
    ///
    /// Inflated bytes count against `max_message_size` and `max_frame_size` as they are
    /// produced, so a decompression bomb fails with 1009 at the limit.
    #[cfg(feature = "deflate")]
    pub deflate: crate::deflate::DeflateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_send_frame_size: 16 << 20,
            auto_pong: true,
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_handshake_size: 16 << 10,
            max_headers: 64,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            write_buffer_high_water: 1 << 20,
            streaming_threshold: None,
            origin_policy: OriginPolicy::SameHost,
            #[cfg(feature = "deflate")]
            deflate: crate::deflate::DeflateConfig::default(),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl Config {
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
    /// Sets the `max_frame_size` field.
    max_frame_size: u64;
    /// Sets the `max_message_size` field.
    max_message_size: u64;
    /// Sets the `max_send_frame_size` field (0 counts as 1).
    max_send_frame_size: u64;
    /// Sets the `auto_pong` field.
    auto_pong: bool;
    /// Sets the `close_timeout` field.
    close_timeout: Duration;
    /// Sets the `handshake_timeout` field.
    handshake_timeout: Duration;
    /// Sets the `max_handshake_size` field.
    max_handshake_size: usize;
    /// Sets the `max_headers` field.
    max_headers: usize;
    /// Sets the `keepalive_interval` field.
    keepalive_interval: Option<Duration>;
    /// Sets the `keepalive_timeout` field.
    keepalive_timeout: Duration;
    /// Sets the `write_buffer_high_water` field.
    write_buffer_high_water: usize;
    /// Sets the `streaming_threshold` field.
    streaming_threshold: Option<u64>;
    /// Sets the `origin_policy` field.
    origin_policy: OriginPolicy;
}

#[cfg(feature = "deflate")]
impl Config {
    /// Sets the `deflate` field (`DeflateConfig::default().enabled(false)` turns
    /// permessage-deflate off).
    #[must_use]
    pub fn deflate(mut self, value: crate::deflate::DeflateConfig) -> Self {
        self.deflate = value;
        self
    }
}
