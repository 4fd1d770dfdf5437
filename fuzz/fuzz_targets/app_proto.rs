//! The local app protocol codec (`skywire_app::proto`): `split_frame` and `decode` of every
//! message type (hellos, replies, control requests and responses) over arbitrary bytes.
//!
//! Properties besides "never panics": a frame never uses more than the input; a decoded message
//! re-encodes to a frame that decodes to the same value using all of it; the input cut one byte
//! short of a whole frame is reported incomplete.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use skywire_app::proto::{Hello, Reply, Request, Response, decode, encode, split_frame};

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(Some((msg, used))) = decode::<T>(data) {
        assert!(used <= data.len());
        let f = encode(&msg).unwrap();
        let (again, n) = decode::<T>(&f).unwrap().unwrap();
        assert_eq!(n, f.len());
        assert_eq!(again, msg);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some((body, used)) = split_frame(data) {
        assert_eq!(used, body.len() + 2);
        assert!(used <= data.len());
        assert!(split_frame(&data[..used - 1]).is_none());
    }
    check::<Hello>(data);
    check::<Reply>(data);
    check::<Request>(data);
    check::<Response>(data);
});
