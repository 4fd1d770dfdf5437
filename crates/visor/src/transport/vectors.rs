//! Appendix A test vectors of apps.md (keys, transport IDs, Frame2 line, signatures,
//! settlement line), shared by the codec unit tests.

#![allow(clippy::unwrap_used)]

use skywire_cipher::{PubKey, SecKey};

pub const PK_A: &str = "0275bfa81c9331b7e713ea48a788a5df002652068825d27d9d003145399429037c";
pub const SK_A: &str = "e20d8ed613bd39c283c0730959bacbcff0f7d9eb26e2f94703c908842c135214";
pub const PK_B: &str = "03771f0c3d518f150149da19142ebe20ed441f1ef2088ad3d85ce33058ce502f00";
pub const SK_B: &str = "18849c2bb06f6eae9ae3759d448aff46413e362812657ccb5185a98a17a70d1d";

pub const TP_IDS: &[(&str, &str)] = &[
    ("stcpr", "897122e2-b711-048b-9e75-a8276f3122e5"),
    ("sudph", "afe3f677-67dd-0057-b80c-88dbe49cedca"),
    ("stcp", "ec9619a1-6e82-0109-bc2e-6501a303efec"),
    ("dmsg", "0d5cca6b-1b6e-0dd1-b208-242e260fdf65"),
];

pub const FRAME2_LINE: &str = r#"{"SrcAddr":{"public_key":"0275bfa81c9331b7e713ea48a788a5df002652068825d27d9d003145399429037c","port":49153},"DstAddr":{"public_key":"03771f0c3d518f150149da19142ebe20ed441f1ef2088ad3d85ce33058ce502f00","port":45},"Nonce":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"Sig":"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}"#;

pub const FRAME2_SIG: &str = "a97942c1c0359b3075b60cfe79b52b1a3e68066b0cd8bb76404ccb876ce5ce69056ffbb68d76094f1263ef432ac9bed9dccbf2c03a2a230f4bc34d4447946b7a00";

pub const SETTLEMENT_LINE: &str = r#"{"entry":{"t_id":"897122e2-b711-048b-9e75-a8276f3122e5","edges":["0275bfa81c9331b7e713ea48a788a5df002652068825d27d9d003145399429037c","03771f0c3d518f150149da19142ebe20ed441f1ef2088ad3d85ce33058ce502f00"],"type":"stcpr","label":"user"},"signatures":["3d20c0f5b99ff951258daa6d9a7d8e02b8bd7f41ed4b1d2dccce18ebeb0be407242287ee42d2505bbba7dfaeef7cacc069ce772ffc3f94eede25178a7d02241900","0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"]}"#;

pub fn pk_a() -> PubKey {
    PubKey::from_hex(PK_A).unwrap()
}
pub fn pk_b() -> PubKey {
    PubKey::from_hex(PK_B).unwrap()
}
pub fn sk_a() -> SecKey {
    SecKey::from_hex(SK_A).unwrap()
}
pub fn sk_b() -> SecKey {
    SecKey::from_hex(SK_B).unwrap()
}

#[test]
fn keys_belong_together() {
    assert_eq!(sk_a().pub_key(), pk_a());
    assert_eq!(sk_b().pub_key(), pk_b());
}
