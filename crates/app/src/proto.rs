//! The local app protocol between a visor's app server and its apps (see `PROTOCOL.md`): the
//! message types and a sans-IO frame codec shared by both sides.
//!
//! A frame is `u16 big-endian length || UTF-8 JSON object` (at most [`MAX_FRAME`] body bytes).
//! Every local TCP connection to the app server starts with one [`Hello`] frame and one reply
//! frame; a *control* connection then carries [`Request`]/[`Response`] frames, while a *dial* or
//! *accept* connection becomes a raw byte pipe to the remote stream: bulk data never passes
//! through this codec.
//!
//! [`decode`] works on any byte slice and never panics: it returns `Ok(None)` for a partial
//! frame, the message and the bytes consumed for a whole one, and an error for a malformed one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use skywire_cipher::PubKey;

/// Version of this protocol, sent in every [`Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame body (the length prefix is a u16).
pub const MAX_FRAME: usize = u16::MAX as usize;

/// Length of a proc key in bytes (32 hex characters in text).
pub const PROC_KEY_LEN: usize = 16;

/// The network an app dials or listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    /// The visor's dmsg client.
    Dmsg,
    /// The visor's router (skynet route groups).
    Skynet,
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Net::Dmsg => "dmsg",
            Net::Skynet => "skynet",
        })
    }
}

impl FromStr for Net {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Net, ProtoError> {
        match s {
            "dmsg" => Ok(Net::Dmsg),
            "skynet" => Ok(Net::Skynet),
            other => Err(ProtoError::UnknownNet(other.to_owned())),
        }
    }
}

/// A network address: network, public key and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Addr {
    /// The network.
    pub net: Net,
    /// The machine's public key.
    pub pk: PubKey,
    /// The port on that machine.
    pub port: u16,
}

impl Addr {
    /// Builds an address.
    pub fn new(net: Net, pk: PubKey, port: u16) -> Addr {
        Addr { net, pk, port }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pk, self.port)
    }
}

/// A proc key: 16 random bytes the visor gives each app it launches; 32 lowercase hex in text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcKey(pub [u8; PROC_KEY_LEN]);

impl ProcKey {
    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Result<ProcKey, ProtoError> {
        let mut b = [0u8; PROC_KEY_LEN];
        hex::decode_to_slice(s, &mut b).map_err(|_| ProtoError::BadProcKey)?;
        Ok(ProcKey(b))
    }

    /// The 32-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ProcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ProcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only a prefix: the key authenticates the app.
        write!(f, "ProcKey({}…)", &self.to_hex()[..8])
    }
}

impl Serialize for ProcKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ProcKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ProcKey, D::Error> {
        let s = String::deserialize(d)?;
        ProcKey::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The first frame of every connection to the app server; it names the proc and the role of the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Hello {
    /// The control connection (listeners, status). Reply: [`Reply::Welcome`].
    Control {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The app's proc key.
        proc_key: ProcKey,
    },
    /// Dial `remote`; on success the connection becomes the conn's byte pipe. Reply:
    /// [`Reply::Connected`].
    Dial {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The app's proc key.
        proc_key: ProcKey,
        /// Where to dial.
        remote: Addr,
    },
    /// Wait for the next conn on a listener of this proc; on success the connection becomes the
    /// conn's byte pipe. Reply: [`Reply::Connected`].
    Accept {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The app's proc key.
        proc_key: ProcKey,
        /// The listener ID returned by [`Op::Listen`].
        listener: u16,
    },
}

impl Hello {
    /// The proc key the hello carries.
    pub fn proc_key(&self) -> ProcKey {
        match self {
            Hello::Control { proc_key, .. }
            | Hello::Dial { proc_key, .. }
            | Hello::Accept { proc_key, .. } => *proc_key,
        }
    }
}

/// The app server's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Control connection accepted.
    Welcome {
        /// [`PROTOCOL_VERSION`] of the server.
        version: u32,
        /// The visor's public key.
        visor_pk: PubKey,
        /// The app's name in the visor config.
        app_name: String,
    },
    /// A dial or accept succeeded; every following byte belongs to the conn.
    Connected {
        /// Our end of the conn.
        local: Addr,
        /// The peer's end.
        remote: Addr,
    },
    /// Refused; the server closes the connection after this frame.
    Error {
        /// Why.
        message: String,
    },
}

/// A request on the control connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the app, echoed in the [`Response`].
    pub id: u32,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// Control operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Bind `port` on `net` under the visor's key; the result carries the listener ID. The
    /// listener lives as long as this control connection (or until [`Op::CloseListener`]).
    Listen {
        /// The network.
        net: Net,
        /// The port to bind.
        port: u16,
    },
    /// Release a listener.
    CloseListener {
        /// Its ID.
        listener: u16,
    },
    /// Free-text status shown by the visor (`Starting`, `Running`, ...).
    SetDetailedStatus {
        /// The status text.
        status: String,
    },
    /// Marks the app errored with this text.
    SetError {
        /// The error text.
        error: String,
    },
    /// The app's routing port.
    SetAppPort {
        /// The port.
        port: u16,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's ID.
    pub id: u32,
    /// Error text; `None` means success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For [`Op::Listen`]: the new listener's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<u16>,
}

/// Codec errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The message does not fit in one frame.
    #[error("app protocol frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The frame body is not the expected JSON message.
    #[error("malformed app protocol frame: {0}")]
    Malformed(String),
    /// A proc key that is not 32 hex characters.
    #[error("proc key must be 32 hex characters")]
    BadProcKey,
    /// A network name other than `dmsg` or `skynet`.
    #[error("unknown network {0:?} (want dmsg or skynet)")]
    UnknownNet(String),
}

/// Encodes one message as a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    let len = u16::try_from(body.len()).map_err(|_| ProtoError::TooLarge(body.len()))?;
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Splits the first frame off `buf`: `Ok(None)` if it is not complete yet, else its body and the
/// number of bytes it used.
pub fn split_frame(buf: &[u8]) -> Option<(&[u8], usize)> {
    let (len, rest) = match buf {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return None,
    };
    let body = rest.get(..len)?;
    Some((body, 2 + len))
}

/// Decodes the first frame of `buf` as a `T`: `Ok(None)` while incomplete, else the message and
/// the bytes consumed.
pub fn decode<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<Option<(T, usize)>, ProtoError> {
    let Some((body, used)) = split_frame(buf) else {
        return Ok(None);
    };
    let msg = serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    Ok(Some((msg, used)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pk() -> PubKey {
        PubKey::from_hex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
            .unwrap()
    }

    #[test]
    fn hello_wire_form() {
        let h = Hello::Dial {
            version: 1,
            proc_key: ProcKey([0xab; 16]),
            remote: Addr::new(Net::Dmsg, pk(), 45),
        };
        let f = encode(&h).unwrap();
        let body = std::str::from_utf8(&f[2..]).unwrap();
        assert_eq!(usize::from(u16::from_be_bytes([f[0], f[1]])), body.len());
        assert_eq!(
            body,
            r#"{"type":"dial","version":1,"proc_key":"abababababababababababababababab","remote":{"net":"dmsg","pk":"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798","port":45}}"#
        );
        let (back, used): (Hello, usize) = decode(&f).unwrap().unwrap();
        assert_eq!((back, used), (h, f.len()));
    }

    #[test]
    fn request_wire_form() {
        let r = Request {
            id: 7,
            op: Op::Listen {
                net: Net::Dmsg,
                port: 45,
            },
        };
        let f = encode(&r).unwrap();
        assert_eq!(&f[2..], br#"{"id":7,"op":"listen","net":"dmsg","port":45}"#);
        let ok = Response {
            id: 7,
            error: None,
            listener: Some(1),
        };
        assert_eq!(&encode(&ok).unwrap()[2..], br#"{"id":7,"listener":1}"#);
    }

    #[test]
    fn partial_and_bad_frames() {
        let f = encode(&Reply::Error {
            message: "x".into(),
        })
        .unwrap();
        for cut in 0..f.len() {
            assert_eq!(decode::<Reply>(&f[..cut]).unwrap(), None);
        }
        assert!(decode::<Reply>(&[0, 2, b'{', b'x']).is_err());
        assert!(matches!(
            ProcKey::from_hex("zz"),
            Err(ProtoError::BadProcKey)
        ));
        let big = "x".repeat(MAX_FRAME);
        assert!(matches!(
            encode(&Reply::Error { message: big }),
            Err(ProtoError::TooLarge(_))
        ));
    }
}
