//! Messages as the application sees them, and the UTF-8-checked byte type they carry.

use crate::raw::Utf8Str;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Bytes that are known to be valid UTF-8; cheap to clone and to share between connections.
///
/// Validated once, when it is made (a received text message is checked as it arrives);
/// reading it as `&str` ([`as_str`](Self::as_str), `Deref`, `AsRef`, `Display`,
/// comparisons) costs O(1) after that, however long the text.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Utf8Str);

impl Utf8Bytes {
    /// An empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(Utf8Str::from_str_bytes(Bytes::new()))
    }

    /// A string from a `'static str`, without copying.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Self(Utf8Str::from_str_bytes(Bytes::from_static(s.as_bytes())))
    }

    /// The text, in O(1).
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The underlying bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Gives up the UTF-8 guarantee.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// Wraps bytes the receive path has validated as they arrived; crate-internal.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        Self(Utf8Str::assume_valid(bytes))
    }
}

impl core::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl core::borrow::Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl core::fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl core::fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Utf8Str::from_str_bytes(Bytes::copy_from_slice(
            s.as_bytes(),
        )))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Utf8Str::from_str_bytes(Bytes::from(s.into_bytes())))
    }
}

impl From<&'static [u8; 0]> for Utf8Bytes {
    fn from(_: &'static [u8; 0]) -> Self {
        Self::new()
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.into_bytes()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Bytes;
    /// Checks `bytes`; gives them back if they are not UTF-8.
    fn try_from(bytes: Bytes) -> Result<Self, Bytes> {
        Utf8Str::checked(bytes).map(Self)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = Vec<u8>;
    /// Checks `bytes`; gives them back if they are not UTF-8.
    fn try_from(bytes: Vec<u8>) -> Result<Self, Vec<u8>> {
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s.into()),
            Err(e) => Err(e.into_bytes()),
        }
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        *self == other.as_str()
    }
}

/// A complete data message (RFC 6455 §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; always valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The text of a text message; `None` for a binary one.
    ///
    /// ```
    /// use rfc6455::Message;
    /// assert_eq!(Message::from("hi").as_text(), Some("hi"));
    /// assert_eq!(Message::from(vec![0xff]).as_text(), None);
    /// ```
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of message.
    #[must_use]
    pub const fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

/// Text or binary: the kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Binary data (opcode 0x2).
    Binary,
}
