//! VPN protocol decoders: the client and server JSON hellos (`decode_hello`,
//! `ServerHello::from_wire`) and the packet splitter that cuts the peer's byte stream at IP
//! header lengths.
//!
//! Properties besides "never panics": a decoded hello re-encodes and decodes to the same value;
//! the splitter's packets, concatenated, are a prefix of the input, each as long as its header
//! says, and the same input split in one chunk or in `chunk`-sized pieces gives the same packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_vpn::proto::{
    ClientHello, PacketSplitter, ServerHello, ServerHelloWire, decode_hello, encode_hello,
    packet_len,
};

fn split(data: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut s = PacketSplitter::default();
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        s.push(c);
        loop {
            match s.next_packet() {
                Ok(Some(p)) => out.push(p.to_vec()),
                Ok(None) => break,
                Err(_) => return out,
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    if let Ok(Some((h, used))) = decode_hello::<ClientHello>(rest) {
        assert!(used <= rest.len());
        let again = decode_hello::<ClientHello>(&encode_hello(&h)).unwrap().unwrap().0;
        assert_eq!(again, h);
    }
    if let Ok(Some((w, _))) = decode_hello::<ServerHelloWire>(rest) {
        if let Ok(h) = ServerHello::from_wire(&w) {
            let w2 = h.to_wire();
            assert_eq!(ServerHello::from_wire(&w2).unwrap(), h);
        }
    }
    let whole = split(rest, rest.len());
    let pieces = split(rest, usize::from(ctl) + 1);
    assert_eq!(whole, pieces);
    let cat: Vec<u8> = whole.concat();
    assert!(rest.starts_with(&cat));
    for p in &whole {
        assert_eq!(packet_len(p).unwrap(), Some(p.len()));
    }
});
