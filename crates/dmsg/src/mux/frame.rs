//! Sans-IO yamux frame codec: the 12-byte header of hashicorp/yamux v0.1.1 and a
//! buffer-based decoder that splits complete frames out of a `BytesMut`.
//!
//! Owns nothing but bytes: no IO, no time, no stream state. The decoder never panics on any
//! input; it rejects a version other than 0, unknown frame types, and Data frames longer than
//! the largest receive window we could ever grant (`max_data_len`) before buffering their
//! payload. Everything the session driver decides (window checks per stream, GoAway codes)
//! lives in `session.rs`.
//!
//! Wire layout (all big-endian): `version(1)=0 | type(1) | flags(2) | stream_id(4) | length(4)`.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Size of a yamux frame header in bytes.
pub const HEADER_LEN: usize = 12;
/// The only protocol version hashicorp/yamux speaks.
pub const PROTO_VERSION: u8 = 0;
/// Initial per-stream window of hashicorp/yamux (`initialStreamWindow`), fixed by the protocol.
pub const INITIAL_STREAM_WINDOW: u32 = 256 * 1024;

/// Frame type (second header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// Stream payload; `length` bytes follow the header.
    Data = 0,
    /// Stream window credit; `length` is the delta. Also carries SYN/ACK/FIN/RST.
    WindowUpdate = 1,
    /// Session ping; `length` is an opaque ping id, stream id 0.
    Ping = 2,
    /// Session termination; `length` is a [`GoAwayCode`].
    GoAway = 3,
}

impl FrameType {
    /// Parses the type byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Data),
            1 => Some(Self::WindowUpdate),
            2 => Some(Self::Ping),
            3 => Some(Self::GoAway),
            _ => None,
        }
    }
}

/// Header flags (a bit set; unknown bits are kept and ignored, like hashicorp does).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Start of a new stream (or a ping request).
    pub const SYN: Flags = Flags(1);
    /// Acknowledges a stream start (or answers a ping).
    pub const ACK: Flags = Flags(2);
    /// Half-close of the sender's direction.
    pub const FIN: Flags = Flags(4);
    /// Abrupt stream reset.
    pub const RST: Flags = Flags(8);

    /// True when every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Flags {
    /// Same spelling as `live_trace.json`: `0`, `SYN`, `ACK|FIN`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut first = true;
        for (bit, name) in [(1u16, "SYN"), (2, "ACK"), (4, "FIN"), (8, "RST")] {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let unknown = self.0 & !0xf;
        if unknown != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{unknown:#x}")?;
        }
        Ok(())
    }
}

/// GoAway reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoAwayCode {
    /// Normal termination: no new streams, existing ones may finish.
    Normal = 0,
    /// The peer violated the protocol.
    ProtocolError = 1,
    /// Internal error of the sender.
    InternalError = 2,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Frame type.
    pub typ: FrameType,
    /// Flags.
    pub flags: Flags,
    /// Stream id (0 for Ping and GoAway).
    pub stream_id: u32,
    /// Payload length (Data), window delta (WindowUpdate), ping id (Ping) or code (GoAway).
    pub length: u32,
}

/// Why bytes could not be decoded as a frame. Every variant is a protocol error (GoAway 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Version byte other than 0.
    #[error("unsupported yamux version {0}")]
    BadVersion(u8),
    /// Type byte other than 0..=3.
    #[error("unknown yamux frame type {0}")]
    UnknownType(u8),
    /// A Data frame longer than any receive window we grant.
    #[error("data frame of {len} bytes exceeds the maximum window of {max} bytes")]
    DataTooLong {
        /// Announced payload length.
        len: u32,
        /// Largest acceptable payload length.
        max: u32,
    },
}

impl Header {
    /// A Data frame header for `len` payload bytes.
    pub const fn data(flags: Flags, stream_id: u32, len: u32) -> Self {
        Self {
            typ: FrameType::Data,
            flags,
            stream_id,
            length: len,
        }
    }

    /// A WindowUpdate header carrying `delta` credit and `flags`.
    pub const fn window_update(flags: Flags, stream_id: u32, delta: u32) -> Self {
        Self {
            typ: FrameType::WindowUpdate,
            flags,
            stream_id,
            length: delta,
        }
    }

    /// A Ping header (`SYN` = request, `ACK` = answer).
    pub const fn ping(flags: Flags, ping_id: u32) -> Self {
        Self {
            typ: FrameType::Ping,
            flags,
            stream_id: 0,
            length: ping_id,
        }
    }

    /// A GoAway header.
    pub const fn go_away(code: GoAwayCode) -> Self {
        Self {
            typ: FrameType::GoAway,
            flags: Flags::NONE,
            stream_id: 0,
            length: code as u32,
        }
    }

    /// Encodes the 12 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = PROTO_VERSION;
        b[1] = self.typ as u8;
        b[2..4].copy_from_slice(&self.flags.0.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    /// Decodes 12 header bytes (no payload-length policy; see [`FrameDecoder`]).
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, FrameError> {
        if b[0] != PROTO_VERSION {
            return Err(FrameError::BadVersion(b[0]));
        }
        let typ = FrameType::from_u8(b[1]).ok_or(FrameError::UnknownType(b[1]))?;
        Ok(Self {
            typ,
            flags: Flags(u16::from_be_bytes([b[2], b[3]])),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }

    /// Bytes of payload that follow this header on the wire.
    pub fn payload_len(&self) -> usize {
        match self.typ {
            FrameType::Data => self.length as usize,
            _ => 0,
        }
    }
}

/// A complete frame: header plus (for Data) its payload, sharing the read buffer's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// Payload of a Data frame (empty otherwise).
    pub payload: Bytes,
}

/// Incremental decoder: feed it the read buffer, get complete frames out.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_data_len: u32,
    pending: Option<Header>,
}

impl FrameDecoder {
    /// A decoder that refuses Data frames longer than `max_data_len` bytes.
    pub fn new(max_data_len: u32) -> Self {
        Self {
            max_data_len,
            pending: None,
        }
    }

    /// Bytes the decoder needs in `buf` before the next call can make progress (a hint for
    /// sizing reads).
    pub fn wanted(&self, buffered: usize) -> usize {
        match self.pending {
            Some(h) => h.payload_len().saturating_sub(buffered),
            None => HEADER_LEN.saturating_sub(buffered),
        }
    }

    /// Takes one complete frame off the front of `buf`, or returns `Ok(None)` if more bytes
    /// are needed. After an error the decoder must not be used again (the session dies).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let header = match self.pending {
            Some(h) => h,
            None => {
                let Some(raw) = buf.get(..HEADER_LEN) else {
                    return Ok(None);
                };
                let mut arr = [0u8; HEADER_LEN];
                arr.copy_from_slice(raw);
                let h = Header::decode(&arr)?;
                if h.typ == FrameType::Data && h.length > self.max_data_len {
                    return Err(FrameError::DataTooLong {
                        len: h.length,
                        max: self.max_data_len,
                    });
                }
                buf.advance(HEADER_LEN);
                h
            }
        };
        let need = header.payload_len();
        if buf.len() < need {
            self.pending = Some(header);
            return Ok(None);
        }
        self.pending = None;
        let payload = if need == 0 {
            Bytes::new()
        } else {
            buf.split_to(need).freeze()
        };
        Ok(Some(Frame { header, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_header_matches_trace() {
        let h = Header::window_update(Flags::SYN, 2, 0);
        assert_eq!(h.encode(), [0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn decoder_splits_frames() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&Header::data(Flags::NONE, 1, 3).encode());
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(&Header::ping(Flags::SYN, 7).encode()[..5]);
        let mut d = FrameDecoder::new(10);
        let f = d.decode(&mut buf).ok().flatten();
        assert_eq!(f.map(|f| f.payload), Some(Bytes::from_static(b"abc")));
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&Header::ping(Flags::SYN, 7).encode()[5..]);
        let f = d.decode(&mut buf).ok().flatten();
        assert_eq!(f.map(|f| f.header), Some(Header::ping(Flags::SYN, 7)));
    }

    #[test]
    fn decoder_rejects() {
        let mut d = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&Header::data(Flags::NONE, 1, 11).encode()[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::DataTooLong { len: 11, max: 10 })
        );
        let mut buf = BytesMut::from(&[1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(
            FrameDecoder::new(10).decode(&mut buf),
            Err(FrameError::BadVersion(1))
        );
        let mut buf = BytesMut::from(&[0u8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(
            FrameDecoder::new(10).decode(&mut buf),
            Err(FrameError::UnknownType(4))
        );
    }
}
