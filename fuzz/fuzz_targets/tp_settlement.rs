//! Transport settlement (apps.md 6.3): `SignedEntry::decode`, `verify` of both edges,
//! `SignedEntry::settle_as_responder` (as the Appendix A key B accepting from key A), and
//! `SettlementResponse::from_byte` on the first byte.
//!
//! Properties checked besides "never panics": a decoded signed entry re-encodes to one line
//! that decodes to the same value; verification gives the same answer before and after; an
//! entry the responder accepts carries the transport ID of its edges and type and ends up
//! signed by both edges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_cipher::{PubKey, SecKey};
use skywire_visor::transport::entry::{SettlementResponse, SignedEntry, transport_id};

const SK_B: &str = "18849c2bb06f6eae9ae3759d448aff46413e362812657ccb5185a98a17a70d1d";
const PK_A: &str = "0275bfa81c9331b7e713ea48a788a5df002652068825d27d9d003145399429037c";

fuzz_target!(|data: &[u8]| {
    if let Some(b) = data.first() {
        assert_eq!(SettlementResponse::from_byte(*b).to_byte(), *b);
    }
    if let Ok(se) = SignedEntry::decode(data) {
        let enc = se.encode();
        let back = SignedEntry::decode(&enc).expect("re-encoded entry decodes");
        assert_eq!(back, se);
        for pk in se.entry.edges {
            assert_eq!(se.verify(&pk).is_ok(), back.verify(&pk).is_ok());
        }
    }
    let (Ok(sk_b), Ok(pk_a)) = (SecKey::from_hex(SK_B), PubKey::from_hex(PK_A)) else {
        return;
    };
    for ty in ["stcpr", "stcp", "dmsg"] {
        if let Ok(done) = SignedEntry::settle_as_responder(data, &sk_b, &pk_a, ty) {
            assert_eq!(done.entry.t_id, transport_id(&pk_a, &sk_b.pub_key(), ty));
            assert!(done.verify(&pk_a).is_ok());
            assert!(done.verify(&sk_b.pub_key()).is_ok());
        }
    }
});
