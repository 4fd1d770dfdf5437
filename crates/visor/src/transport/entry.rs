//! Sans-IO codec of transport identity and settlement (apps.md 6.3): the transport ID (a UUID
//! from SHA-256 over the sorted edges and the type), the transport entry with its binary signing
//! form, the signed entry the dialer sends as one JSON line, and the one-byte settlement
//! response. The ID is computed by hand (a name-based UUID over SHA-256 with version nibble 0,
//! which no UUID crate offers); the `uuid` crate only carries and formats it.

use serde::{Deserialize, Serialize};
use skywire_cipher::{PubKey, SecKey, Sig};
use uuid::Uuid;

/// Longest settlement line a decoder accepts (a real one is about 400 bytes).
pub const MAX_SETTLEMENT_LINE: usize = 8192;

/// Label of manually created transports.
pub const LABEL_USER: &str = "user";
/// Label of transports created for routes.
pub const LABEL_AUTOMATIC: &str = "automatic";
/// Label of transports created by a transport-setup node.
pub const LABEL_SKYCOIN: &str = "skycoin";

/// Settlement failures.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// The settlement line was not a signed entry.
    #[error("transport settlement: malformed signed entry")]
    Malformed(#[source] serde_json::Error),
    /// The settlement line exceeded [`MAX_SETTLEMENT_LINE`].
    #[error("transport settlement: signed entry longer than {MAX_SETTLEMENT_LINE} bytes")]
    TooLong,
    /// ID, edges or type differ from what this connection implies.
    #[error("transport settlement: received entry's {0} is not the expected one")]
    EntryMismatch(&'static str),
    /// The key is not one of the entry's edges.
    #[error("transport settlement: key {0} is not an edge of the entry")]
    NotAnEdge(PubKey),
    /// The remote's signature does not verify.
    #[error("transport settlement: invalid remote signature")]
    BadSignature(#[source] skywire_cipher::CipherError),
    /// Signing failed (only with an invalid local key).
    #[error("transport settlement: signing the entry failed")]
    Sign(#[source] skywire_cipher::CipherError),
    /// The responder answered with a failure code.
    #[error("transport settlement rejected by the remote: {0}")]
    Rejected(SettlementResponse),
}

/// The responder's one-byte answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementResponse {
    /// 0x00: rejected.
    Failure,
    /// 0x01: accepted.
    Ok,
    /// 0x02: the responder could not sign.
    SignatureError,
    /// 0x03: the entry did not match or did not verify.
    InvalidEntry,
    /// Any other byte.
    Unknown(u8),
}

impl SettlementResponse {
    /// Wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            SettlementResponse::Failure => 0,
            SettlementResponse::Ok => 1,
            SettlementResponse::SignatureError => 2,
            SettlementResponse::InvalidEntry => 3,
            SettlementResponse::Unknown(b) => b,
        }
    }

    /// From the wire byte.
    pub fn from_byte(b: u8) -> SettlementResponse {
        match b {
            0 => SettlementResponse::Failure,
            1 => SettlementResponse::Ok,
            2 => SettlementResponse::SignatureError,
            3 => SettlementResponse::InvalidEntry,
            other => SettlementResponse::Unknown(other),
        }
    }

    /// `Ok(())` for 0x01, the rejection otherwise.
    ///
    /// # Errors
    /// [`SettlementError::Rejected`].
    pub fn into_result(self) -> Result<(), SettlementError> {
        match self {
            SettlementResponse::Ok => Ok(()),
            other => Err(SettlementError::Rejected(other)),
        }
    }
}

impl std::fmt::Display for SettlementResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettlementResponse::Failure => f.write_str("rejected (0x00)"),
            SettlementResponse::Ok => f.write_str("ok (0x01)"),
            SettlementResponse::SignatureError => f.write_str("signature error (0x02)"),
            SettlementResponse::InvalidEntry => f.write_str("invalid entry (0x03)"),
            SettlementResponse::Unknown(b) => write!(f, "unknown response 0x{b:02x}"),
        }
    }
}

/// The two keys in ascending order (33 bytes compared as a big-endian integer).
pub fn sort_edges(a: PubKey, b: PubKey) -> [PubKey; 2] {
    if a.as_bytes() <= b.as_bytes() {
        [a, b]
    } else {
        [b, a]
    }
}

/// The transport ID of the pair `(a, b)` (order does not matter) for `tp_type`.
pub fn transport_id(a: &PubKey, b: &PubKey, tp_type: &str) -> Uuid {
    let [lo, hi] = sort_edges(*a, *b);
    let mut data = Vec::with_capacity(16 + 66 + tp_type.len());
    data.extend_from_slice(&[0u8; 16]);
    data.extend_from_slice(lo.as_bytes());
    data.extend_from_slice(hi.as_bytes());
    data.extend_from_slice(tp_type.as_bytes());
    let h = skywire_cipher::sha256(&data);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    id[6] &= 0x0f; // version 0
    id[8] = (id[8] & 0x3f) | 0x80; // RFC 4122 variant
    Uuid::from_bytes(id)
}

/// A transport entry (`{"t_id","edges","type","label"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// [`transport_id`] of the edges and type.
    pub t_id: Uuid,
    /// The two keys, lower first.
    pub edges: [PubKey; 2],
    /// `stcp`, `stcpr`, `sudph` or `dmsg`.
    #[serde(rename = "type")]
    pub tp_type: String,
    /// `user`, `automatic` or `skycoin`.
    pub label: String,
}

impl Entry {
    /// The entry for a transport between `local` and `remote`.
    pub fn new(local: PubKey, remote: PubKey, tp_type: &str, label: &str) -> Entry {
        Entry {
            t_id: transport_id(&local, &remote, tp_type),
            edges: sort_edges(local, remote),
            tp_type: tp_type.to_owned(),
            label: label.to_owned(),
        }
    }

    /// Index of `pk` among the edges.
    pub fn edge_index(&self, pk: &PubKey) -> Option<usize> {
        self.edges.iter().position(|e| e == pk)
    }

    /// Binary form that is signed: `id(16) ‖ edge0(33) ‖ edge1(33) ‖ type`.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + 66 + self.tp_type.len());
        b.extend_from_slice(self.t_id.as_bytes());
        b.extend_from_slice(self.edges[0].as_bytes());
        b.extend_from_slice(self.edges[1].as_bytes());
        b.extend_from_slice(self.tp_type.as_bytes());
        b
    }

    /// Compares what the responder checks (ID, edges, type; not the label).
    ///
    /// # Errors
    /// [`SettlementError::EntryMismatch`] naming the first differing field.
    pub fn check_matches(&self, expected: &Entry) -> Result<(), SettlementError> {
        if self.t_id != expected.t_id {
            return Err(SettlementError::EntryMismatch("t_id"));
        }
        if self.edges != expected.edges {
            return Err(SettlementError::EntryMismatch("edges"));
        }
        if self.tp_type != expected.tp_type {
            return Err(SettlementError::EntryMismatch("type"));
        }
        Ok(())
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// An entry with one signature slot per edge (`{"entry","signatures"[,"registered"]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    /// The entry.
    pub entry: Entry,
    /// Signatures by edge index (zero signature = not signed).
    pub signatures: [Sig; 2],
    /// Set by transport discovery; omitted when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub registered: i64,
}

impl SignedEntry {
    /// `entry` signed by `sk` in its own slot.
    ///
    /// # Errors
    /// [`SettlementError::NotAnEdge`] or [`SettlementError::Sign`].
    pub fn new(entry: Entry, sk: &SecKey) -> Result<SignedEntry, SettlementError> {
        let mut se = SignedEntry {
            entry,
            signatures: [Sig::NULL, Sig::NULL],
            registered: 0,
        };
        se.sign(sk)?;
        Ok(se)
    }

    /// Adds `sk`'s signature in its slot.
    ///
    /// # Errors
    /// [`SettlementError::NotAnEdge`] or [`SettlementError::Sign`].
    pub fn sign(&mut self, sk: &SecKey) -> Result<(), SettlementError> {
        let pk = sk.pub_key();
        let idx = self
            .entry
            .edge_index(&pk)
            .ok_or(SettlementError::NotAnEdge(pk))?;
        self.signatures[idx] = skywire_cipher::sign_payload(sk, &self.entry.to_binary())
            .map_err(SettlementError::Sign)?;
        Ok(())
    }

    /// Verifies `pk`'s signature slot.
    ///
    /// # Errors
    /// [`SettlementError::NotAnEdge`] or [`SettlementError::BadSignature`].
    pub fn verify(&self, pk: &PubKey) -> Result<(), SettlementError> {
        let idx = self
            .entry
            .edge_index(pk)
            .ok_or(SettlementError::NotAnEdge(*pk))?;
        skywire_cipher::verify_payload(pk, &self.entry.to_binary(), &self.signatures[idx])
            .map_err(SettlementError::BadSignature)
    }

    /// The settlement line: JSON and `\n`.
    pub fn encode(&self) -> Vec<u8> {
        // Plain strings and arrays: serialization cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a settlement line.
    ///
    /// # Errors
    /// [`SettlementError::TooLong`] or [`SettlementError::Malformed`].
    pub fn decode(line: &[u8]) -> Result<SignedEntry, SettlementError> {
        if line.len() > MAX_SETTLEMENT_LINE {
            return Err(SettlementError::TooLong);
        }
        serde_json::from_slice(line).map_err(SettlementError::Malformed)
    }

    /// The responder's whole check of a received line for a connection from `remote` to
    /// `local` of type `tp_type`: parse, compare with the expected entry, verify the remote's
    /// signature, add ours. Returns the doubly signed entry, or the response code to send.
    pub fn settle_as_responder(
        line: &[u8],
        local: &SecKey,
        remote: &PubKey,
        tp_type: &str,
    ) -> Result<SignedEntry, (SettlementResponse, SettlementError)> {
        let bad = |e| (SettlementResponse::InvalidEntry, e);
        let mut se = SignedEntry::decode(line).map_err(bad)?;
        let expected = Entry::new(local.pub_key(), *remote, tp_type, LABEL_USER);
        se.entry.check_matches(&expected).map_err(bad)?;
        se.verify(remote).map_err(bad)?;
        se.sign(local)
            .map_err(|e| (SettlementResponse::SignatureError, e))?;
        Ok(se)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::transport::vectors::*;
    use proptest::prelude::*;

    #[test]
    fn transport_ids_match_appendix_a() {
        for (ty, want) in TP_IDS {
            assert_eq!(
                transport_id(&pk_a(), &pk_b(), ty).to_string(),
                *want,
                "{ty}"
            );
            assert_eq!(
                transport_id(&pk_b(), &pk_a(), ty).to_string(),
                *want,
                "{ty}"
            );
        }
    }

    #[test]
    fn entry_binary_matches_appendix_a() {
        let e = Entry::new(pk_b(), pk_a(), "stcpr", LABEL_USER);
        let want = format!("897122e2b711048b9e75a8276f3122e5{PK_A}{PK_B}7374637072");
        assert_eq!(hex::encode(e.to_binary()), want);
    }

    #[test]
    fn settlement_message_matches_appendix_a_and_verifies() {
        let line = format!("{SETTLEMENT_LINE}\n");
        let se = SignedEntry::decode(line.as_bytes()).unwrap();
        // Our encoder writes the same bytes.
        assert_eq!(se.encode(), line.as_bytes());
        assert_eq!(se.entry, Entry::new(pk_a(), pk_b(), "stcpr", LABEL_USER));
        se.verify(&pk_a()).unwrap();
        assert!(se.signatures[1].is_null());
        // B as responder accepts it and adds a valid signature.
        let done =
            SignedEntry::settle_as_responder(line.as_bytes(), &sk_b(), &pk_a(), "stcpr").unwrap();
        done.verify(&pk_a()).unwrap();
        done.verify(&pk_b()).unwrap();
        // ... but not for another type or from another key.
        let (code, _) = SignedEntry::settle_as_responder(line.as_bytes(), &sk_b(), &pk_a(), "stcp")
            .unwrap_err();
        assert_eq!(code, SettlementResponse::InvalidEntry);
        let other = SecKey::generate();
        let (code, _) = SignedEntry::settle_as_responder(line.as_bytes(), &other, &pk_a(), "stcpr")
            .unwrap_err();
        assert_eq!(code, SettlementResponse::InvalidEntry);
    }

    #[test]
    fn response_codes() {
        for b in 0..=255u8 {
            assert_eq!(SettlementResponse::from_byte(b).to_byte(), b);
        }
        assert!(SettlementResponse::from_byte(1).into_result().is_ok());
        assert!(SettlementResponse::from_byte(3).into_result().is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..800)) {
            let _ = SignedEntry::settle_as_responder(&b, &sk_b(), &pk_a(), "stcp");
        }

        #[test]
        fn id_symmetric_and_versioned(ty in "[a-z]{0,8}") {
            let id = transport_id(&pk_a(), &pk_b(), &ty);
            prop_assert_eq!(id, transport_id(&pk_b(), &pk_a(), &ty));
            prop_assert_eq!(id.as_bytes()[6] >> 4, 0);
            prop_assert_eq!(id.as_bytes()[8] & 0xc0, 0x80);
        }

        #[test]
        fn signed_entry_roundtrip(ty in "[a-z]{1,8}", label in "[a-z]{0,9}") {
            let se = SignedEntry::new(Entry::new(pk_a(), pk_b(), &ty, &label), &sk_a()).unwrap();
            let back = SignedEntry::decode(&se.encode()).unwrap();
            prop_assert_eq!(&back, &se);
            prop_assert!(back.verify(&pk_a()).is_ok());
        }
    }
}
