//! TLS for `wss://` with [rustls] (feature `rustls`; feature `tokio-rustls` for the tokio
//! adapter as well).
//!
//! TLS is the adapters' business: the sans-IO core sees the same bytes over TLS as over TCP.
//! This module holds what both adapters share: the crypto provider and ready-made configs.
//!
//! * Client side: [`sync::connect`](crate::sync::connect) and
//!   [`sync::connect_with`](crate::sync::connect_with) (and their tokio twins) speak TLS to
//!   `wss://` URIs using [`default_client_config`]: Mozilla's root certificates as compiled
//!   into [`webpki-roots`](https://docs.rs/webpki-roots) (no OS trust store is read, so a
//!   private CA must be passed explicitly). To trust other roots, present a client
//!   certificate, or offer ALPN, build a [`rustls::ClientConfig`] and pass it to
//!   [`sync::connect_tls`](crate::sync::connect_tls) (or `tokio::connect_tls`).
//! * Server side: [`sync::accept_tls`](crate::sync::accept_tls) (or `tokio::accept_tls`) runs
//!   the TLS handshake with a caller's [`rustls::ServerConfig`] (see [`server_config`]) and
//!   then the WebSocket handshake, both bounded by `Config::handshake_timeout`.
//!
//! The cryptography comes from rustls's `ring` provider, chosen explicitly per config (never
//! the process-wide default), so another crate that installs a different default provider
//! changes nothing here. `ring` rather than rustls's default `aws-lc-rs` because the latter
//! needs cmake and a C toolchain to build.
//!
//! A TLS failure (an untrusted certificate, a wrong host name, a bad record) is reported as
//! [`Error::Io`](crate::Error::Io) with kind [`InvalidData`](std::io::ErrorKind::InvalidData)
//! wrapping the [`rustls::Error`]; the alert describing it has been sent to the peer.
//!
//! A TCP end-of-file without TLS's `close_notify` counts as a plain end-of-file: the
//! WebSocket closing handshake already proves that no data was cut off, and a connection
//! that ends without it is reported as
//! [`ProtocolError::UnexpectedEof`](crate::ProtocolError::UnexpectedEof) (1006), as over TCP.
//! Ending the write direction (after the closing handshake) sends `close_notify` first.

pub use rustls;

use crate::error::UsageError;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::{Arc, OnceLock};

/// The crypto provider every config made here uses: rustls's `ring` provider with its
/// default cipher suites and key exchange groups.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// The client config `wss://` URIs get by default: TLS 1.2 and 1.3, the
/// [`webpki-roots`](https://docs.rs/webpki-roots) trust anchors, no client certificate,
/// no ALPN. Built once and shared.
#[must_use]
pub fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        client_config(roots)
    });
    Arc::clone(config)
}

/// A client config that trusts exactly `roots` (e.g. a private CA), on the [`provider`].
///
/// ```
/// use rfc6455::tls::{client_config, rustls::RootCertStore};
/// let config = client_config(RootCertStore::empty()); // add your CA with `roots.add(der)`
/// # let _ = config;
/// ```
#[must_use]
pub fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A server config presenting `cert_chain` (leaf first) with `key`, on the [`provider`];
/// no client certificates are requested.
///
/// # Errors
/// The [`rustls::Error`] if the key does not suit the certificate or is not supported.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)?;
    Ok(Arc::new(config))
}

/// The name to verify the server's certificate against: the URI's host (an IP address
/// literal is checked against the certificate's IP subjectAltNames).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, UsageError> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| UsageError::InvalidUri("host is not a valid tls server name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_uri_hosts() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("example.com"),
            Ok(ServerName::DnsName(_))
        ));
    }

    #[test]
    fn default_config_trusts_the_webpki_roots() {
        let config = default_client_config();
        assert!(Arc::ptr_eq(&config, &default_client_config()));
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }
}
