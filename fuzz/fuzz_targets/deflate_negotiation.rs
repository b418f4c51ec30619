#![no_main]
//! permessage-deflate negotiation never panics, and a server's answer always satisfies a
//! browser-like client: the response it builds re-parses, as the client checks it, to the
//! same parameters. Input: 1 control byte (the config), then header values separated by
//! newlines.
use libfuzzer_sys::fuzz_target;
use rfc6455::deflate::{DeflateConfig, accept_offer, check_response, client_offer};

fn config(ctrl: u8) -> DeflateConfig {
    let mut c = DeflateConfig::default();
    if ctrl & 0x80 != 0 {
        c = c
            .server_max_window_bits(8 + (ctrl & 7))
            .client_max_window_bits(8 + ((ctrl >> 3) & 7));
    }
    c.server_no_context_takeover(ctrl & 0x40 != 0)
        .client_no_context_takeover(ctrl & 0x20 != 0)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctrl, rest)) = data.split_first() else {
        return;
    };
    let values: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let config = config(ctrl);

    // Server side: any answer must be what a browser-like client accepts, with the same
    // parameters (it offered `permessage-deflate; client_max_window_bits`, so any window and
    // either flag may come back).
    if let Some((params, response)) = accept_offer(&config, &values) {
        let client = DeflateConfig::default();
        let checked = check_response(&client, [response.as_bytes()]);
        assert_eq!(checked, Ok(Some(params)), "{response}");
        assert!(params.server_max_window_bits() >= 8 && params.server_max_window_bits() <= 15);
        assert!(params.client_max_window_bits() >= 8 && params.client_max_window_bits() <= 15);
    }

    // Client side: the same bytes as a response; must not panic, and an accepted one stays
    // within what this config offered.
    if let Ok(Some(params)) = check_response(&config, &values) {
        if config.server_no_context_takeover {
            assert!(params.server_no_context_takeover());
        }
        if let Some(bits) = config.server_max_window_bits {
            assert!(params.server_max_window_bits() <= bits.clamp(8, 15));
        }
    }

    // Our own offer is always acceptable to our own server.
    let offer = client_offer(&config).unwrap();
    let (params, response) = accept_offer(&config, [&offer]).unwrap();
    assert_eq!(check_response(&config, [&response]), Ok(Some(params)));
});
