//! Sans-IO codec of routing packets, the stream every transport carries after settlement
//! (apps.md 6.5): `type(1) ‖ route ID (u32 BE) ‖ payload length (u16 BE) ‖ payload`. A reader
//! takes the 7-byte header, then exactly `length` bytes. Unknown types (the newer protocol adds
//! 7..=19) are kept as [`PacketBody::Other`] so a transport never fails on them.

/// Header size.
pub const HEADER_LEN: usize = 7;
/// Largest payload.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Packet type bytes of the 2024 protocol.
pub mod types {
    /// Data.
    pub const DATA: u8 = 0;
    /// Close.
    pub const CLOSE: u8 = 1;
    /// KeepAlive.
    pub const KEEP_ALIVE: u8 = 2;
    /// Handshake.
    pub const HANDSHAKE: u8 = 3;
    /// Ping.
    pub const PING: u8 = 4;
    /// Pong.
    pub const PONG: u8 = 5;
    /// Error.
    pub const ERROR: u8 = 6;
}

/// Malformed packets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer bytes than the header announces.
    #[error("routing packet: truncated (need {need} bytes, have {have})")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Payload over 65535 bytes.
    #[error("routing packet: payload of {0} bytes exceeds 65535")]
    TooBig(usize),
    /// A known type with a payload of the wrong size.
    #[error("routing packet: {kind} payload must be {want} bytes, got {got}")]
    BadPayload {
        /// The type's name.
        kind: &'static str,
        /// Expected length.
        want: usize,
        /// Actual length.
        got: usize,
    },
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Type byte.
    pub ptype: u8,
    /// Route ID.
    pub route_id: u32,
    /// Payload length.
    pub len: u16,
}

impl Header {
    /// Parses the 7 header bytes.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            ptype: b[0],
            route_id: u32::from_be_bytes([b[1], b[2], b[3], b[4]]),
            len: u16::from_be_bytes([b[5], b[6]]),
        }
    }

    /// The 7 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let r = self.route_id.to_be_bytes();
        let l = self.len.to_be_bytes();
        [self.ptype, r[0], r[1], r[2], r[3], l[0], l[1]]
    }
}

/// A packet's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketBody {
    /// App bytes.
    Data(Vec<u8>),
    /// Close with a code (0 = requested by the visor).
    Close(u8),
    /// Keep-alive.
    KeepAlive,
    /// Route-group handshake; newer peers append capability bytes (kept).
    Handshake {
        /// First payload byte: 1 = wants noise encryption, 0 = not.
        encrypt: u8,
        /// Bytes after the first (newer protocol; empty in 2024).
        extra: Vec<u8>,
    },
    /// Ping: timestamp (ms) and throughput.
    Ping {
        /// Sender's timestamp in ms.
        timestamp: u64,
        /// Measured throughput.
        throughput: u64,
    },
    /// Pong: the echoed timestamp, then 8 bytes the 2024 reference sends as zero (kept as read).
    Pong {
        /// The ping's timestamp.
        timestamp: u64,
        /// The second field (0 when sent by the reference or by us).
        rest: u64,
    },
    /// Error text (UTF-8 by convention; kept as bytes, see [`PacketBody::error_text`]).
    Error(Vec<u8>),
    /// A type this implementation does not interpret.
    Other {
        /// Type byte.
        ptype: u8,
        /// Raw payload.
        payload: Vec<u8>,
    },
}

/// A routing packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Route ID.
    pub route_id: u32,
    /// Content.
    pub body: PacketBody,
}

fn u64_at(p: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[at..at + 8]);
    u64::from_be_bytes(b)
}

impl PacketBody {
    /// Type byte.
    pub fn ptype(&self) -> u8 {
        match self {
            PacketBody::Data(_) => types::DATA,
            PacketBody::Close(_) => types::CLOSE,
            PacketBody::KeepAlive => types::KEEP_ALIVE,
            PacketBody::Handshake { .. } => types::HANDSHAKE,
            PacketBody::Ping { .. } => types::PING,
            PacketBody::Pong { .. } => types::PONG,
            PacketBody::Error(_) => types::ERROR,
            PacketBody::Other { ptype, .. } => *ptype,
        }
    }

    /// Payload bytes.
    pub fn payload(&self) -> Vec<u8> {
        match self {
            PacketBody::Data(d) => d.clone(),
            PacketBody::Close(c) => vec![*c],
            PacketBody::KeepAlive => Vec::new(),
            PacketBody::Handshake { encrypt, extra } => {
                let mut v = vec![*encrypt];
                v.extend_from_slice(extra);
                v
            }
            PacketBody::Ping {
                timestamp,
                throughput,
            } => {
                let mut v = timestamp.to_be_bytes().to_vec();
                v.extend_from_slice(&throughput.to_be_bytes());
                v
            }
            PacketBody::Pong { timestamp, rest } => {
                let mut v = timestamp.to_be_bytes().to_vec();
                v.extend_from_slice(&rest.to_be_bytes());
                v
            }
            PacketBody::Error(s) => s.clone(),
            PacketBody::Other { payload, .. } => payload.clone(),
        }
    }

    /// The text of an Error packet (lossy UTF-8), `None` for other types.
    pub fn error_text(&self) -> Option<String> {
        match self {
            PacketBody::Error(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// Interprets a payload of type `ptype`.
    ///
    /// # Errors
    /// [`PacketError::BadPayload`] when a known type has a payload of the wrong size.
    pub fn from_parts(ptype: u8, p: &[u8]) -> Result<PacketBody, PacketError> {
        let exact = |kind, want| {
            if p.len() == want {
                Ok(())
            } else {
                Err(PacketError::BadPayload {
                    kind,
                    want,
                    got: p.len(),
                })
            }
        };
        Ok(match ptype {
            types::DATA => PacketBody::Data(p.to_vec()),
            types::CLOSE => {
                exact("Close", 1)?;
                PacketBody::Close(p[0])
            }
            types::KEEP_ALIVE => {
                exact("KeepAlive", 0)?;
                PacketBody::KeepAlive
            }
            types::HANDSHAKE => match p.split_first() {
                Some((first, rest)) => PacketBody::Handshake {
                    encrypt: *first,
                    extra: rest.to_vec(),
                },
                None => {
                    return Err(PacketError::BadPayload {
                        kind: "Handshake",
                        want: 1,
                        got: 0,
                    });
                }
            },
            types::PING => {
                exact("Ping", 16)?;
                PacketBody::Ping {
                    timestamp: u64_at(p, 0),
                    throughput: u64_at(p, 8),
                }
            }
            types::PONG => {
                exact("Pong", 16)?;
                PacketBody::Pong {
                    timestamp: u64_at(p, 0),
                    rest: u64_at(p, 8),
                }
            }
            types::ERROR => PacketBody::Error(p.to_vec()),
            other => PacketBody::Other {
                ptype: other,
                payload: p.to_vec(),
            },
        })
    }
}

impl Packet {
    /// A Data packet.
    pub fn data(route_id: u32, payload: impl Into<Vec<u8>>) -> Packet {
        Packet {
            route_id,
            body: PacketBody::Data(payload.into()),
        }
    }

    /// Wire bytes.
    ///
    /// # Errors
    /// [`PacketError::TooBig`] for a payload over 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        let payload = self.body.payload();
        let len = u16::try_from(payload.len()).map_err(|_| PacketError::TooBig(payload.len()))?;
        let h = Header {
            ptype: self.body.ptype(),
            route_id: self.route_id,
            len,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&h.encode());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Decodes the first packet of `buf`; returns it and the bytes it used. `Ok(None)` when
    /// `buf` does not yet hold a whole packet.
    ///
    /// # Errors
    /// [`PacketError::BadPayload`] for a complete packet with a malformed known payload (the
    /// caller can skip `HEADER_LEN + len` bytes and go on).
    pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, PacketError> {
        let Some(hb) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let h = Header::decode(hb);
        let total = HEADER_LEN + usize::from(h.len);
        let Some(payload) = buf.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        let body = PacketBody::from_parts(h.ptype, payload)?;
        Ok(Some((
            Packet {
                route_id: h.route_id,
                body,
            },
            total,
        )))
    }

    /// Decodes exactly one packet occupying all of `buf`.
    ///
    /// # Errors
    /// [`PacketError::Truncated`] when `buf` is shorter or longer than the packet, or the
    /// payload error.
    pub fn decode_exact(buf: &[u8]) -> Result<Packet, PacketError> {
        match Packet::decode(buf)? {
            Some((p, n)) if n == buf.len() => Ok(p),
            Some((_, n)) => Err(PacketError::Truncated {
                need: n,
                have: buf.len(),
            }),
            None => {
                let need = buf.first_chunk::<HEADER_LEN>().map_or(HEADER_LEN, |hb| {
                    HEADER_LEN + usize::from(Header::decode(hb).len)
                });
                Err(PacketError::Truncated {
                    need,
                    have: buf.len(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    fn roundtrip(p: Packet, hex_want: &str) {
        assert_eq!(hex::encode(p.encode().unwrap()), hex_want);
        assert_eq!(
            Packet::decode_exact(&hex::decode(hex_want).unwrap()).unwrap(),
            p
        );
    }

    #[test]
    fn appendix_a_packets() {
        roundtrip(
            Packet::data(0x0102_0304, b"hi".to_vec()),
            "000102030400026869",
        );
        roundtrip(
            Packet {
                route_id: 7,
                body: PacketBody::Close(0),
            },
            "0100000007000100",
        );
        roundtrip(
            Packet {
                route_id: 7,
                body: PacketBody::KeepAlive,
            },
            "02000000070000",
        );
        roundtrip(
            Packet {
                route_id: 7,
                body: PacketBody::Handshake {
                    encrypt: 1,
                    extra: vec![],
                },
            },
            "0300000007000101",
        );
        roundtrip(
            Packet {
                route_id: 7,
                body: PacketBody::Ping {
                    timestamp: 1_700_000_000_000,
                    throughput: 1234,
                },
            },
            "040000000700100000018bcfe5680000000000000004d2",
        );
        roundtrip(
            Packet {
                route_id: 7,
                body: PacketBody::Pong {
                    timestamp: 1_700_000_000_000,
                    rest: 0,
                },
            },
            "050000000700100000018bcfe568000000000000000000",
        );
        roundtrip(
            Packet {
                route_id: 1,
                body: PacketBody::Error(b"no".to_vec()),
            },
            "060000000100026e6f",
        );
    }

    #[test]
    fn partial_and_bad() {
        let full = hex::decode("000102030400026869").unwrap();
        for n in 0..full.len() {
            assert_eq!(Packet::decode(&full[..n]).unwrap(), None);
        }
        assert!(Packet::decode(&hex::decode("01000000070000").unwrap()).is_err());
        assert!(Packet::encode(&Packet::data(1, vec![0; 65536])).is_err());
        // A newer type is carried, not rejected.
        let p = Packet::decode_exact(&hex::decode("0f0000000000020102").unwrap()).unwrap();
        assert_eq!(
            p.body,
            PacketBody::Other {
                ptype: 15,
                payload: vec![1, 2]
            }
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut rest = &b[..];
            // Walk the buffer as a reader would, skipping malformed packets.
            for _ in 0..300 {
                match Packet::decode(rest) {
                    Ok(Some((_, n))) => rest = &rest[n..],
                    Ok(None) => break,
                    Err(_) => {
                        let h = Header::decode(rest.first_chunk::<HEADER_LEN>().unwrap());
                        rest = &rest[HEADER_LEN + usize::from(h.len)..];
                    }
                }
            }
        }

        #[test]
        fn data_roundtrip(rid in any::<u32>(), d in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let p = Packet::data(rid, d);
            let enc = p.encode().unwrap();
            prop_assert_eq!(Packet::decode_exact(&enc).unwrap(), p);
        }

        #[test]
        fn any_type_roundtrip(t in any::<u8>(), rid in any::<u32>(), d in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(body) = PacketBody::from_parts(t, &d) {
                let p = Packet { route_id: rid, body };
                let enc = p.encode().unwrap();
                let back = Packet::decode_exact(&enc).unwrap();
                prop_assert_eq!(back.body.ptype(), t);
                prop_assert_eq!(back, p);
            }
        }
    }
}
