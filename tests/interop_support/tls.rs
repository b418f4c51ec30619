//! The TLS pairs of `tests/interop.rs` (feature `rustls`): our blocking server and client
//! over `wss://`, with a CA and a certificate for `IP:127.0.0.1` made at test time.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rfc6455::tls::rustls::RootCertStore;
use rfc6455::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// A CA and a certificate it issued for `IP:127.0.0.1`, as DER and as PEM files in a
/// temporary directory (removed on drop).
struct TestPki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestPki {
    fn new(test: &str) -> Self {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rfc6455 interop test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("cert");

        let dir = std::env::temp_dir().join(format!(
            "rfc6455-interop-{}-{}",
            test.replace(' ', "-"),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write ca.pem");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert.pem");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key.pem");
        Self {
            dir,
            ca: ca_cert.der().clone(),
            cert: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn our_tls_server_with_py_client() {
    const TEST: &str = "tls py_client";
    let Some(python) = interop_support::python(TEST) else {
        return;
    };
    let pki = TestPki::new(TEST);
    let server = rfc6455::tls::server_config(
        vec![pki.cert.clone()],
        PrivateKeyDer::Pkcs8(pki.key_der.clone().into()),
    )
    .expect("server config");
    let serve = move |stream: TcpStream| {
        let server = Arc::clone(&server);
        serve_script(|callback| sync::accept_tls(stream, server, Config::default(), callback))
    };
    let ca = pki.file("ca.pem");
    client_peer_against_our_server(
        TEST,
        &python,
        "py_client.py",
        &["wss://127.0.0.1:PORT", "--ca", &ca],
        serve,
    );
}

#[test]
fn our_tls_client_with_node_server() {
    const TEST: &str = "tls node_server";
    let Some(node) = interop_support::node(TEST, &["ws"]) else {
        return;
    };
    let started = Instant::now();
    let pki = TestPki::new(TEST);
    let (cert, key) = (pki.file("cert.pem"), pki.file("key.pem"));
    let (peer, port) = start_server_peer(TEST, &node, &["node_server.mjs", "--tls", &cert, &key]);
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("add the test CA");
    let client = rfc6455::tls::client_config(roots);
    let connect = move |uri: &str| {
        let request = ClientRequest::new(uri)?;
        sync::connect_tls(request, Config::default(), Arc::clone(&client))
    };
    let base = format!("wss://127.0.0.1:{port}");
    let result = bounded(TEST, CLIENT_SCRIPT, move || {
        sync_client_script(&base, connect)
    })
    .and_then(|r| r);
    check_server_peer(TEST, peer, result);
    println!("{TEST}: passed in {:?}", started.elapsed());
}
