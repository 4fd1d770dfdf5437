//! Go gob decoding: the stateful stream decoder (dynamic values and skipping), typed decoding of
//! the dmsg dial objects and the signed-object parsers with their checks.
//!
//! Properties checked besides "never panics":
//! * `decode_dynamic` always makes progress and never reports more bytes than it was given;
//! * `skip_value` on a second decoder consumes exactly what `decode_dynamic` consumed;
//! * a typed value that decodes re-encodes (fresh encoder) to bytes that decode again and
//!   re-encode to the same bytes; for the dmsg objects the decoded values are equal too.
//!
//! Typed targets: the dmsg dial objects, plus local mirrors of the dmsgpty net/rpc shapes and a
//! struct with every supported kind, so the serde path (`de.rs`) and the kind-compatibility
//! checks see all wire kinds.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use skywire_cipher::PubKey;
use skywire_dmsg::{Addr, SignedRequest, SignedResponse, StreamRequest, StreamResponse};
use skywire_gob::{Decoder, GobType};
use skywire_pty::rpc::{Request, Response};
use skywire_pty::types::{CommandExecResult, CommandReq, WinSize};

/// Every kind the typed decoder supports (no `HashMap`: its encoding order is not stable).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct Kinds {
    b: bool,
    i8: i8,
    i: i64,
    u16: u16,
    u: u64,
    f32: f32,
    f: f64,
    s: String,
    bytes: Vec<u8>,
    strings: Vec<String>,
    arr: [u16; 3],
    bytes4: [u8; 4],
    map: BTreeMap<String, i32>,
    nested_map: BTreeMap<u32, Vec<WinSize>>,
    size: WinSize,
    opt: Option<WinSize>,
    boxed: Option<Box<CommandReq>>,
    pk: PubKey,
    addrs: Vec<Addr>,
    unit: (),
}

fn dynamic_stream(data: &[u8]) {
    let mut dec = Decoder::new();
    let mut skipper = Decoder::new();
    let mut pos = 0;
    while pos < data.len() {
        let input = &data[pos..];
        let Ok(Some((value, used))) = dec.decode_dynamic(input) else {
            break;
        };
        assert!(
            used > 0 && used <= input.len(),
            "decode_dynamic used {used} of {}",
            input.len()
        );
        // Exercise the accessors and Debug on whatever came out.
        let _ = format!("{value:?}");
        let _ = (
            value.as_i64(),
            value.as_u64(),
            value.as_str(),
            value.as_bytes(),
        );
        let _ = value.as_slice().map(<[_]>::len);
        match skipper.skip_value(input) {
            Ok(Some(skipped)) => {
                assert_eq!(skipped, used, "skip_value disagrees with decode_dynamic")
            }
            other => panic!(
                "decode_dynamic read a value ({used} bytes) that skip_value refused: {other:?}"
            ),
        }
        pos += used;
    }
    let _ = dec.types().len();
}

/// Typed decoding of one value and in stream mode; returns the value decoded by `from_slice`
/// and the value its re-encoding decodes to.
fn typed<T>(data: &[u8]) -> Option<(T, T)>
where
    T: for<'de> Deserialize<'de> + GobType + std::fmt::Debug,
{
    let mut round = None;
    if let Ok(v) = skywire_gob::from_slice::<T>(data) {
        let bytes = match skywire_gob::to_vec(&v) {
            Ok(b) => b,
            Err(e) => panic!("decoded {v:?} but cannot re-encode it: {e}"),
        };
        let back = match skywire_gob::from_slice::<T>(&bytes) {
            Ok(back) => back,
            Err(e) => panic!("re-encoded {v:?} does not decode: {e}"),
        };
        match skywire_gob::to_vec(&back) {
            Ok(again) => assert_eq!(again, bytes, "re-encoding is not stable for {v:?}"),
            Err(e) => panic!("decoded {back:?} but cannot re-encode it: {e}"),
        }
        round = Some((v, back));
    }
    // Stream mode: typed values one after another on one decoder.
    let mut dec = Decoder::new();
    let mut pos = 0;
    while pos < data.len() {
        match dec.decode_value::<T>(&data[pos..]) {
            Ok(Some((_, used))) if used > 0 => pos += used,
            _ => break,
        }
    }
    round
}

fn typed_eq<T>(data: &[u8])
where
    T: for<'de> Deserialize<'de> + GobType + std::fmt::Debug + PartialEq,
{
    if let Some((v, back)) = typed::<T>(data) {
        assert_eq!(back, v, "gob round trip changed the value");
    }
}

fuzz_target!(|data: &[u8]| {
    dynamic_stream(data);
    let _ = skywire_gob::from_slice_dynamic(data);

    typed_eq::<StreamRequest>(data);
    typed_eq::<StreamResponse>(data);
    typed::<Request>(data);
    typed::<Response>(data);
    typed::<CommandReq>(data);
    typed::<CommandExecResult>(data);
    typed::<Kinds>(data);
    typed::<Vec<String>>(data);
    typed::<i64>(data);

    if let Ok(req) = SignedRequest::parse(data.to_vec()) {
        let _ = req.verify();
        let _ = req.hash();
    }
    if let Ok(resp) = SignedResponse::parse(data.to_vec()) {
        let req = SignedRequest {
            req: StreamRequest::default(),
            raw: Vec::new(),
        };
        let _ = resp.verify(&req);
        let _ = resp.verify_signer(&req, &req.req.src_addr.pk);
    }
});
