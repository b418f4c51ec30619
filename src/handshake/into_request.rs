//! What the adapters' `connect` functions accept as "the request".

use super::client::ClientRequest;
use crate::error::UsageError;
use alloc::string::String;

/// Anything a client can connect with: a `ws://` / `wss://` URI as `&str` or `String`, a
/// [`ClientRequest`] builder, and with the `http` feature an `http::Uri` or an
/// `http::Request<()>` (see `rfc6455::web` for how its headers are taken).
///
/// The adapters' `connect` and `connect_with` take `impl IntoClientRequest`, so
/// `connect("ws://host/")` and `connect(request)` read the same.
///
/// ```
/// use rfc6455::handshake::{ClientRequest, IntoClientRequest};
/// let from_str = "ws://example.com/chat".into_client_request()?;
/// let from_builder = ClientRequest::new("ws://example.com/chat")?.into_client_request()?;
/// assert_eq!(from_str, from_builder);
/// assert!("http://example.com/".into_client_request().is_err());
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
pub trait IntoClientRequest {
    /// The request to send.
    ///
    /// # Errors
    /// [`UsageError::InvalidUri`] for a URI that is not a valid `ws://` or `wss://` URI;
    /// for an `http::Request`, [`UsageError::InvalidRequest`] or
    /// [`UsageError::InvalidHeader`] for what the handshake cannot send.
    fn into_client_request(self) -> Result<ClientRequest, UsageError>;
}

impl IntoClientRequest for ClientRequest {
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        Ok(self)
    }
}

impl IntoClientRequest for &ClientRequest {
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        Ok(self.clone())
    }
}

impl IntoClientRequest for &str {
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        ClientRequest::new(self)
    }
}

impl IntoClientRequest for String {
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        ClientRequest::new(&self)
    }
}

impl IntoClientRequest for &String {
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        ClientRequest::new(self)
    }
}
