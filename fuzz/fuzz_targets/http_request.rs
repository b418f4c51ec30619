#![no_main]
//! The `http` path against the byte parser: arbitrary request bytes, parsed into an
//! `http::Request` the way hyper would (httparse, then the `http` crate's types), must get
//! from `web::Upgrade` the status `ServerHandshake` gives the same bytes, and on success the
//! same accept key. The control byte picks the origin policy (bits 0-1) and whether the
//! request is also replayed as an HTTP/2 extended CONNECT (bit 2), which must not panic and
//! must answer with one of the statuses RFC 8441 §5 and the policy allow.
//!
//! Requests the two paths cannot both see are skipped: the byte parser's scanner refuses
//! what httparse or the `http` crate would repair or drop (a bare LF, a URI the `http` crate
//! rewrites), and its 431 counts raw bytes.
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{Accept, OriginPolicy, ServerHandshake, accept_key};
use rfc6455::web::Upgrade;
use rfc6455::{Config, HandshakeError};

fn config(ctl: u8) -> Config {
    let policy = match ctl & 3 {
        0 => OriginPolicy::SameHost,
        1 => OriginPolicy::Any,
        2 => OriginPolicy::allow_list(["http://example.com", "https://a.example:8443"]),
        _ => OriginPolicy::allow_list(Vec::<String>::new()),
    };
    Config::default()
        .max_handshake_size(4096)
        .max_headers(32)
        .origin_policy(policy)
}

/// (status, accept key on success)
type Verdict = (u16, Option<String>);

fn bytes_verdict(raw: &[u8], config: &Config) -> Option<Verdict> {
    let mut hs = ServerHandshake::new(config.clone());
    match hs.receive(raw) {
        Err(HandshakeError::BadRequest(why))
            if why.contains("lf") || why.contains("malformed request line") =>
        {
            None
        }
        Err(HandshakeError::HeadTooLarge(_) | HandshakeError::TooManyHeaders(_)) => None,
        Err(e) => Some((e.http_status(), None)),
        Ok(()) => {
            let request = hs.request()?;
            let key = accept_key(request.key().as_bytes());
            hs.accept(Accept::new()).expect("a valid request can be accepted");
            Some((101, Some(key)))
        }
    }
}

fn to_http(raw: &[u8]) -> Option<http::Request<()>> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut slots);
    if !matches!(parsed.parse(raw), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let target = parsed.path?;
    let uri: http::Uri = target.parse().ok()?;
    if uri.to_string() != target {
        return None; // the `http` crate changed the target: not the same request any more
    }
    let mut builder = http::Request::builder()
        .method(parsed.method?)
        .uri(uri)
        .version(if parsed.version? == 0 {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        });
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    builder.body(()).ok()
}

fn http_verdict(request: &http::Request<()>, config: &Config) -> Option<Verdict> {
    match Upgrade::from_request(request, config.clone()) {
        Err(refused) if refused.status() == 431 => None,
        Err(refused) => {
            let response: http::Response<String> = refused.into_response();
            assert_eq!(response.status().as_u16(), refused.status());
            Some((refused.status(), None))
        }
        Ok(upgrade) => {
            let (response, accepted) = upgrade.accept(Accept::new()).expect("accept");
            assert_eq!(response.status(), 101);
            let _ = accepted.into_connection();
            let key = response.headers()["sec-websocket-accept"].to_str().unwrap();
            Some((101, Some(key.to_owned())))
        }
    }
}

/// The same head as an HTTP/2 extended CONNECT.
fn as_extended_connect(request: &http::Request<()>, config: &Config) {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = http::Method::CONNECT;
    parts.version = http::Version::HTTP_2;
    let host = request.headers().get("host").and_then(|h| h.to_str().ok());
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    parts.uri = host
        .and_then(|h| format!("https://{h}{path}").parse().ok())
        .unwrap_or_else(|| path.parse().unwrap_or_default());
    for (name, value) in request.headers() {
        if !matches!(name.as_str(), "connection" | "upgrade" | "host") {
            parts.headers.append(name, value.clone());
        }
    }
    match Upgrade::with_protocol(&parts, Some("websocket"), config.clone()) {
        Ok(upgrade) => {
            assert!(upgrade.request().is_extended_connect());
            let (response, _) = upgrade.accept(Accept::new()).expect("accept");
            assert_eq!(response.status(), 200);
            assert!(!response.headers().contains_key("sec-websocket-accept"));
        }
        Err(refused) => assert!(
            matches!(refused.status(), 400 | 403 | 426 | 431),
            "{refused:?}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, raw)) = data.split_first() else {
        return;
    };
    let config = config(ctl);
    let Some(expected) = bytes_verdict(raw, &config) else {
        return;
    };
    let Some(request) = to_http(raw) else {
        return;
    };
    if let Some(got) = http_verdict(&request, &config) {
        assert_eq!(got, expected, "http path vs byte parser");
    }
    if ctl & 4 != 0 {
        as_extended_connect(&request, &config);
    }
});
