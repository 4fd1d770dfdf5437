//! Skywire identities: secp256k1 public and secret keys, 65-byte recoverable signatures over
//! SHA-256 hashes, and the Diffie-Hellman function the noise layer mixes in.
//!
//! Every machine in Skywire *is* a public key, so this crate owns the exact byte and text
//! forms the reference implementation puts on the wire (spec `dmsg-wire.md` section 1):
//!
//! * [`PubKey`]: 33-byte SEC1 compressed point; text form is 66 lowercase hex characters; the
//!   all-zero "null" key means *absent*. Text parsing of only `'0'` characters (or the empty
//!   string) yields the null key, as Go's `UnmarshalText` does; binary parsing always validates.
//! * [`SecKey`]: 32-byte scalar `1 <= d < n`, wiped on drop, redacted in `Debug`.
//! * [`Sig`]: `r || s || recid`. Signing uses RFC 6979 with low-S normalisation (reproducible,
//!   accepted by the reference); verification follows the reference acceptance rule exactly
//!   (recover + compare, top bit of `s` clear, `recid < 4`).
//! * [`noise_dh`]: `SHA-256(compressed(sk·pk)) || 0x00`, 33 bytes.
//!
//! All curve work goes through libsecp256k1 (the `secp256k1` crate). Invalid input is always an
//! error, never a panic; in particular a compressed key whose X is not a field element or not on
//! the curve is rejected (the 2023 reference panics on such keys).

use std::fmt;
use std::str::FromStr;

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, SecretKey, ecdh};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Length of a compressed public key.
pub const PUB_KEY_LEN: usize = 33;
/// Length of a secret key.
pub const SEC_KEY_LEN: usize = 32;
/// Length of a recoverable signature (`r || s || recid`).
pub const SIG_LEN: usize = 65;
/// Length of the noise DH output (`SHA-256 || 0x00`).
pub const NOISE_DH_LEN: usize = 33;

/// Errors of key parsing, signing and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// Hex text could not be decoded.
    #[error("invalid hex: {0}")]
    Hex(String),
    /// A public key of the wrong length.
    #[error("invalid public key length {0}, want 33")]
    PubKeyLength(usize),
    /// A public key whose first byte is not 0x02/0x03 (uncompressed keys are never accepted).
    #[error("invalid public key prefix 0x{0:02x}, want 0x02 or 0x03")]
    PubKeyPrefix(u8),
    /// X is not a field element or not the X of a curve point.
    #[error("public key is not a point on secp256k1")]
    PubKeyNotOnCurve,
    /// The null (all-zero) key where a real key is required.
    #[error("public key is null")]
    NullPubKey,
    /// A secret key of the wrong length.
    #[error("invalid secret key length {0}, want 32")]
    SecKeyLength(usize),
    /// A secret key scalar that is zero or not below the group order.
    #[error("secret key is zero or not below the curve order")]
    SecKeyRange,
    /// A signature of the wrong length.
    #[error("invalid signature length {0}, want 65")]
    SigLength(usize),
    /// Recovery id byte is not 0..=3.
    #[error("invalid signature recovery id {0}")]
    RecoveryId(u8),
    /// The top bit of `s` is set (the reference's malleability rule).
    #[error("signature s value has its top bit set")]
    HighS,
    /// `r`/`s` out of range or no key recoverable from the signature.
    #[error("signature is malformed or no public key can be recovered from it")]
    Malformed,
    /// The recovered key differs from the expected one.
    #[error("recovered public key does not match the expected key")]
    PubKeyMismatch,
    /// The reference refuses to sign an all-zero hash; so do we.
    #[error("refusing to sign an all-zero hash")]
    ZeroHash,
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

// ---------------------------------------------------------------------------------------------
// PubKey

/// A secp256k1 public key in 33-byte compressed form, or the null key (33 zero bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PubKey([u8; PUB_KEY_LEN]);

impl PubKey {
    /// The null key: means "absent" everywhere in Skywire.
    pub const NULL: PubKey = PubKey([0; PUB_KEY_LEN]);

    /// Parses and validates a compressed key (length 33, prefix 0x02/0x03, on the curve).
    /// The null key is rejected here, as by the reference's binary decoder.
    pub fn from_bytes(b: &[u8]) -> Result<PubKey, CipherError> {
        let arr: [u8; PUB_KEY_LEN] = b
            .try_into()
            .map_err(|_| CipherError::PubKeyLength(b.len()))?;
        if arr[0] != 0x02 && arr[0] != 0x03 {
            if arr == [0; PUB_KEY_LEN] {
                return Err(CipherError::NullPubKey);
            }
            return Err(CipherError::PubKeyPrefix(arr[0]));
        }
        PublicKey::from_byte_array_compressed(arr).map_err(|_| CipherError::PubKeyNotOnCurve)?;
        Ok(PubKey(arr))
    }

    /// Parses the text form: only `'0'` characters (including the empty string) give the null
    /// key; anything else must be hex (either case) of a valid compressed key.
    pub fn from_hex(s: &str) -> Result<PubKey, CipherError> {
        if s.bytes().all(|c| c == b'0') {
            return Ok(PubKey::NULL);
        }
        let bytes = hex::decode(s)?;
        PubKey::from_bytes(&bytes)
    }

    /// The 33 raw bytes.
    pub fn as_bytes(&self) -> &[u8; PUB_KEY_LEN] {
        &self.0
    }

    /// Whether this is the null key.
    pub fn is_null(&self) -> bool {
        self.0 == [0; PUB_KEY_LEN]
    }

    /// Lowercase hex text form (66 characters; the null key is 66 zeros).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn to_point(self) -> Result<PublicKey, CipherError> {
        if self.is_null() {
            return Err(CipherError::NullPubKey);
        }
        PublicKey::from_byte_array_compressed(self.0).map_err(|_| CipherError::PubKeyNotOnCurve)
    }
}

impl Default for PubKey {
    fn default() -> PubKey {
        PubKey::NULL
    }
}

impl From<hex::FromHexError> for CipherError {
    fn from(e: hex::FromHexError) -> CipherError {
        CipherError::Hex(e.to_string())
    }
}

impl fmt::Display for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PubKey({})", self.to_hex())
    }
}

impl FromStr for PubKey {
    type Err = CipherError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PubKey::from_hex(s)
    }
}

impl TryFrom<&[u8]> for PubKey {
    type Error = CipherError;
    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        PubKey::from_bytes(b)
    }
}

impl Serialize for PubKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for PubKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PubKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secp256k1 public key (66 hex characters or 33 bytes)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PubKey, E> {
                PubKey::from_hex(v).map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PubKey, E> {
                PubKey::from_bytes(v).map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<PubKey, A::Error> {
                let mut buf = Vec::with_capacity(PUB_KEY_LEN);
                while let Some(b) = seq.next_element::<u8>()? {
                    if buf.len() == PUB_KEY_LEN {
                        return Err(de::Error::custom(CipherError::PubKeyLength(
                            PUB_KEY_LEN + 1,
                        )));
                    }
                    buf.push(b);
                }
                PubKey::from_bytes(&buf).map_err(de::Error::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SecKey

/// A secp256k1 secret key. Wiped from memory on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SecKey {
    bytes: [u8; SEC_KEY_LEN],
    key: SecretKey,
}

impl PartialEq for SecKey {
    fn eq(&self, other: &SecKey) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for SecKey {}

impl SecKey {
    /// Parses and validates a 32-byte scalar (`1 <= d < n`).
    pub fn from_bytes(b: &[u8]) -> Result<SecKey, CipherError> {
        let bytes: [u8; SEC_KEY_LEN] = b
            .try_into()
            .map_err(|_| CipherError::SecKeyLength(b.len()))?;
        let key = SecretKey::from_secret_bytes(bytes).map_err(|_| CipherError::SecKeyRange)?;
        Ok(SecKey { bytes, key })
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<SecKey, CipherError> {
        let mut bytes = hex::decode(s)?;
        let r = SecKey::from_bytes(&bytes);
        bytes.zeroize();
        r
    }

    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> SecKey {
        let key = SecretKey::new(&mut rand::rng());
        SecKey {
            bytes: key.to_secret_bytes(),
            key,
        }
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; SEC_KEY_LEN] {
        &self.bytes
    }

    /// Lowercase hex text form. Handle with care: this is the secret.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// The matching public key.
    pub fn pub_key(&self) -> PubKey {
        PubKey(PublicKey::from_secret_key(&self.key).serialize())
    }
}

impl Drop for SecKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.key.non_secure_erase();
    }
}

impl fmt::Debug for SecKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecKey(<redacted>)")
    }
}

impl FromStr for SecKey {
    type Err = CipherError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecKey::from_hex(s)
    }
}

impl Serialize for SecKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.bytes)
        }
    }
}

impl<'de> Deserialize<'de> for SecKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secp256k1 secret key (64 hex characters or 32 bytes)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecKey, E> {
                SecKey::from_hex(v).map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<SecKey, E> {
                SecKey::from_bytes(v).map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// Generates a fresh random keypair.
pub fn generate_keypair() -> (PubKey, SecKey) {
    let sk = SecKey::generate();
    (sk.pub_key(), sk)
}

// ---------------------------------------------------------------------------------------------
// Sig

/// A 65-byte recoverable ECDSA signature `r || s || recid` over a SHA-256 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sig([u8; SIG_LEN]);

impl Sig {
    /// The all-zero signature (Go's zero value; never valid).
    pub const NULL: Sig = Sig([0; SIG_LEN]);

    /// Takes 65 bytes as they are; validity is checked by [`verify_hash`].
    pub fn from_bytes(b: &[u8]) -> Result<Sig, CipherError> {
        let arr: [u8; SIG_LEN] = b.try_into().map_err(|_| CipherError::SigLength(b.len()))?;
        Ok(Sig(arr))
    }

    /// Parses 130 hex characters.
    pub fn from_hex(s: &str) -> Result<Sig, CipherError> {
        Sig::from_bytes(&hex::decode(s)?)
    }

    /// The 65 raw bytes.
    pub fn as_bytes(&self) -> &[u8; SIG_LEN] {
        &self.0
    }

    /// Whether all bytes are zero.
    pub fn is_null(&self) -> bool {
        self.0 == [0; SIG_LEN]
    }

    /// Lowercase hex text form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Recovers the public key that made this signature over `hash`, applying the reference's
    /// acceptance rule (top bit of `s` clear, `recid < 4`).
    pub fn recover(&self, hash: &[u8; 32]) -> Result<PubKey, CipherError> {
        let recid = self.0[64];
        if recid >= 4 {
            return Err(CipherError::RecoveryId(recid));
        }
        if self.0[32] & 0x80 != 0 {
            return Err(CipherError::HighS);
        }
        let id =
            RecoveryId::try_from(i32::from(recid)).map_err(|_| CipherError::RecoveryId(recid))?;
        let rs = RecoverableSignature::from_compact(&self.0[..64], id)
            .map_err(|_| CipherError::Malformed)?;
        let pk = rs
            .recover_ecdsa(Message::from_digest(*hash))
            .map_err(|_| CipherError::Malformed)?;
        Ok(PubKey(pk.serialize()))
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({})", self.to_hex())
    }
}

impl FromStr for Sig {
    type Err = CipherError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sig::from_hex(s)
    }
}

impl Serialize for Sig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signature (130 hex characters or 65 bytes)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Sig, E> {
                Sig::from_hex(v).map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Sig, E> {
                Sig::from_bytes(v).map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// Signs a 32-byte hash: RFC 6979 nonce, low-S, recovery id in the last byte.
pub fn sign_hash(sk: &SecKey, hash: &[u8; 32]) -> Result<Sig, CipherError> {
    if hash == &[0; 32] {
        return Err(CipherError::ZeroHash);
    }
    let rs = RecoverableSignature::sign_ecdsa_recoverable(Message::from_digest(*hash), &sk.key);
    let (id, compact) = rs.serialize_compact();
    let mut out = [0u8; SIG_LEN];
    out[..64].copy_from_slice(&compact);
    out[64] = id.to_u8();
    Ok(Sig(out))
}

/// Signs `SHA-256(payload)`, as the reference's `SignPayload`.
pub fn sign_payload(sk: &SecKey, payload: &[u8]) -> Result<Sig, CipherError> {
    sign_hash(sk, &sha256(payload))
}

/// Verifies `sig` over `hash` for `pk` exactly as the reference does: the key recovered from
/// the signature must equal `pk`, `pk` must be valid, `s` must have its top bit clear and the
/// recovery id must be below 4.
pub fn verify_hash(pk: &PubKey, hash: &[u8; 32], sig: &Sig) -> Result<(), CipherError> {
    pk.to_point()?;
    let recovered = sig.recover(hash)?;
    if &recovered != pk {
        return Err(CipherError::PubKeyMismatch);
    }
    Ok(())
}

/// Verifies `sig` over `SHA-256(payload)`.
pub fn verify_payload(pk: &PubKey, payload: &[u8], sig: &Sig) -> Result<(), CipherError> {
    verify_hash(pk, &sha256(payload), sig)
}

// ---------------------------------------------------------------------------------------------
// Diffie-Hellman

/// The compressed shared point `sk · pk`.
pub fn shared_point(sk: &SecKey, pk: &PubKey) -> Result<[u8; PUB_KEY_LEN], CipherError> {
    let point = pk.to_point()?;
    let xy = ecdh::shared_secret_point(&point, &sk.key);
    let mut out = [0u8; PUB_KEY_LEN];
    out[0] = 0x02 | (xy[63] & 1);
    out[1..].copy_from_slice(&xy[..32]);
    Ok(out)
}

/// Skywire's `cipher.ECDH`: SHA-256 of the compressed shared point.
pub fn ecdh(sk: &SecKey, pk: &PubKey) -> Result<[u8; 32], CipherError> {
    let point = pk.to_point()?;
    Ok(ecdh::SharedSecret::new(&point, &sk.key).to_secret_bytes())
}

/// The DH function of Skywire's noise suite: `SHA-256(compressed(sk·pk)) || 0x00` (33 bytes).
pub fn noise_dh(sk: &SecKey, pk: &PubKey) -> Result<[u8; NOISE_DH_LEN], CipherError> {
    let h = ecdh(sk, pk)?;
    let mut out = [0u8; NOISE_DH_LEN];
    out[..32].copy_from_slice(&h);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret() {
        let sk = SecKey::generate();
        let s = format!("{sk:?}");
        assert!(!s.contains(&sk.to_hex()));
        assert!(s.contains("redacted"));
    }

    #[test]
    fn null_key_text_forms() {
        assert_eq!(PubKey::from_hex("").unwrap(), PubKey::NULL);
        assert_eq!(PubKey::from_hex("000").unwrap(), PubKey::NULL);
        assert_eq!(PubKey::NULL.to_hex(), "0".repeat(66));
        assert_eq!(PubKey::from_bytes(&[0; 33]), Err(CipherError::NullPubKey));
    }
}
