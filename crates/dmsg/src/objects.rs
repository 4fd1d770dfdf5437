//! The dial objects of dmsg (spec `dmsg-wire.md` 4.4-4.6): `StreamRequest` and `StreamResponse`
//! as Go gob values, signed as `sig(65) || gob` with a fresh gob encoder per object, and the
//! checks the reference applies to them (`Verify(0)` for requests, `Verify(req)` for responses).
//!
//! Encoding uses the 2023 field layout (accepted by every version). Decoding matches fields by
//! name and skips unknown ones, so the 2024-2026 layouts (`IPinfo`, `GeoInfo`, `IP`, `Geo*`) are
//! accepted too.

use serde::Deserialize;
use skywire_cipher::{PubKey, SIG_LEN, SecKey, Sig, sha256, sign_hash, verify_hash};
use skywire_gob::GobType;

use crate::addr::Addr;
use crate::error::{DmsgError, ErrorCode};

/// Go `dmsg.SHA256`, a named `[32]uint8` (gob ArrayT of uint, each byte a gob uint).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, GobType)]
#[gob(name = "SHA256")]
pub struct Sha256(pub [u8; 32]);

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256({})", hex_short(&self.0))
    }
}

fn hex_short(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Go `dmsg.StreamRequest` (2023 layout).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "StreamRequest")]
pub struct StreamRequest {
    /// Unix time in nanoseconds; must be positive.
    pub timestamp: i64,
    /// The dialer's address (its key and ephemeral port).
    pub src_addr: Addr,
    /// The destination's address (key and listening port).
    pub dst_addr: Addr,
    /// Noise KK message 1.
    pub noise_msg: Vec<u8>,
}

/// Go `dmsg.StreamResponse` (2023 layout).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "StreamResponse")]
pub struct StreamResponse {
    /// SHA-256 of the whole signed request (signature included).
    pub req_hash: Sha256,
    /// Whether the listener accepted the stream.
    pub accepted: bool,
    /// Error code when not accepted (never sent by 2023 peers).
    pub err_code: u16,
    /// Noise KK message 2.
    pub noise_msg: Vec<u8>,
}

fn split_signed(raw: &[u8]) -> Result<(Sig, &[u8]), DmsgError> {
    if raw.len() <= SIG_LEN {
        return Err(DmsgError::code(ErrorCode::SignedObjectTooShort));
    }
    let sig = Sig::from_bytes(&raw[..SIG_LEN])
        .map_err(|_| DmsgError::code(ErrorCode::SignedObjectTooShort))?;
    Ok((sig, &raw[SIG_LEN..]))
}

fn sign_gob(sk: &SecKey, gob: Vec<u8>) -> Result<Vec<u8>, DmsgError> {
    let sig = sign_hash(sk, &sha256(&gob)).map_err(DmsgError::Cipher)?;
    let mut raw = Vec::with_capacity(SIG_LEN + gob.len());
    raw.extend_from_slice(sig.as_bytes());
    raw.extend_from_slice(&gob);
    Ok(raw)
}

/// A request together with its signed wire form (`sig || gob`), which relays forward unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The decoded request.
    pub req: StreamRequest,
    /// `sig(65) || gob(req)`: the exact bytes that were signed and are hashed into `ReqHash`.
    pub raw: Vec<u8>,
}

impl SignedRequest {
    /// Encodes `req` with a fresh gob encoder and signs it with `sk` (the source's key).
    pub fn sign(req: StreamRequest, sk: &SecKey) -> Result<SignedRequest, DmsgError> {
        let gob = skywire_gob::to_vec(&req).map_err(DmsgError::Gob)?;
        let raw = sign_gob(sk, gob)?;
        Ok(SignedRequest { req, raw })
    }

    /// Parses `sig || gob` without checking the signature (see [`SignedRequest::verify`]).
    pub fn parse(raw: Vec<u8>) -> Result<SignedRequest, DmsgError> {
        let (_, gob) = split_signed(&raw)?;
        let req: StreamRequest = skywire_gob::from_slice(gob).map_err(DmsgError::Gob)?;
        Ok(SignedRequest { req, raw })
    }

    /// `SHA-256` of the signed bytes, the value a response must carry in `ReqHash`.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.raw)
    }

    /// The reference's `StreamRequest.Verify(0)`: both addresses complete, ports non-zero,
    /// timestamp positive, signature by `SrcAddr.PK` over `SHA-256(gob)`.
    pub fn verify(&self) -> Result<(), DmsgError> {
        let r = &self.req;
        if r.src_addr.pk.is_null() {
            return Err(DmsgError::code(ErrorCode::InvalidSrcPk));
        }
        if r.dst_addr.pk.is_null() {
            return Err(DmsgError::code(ErrorCode::InvalidDstPk));
        }
        if r.src_addr.port == 0 {
            return Err(DmsgError::code(ErrorCode::InvalidSrcPort));
        }
        if r.dst_addr.port == 0 {
            return Err(DmsgError::code(ErrorCode::InvalidDstPort));
        }
        if r.timestamp <= 0 {
            return Err(DmsgError::code(ErrorCode::InvalidTimestamp));
        }
        let (sig, gob) = split_signed(&self.raw)?;
        verify_hash(&r.src_addr.pk, &sha256(gob), &sig)
            .map_err(|_| DmsgError::code(ErrorCode::InvalidReqSignature))
    }
}

/// A response together with its signed wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResponse {
    /// The decoded response.
    pub resp: StreamResponse,
    /// `sig(65) || gob(resp)`.
    pub raw: Vec<u8>,
}

impl SignedResponse {
    /// Encodes and signs `resp` with `sk` (the destination's key).
    pub fn sign(resp: StreamResponse, sk: &SecKey) -> Result<SignedResponse, DmsgError> {
        let gob = skywire_gob::to_vec(&resp).map_err(DmsgError::Gob)?;
        let raw = sign_gob(sk, gob)?;
        Ok(SignedResponse { resp, raw })
    }

    /// Signs already-encoded gob bytes of `resp` (for encoders that share type ids).
    pub fn sign_gob(
        resp: StreamResponse,
        gob: Vec<u8>,
        sk: &SecKey,
    ) -> Result<SignedResponse, DmsgError> {
        let raw = sign_gob(sk, gob)?;
        Ok(SignedResponse { resp, raw })
    }

    /// Builds and signs the accepting response to `req`, carrying KK message 2.
    pub fn accept(
        req: &SignedRequest,
        noise_msg: Vec<u8>,
        sk: &SecKey,
    ) -> Result<SignedResponse, DmsgError> {
        SignedResponse::sign(
            StreamResponse {
                req_hash: Sha256(req.hash()),
                accepted: true,
                err_code: 0,
                noise_msg,
            },
            sk,
        )
    }

    /// Builds and signs a rejecting response to `req` with an error code.
    pub fn reject(
        req: &SignedRequest,
        code: ErrorCode,
        sk: &SecKey,
    ) -> Result<SignedResponse, DmsgError> {
        SignedResponse::sign(
            StreamResponse {
                req_hash: Sha256(req.hash()),
                accepted: false,
                err_code: code as u16,
                noise_msg: Vec::new(),
            },
            sk,
        )
    }

    /// Parses `sig || gob` without checking the signature.
    pub fn parse(raw: Vec<u8>) -> Result<SignedResponse, DmsgError> {
        let (_, gob) = split_signed(&raw)?;
        let resp: StreamResponse = skywire_gob::from_slice(gob).map_err(DmsgError::Gob)?;
        Ok(SignedResponse { resp, raw })
    }

    /// Checks `ReqHash` and that `signer` signed this response (used for rejections a server
    /// signs itself).
    pub fn verify_signer(&self, req: &SignedRequest, signer: &PubKey) -> Result<(), DmsgError> {
        if self.resp.req_hash.0 != req.hash() {
            return Err(DmsgError::code(ErrorCode::RespHashMismatch));
        }
        let (sig, gob) = split_signed(&self.raw)?;
        verify_hash(signer, &sha256(gob), &sig)
            .map_err(|_| DmsgError::code(ErrorCode::InvalidRespSignature))
    }

    /// The reference's `StreamResponse.Verify(req)`: `ReqHash` matches, signed by the request's
    /// destination, and accepted (otherwise the error for `ErrCode`).
    pub fn verify(&self, req: &SignedRequest) -> Result<(), DmsgError> {
        if self.resp.req_hash.0 != req.hash() {
            return Err(DmsgError::code(ErrorCode::RespHashMismatch));
        }
        let (sig, gob) = split_signed(&self.raw)?;
        let signer: &PubKey = &req.req.dst_addr.pk;
        verify_hash(signer, &sha256(gob), &sig)
            .map_err(|_| DmsgError::code(ErrorCode::InvalidRespSignature))?;
        if !self.resp.accepted {
            return Err(DmsgError::code(ErrorCode::from_u16(self.resp.err_code)));
        }
        Ok(())
    }
}
