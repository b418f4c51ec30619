//! Close codes and Close frame payloads (RFC 6455 §5.5.1, §7.4).

use crate::message::Utf8Bytes;

/// A close status code (RFC 6455 §7.4).
///
/// Any `u16` can be held; [`is_valid_on_wire`](Self::is_valid_on_wire) says whether it may
/// appear in a Close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never on the wire; reported for empty Close frames).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection ended without a Close frame (never on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data was inconsistent with its type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed (never on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// The numeric value.
    #[must_use]
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this code may appear in a Close frame, sent or received.
    ///
    /// RFC 6455 §7.4.1 defines 1000-1003 and 1007-1011 for the wire and forbids 1004-1006 and
    /// 1015; 1012-1014 were registered with IANA later (§11.7); 1016-2999 are reserved for
    /// future RFCs; 3000-4999 belong to libraries and applications (§7.4.2). Everything else
    /// is invalid.
    #[must_use]
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl core::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The status code and reason of a Close frame.
///
/// A Close frame with an empty payload is reported as [`CloseCode::NO_STATUS`] with an empty
/// reason, as RFC 6455 §7.1.5 prescribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame with the given code and reason.
    #[must_use]
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_wire_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1010, 1011, 1012, 1014, 3000, 4999,
        ] {
            assert!(CloseCode(code).is_valid_on_wire(), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!CloseCode(code).is_valid_on_wire(), "{code}");
        }
    }
}
