//! Property tests of the sans-IO VPN protocol: hellos round-trip and never panic on junk, the
//! packet splitter returns exactly the packets that were concatenated (whatever the chunking),
//! and the allocator never hands out a block twice or one containing an unavailable address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use proptest::prelude::*;
use skywire_vpn::proto::{
    Allocator, ClientHello, PacketSplitter, ServerHello, ServerHelloWire, Status, decode_hello,
    encode_hello,
};

fn packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (20usize..1500).prop_flat_map(|len| {
            proptest::collection::vec(any::<u8>(), len).prop_map(move |mut p| {
                p[0] = 0x45;
                p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                p
            })
        }),
        (0usize..1460).prop_flat_map(|plen| {
            proptest::collection::vec(any::<u8>(), 40 + plen).prop_map(move |mut p| {
                p[0] = 0x60 | (p[0] & 0x0f);
                p[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
                p
            })
        }),
    ]
}

proptest! {
    #[test]
    fn client_hello_round_trips(ips in proptest::collection::vec(any::<u32>(), 0..20), pass in ".{0,40}", tail in proptest::collection::vec(any::<u8>(), 0..40)) {
        let h = ClientHello {
            unavailable_private_ips: ips.into_iter().map(Ipv4Addr::from).collect(),
            passcode: pass,
        };
        let mut wire = encode_hello(&h);
        let n = wire.len();
        wire.extend_from_slice(&tail);
        let (back, used) = decode_hello::<ClientHello>(&wire).unwrap().unwrap();
        prop_assert_eq!(back, h);
        prop_assert_eq!(used, n);
        // Strict prefixes are "incomplete" or an error, never a value.
        for cut in [0, n / 2, n.saturating_sub(1)] {
            if let Ok(Some((v, _))) = decode_hello::<ClientHello>(&wire[..cut]) {
                prop_assert!(false, "prefix decoded to {:?}", v);
            }
        }
    }

    #[test]
    fn server_hello_round_trips(ok in any::<bool>(), ip in any::<u32>(), code in 1i64..5) {
        let h = if ok {
            ServerHello::Ok { tun_ip: Ipv4Addr::from(ip), tun_gateway: Ipv4Addr::from(ip.wrapping_sub(1)) }
        } else {
            ServerHello::Err(Status::from_code(code))
        };
        let wire = encode_hello(&h.to_wire());
        let (w, _) = decode_hello::<ServerHelloWire>(&wire).unwrap().unwrap();
        prop_assert_eq!(ServerHello::from_wire(&w).unwrap(), h);
    }

    #[test]
    fn hello_decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_hello::<ClientHello>(&data);
        let _ = decode_hello::<ServerHelloWire>(&data);
    }

    #[test]
    fn splitter_returns_the_packets(pkts in proptest::collection::vec(packet(), 1..12), chunk in 1usize..3000) {
        let all: Vec<u8> = pkts.concat();
        let mut s = PacketSplitter::default();
        let mut got = Vec::new();
        for c in all.chunks(chunk) {
            s.push(c);
            while let Some(p) = s.next_packet().unwrap() {
                got.push(p.to_vec());
            }
        }
        prop_assert_eq!(got, pkts);
        prop_assert_eq!(s.pending(), 0);
    }

    #[test]
    fn splitter_never_panics(data in proptest::collection::vec(any::<u8>(), 0..4000), chunk in 1usize..600) {
        let mut s = PacketSplitter::default();
        'outer: for c in data.chunks(chunk) {
            s.push(c);
            loop {
                match s.next_packet() {
                    Ok(Some(p)) => prop_assert!(p.len() >= 20),
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn allocator_blocks_are_distinct_and_avoid_unavailable(unavail in proptest::collection::vec(0xAC10_0000u32..0xAC10_0100, 0..10), n in 1usize..20) {
        let unavail: Vec<Ipv4Addr> = unavail.into_iter().map(Ipv4Addr::from).collect();
        let mut a = Allocator::default();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            let b = a.allocate(&unavail).unwrap();
            prop_assert!(seen.insert(b.base));
            prop_assert_eq!(u32::from(b.base) % 8, 0);
            for ip in &unavail {
                prop_assert!(!b.contains(*ip));
            }
        }
    }
}
