//! Helpers shared by the fuzz targets: the fixed keys of `shared/spec/vectors/` (so that seeds
//! built from the vectors get past the MACs and signatures) and small input splitters.

use skywire_cipher::{PubKey, SecKey};

/// Key A (`SHA-256("dmsg-wire-vector:A")`): the dialing client / XK and KK initiator.
pub const SK_A: &str = "f3aae1412baf640c60b57ca9de074cf4f059020629d1b32707d37a9b753f904b";
/// Key B: the listening client / KK responder.
pub const SK_B: &str = "afedd838bdf71a410d3174395f8ad8ba82147ba98d99829e281307477996d014";
/// Key S: the dmsg server / XK responder.
pub const SK_S: &str = "8a6c5f4c0b2cc040ee58286a3e5573cde84f16bee2b3c9f1f51fec374da99ef9";
/// Ephemeral keys of `noise_xk.json` (initiator, responder).
pub const EPH_XK_I: &str = "245c420b5cd1491609990ce19e9b2262f8b29a87ea6d83afd5a49c61f7def3ec";
pub const EPH_XK_R: &str = "61a68a81988cdd281f1569b5307ce9de67570343f61a1c807b379f274c10e6d3";
/// Ephemeral keys of `noise_kk.json` (initiator, responder).
pub const EPH_KK_I: &str = "c180d96504d3729bcdc5cfd3cf8144b14b227bd5e69bfb7d1678aa7094c7ca22";
pub const EPH_KK_R: &str = "2040c1567096d098dfa4c49c66a7eda0c4f0d4a8dd65c4d43a7834b75d652c8b";
/// Transport keys of `noise_xk.json` / `noise_kk.json` (`initiator_send_key`).
pub const XK_I_SEND: &str = "6f7ddcc8b01d79e3d7a0decd56dd8233d6c453395f368c1206331d4af85b8156";
pub const KK_I_SEND: &str = "f034490610a06545bfd79528001139460ba4ac6b10fc28d32e057bdf68cb7751";
/// Session keys of `dmsg_objects.json`: A's send key on session A<->S (relay hop 1) and S's send
/// key on session B<->S (relay hop 2).
pub const OBJ_AS_I_SEND: &str = "56e5613cf1b7824e77666d45fe156a583d0583f6bd8b92b4564592bbb3815a74";
pub const OBJ_BS_R_SEND: &str = "bb779746bf85c9a20232cb2d1bda914bfaab1fa81ecf71f3e00ed5a36295aa48";

/// Decodes a 32-byte hex constant (the constants above are valid).
pub fn key32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let byte = hex.get(2 * i..2 * i + 2).unwrap_or("00");
        *o = u8::from_str_radix(byte, 16).unwrap_or(0);
    }
    out
}

/// A secret key from a hex constant above.
pub fn sk(hex: &str) -> SecKey {
    match SecKey::from_bytes(&key32(hex)) {
        Ok(k) => k,
        Err(e) => panic!("fixed fuzz key {hex} is invalid: {e}"),
    }
}

/// The public key of a hex constant above.
pub fn pk(hex: &str) -> PubKey {
    sk(hex).pub_key()
}

/// Splits `data` into `BE16(len) || msg` records, as handshake messages and frames travel on the
/// wire. A final record whose prefix announces more than what is left yields the remainder.
pub fn prefixed_records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// Chunk size picked from a control byte: `1 << (ctl & 0x1f)` (1 .. 64 KiB), or everything at
/// once for shifts of 17 and above.
pub fn chunk_size(ctl: u8) -> usize {
    let shift = ctl & 0x1f;
    if shift >= 17 { usize::MAX } else { 1 << shift }
}
