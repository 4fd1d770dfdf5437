//! Sans-IO codec of the skywire transport handshake that opens every stcp/stcpr/sudph carrier
//! (apps.md 6.2): Frame0 (`get_nonce`), Frame1 (responder nonce), Frame2 (signed addresses) and
//! Frame3 (verdict). Frames 1–3 are one JSON object followed by `\n`; the encoders here produce
//! the exact bytes of Go's `encoding/json` (fields in struct order), because the Frame2
//! signature covers the JSON text itself. Decoders take one complete line and never panic.

use serde::{Deserialize, Serialize};
use skywire_cipher::{PubKey, SecKey, Sig};

/// The 9 bytes the initiator writes first.
pub const FRAME0: &[u8; 9] = b"get_nonce";
/// Size of the responder's nonce.
pub const NONCE_SIZE: usize = 16;
/// The transport port every transport is dialled to and accepted on.
pub const TRANSPORT_PORT: u16 = 45;
/// First ephemeral port the dialer may put in its source address.
pub const MIN_EPHEMERAL_PORT: u16 = 49152;
/// Longest handshake line (JSON + newline) a decoder accepts; real frames are under 400 bytes.
pub const MAX_LINE: usize = 4096;

/// A handshake frame that could not be decoded or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Frame0 was not `get_nonce`.
    #[error("transport handshake: bad first message (expected \"get_nonce\")")]
    BadFrame0,
    /// A frame was not the expected JSON object.
    #[error("transport handshake: malformed {frame}")]
    Malformed {
        /// Which frame.
        frame: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A line longer than [`MAX_LINE`].
    #[error("transport handshake: {frame} longer than {MAX_LINE} bytes")]
    TooLong {
        /// Which frame.
        frame: &'static str,
    },
    /// Frame2 carried another nonce than the one we sent.
    #[error("transport handshake: unexpected nonce in Frame2")]
    NonceMismatch,
    /// Frame2's signature does not belong to its source key.
    #[error("transport handshake: bad Frame2 signature")]
    BadSignature(#[source] skywire_cipher::CipherError),
    /// Signing failed (only with an invalid local key).
    #[error("transport handshake: signing Frame2 failed")]
    Sign(#[source] skywire_cipher::CipherError),
    /// The responder answered Frame3 with `OK: false`.
    #[error("transport handshake rejected by the remote: {0}")]
    Rejected(String),
}

/// A skywire address (`dmsg.Addr`): public key and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HsAddr {
    /// The key.
    pub public_key: PubKey,
    /// The (transport) port.
    pub port: u16,
}

/// Frame1: the responder's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame1 {
    /// 16 random bytes (a JSON array of numbers on the wire).
    #[serde(rename = "Nonce")]
    pub nonce: [u8; NONCE_SIZE],
}

/// Frame2: the initiator's signed source and destination addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame2 {
    /// Initiator key and its ephemeral port.
    #[serde(rename = "SrcAddr")]
    pub src: HsAddr,
    /// Responder key and [`TRANSPORT_PORT`].
    #[serde(rename = "DstAddr")]
    pub dst: HsAddr,
    /// The nonce of Frame1.
    #[serde(rename = "Nonce")]
    pub nonce: [u8; NONCE_SIZE],
    /// Signature by `src.public_key` over SHA-256 of [`Frame2::signing_bytes`].
    #[serde(rename = "Sig")]
    pub sig: Sig,
}

/// Frame3: the responder's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame3 {
    /// Accepted?
    #[serde(rename = "OK")]
    pub ok: bool,
    /// Reason when not accepted (empty otherwise).
    #[serde(rename = "ErrMsg", default)]
    pub err_msg: String,
}

/// One JSON line: the object and `\n`, as Go's `json.Encoder` writes it.
fn json_line<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs (strings, integers, arrays) cannot fail.
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Parses one line (trailing `\n` and surrounding whitespace allowed).
fn parse_line<'a, T: Deserialize<'a>>(
    line: &'a [u8],
    frame: &'static str,
) -> Result<T, HandshakeError> {
    if line.len() > MAX_LINE {
        return Err(HandshakeError::TooLong { frame });
    }
    serde_json::from_slice(line).map_err(|source| HandshakeError::Malformed { frame, source })
}

/// Checks Frame0.
///
/// # Errors
/// [`HandshakeError::BadFrame0`] unless `b` is exactly `get_nonce`.
pub fn check_frame0(b: &[u8]) -> Result<(), HandshakeError> {
    if b == FRAME0 {
        Ok(())
    } else {
        Err(HandshakeError::BadFrame0)
    }
}

impl Frame1 {
    /// The line the responder writes.
    pub fn encode(&self) -> Vec<u8> {
        json_line(self)
    }

    /// Parses a received line.
    ///
    /// # Errors
    /// Malformed JSON or a too long line.
    pub fn decode(line: &[u8]) -> Result<Frame1, HandshakeError> {
        parse_line(line, "Frame1")
    }
}

impl Frame2 {
    /// Builds and signs Frame2 for the initiator `sk` (its key goes into `src`).
    ///
    /// # Errors
    /// [`HandshakeError::Sign`] for an unusable key.
    pub fn signed(
        sk: &SecKey,
        src_port: u16,
        dst: HsAddr,
        nonce: [u8; NONCE_SIZE],
    ) -> Result<Frame2, HandshakeError> {
        let mut f = Frame2 {
            src: HsAddr {
                public_key: sk.pub_key(),
                port: src_port,
            },
            dst,
            nonce,
            sig: Sig::NULL,
        };
        f.sig =
            skywire_cipher::sign_payload(sk, &f.signing_bytes()).map_err(HandshakeError::Sign)?;
        Ok(f)
    }

    /// The bytes that are hashed and signed: this frame's JSON line with a zero signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        json_line(&Frame2 {
            sig: Sig::NULL,
            ..*self
        })
    }

    /// The line the initiator writes.
    pub fn encode(&self) -> Vec<u8> {
        json_line(self)
    }

    /// Parses a received line (no verification; see [`Frame2::verify`]).
    ///
    /// # Errors
    /// Malformed JSON or a too long line.
    pub fn decode(line: &[u8]) -> Result<Frame2, HandshakeError> {
        parse_line(line, "Frame2")
    }

    /// Checks the nonce and the signature against `src.public_key`, as the responder does.
    ///
    /// # Errors
    /// [`HandshakeError::NonceMismatch`] or [`HandshakeError::BadSignature`].
    pub fn verify(&self, nonce: &[u8; NONCE_SIZE]) -> Result<(), HandshakeError> {
        if &self.nonce != nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        skywire_cipher::verify_payload(&self.src.public_key, &self.signing_bytes(), &self.sig)
            .map_err(HandshakeError::BadSignature)
    }
}

impl Frame3 {
    /// Acceptance.
    pub fn ok() -> Frame3 {
        Frame3 {
            ok: true,
            err_msg: String::new(),
        }
    }

    /// Rejection with a reason.
    pub fn reject(msg: impl Into<String>) -> Frame3 {
        Frame3 {
            ok: false,
            err_msg: msg.into(),
        }
    }

    /// The line the responder writes.
    pub fn encode(&self) -> Vec<u8> {
        json_line(self)
    }

    /// Parses a received line.
    ///
    /// # Errors
    /// Malformed JSON or a too long line.
    pub fn decode(line: &[u8]) -> Result<Frame3, HandshakeError> {
        parse_line(line, "Frame3")
    }

    /// `Ok` when accepted, [`HandshakeError::Rejected`] otherwise.
    ///
    /// # Errors
    /// The remote's rejection.
    pub fn into_result(self) -> Result<(), HandshakeError> {
        if self.ok {
            Ok(())
        } else {
            Err(HandshakeError::Rejected(self.err_msg))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::transport::vectors::*;
    use proptest::prelude::*;

    fn vector_frame2() -> Frame2 {
        let mut nonce = [0u8; 16];
        for (i, b) in nonce.iter_mut().enumerate() {
            *b = u8::try_from(i + 1).unwrap();
        }
        Frame2 {
            src: HsAddr {
                public_key: pk_a(),
                port: 49153,
            },
            dst: HsAddr {
                public_key: pk_b(),
                port: 45,
            },
            nonce,
            sig: Sig::NULL,
        }
    }

    #[test]
    fn frame2_signing_bytes_match_appendix_a() {
        let f = vector_frame2();
        let mut want = FRAME2_LINE.as_bytes().to_vec();
        want.push(b'\n');
        assert_eq!(f.signing_bytes(), want);
        assert_eq!(f.encode(), want);
    }

    #[test]
    fn frame2_reference_signature_verifies() {
        let mut f = vector_frame2();
        f.sig = Sig::from_hex(FRAME2_SIG).unwrap();
        f.verify(&f.nonce).unwrap();
        // Round trip through the wire form keeps it valid.
        let back = Frame2::decode(&f.encode()).unwrap();
        assert_eq!(back, f);
        back.verify(&f.nonce).unwrap();
        // Another nonce or a changed port breaks it.
        assert!(matches!(
            f.verify(&[0; 16]),
            Err(HandshakeError::NonceMismatch)
        ));
        let mut g = f;
        g.src.port = 49154;
        assert!(matches!(
            g.verify(&f.nonce),
            Err(HandshakeError::BadSignature(_))
        ));
    }

    #[test]
    fn frame2_sign_verify_roundtrip() {
        let sk = sk_a();
        let f = Frame2::signed(
            &sk,
            50000,
            HsAddr {
                public_key: pk_b(),
                port: 45,
            },
            [7; 16],
        )
        .unwrap();
        assert_eq!(f.src.public_key, pk_a());
        Frame2::decode(&f.encode())
            .unwrap()
            .verify(&[7; 16])
            .unwrap();
    }

    #[test]
    fn frame1_and_frame3_exact_bytes() {
        let f1 = Frame1 { nonce: [1; 16] };
        assert_eq!(
            f1.encode(),
            b"{\"Nonce\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}\n".to_vec()
        );
        assert_eq!(Frame1::decode(&f1.encode()).unwrap(), f1);
        assert_eq!(
            Frame3::ok().encode(),
            b"{\"OK\":true,\"ErrMsg\":\"\"}\n".to_vec()
        );
        let r = Frame3::decode(b"{\"OK\":false,\"ErrMsg\":\"no\"}\n").unwrap();
        assert!(matches!(r.into_result(), Err(HandshakeError::Rejected(m)) if m == "no"));
        check_frame0(b"get_nonce").unwrap();
        assert!(check_frame0(b"get_nonc").is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Frame1::decode(&b);
            let _ = Frame3::decode(&b);
            if let Ok(f) = Frame2::decode(&b) {
                let _ = f.verify(&f.nonce);
            }
        }

        #[test]
        fn frame2_roundtrip(port in any::<u16>(), dport in any::<u16>(), nonce in any::<[u8; 16]>()) {
            let f = Frame2::signed(&sk_b(), port, HsAddr { public_key: pk_a(), port: dport }, nonce).unwrap();
            let back = Frame2::decode(&f.encode()).unwrap();
            prop_assert_eq!(back, f);
            prop_assert!(back.verify(&nonce).is_ok());
        }

        #[test]
        fn frame1_roundtrip(nonce in any::<[u8; 16]>()) {
            let f = Frame1 { nonce };
            prop_assert_eq!(Frame1::decode(&f.encode()).unwrap(), f);
        }
    }
}
