//! The skynet forwarding handshake (apps.md 4.2, 4.3) as a sans-IO codec plus small tokio
//! drivers. This module owns the bytes exchanged before a forward starts relaying:
//!
//! * 2026 variant only: the server first writes one ready byte `0x00`;
//! * the client writes one JSON object `{"port":N}` or `{"port":N,"raw_tcp":true}`;
//! * the server answers `{}` or `{"error":"..."}`; after `{}` both sides relay raw bytes.
//!
//! The 2024 ("skyfwd", port 47) and 2025 (skynet app, port 47) servers send no ready byte; the
//! 2026 service (port 57) does. The JSON objects are not length-prefixed on the wire, so the
//! decoders find the end of one object in a byte buffer and report how much they consumed;
//! the drivers read one byte at a time so that nothing after the object is swallowed (the
//! carriers buffer whole frames, so this costs a few memcpys).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The ready byte of the 2026 service.
pub const READY_BYTE: u8 = 0x00;
/// Forwarding service port of the 2024/2025 visors.
pub const FORWARD_PORT_2025: u16 = 47;
/// Forwarding service port of the 2026 visors.
pub const FORWARD_PORT_2026: u16 = 57;
/// Longest handshake message accepted (the real ones are a few dozen bytes).
pub const MAX_MESSAGE: usize = 4096;

/// Handshake generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// 2024 skyfwd and 2025 skynet apps: no ready byte (forwarding port 47).
    V2025,
    /// 2026: the server writes the ready byte first (forwarding port 57).
    #[default]
    V2026,
}

impl Variant {
    /// The forwarding service port this generation uses.
    pub fn default_port(self) -> u16 {
        match self {
            Variant::V2025 => FORWARD_PORT_2025,
            Variant::V2026 => FORWARD_PORT_2026,
        }
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "2024" | "2025" => Ok(Variant::V2025),
            "2026" => Ok(Variant::V2026),
            _ => Err(format!(
                "unknown handshake variant {s:?} (2024, 2025 or 2026)"
            )),
        }
    }
}

/// The client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// The server-side TCP port wanted.
    pub port: u16,
    /// Raw TCP relay instead of HTTP mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_tcp: bool,
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardReply {
    /// `{}`: relaying starts.
    Ok,
    /// `{"error":"..."}`: the server closes.
    Error(String),
}

#[derive(Serialize, Deserialize)]
struct ReplyWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Errors of the codec and drivers.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Not a valid handshake message.
    #[error("invalid skynet handshake message")]
    Invalid(#[source] serde_json::Error),
    /// Longer than [`MAX_MESSAGE`] without ending.
    #[error("skynet handshake message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    /// The 2026 ready byte was something else.
    #[error("expected the ready byte 0x00, got {0:#04x}")]
    NotReady(u8),
    /// The peer closed before the message ended.
    #[error("the peer closed during the skynet handshake")]
    Eof,
    /// Took longer than the deadline.
    #[error("skynet handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The server refused the forward.
    #[error("the skynet server refused: {0}")]
    Refused(String),
    /// Carrier I/O.
    #[error("skynet handshake i/o")]
    Io(#[source] std::io::Error),
}

/// Outcome of decoding from the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// More bytes are needed.
    Incomplete,
    /// A message and the number of bytes it used.
    Done(T, usize),
}

/// Encodes a request (`{"port":N}` / `{"port":N,"raw_tcp":true}`).
pub fn encode_request(req: &ForwardRequest) -> Vec<u8> {
    // Serialising a struct of an integer and a bool cannot fail.
    serde_json::to_vec(req).unwrap_or_default()
}

/// Encodes a reply (`{}` / `{"error":"..."}`).
pub fn encode_reply(reply: &ForwardReply) -> Vec<u8> {
    let wire = ReplyWire {
        error: match reply {
            ForwardReply::Ok => None,
            ForwardReply::Error(e) => Some(e.clone()),
        },
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

fn decode_json<T: for<'de> Deserialize<'de>>(buf: &[u8]) -> Result<Decoded<T>, HandshakeError> {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<T>();
    match it.next() {
        None => Ok(Decoded::Incomplete),
        Some(Ok(v)) => Ok(Decoded::Done(v, it.byte_offset())),
        Some(Err(e)) if e.is_eof() => {
            if buf.len() >= MAX_MESSAGE {
                Err(HandshakeError::TooLong)
            } else {
                Ok(Decoded::Incomplete)
            }
        }
        Some(Err(e)) => Err(HandshakeError::Invalid(e)),
    }
}

/// Decodes one request from the front of `buf`.
pub fn decode_request(buf: &[u8]) -> Result<Decoded<ForwardRequest>, HandshakeError> {
    decode_json(buf)
}

/// Decodes one reply from the front of `buf` (an empty `error` counts as success).
pub fn decode_reply(buf: &[u8]) -> Result<Decoded<ForwardReply>, HandshakeError> {
    Ok(match decode_json::<ReplyWire>(buf)? {
        Decoded::Incomplete => Decoded::Incomplete,
        Decoded::Done(w, n) => Decoded::Done(
            match w.error {
                Some(e) if !e.is_empty() => ForwardReply::Error(e),
                _ => ForwardReply::Ok,
            },
            n,
        ),
    })
}

/// Reads one JSON message byte by byte, starting with the bytes in `buf`.
async fn read_message<S, T>(
    s: &mut S,
    mut buf: Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, HandshakeError>,
) -> Result<T, HandshakeError>
where
    S: AsyncRead + Unpin,
{
    loop {
        // An object can only end at '}'; skip decoding attempts elsewhere.
        if buf.last() == Some(&b'}')
            && let Decoded::Done(v, _) = decode(&buf)?
        {
            return Ok(v);
        }
        if buf.len() >= MAX_MESSAGE {
            return Err(HandshakeError::TooLong);
        }
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(0) => return Err(HandshakeError::Eof),
            Ok(_) => buf.push(b[0]),
            Err(e) => return Err(HandshakeError::Io(e)),
        }
    }
}

async fn bounded<T>(
    timeout: Duration,
    f: impl Future<Output = Result<T, HandshakeError>>,
) -> Result<T, HandshakeError> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| HandshakeError::Timeout(timeout))?
}

/// Client side: (2026) waits for the ready byte, sends `req`, reads the reply. A 2026 client
/// also accepts a reply where the ready byte should be (a server that refuses at once).
pub async fn client_handshake<S>(
    s: &mut S,
    variant: Variant,
    req: &ForwardRequest,
    timeout: Duration,
) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    bounded(timeout, async {
        if variant == Variant::V2026 {
            let mut b = [0u8; 1];
            match s.read(&mut b).await {
                Ok(0) => return Err(HandshakeError::Eof),
                Ok(_) if b[0] == READY_BYTE => {}
                Ok(_) if b[0] == b'{' => {
                    return match read_message(s, vec![b[0]], decode_reply).await? {
                        ForwardReply::Error(e) => Err(HandshakeError::Refused(e)),
                        ForwardReply::Ok => Err(HandshakeError::NotReady(b'{')),
                    };
                }
                Ok(_) => return Err(HandshakeError::NotReady(b[0])),
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
        s.write_all(&encode_request(req))
            .await
            .map_err(HandshakeError::Io)?;
        s.flush().await.map_err(HandshakeError::Io)?;
        match read_message(s, Vec::new(), decode_reply).await? {
            ForwardReply::Ok => Ok(()),
            ForwardReply::Error(e) => Err(HandshakeError::Refused(e)),
        }
    })
    .await
}

/// Server side, first half: (2026) writes the ready byte, then reads the request.
pub async fn server_read_request<S>(
    s: &mut S,
    variant: Variant,
    timeout: Duration,
) -> Result<ForwardRequest, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    bounded(timeout, async {
        if variant == Variant::V2026 {
            s.write_all(&[READY_BYTE])
                .await
                .map_err(HandshakeError::Io)?;
            s.flush().await.map_err(HandshakeError::Io)?;
        }
        read_message(s, Vec::new(), decode_request).await
    })
    .await
}

/// Server side, second half: writes the reply.
pub async fn server_reply<S>(s: &mut S, reply: &ForwardReply) -> Result<(), HandshakeError>
where
    S: AsyncWrite + Unpin,
{
    s.write_all(&encode_reply(reply))
        .await
        .map_err(HandshakeError::Io)?;
    s.flush().await.map_err(HandshakeError::Io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_shapes() {
        assert_eq!(
            encode_request(&ForwardRequest {
                port: 8080,
                raw_tcp: false
            }),
            br#"{"port":8080}"#
        );
        assert_eq!(
            encode_request(&ForwardRequest {
                port: 22,
                raw_tcp: true
            }),
            br#"{"port":22,"raw_tcp":true}"#
        );
        assert_eq!(encode_reply(&ForwardReply::Ok), b"{}");
        assert_eq!(
            encode_reply(&ForwardReply::Error("not authorized".into())),
            br#"{"error":"not authorized"}"#
        );
        assert_eq!(
            decode_reply(br#"{"error":""}"#).unwrap(),
            Decoded::Done(ForwardReply::Ok, 12)
        );
        assert_eq!(decode_request(br#"{"port":"#).unwrap(), Decoded::Incomplete);
        assert!(decode_request(br#"{"port":70000}"#).is_err());
        assert!(decode_request(b"GET / HTTP/1.1\r\n").is_err());
    }

    #[test]
    fn trailing_bytes_are_not_consumed() {
        let mut b = encode_reply(&ForwardReply::Ok);
        b.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(
            decode_reply(&b).unwrap(),
            Decoded::Done(ForwardReply::Ok, 2)
        );
    }

    #[tokio::test]
    async fn drivers_both_variants() {
        for variant in [Variant::V2025, Variant::V2026] {
            let (mut c, mut s) = tokio::io::duplex(64);
            let server = tokio::spawn(async move {
                let req = server_read_request(&mut s, variant, Duration::from_secs(5))
                    .await
                    .unwrap();
                server_reply(&mut s, &ForwardReply::Ok).await.unwrap();
                s.write_all(b"payload").await.unwrap();
                req
            });
            let req = ForwardRequest {
                port: 9,
                raw_tcp: true,
            };
            client_handshake(&mut c, variant, &req, Duration::from_secs(5))
                .await
                .unwrap();
            let mut rest = [0u8; 7];
            c.read_exact(&mut rest).await.unwrap();
            assert_eq!(&rest, b"payload");
            assert_eq!(server.await.unwrap(), req);
        }
    }

    #[tokio::test]
    async fn refusal_is_reported() {
        let (mut c, mut s) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let _ = server_read_request(&mut s, Variant::V2026, Duration::from_secs(5)).await;
            server_reply(&mut s, &ForwardReply::Error("port 1 not exposed".into()))
                .await
                .unwrap();
        });
        let err = client_handshake(
            &mut c,
            Variant::V2026,
            &ForwardRequest {
                port: 1,
                raw_tcp: false,
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, HandshakeError::Refused(ref e) if e == "port 1 not exposed"));
    }

    proptest! {
        #[test]
        fn request_round_trip(port in any::<u16>(), raw in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
            let req = ForwardRequest { port, raw_tcp: raw };
            let enc = encode_request(&req);
            let mut buf = enc.clone();
            buf.extend_from_slice(&tail);
            prop_assert_eq!(decode_request(&buf).unwrap(), Decoded::Done(req, enc.len()));
            for cut in 0..enc.len() {
                prop_assert_eq!(decode_request(&enc[..cut]).unwrap(), Decoded::Incomplete);
            }
        }

        #[test]
        fn reply_round_trip(err in proptest::option::of(".{1,40}")) {
            let reply = err.map_or(ForwardReply::Ok, ForwardReply::Error);
            let enc = encode_reply(&reply);
            prop_assert_eq!(decode_reply(&enc).unwrap(), Decoded::Done(reply, enc.len()));
        }

        #[test]
        fn decoders_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(&buf);
            let _ = decode_reply(&buf);
        }
    }
}
