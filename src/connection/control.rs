//! Control frames on the receive path (RFC 6455 §5.5): Pings and Pongs go to the
//! application (the connection keeps the obligations they bring), the peer's Close is
//! checked and stops the parser.

use super::assemble::{Assembler, Step};
use crate::close::{CloseCode, CloseFrame};
use crate::connection::Event;
use crate::error::ProtocolError;
use crate::frame::Opcode;
use crate::message::Utf8Bytes;
use bytes::Bytes;

impl Assembler {
    pub(super) fn control(
        &mut self,
        opcode: Opcode,
        payload: Bytes,
    ) -> Result<Step, ProtocolError> {
        Ok(match opcode {
            Opcode::Ping => {
                self.events.push_back(Event::Ping(payload));
                Step::Ping
            }
            Opcode::Pong => {
                self.events.push_back(Event::Pong(payload));
                Step::Pong
            }
            _ => {
                let frame = parse_close(payload)?;
                // Nothing after the Close is parsed.
                self.close_seen = true;
                self.stop();
                self.emit(Event::Close(frame))
            }
        })
    }
}

/// Parses and checks a received Close payload (RFC 6455 §5.5.1).
fn parse_close(payload: Bytes) -> Result<CloseFrame, ProtocolError> {
    match payload.len() {
        0 => Ok(CloseFrame::new(CloseCode::NO_STATUS, Utf8Bytes::new())),
        // RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a
        // 2-byte unsigned integer ... representing a status code"; one byte cannot be one.
        1 => Err(ProtocolError::CloseFrameTooShort),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            // RFC 6455 §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a
            // Close control frame by an endpoint"; §7.4.2 leaves 0-999 unused.
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            // RFC 6455 §5.5.1: the body after the code "is not guaranteed to be human
            // readable" but its data "MUST" be UTF-8 encoded (as for text frames).
            let reason = Utf8Bytes::try_from(payload.slice(2..))
                .map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(CloseFrame::new(code, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_5_1_close_payloads() {
        assert_eq!(
            parse_close(Bytes::new()).unwrap().code,
            CloseCode::NO_STATUS
        );
        assert_eq!(
            parse_close(Bytes::from_static(&[3])),
            Err(ProtocolError::CloseFrameTooShort)
        );
        assert_eq!(
            parse_close(Bytes::from_static(&[0x03, 0xed])),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            parse_close(Bytes::from_static(&[0x03, 0xe8, 0xff])),
            Err(ProtocolError::InvalidCloseReason)
        );
        let ok = parse_close(Bytes::from_static(b"\x0f\xa0bye")).unwrap();
        assert_eq!((ok.code.as_u16(), ok.reason.as_str()), (4000, "bye"));
    }
}
