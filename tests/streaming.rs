//! Streaming receive mode (`Config::streaming_threshold`): a message larger than the
//! threshold reaches the application as `Event::Chunk`s while it arrives, with UTF-8 still
//! checked as it goes and the limits still in force; smaller messages stay whole.

mod common;

use common::{op, server, to_server};
use proptest::prelude::*;
use rfc6455::{Config, Event, Message, MessageKind, ProtocolError};

/// Text mixing one- to four-byte code points, so chunk boundaries fall inside them.
fn mixed_text(len: usize) -> String {
    let mut s = String::new();
    let parts = ["a", "é", "€", "😀", "Ω", "z"];
    let mut i = 0;
    while s.len() < len {
        s.push_str(parts[i % parts.len()]);
        i += 1;
    }
    s
}

/// Feeds `wire` in pieces of `step` bytes and collects every event.
fn collect(config: Config, wire: &[u8], step: usize) -> (Vec<Event>, Option<ProtocolError>) {
    let mut conn = server(config);
    let mut events = Vec::new();
    for piece in wire.chunks(step.max(1)) {
        let _ = conn.receive(piece);
        while let Some(event) = conn.poll_event() {
            events.push(event);
        }
    }
    (events, conn.error())
}

/// The message a run of chunks adds up to, checking each chunk's kind and that only the
/// last is final.
fn reassemble(events: &[Event]) -> (MessageKind, Vec<u8>) {
    let mut out = Vec::new();
    let mut kind = None;
    for (i, event) in events.iter().enumerate() {
        let Event::Chunk { data, fin } = event else {
            panic!("event {i} is not a chunk: {event:?}");
        };
        assert_eq!(*fin, i == events.len() - 1, "only the last chunk is final");
        assert_eq!(*kind.get_or_insert(data.kind()), data.kind());
        if let Message::Text(text) = data {
            // Each text chunk is UTF-8 on its own (cut at code point boundaries).
            assert!(std::str::from_utf8(text.as_bytes()).is_ok());
        }
        out.extend_from_slice(data.as_bytes());
    }
    (kind.expect("at least one chunk"), out)
}

fn streaming(threshold: u64) -> Config {
    Config::default().streaming_threshold(Some(threshold))
}

#[test]
fn a_large_text_frame_arrives_as_chunks_cut_at_code_points() {
    let text = mixed_text(300_000);
    let wire = to_server(true, op::TEXT, text.as_bytes());
    for step in [1, 7, 4096, wire.len()] {
        let (events, error) = collect(streaming(1024), &wire, step);
        assert_eq!(error, None);
        let (kind, bytes) = reassemble(&events);
        assert_eq!(
            (kind, bytes.as_slice()),
            (MessageKind::Text, text.as_bytes())
        );
        if step == 4096 {
            assert!(events.len() > 10, "chunks as it arrives: {}", events.len());
        }
    }
}

#[test]
fn a_fragmented_message_streams_once_it_grows_past_the_threshold() {
    let mut wire = to_server(false, op::BINARY, &[1; 600]);
    wire.extend(to_server(false, op::CONT, &[2; 600]));
    wire.extend(to_server(true, op::CONT, &[3; 600]));
    let (events, error) = collect(streaming(1000), &wire, wire.len());
    assert_eq!(error, None);
    let (kind, bytes) = reassemble(&events);
    assert_eq!(kind, MessageKind::Binary);
    let mut want = vec![1; 600];
    want.extend([2; 600]);
    want.extend([3; 600]);
    assert_eq!(bytes, want);
}

#[test]
fn messages_under_the_threshold_stay_whole() {
    let mut wire = to_server(true, op::TEXT, b"small");
    wire.extend(to_server(false, op::BINARY, b"frag"));
    wire.extend(to_server(true, op::CONT, b"mented"));
    let (events, error) = collect(streaming(1000), &wire, 3);
    assert_eq!(error, None);
    assert_eq!(
        events,
        [
            Event::Message(Message::from("small")),
            Event::Message(Message::from(b"fragmented".to_vec())),
        ]
    );
}

#[test]
fn rfc6455_8_1_invalid_utf8_in_a_streamed_message_fails_1007_before_it_ends() {
    let mut text = mixed_text(100_000).into_bytes();
    text[40_000] = 0xff;
    let wire = to_server(true, op::TEXT, &text);
    let mut conn = server(streaming(1024));
    let mut delivered = 0;
    let mut failed_at = None;
    for (i, piece) in wire.chunks(1000).enumerate() {
        if conn.receive(piece).is_err() {
            failed_at = Some(i);
            break;
        }
        while let Some(Event::Chunk { data, .. }) = conn.poll_event() {
            delivered += data.len();
        }
    }
    assert_eq!(conn.error(), Some(ProtocolError::InvalidUtf8));
    assert!(
        failed_at.is_some_and(|i| i < 45),
        "failed fast: piece {failed_at:?}"
    );
    assert!(
        delivered <= 40_000,
        "nothing past the bad byte was delivered"
    );
}

#[test]
fn rfc6455_7_4_1_the_message_limit_still_holds_when_streaming() {
    let config = streaming(1024).max_message_size(10_000);
    let mut wire = to_server(false, op::BINARY, &[0; 6_000]);
    wire.extend(to_server(true, op::CONT, &[0; 6_000]));
    let (events, error) = collect(config, &wire, 512);
    assert!(
        matches!(error, Some(ProtocolError::MessageTooLarge { .. })),
        "{error:?}"
    );
    let delivered: usize = events
        .iter()
        .map(|e| match e {
            Event::Chunk { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert!(delivered <= 6_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Where the input is cut changes where the chunks are cut, never what they add up to.
    #[test]
    fn chunks_add_up_to_the_message_however_the_input_is_split(
        len in 0usize..20_000,
        threshold in 1u64..4096,
        step in 1usize..5000,
        fragments in 1usize..6,
    ) {
        let text = mixed_text(len);
        let bytes = text.as_bytes();
        let mut wire = Vec::new();
        let cut = bytes.len() / fragments;
        for f in 0..fragments {
            let end = if f == fragments - 1 { bytes.len() } else { (f + 1) * cut };
            let opcode = if f == 0 { op::TEXT } else { op::CONT };
            wire.extend(to_server(f == fragments - 1, opcode, &bytes[f * cut..end]));
        }
        let (events, error) = collect(streaming(threshold), &wire, step);
        prop_assert_eq!(error, None);
        let whole = matches!(events.as_slice(), [Event::Message(_)]);
        if whole {
            let Event::Message(m) = &events[0] else { unreachable!() };
            prop_assert_eq!(m.as_bytes(), bytes);
            prop_assert!(len as u64 <= threshold);
        } else {
            let (kind, got) = reassemble(&events);
            prop_assert_eq!(kind, MessageKind::Text);
            prop_assert_eq!(got.as_slice(), bytes);
        }
    }
}

/// An in-memory transport: reads from `input`, collects writes.
struct Memory {
    input: std::io::Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl std::io::Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl std::io::Write for Memory {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn recv_refuses_a_streamed_message_instead_of_dropping_it_and_recv_event_reads_it() {
    use rfc6455::sync::{NoTimeouts, WebSocket};
    let text = mixed_text(5_000);
    let wire = to_server(true, op::TEXT, text.as_bytes());
    let memory = || Memory {
        input: std::io::Cursor::new(wire.clone()),
        output: Vec::new(),
    };
    let mut ws = WebSocket::from_connection(NoTimeouts(memory()), server(streaming(1024)));
    assert!(matches!(
        ws.recv(),
        Err(rfc6455::Error::Usage(rfc6455::UsageError::StreamedMessage))
    ));
    let mut ws = WebSocket::from_connection(NoTimeouts(memory()), server(streaming(1024)));
    let mut events = Vec::new();
    while let Ok(Some(event)) = ws.recv_event() {
        let last = matches!(event, Event::Chunk { fin: true, .. });
        events.push(event);
        if last {
            break;
        }
    }
    let (_, bytes) = reassemble(&events);
    assert_eq!(bytes, text.as_bytes());
}
