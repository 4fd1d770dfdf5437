//! Property tests: sign/verify round trips, text round trips, and no panics on arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use skywire_cipher::{PubKey, SecKey, Sig, noise_dh, sign_payload, verify_payload};

fn seckey() -> impl Strategy<Value = SecKey> {
    any::<[u8; 32]>().prop_filter_map("valid scalar", |b| SecKey::from_bytes(&b).ok())
}

proptest! {
    #[test]
    fn sign_verify_round_trip(sk in seckey(), msg in proptest::collection::vec(any::<u8>(), 0..256)) {
        let pk = sk.pub_key();
        let sig = sign_payload(&sk, &msg).unwrap();
        prop_assert!(verify_payload(&pk, &msg, &sig).is_ok());
        prop_assert_eq!(sig.as_bytes()[32] & 0x80, 0);
        let mut other = msg.clone();
        other.push(1);
        prop_assert!(verify_payload(&pk, &other, &sig).is_err());
        let back: Sig = sig.to_hex().parse().unwrap();
        prop_assert_eq!(back, sig);
    }

    #[test]
    fn dh_is_symmetric(a in seckey(), b in seckey()) {
        prop_assert_eq!(noise_dh(&a, &b.pub_key()).unwrap(), noise_dh(&b, &a.pub_key()).unwrap());
    }

    #[test]
    fn pubkey_text_round_trip(sk in seckey()) {
        let pk = sk.pub_key();
        let back: PubKey = pk.to_hex().parse().unwrap();
        prop_assert_eq!(back, pk);
        prop_assert_eq!(PubKey::from_bytes(pk.as_bytes()).unwrap(), pk);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80), h in any::<[u8; 32]>()) {
        let _ = PubKey::from_bytes(&b);
        let _ = SecKey::from_bytes(&b);
        let _ = PubKey::from_hex(&String::from_utf8_lossy(&b));
        if let Ok(sig) = Sig::from_bytes(&b) {
            let _ = sig.recover(&h);
        }
        if let Some(Ok(pk)) = b.get(..33).map(PubKey::from_bytes) {
            let sk = SecKey::generate();
            prop_assert!(noise_dh(&sk, &pk).is_ok());
        }
    }
}
