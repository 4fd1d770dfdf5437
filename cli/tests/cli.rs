//! Runs the real `skywire` binary: version, key generation, error reporting and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use skywire_cipher::{PubKey, SecKey};

fn skywire(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skywire"))
        .args(args)
        .output()
        .expect("run skywire")
}

#[test]
fn version_prints_crate_version() {
    let out = skywire(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("skywire {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn gen_keys_prints_a_matching_pair() {
    let out = skywire(&["cli", "config", "gen-keys"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pk: PubKey = v["pk"].as_str().unwrap().parse().unwrap();
    let sk = SecKey::from_hex(v["sk"].as_str().unwrap()).unwrap();
    assert_eq!(sk.pub_key(), pk);
    // Two runs give two different identities.
    let again = skywire(&["cli", "config", "gen-keys"]);
    let v2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_ne!(v["sk"], v2["sk"]);
}

#[test]
fn gen_keys_from_sk_is_deterministic() {
    let sk = "0000000000000000000000000000000000000000000000000000000000000001";
    let out = skywire(&["cli", "config", "gen-keys", "--sk", sk]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["pk"],
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    );
    assert_eq!(v["sk"], sk);
}

#[test]
fn errors_print_once_with_nonzero_exit() {
    let zero = "0".repeat(64);
    let out = skywire(&["cli", "config", "gen-keys", "--sk", &zero]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("Error:").count(), 1, "{err}");
    assert!(
        err.contains("secret key is zero or not below the curve order"),
        "{err}"
    );

    let bad = skywire(&["cli", "config", "check-pk", "02ffff"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(err.contains("invalid public key"), "{err}");

    let good = skywire(&[
        "cli",
        "config",
        "check-pk",
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ]);
    assert!(good.status.success());

    let usage = skywire(&["cli", "config", "no-such-command"]);
    assert_eq!(usage.status.code(), Some(2));
}
