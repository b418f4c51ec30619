//! The HTTP/1.1 pieces both roles share: the incremental head scanner, storage for a parsed
//! head, the list grammars of the handshake headers, and response writing.
//!
//! Line endings: only CRLF ends a line. RFC 7230 §3.5 lets a recipient "recognize a single LF
//! as a line terminator", but a parser that does so disagrees with strict parsers in front of
//! it about where the head ends, which is how requests get smuggled. A bare LF (or a CR not
//! followed by LF) fails the handshake at the byte where it appears, so the answer never
//! depends on how the input was split and a bare-LF request does not hang until the timeout.

use crate::error::UsageError;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

/// Why the head scanner stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The head grew past the configured size without ending.
    TooLarge,
    /// The head has more header lines than configured.
    TooManyHeaders,
    /// A line ending other than CRLF.
    Malformed(&'static str),
}

/// Finds the end of an HTTP head, one byte at a time, across calls.
///
/// Each byte is looked at exactly once, however the input is split: the work for a head of
/// `n` bytes is O(n) in total (re-parsing the whole buffer on every read was
/// CVE-2023-43669). Nothing is buffered here; the caller copies the bytes it is told belong
/// to the head, so the head buffer never exceeds the limit.
#[derive(Debug, Clone)]
pub(crate) struct HeadScanner {
    limit: usize,
    max_headers: usize,
    /// Head bytes seen so far, leading empty lines included.
    len: usize,
    /// Bytes in the current line, excluding its terminator.
    line_len: usize,
    /// Completed non-empty lines (the start line, then header lines).
    lines: usize,
    prev_cr: bool,
}

impl HeadScanner {
    pub(crate) const fn new(limit: usize, max_headers: usize) -> Self {
        Self {
            limit,
            max_headers,
            len: 0,
            line_len: 0,
            lines: 0,
            prev_cr: false,
        }
    }

    /// Header lines seen (the start line not counted).
    pub(crate) const fn header_lines(&self) -> usize {
        self.lines.saturating_sub(1)
    }

    /// Scans `data`, continuing where the last call stopped. `Ok(Some(n))`: the head ends
    /// after `data[..n]`. `Ok(None)`: all of `data` belongs to the head, which is unfinished.
    pub(crate) fn scan(&mut self, data: &[u8]) -> Result<Option<usize>, ScanError> {
        for (i, &b) in data.iter().enumerate() {
            self.len += 1;
            if self.prev_cr {
                self.prev_cr = false;
                if b != b'\n' {
                    return Err(ScanError::Malformed("cr not followed by lf in http head"));
                }
                if self.line_len == 0 {
                    if self.lines > 0 {
                        return Ok(Some(i + 1));
                    }
                    // RFC 7230 §3.5: a server "SHOULD ignore at least one empty line (CRLF)
                    // received prior to the request-line"; httparse skips them too.
                } else {
                    self.lines += 1;
                    self.line_len = 0;
                    if self.header_lines() > self.max_headers {
                        return Err(ScanError::TooManyHeaders);
                    }
                }
            } else {
                match b {
                    b'\r' => self.prev_cr = true,
                    b'\n' => return Err(ScanError::Malformed("bare lf line ending in http head")),
                    _ => self.line_len += 1,
                }
            }
            if self.len >= self.limit {
                return Err(ScanError::TooLarge);
            }
        }
        Ok(None)
    }
}

/// Where one header's name and value sit in [`Head::buf`].
#[derive(Debug, Clone)]
pub(crate) struct HeaderPos {
    name: Range<usize>,
    value: Range<usize>,
}

/// A parsed HTTP head: its bytes, and where each header sits in them (one allocation for
/// the bytes, one for the positions, whatever the number of headers).
#[derive(Clone)]
pub(crate) struct Head {
    buf: Vec<u8>,
    headers: Vec<HeaderPos>,
}

impl Head {
    /// Where each of `headers`, which httparse parsed out of `buf`, sits in it.
    pub(crate) fn positions(buf: &[u8], headers: &[httparse::Header<'_>]) -> Vec<HeaderPos> {
        headers
            .iter()
            .map(|h| HeaderPos {
                name: range_in(buf, h.name.as_bytes()),
                value: range_in(buf, h.value),
            })
            .collect()
    }

    /// A head from its bytes and the [`positions`](Self::positions) of its headers.
    pub(crate) const fn new(buf: Vec<u8>, headers: Vec<HeaderPos>) -> Self {
        Self { buf, headers }
    }

    /// A head assembled from pieces another HTTP parser produced (`http` feature): the
    /// `lead` texts (method, target, pseudo-header fields) and then the headers, copied into
    /// one buffer; also where each lead text sits. The caller checks the size first.
    #[cfg(feature = "http")]
    pub(crate) fn assemble<'a>(
        lead: &[&[u8]],
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        size: usize,
    ) -> (Self, Vec<Range<usize>>) {
        let mut buf = Vec::with_capacity(size);
        let push = |buf: &mut Vec<u8>, bytes: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(bytes);
            start..buf.len()
        };
        let lead = lead.iter().map(|text| push(&mut buf, text)).collect();
        let positions = headers
            .map(|(name, value)| HeaderPos {
                name: push(&mut buf, name),
                value: push(&mut buf, value),
            })
            .collect();
        (Self::new(buf, positions), lead)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// `range` of the head as text ("" if it is not UTF-8).
    pub(crate) fn str(&self, range: Range<usize>) -> &str {
        self.buf
            .get(range)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    pub(crate) fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|h| {
            // httparse only accepts token characters in names, so this is always ASCII.
            let name = core::str::from_utf8(&self.buf[h.name.clone()]).unwrap_or("");
            (name, &self.buf[h.value.clone()])
        })
    }

    /// Every value of the header `name` (ASCII case-insensitive), in order.
    pub(crate) fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Where the value of the only `name` header sits; `Err(n)` with the count otherwise.
    pub(crate) fn single(&self, name: &str) -> Result<Range<usize>, usize> {
        let mut found = self
            .headers
            .iter()
            .filter(|h| self.buf[h.name.clone()].eq_ignore_ascii_case(name.as_bytes()));
        match (found.next(), found.next()) {
            (Some(h), None) => Ok(h.value.clone()),
            (None, _) => Err(0),
            (Some(_), Some(_)) => Err(2),
        }
    }

    /// The first value of `name` if it is UTF-8.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.values(name)
            .next()
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Whether any element of the comma-separated lists in the `name` headers matches
    /// `token`, ASCII case-insensitively.
    pub(crate) fn list_contains(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(list_elements)
            .any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Whether the head announces a message body: any `Transfer-Encoding`, or a
    /// `Content-Length` other than 0. Neither a handshake request nor a 101 has one, and the
    /// bytes after the head are WebSocket frames, so a body would be misread as frames (or
    /// let a proxy and this parser disagree about where the frames start).
    pub(crate) fn announces_body(&self) -> bool {
        self.values("transfer-encoding").next().is_some()
            || self.values("content-length").any(|v| trim_ows(v) != b"0")
    }
}

impl fmt::Debug for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.headers().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

/// The position of `part`, a sub-slice of `buf`, within it.
pub(crate) fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    // Address arithmetic only; both slices come from the same allocation.
    let start = (part.as_ptr() as usize)
        .wrapping_sub(buf.as_ptr() as usize)
        .min(buf.len());
    start..(start + part.len()).min(buf.len())
}

/// RFC 7230 §3.2.6: a `tchar` is a visible ASCII character other than a delimiter
/// (`"(),/:;<=>?@[\]{}`), i.e. ALPHA, DIGIT or one of ``!#$%&'*+-.^_`|~``.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// RFC 7230 §3.2.6: `token = 1*tchar`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated list (RFC 7230 §7: a recipient "MUST accept
/// empty list elements" and ignores them). One pass, so linear in the value's length.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Checks `value` against `1#token` (RFC 6455 §4.3, `Sec-WebSocket-Protocol-Client`).
pub(crate) fn check_token_list(value: &[u8]) -> Result<(), &'static str> {
    let mut any = false;
    for element in list_elements(value) {
        if !is_token(element) {
            return Err("subprotocol is not a token");
        }
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err("empty subprotocol list")
    }
}

/// Walks an `extension-list` (RFC 6455 §9.1), calling `each(name, element)` for every
/// extension with its name and its whole (trimmed) text, parameters included.
///
/// ```text
/// extension-list = 1#extension
/// extension = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// A single forward pass: every byte is examined a bounded number of times, so even a
/// pathological value of the maximum head size parses in linear time.
pub(crate) fn parse_extension_list<'a>(
    value: &'a [u8],
    mut each: impl FnMut(&'a [u8], &'a [u8]),
) -> Result<(), &'static str> {
    let mut p = Cursor { s: value, i: 0 };
    let mut any = false;
    loop {
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b',') => {
                p.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let start = p.i;
        let name = p.token().ok_or("expected an extension name")?;
        let mut end = p.i;
        loop {
            p.skip_ows();
            match p.peek() {
                None | Some(b',') => break,
                Some(b';') => p.i += 1,
                Some(_) => return Err("expected ';' or ',' after an extension"),
            }
            p.skip_ows();
            p.token().ok_or("expected an extension parameter name")?;
            end = p.i;
            p.skip_ows();
            if p.peek() == Some(b'=') {
                p.i += 1;
                p.skip_ows();
                if p.peek() == Some(b'"') {
                    p.quoted_token()?;
                } else {
                    p.token().ok_or("expected an extension parameter value")?;
                }
                end = p.i;
            }
        }
        each(name, &value[start..end]);
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err("empty extension list")
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// A quoted-string whose unescaped content is a token.
    fn quoted_token(&mut self) -> Result<(), &'static str> {
        // RFC 6455 §9.1: "When using the quoted-string syntax variant, the value after
        // quoted-string unescaping MUST conform to the 'token' ABNF."
        self.i += 1; // the opening quote
        let mut len = 0usize;
        loop {
            let b = self.peek().ok_or("unterminated quoted string")?;
            self.i += 1;
            let c = match b {
                b'"' => break,
                b'\\' => {
                    let c = self.peek().ok_or("unterminated quoted string")?;
                    self.i += 1;
                    c
                }
                c => c,
            };
            if !is_tchar(c) {
                return Err("quoted extension parameter value is not a token");
            }
            len += 1;
        }
        if len == 0 {
            Err("empty quoted extension parameter value")
        } else {
            Ok(())
        }
    }
}

/// Checks a caller-supplied header: the name a token, the value free of control characters
/// other than HTAB (a CR or LF would let the caller's value inject headers or a body).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), UsageError> {
    if !is_token(name.as_bytes()) {
        return Err(UsageError::InvalidHeader("header name is not a token"));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(UsageError::InvalidHeader(
            "header value contains a control character",
        ));
    }
    Ok(())
}

/// Whether `name` is one of `owned` (ASCII case-insensitive).
pub(crate) fn is_owned(name: &str, owned: &[&str]) -> bool {
    owned.iter().any(|o| o.eq_ignore_ascii_case(name))
}

/// The reason phrase we write for `status` ("" for codes without a well-known one; RFC 7230
/// §3.1.2 allows an empty reason-phrase).
pub(crate) const fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Appends `HTTP/1.1 <status> <reason>\r\n`.
pub(crate) fn write_status_line(out: &mut Vec<u8>, status: u16) {
    use core::fmt::Write as _;
    let mut line = String::new();
    let _ = write!(line, "HTTP/1.1 {status:03} {}\r\n", reason_phrase(status));
    out.extend_from_slice(line.as_bytes());
}

/// Appends `name: value\r\n`.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn scan_all(data: &[u8], limit: usize, max_headers: usize) -> Result<Option<usize>, ScanError> {
        HeadScanner::new(limit, max_headers).scan(data)
    }

    #[test]
    fn scanner_finds_the_blank_line() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(scan_all(head, 1000, 10), Ok(Some(head.len() - 4)));
    }

    #[test]
    fn scanner_skips_leading_empty_lines() {
        let head = b"\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan_all(head, 1000, 10), Ok(Some(head.len())));
    }

    #[test]
    fn scanner_rejects_bare_lf_and_bare_cr() {
        assert!(matches!(
            scan_all(b"GET / HTTP/1.1\n", 100, 10),
            Err(ScanError::Malformed(_))
        ));
        assert!(matches!(
            scan_all(b"GET / HTTP/1.1\rX", 100, 10),
            Err(ScanError::Malformed(_))
        ));
    }

    #[test]
    fn scanner_same_answer_byte_by_byte() {
        let head = b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\nxyz";
        let mut s = HeadScanner::new(1000, 10);
        let mut end = None;
        for (i, b) in head.iter().enumerate() {
            if let Some(n) = s.scan(core::slice::from_ref(b)).unwrap() {
                assert_eq!(n, 1);
                end = Some(i + 1);
                break;
            }
        }
        assert_eq!(end, scan_all(head, 1000, 10).unwrap());
    }

    #[test]
    fn scanner_limits_size_and_headers() {
        let head = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan_all(head, head.len(), 10), Ok(Some(head.len())));
        assert_eq!(scan_all(head, head.len() - 1, 10), Err(ScanError::TooLarge));
        assert_eq!(scan_all(b"x", 0, 10), Err(ScanError::TooLarge));
        let two = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(scan_all(two, 1000, 2), Ok(Some(two.len())));
        assert_eq!(scan_all(two, 1000, 1), Err(ScanError::TooManyHeaders));
    }

    #[test]
    fn token_lists() {
        let elements: Vec<&[u8]> = list_elements(b" a ,, b\t,c ,").collect();
        assert_eq!(elements, vec![&b"a"[..], b"b", b"c"]);
        assert!(check_token_list(b"chat, superchat").is_ok());
        assert!(check_token_list(b" , ,").is_err());
        assert!(check_token_list(b"chat, su per").is_err());
        assert!(check_token_list(b"a/b").is_err());
    }

    #[test]
    fn rfc6455_9_1_extension_lists() {
        let mut names = Vec::new();
        let value = b"permessage-deflate; client_max_window_bits, x-foo; a=\"b\\c\" ;d=1 ,, bar";
        parse_extension_list(value, |name, element| names.push((name, element))).unwrap();
        assert_eq!(
            names,
            vec![
                (
                    &b"permessage-deflate"[..],
                    &b"permessage-deflate; client_max_window_bits"[..]
                ),
                (b"x-foo", b"x-foo; a=\"b\\c\" ;d=1"),
                (b"bar", b"bar"),
            ]
        );
        for bad in [
            &b""[..],
            b" , ",
            b"a;",
            b"a; =1",
            b"a; b=",
            b"a; b=\"\"",
            b"a; b=\"x y\"",
            b"a; b=\"x",
            b"a b",
            b";a",
            b"a; b=c d",
        ] {
            assert!(
                parse_extension_list(bad, |_, _| ()).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn extension_list_is_linear_on_pathological_input() {
        // 1 MB of separators and unterminated quotes: one pass each.
        let commas = vec![b','; 1 << 20];
        assert!(parse_extension_list(&commas, |_, _| ()).is_err());
        let mut quotes = b"a; b=\"".to_vec();
        quotes.extend(core::iter::repeat_n(b'\\', 1 << 20));
        assert!(parse_extension_list(&quotes, |_, _| ()).is_err());
        let mut params = b"a".to_vec();
        for _ in 0..100_000 {
            params.extend_from_slice(b"; p=\"v\"");
        }
        assert!(parse_extension_list(&params, |_, _| ()).is_ok());
    }

    #[test]
    fn caller_headers_are_checked() {
        assert!(check_header("X-Ok", "a\tb ü").is_ok());
        assert!(check_header("X Bad", "v").is_err());
        assert!(check_header("", "v").is_err());
        assert!(check_header("X", "a\r\nInjected: 1").is_err());
        assert!(check_header("X", "a\0").is_err());
        assert!(check_header("X", "a\x7f").is_err());
    }

    #[test]
    fn status_lines() {
        let mut out = Vec::new();
        write_status_line(&mut out, 431);
        assert_eq!(out, b"HTTP/1.1 431 Request Header Fields Too Large\r\n");
        out.clear();
        write_status_line(&mut out, 499);
        assert_eq!(out, b"HTTP/1.1 499 \r\n");
    }
}
