//! The VPN wire protocol as plain functions over bytes (apps.md 3.1-3.3): the two JSON hellos,
//! the reference's /29 address allocation, and re-splitting a byte stream into IP packets.
//!
//! Hellos are bare JSON objects with no length prefix. The reference parses whatever one read
//! returned; we instead parse the first complete JSON value of the buffered bytes and report how
//! many bytes it used, so packets that follow a hello in the same read are not lost.
//!
//! Framing: the reference writes one IP packet per stream write and relies on one read returning
//! one noise frame. We keep the write side exactly like that (one packet per write, never
//! coalesced or split), but on the read side we do not rely on read boundaries: [`PacketSplitter`]
//! cuts the byte stream at the lengths in the IPv4/IPv6 headers, which gives the same packets for
//! a reference peer and also works when a read returns several frames at once.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// dmsg port of the VPN server.
pub const SERVER_PORT: u16 = 44;
/// Nominal dmsg port of the VPN client.
pub const CLIENT_PORT: u16 = 43;
/// TUN MTU on both ends.
pub const TUN_MTU: u16 = 1500;
/// Largest packet accepted from the peer (the reference's 4070-byte frame bound is larger than
/// any MTU we configure; 65535 is the IPv4 maximum).
pub const MAX_PACKET: usize = 65535;
/// Largest hello accepted before giving up on it.
pub const MAX_HELLO: usize = 64 * 1024;

/// Client → server hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClientHello {
    /// IPv4 addresses the client uses locally; blocks containing them are not handed out.
    #[serde(default)]
    pub unavailable_private_ips: Vec<Ipv4Addr>,
    /// Passcode (plain text inside the encrypted stream).
    #[serde(default)]
    pub passcode: String,
}

/// Handshake status codes of the server hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: accepted.
    Ok,
    /// 1: the client hello could not be parsed.
    BadRequest,
    /// 2: no free address block.
    NoFreeIps,
    /// 3: the server failed to set up the tunnel.
    InternalError,
    /// 4: wrong passcode.
    Forbidden,
    /// Any other number (kept for error messages).
    Other(i64),
}

impl Status {
    /// The wire number.
    pub fn code(self) -> i64 {
        match self {
            Status::Ok => 0,
            Status::BadRequest => 1,
            Status::NoFreeIps => 2,
            Status::InternalError => 3,
            Status::Forbidden => 4,
            Status::Other(n) => n,
        }
    }

    /// From the wire number.
    pub fn from_code(n: i64) -> Status {
        match n {
            0 => Status::Ok,
            1 => Status::BadRequest,
            2 => Status::NoFreeIps,
            3 => Status::InternalError,
            4 => Status::Forbidden,
            n => Status::Other(n),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::BadRequest => f.write_str("bad request"),
            Status::NoFreeIps => f.write_str("no free IP addresses"),
            Status::InternalError => f.write_str("internal server error"),
            Status::Forbidden => f.write_str("forbidden (wrong passcode)"),
            Status::Other(n) => write!(f, "unknown status {n}"),
        }
    }
}

/// Server → client hello as it is on the wire (`tun_ip`/`tun_gateway` are `""` on errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServerHelloWire {
    /// Status code (see [`Status`]).
    pub status: i64,
    /// The client's TUN address (B+4) or "".
    #[serde(default)]
    pub tun_ip: String,
    /// The client's TUN gateway (B+3) or "".
    #[serde(default)]
    pub tun_gateway: String,
}

/// A decoded server hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHello {
    /// Accepted with these addresses.
    Ok {
        /// Client TUN address (B+4).
        tun_ip: Ipv4Addr,
        /// Client TUN gateway (B+3).
        tun_gateway: Ipv4Addr,
    },
    /// Refused.
    Err(Status),
}

impl ServerHello {
    /// The wire form.
    pub fn to_wire(self) -> ServerHelloWire {
        match self {
            ServerHello::Ok {
                tun_ip,
                tun_gateway,
            } => ServerHelloWire {
                status: 0,
                tun_ip: tun_ip.to_string(),
                tun_gateway: tun_gateway.to_string(),
            },
            ServerHello::Err(s) => ServerHelloWire {
                status: s.code(),
                tun_ip: String::new(),
                tun_gateway: String::new(),
            },
        }
    }

    /// From the wire form; an OK status with unparsable addresses is an error.
    pub fn from_wire(w: &ServerHelloWire) -> Result<ServerHello, ProtoError> {
        match Status::from_code(w.status) {
            Status::Ok => {
                let parse = |s: &str| {
                    s.parse::<Ipv4Addr>()
                        .map_err(|_| ProtoError::BadAddress(s.to_string()))
                };
                Ok(ServerHello::Ok {
                    tun_ip: parse(&w.tun_ip)?,
                    tun_gateway: parse(&w.tun_gateway)?,
                })
            }
            s => Ok(ServerHello::Err(s)),
        }
    }
}

/// Protocol errors.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The hello is not valid JSON of the expected shape.
    #[error("invalid VPN hello JSON")]
    BadJson(#[source] serde_json::Error),
    /// The hello grew past [`MAX_HELLO`] without completing.
    #[error("VPN hello longer than {MAX_HELLO} bytes")]
    HelloTooLong,
    /// An address field is not an IPv4 address.
    #[error("invalid IPv4 address {0:?} in the VPN hello")]
    BadAddress(String),
    /// A packet header announces an impossible version or length.
    #[error("invalid IP packet header (first byte {first:#04x}, length {len})")]
    BadPacket {
        /// First byte of the header.
        first: u8,
        /// Announced total length.
        len: usize,
    },
}

/// Encodes a hello as the bare JSON object the reference sends.
pub fn encode_hello<T: Serialize>(hello: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; fall back to an empty object regardless.
    serde_json::to_vec(hello).unwrap_or_else(|_| b"{}".to_vec())
}

/// Parses the first JSON value in `buf`. `Ok(None)`: incomplete, read more. `Ok(Some((v, n)))`:
/// the value and the number of bytes it used (trailing bytes belong to the packet stream).
pub fn decode_hello<T: for<'de> Deserialize<'de>>(
    buf: &[u8],
) -> Result<Option<(T, usize)>, ProtoError> {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<T>();
    match it.next() {
        None => {
            if buf.len() > MAX_HELLO {
                Err(ProtoError::HelloTooLong)
            } else {
                Ok(None)
            }
        }
        Some(Ok(v)) => Ok(Some((v, it.byte_offset()))),
        Some(Err(e)) if e.is_eof() => {
            if buf.len() > MAX_HELLO {
                Err(ProtoError::HelloTooLong)
            } else {
                Ok(None)
            }
        }
        Some(Err(e)) => Err(ProtoError::BadJson(e)),
    }
}

/// The addresses of one client's /29 block with base B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// B.
    pub base: Ipv4Addr,
}

impl Block {
    fn at(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base).wrapping_add(n))
    }
    /// Server TUN gateway, B+1.
    pub fn server_gateway(&self) -> Ipv4Addr {
        self.at(1)
    }
    /// Server TUN address, B+2.
    pub fn server_ip(&self) -> Ipv4Addr {
        self.at(2)
    }
    /// Client TUN gateway, B+3.
    pub fn client_gateway(&self) -> Ipv4Addr {
        self.at(3)
    }
    /// Client TUN address, B+4.
    pub fn client_ip(&self) -> Ipv4Addr {
        self.at(4)
    }
    /// Prefix length of every TUN address.
    pub const PREFIX: u8 = 29;
    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & !7 == u32::from(self.base)
    }
}

/// The candidate ranges in the order the reference hands them out: 172.16/12 first, then
/// 192.168.2.0-192.168.255.255, then 10/8. The first block of each range is its network address
/// and is skipped (the reference's first block is 172.16.0.8).
const RANGES: [(u32, u32); 3] = [
    (0xAC10_0000, 0xAC1F_FFFF), // 172.16.0.0 - 172.31.255.255
    (0xC0A8_0200, 0xC0A8_FFFF), // 192.168.2.0 - 192.168.255.255
    (0x0A00_0000, 0x0AFF_FFFF), // 10.0.0.0 - 10.255.255.255
];

/// Hands out /29 blocks. Unlike the reference, a client's unavailable addresses only exclude
/// blocks for that client (they do not accumulate across clients), and blocks are released when
/// their client leaves.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    used: BTreeSet<u32>,
    /// Addresses of the server itself: never handed out.
    reserved: Vec<Ipv4Addr>,
}

impl Allocator {
    /// An allocator that never hands out blocks containing `reserved`.
    pub fn new(reserved: Vec<Ipv4Addr>) -> Allocator {
        Allocator {
            used: BTreeSet::new(),
            reserved,
        }
    }

    /// The next free block avoiding `unavailable` and the reserved addresses.
    pub fn allocate(&mut self, unavailable: &[Ipv4Addr]) -> Option<Block> {
        let bad: BTreeSet<u32> = unavailable
            .iter()
            .chain(self.reserved.iter())
            .map(|ip| u32::from(*ip) & !7)
            .collect();
        for (start, end) in RANGES {
            let mut base = start + 8;
            while base < end {
                if !self.used.contains(&base) && !bad.contains(&base) {
                    self.used.insert(base);
                    return Some(Block {
                        base: Ipv4Addr::from(base),
                    });
                }
                base += 8;
            }
        }
        None
    }

    /// Returns a block to the pool.
    pub fn release(&mut self, block: Block) {
        self.used.remove(&u32::from(block.base));
    }
}

/// Total length of the IP packet starting at `buf` (at least one byte), if the header is long
/// enough to tell. `Err` when the header cannot start a valid packet.
pub fn packet_len(buf: &[u8]) -> Result<Option<usize>, ProtoError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first >> 4 {
        4 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || len < ihl {
                return Err(ProtoError::BadPacket { first, len });
            }
            Ok(Some(len))
        }
        6 => {
            if buf.len() < 6 {
                return Ok(None);
            }
            let len = 40 + usize::from(u16::from_be_bytes([buf[4], buf[5]]));
            Ok(Some(len))
        }
        _ => Err(ProtoError::BadPacket { first, len: 0 }),
    }
}

/// Re-splits the byte stream from the peer into IP packets.
#[derive(Debug, Default)]
pub struct PacketSplitter {
    buf: Vec<u8>,
    start: usize,
}

impl PacketSplitter {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed. After an error the stream
    /// is unusable (the peer is not speaking this protocol).
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, ProtoError> {
        let rest = &self.buf[self.start..];
        match packet_len(rest)? {
            Some(len) if rest.len() >= len => {
                let s = self.start;
                self.start += len;
                Ok(Some(&self.buf[s..s + len]))
            }
            _ => Ok(None),
        }
    }

    /// Bytes buffered but not yet returned.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn first_blocks_match_the_reference() {
        let mut a = Allocator::default();
        let b = a.allocate(&[]).unwrap();
        assert_eq!(b.base, Ipv4Addr::new(172, 16, 0, 8));
        assert_eq!(b.server_gateway(), Ipv4Addr::new(172, 16, 0, 9));
        assert_eq!(b.server_ip(), Ipv4Addr::new(172, 16, 0, 10));
        assert_eq!(b.client_gateway(), Ipv4Addr::new(172, 16, 0, 11));
        assert_eq!(b.client_ip(), Ipv4Addr::new(172, 16, 0, 12));
        let b2 = a.allocate(&[Ipv4Addr::new(172, 16, 0, 20)]).unwrap();
        assert_eq!(b2.base, Ipv4Addr::new(172, 16, 0, 24));
        // Only that client avoided .16: the next one gets it.
        assert_eq!(a.allocate(&[]).unwrap().base, Ipv4Addr::new(172, 16, 0, 16));
        a.release(b);
        assert_eq!(a.allocate(&[]).unwrap(), b);
    }

    #[test]
    fn hello_round_trip_and_trailing_bytes() {
        let h = ClientHello {
            unavailable_private_ips: vec![Ipv4Addr::new(192, 168, 1, 10)],
            passcode: "pw".into(),
        };
        let mut wire = encode_hello(&h);
        assert_eq!(
            String::from_utf8(wire.clone()).unwrap(),
            r#"{"unavailable_private_ips":["192.168.1.10"],"passcode":"pw"}"#
        );
        let n = wire.len();
        wire.extend_from_slice(&[0x45, 0, 0, 20]);
        let (got, used) = decode_hello::<ClientHello>(&wire).unwrap().unwrap();
        assert_eq!((got, used), (h, n));
        assert!(
            decode_hello::<ClientHello>(&wire[..n - 1])
                .unwrap()
                .is_none()
        );
        let s: ServerHelloWire =
            decode_hello(br#"{"status":0,"tun_ip":"172.16.0.12","tun_gateway":"172.16.0.11"}"#)
                .unwrap()
                .unwrap()
                .0;
        assert_eq!(
            ServerHello::from_wire(&s).unwrap(),
            ServerHello::Ok {
                tun_ip: Ipv4Addr::new(172, 16, 0, 12),
                tun_gateway: Ipv4Addr::new(172, 16, 0, 11)
            }
        );
        let e = ServerHello::Err(Status::Forbidden).to_wire();
        assert_eq!(
            String::from_utf8(encode_hello(&e)).unwrap(),
            r#"{"status":4,"tun_ip":"","tun_gateway":""}"#
        );
    }

    #[test]
    fn splitter_cuts_at_header_lengths() {
        let mut p4 = vec![0u8; 28];
        p4[0] = 0x45;
        p4[3] = 28;
        let mut p6 = vec![0u8; 48];
        p6[0] = 0x60;
        p6[5] = 8;
        let mut s = PacketSplitter::default();
        let mut all = p4.clone();
        all.extend_from_slice(&p6);
        s.push(&all[..10]);
        assert!(s.next_packet().unwrap().is_none());
        s.push(&all[10..]);
        assert_eq!(s.next_packet().unwrap().unwrap(), &p4[..]);
        assert_eq!(s.next_packet().unwrap().unwrap(), &p6[..]);
        assert!(s.next_packet().unwrap().is_none());
        s.push(&[0x10]);
        assert!(s.next_packet().is_err());
    }
}
