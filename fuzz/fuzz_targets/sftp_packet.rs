//! SFTP v3 packet decoders of `skywire-fs` (server side: requests, client side: responses,
//! framing, the statvfs reply and the open-read@skycoin.com payloads): never panic; what decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_fs::sftp::{OpenRead, OpenReadReply, Request, Response, StatVfs, frame_len};

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    let _ = StatVfs::decode(data);
    if let Ok(o) = OpenRead::decode(data) {
        let mut out = Vec::new();
        o.encode(&mut out);
        assert_eq!(out, data);
    }
    if let Ok(o) = OpenReadReply::decode(data) {
        let mut out = Vec::new();
        o.encode(&mut out);
        assert_eq!(out, data);
    }
    if let Ok(req) = Request::decode(data) {
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(Request::decode(&out[4..]).as_ref(), Ok(&req));
    }
    if let Ok(resp) = Response::decode(data) {
        let mut out = Vec::new();
        resp.encode(&mut out);
        assert_eq!(Response::decode(&out[4..]).as_ref(), Ok(&resp));
    }
});
