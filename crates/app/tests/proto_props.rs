//! Property tests of the app protocol codec: every message round-trips through a frame, frames
//! split anywhere decode only when whole, and arbitrary bytes never panic the decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use skywire_app::proto::{
    self, Addr, Hello, Net, Op, ProcKey, Reply, Request, Response, decode, encode, split_frame,
};
use skywire_cipher::SecKey;

fn pk() -> impl Strategy<Value = skywire_cipher::PubKey> {
    any::<u8>().prop_map(|_| SecKey::generate().pub_key())
}

fn net() -> impl Strategy<Value = Net> {
    prop_oneof![Just(Net::Dmsg), Just(Net::Skynet)]
}

fn addr() -> impl Strategy<Value = Addr> {
    (net(), pk(), any::<u16>()).prop_map(|(n, k, p)| Addr::new(n, k, p))
}

fn hello() -> impl Strategy<Value = Hello> {
    let key = any::<[u8; 16]>().prop_map(ProcKey);
    prop_oneof![
        (any::<u32>(), key.clone())
            .prop_map(|(version, proc_key)| Hello::Control { version, proc_key }),
        (any::<u32>(), key.clone(), addr()).prop_map(|(version, proc_key, remote)| Hello::Dial {
            version,
            proc_key,
            remote
        }),
        (any::<u32>(), key, any::<u16>()).prop_map(|(version, proc_key, listener)| {
            Hello::Accept {
                version,
                proc_key,
                listener,
            }
        }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        (any::<u32>(), pk(), ".{0,40}").prop_map(|(version, visor_pk, app_name)| {
            Reply::Welcome {
                version,
                visor_pk,
                app_name,
            }
        }),
        (addr(), addr()).prop_map(|(local, remote)| Reply::Connected { local, remote }),
        ".{0,200}".prop_map(|message| Reply::Error { message }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (net(), any::<u16>()).prop_map(|(net, port)| Op::Listen { net, port }),
        any::<u16>().prop_map(|listener| Op::CloseListener { listener }),
        ".{0,100}".prop_map(|status| Op::SetDetailedStatus { status }),
        ".{0,100}".prop_map(|error| Op::SetError { error }),
        any::<u16>().prop_map(|port| Op::SetAppPort { port }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    (
        any::<u32>(),
        proptest::option::of(".{0,100}"),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(id, error, listener)| Response {
            id,
            error,
            listener,
        })
}

fn roundtrip<T>(msg: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let f = encode(msg).unwrap();
    // Split anywhere: incomplete until the last byte.
    for cut in 0..f.len() {
        prop_assert!(decode::<T>(&f[..cut]).unwrap().is_none());
    }
    // With trailing bytes (the start of a raw pipe) only the frame is consumed.
    let mut more = f.clone();
    more.extend_from_slice(b"\x00\x01raw");
    let (back, used) = decode::<T>(&more).unwrap().unwrap();
    prop_assert_eq!(used, f.len());
    prop_assert_eq!(&back, msg);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn hellos_roundtrip(h in hello()) {
        roundtrip(&h)?;
    }

    #[test]
    fn replies_roundtrip(r in reply()) {
        roundtrip(&r)?;
    }

    #[test]
    fn requests_roundtrip(id in any::<u32>(), op in op()) {
        roundtrip(&Request { id, op })?;
    }

    #[test]
    fn responses_roundtrip(r in response()) {
        roundtrip(&r)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode::<Hello>(&b);
        let _ = decode::<Reply>(&b);
        let _ = decode::<Request>(&b);
        let _ = decode::<Response>(&b);
        if let Some((body, used)) = split_frame(&b) {
            prop_assert_eq!(used, body.len() + 2);
            prop_assert!(used <= b.len());
        }
    }

    #[test]
    fn json_like_bodies_never_panic(body in r#"\{("[a-z_]{1,10}":("[ -~]{0,20}"|[0-9]{1,6}|null|\{\}),?){0,6}\}"#) {
        let mut f = (body.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(body.as_bytes());
        let _ = decode::<Hello>(&f);
        let _ = decode::<Request>(&f);
        let _ = decode::<Reply>(&f);
        prop_assert!(f.len() <= proto::MAX_FRAME + 2);
    }
}
