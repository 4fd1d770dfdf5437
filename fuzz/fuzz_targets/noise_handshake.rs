//! Noise XK/KK handshakes with fixed static and ephemeral keys (those of `noise_xk.json` and
//! `noise_kk.json`, so the recorded messages are valid seeds), reading the input as the peer's
//! messages.
//!
//! Control byte (first input byte): bits 0-1 pick the side
//! * 0: XK responder (server S) reading msg1 and msg3;
//! * 1: KK responder (client B, expecting A) reading msg1;
//! * 2: XK initiator (client A towards S) writing msg1, then reading msg2;
//! * 3: KK initiator (A towards B) writing msg1, then reading msg2;
//!
//! and bit 2 whether the rest is one raw message (read once) or a sequence of `BE16(len) || msg`
//! records. Records left after a finished handshake are decrypted as transport frame bodies.
//!
//! Properties checked besides "never panics": once `is_finished`, `into_transport` succeeds and
//! knows the peer's static key (the fixed peer key when it was given up front).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_fuzz::{
    EPH_KK_I, EPH_KK_R, EPH_XK_I, EPH_XK_R, SK_A, SK_B, SK_S, pk, prefixed_records, sk,
};
use skywire_noise::{HandshakeBuilder, Pattern, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let (pattern, role, local, remote, eph) = match ctl & 3 {
        0 => (Pattern::XK, Role::Responder, SK_S, None, EPH_XK_R),
        1 => (Pattern::KK, Role::Responder, SK_B, Some(SK_A), EPH_KK_R),
        2 => (Pattern::XK, Role::Initiator, SK_A, Some(SK_S), EPH_XK_I),
        _ => (Pattern::KK, Role::Initiator, SK_A, Some(SK_B), EPH_KK_I),
    };
    let local = sk(local);
    let eph = sk(eph);
    let mut builder = HandshakeBuilder::new(pattern, role, &local).with_fixed_ephemeral(&eph);
    if let Some(r) = remote {
        builder = builder.remote(pk(r));
    }
    let mut hs = match builder.build() {
        Ok(hs) => hs,
        Err(e) => panic!("building the handshake failed: {e}"),
    };

    let records = if ctl & 4 != 0 {
        vec![input]
    } else {
        prefixed_records(input)
    };
    let mut records = records.into_iter();
    let mut out = Vec::new();
    while !hs.is_finished() && !hs.is_failed() {
        if hs.is_my_turn() {
            out.clear();
            if let Err(e) = hs.write_message(&[], &mut out) {
                // Writing only fails on a broken state; with valid fixed keys it must not.
                panic!("write_message failed: {e}");
            }
        } else {
            let Some(msg) = records.next() else {
                return;
            };
            if hs.read_message(msg).is_err() {
                assert!(hs.is_failed());
                // Any error is final.
                assert!(hs.read_message(msg).is_err());
                assert!(hs.write_message(&[], &mut out).is_err());
                return;
            }
        }
    }
    if hs.is_failed() {
        return;
    }
    let _ = hs.handshake_hash();
    let expected_remote = remote.map(pk);
    let mut transport = match hs.into_transport() {
        Ok(t) => t,
        Err(e) => panic!("finished handshake without transport: {e}"),
    };
    assert!(transport.remote_static().is_some());
    if let Some(r) = expected_remote {
        assert_eq!(transport.remote_static(), Some(&r));
    }
    for body in records {
        let mut body = body.to_vec();
        if transport.decrypt_frame(&mut body).is_err() {
            break;
        }
    }
});
