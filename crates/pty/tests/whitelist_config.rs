//! Whitelist semantics and persistence (pty.md 4.1, 4.2) and the config files (4.3, 4.4):
//! defaults against the spec's `confgen` JSON, key names, round trips in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use skywire_cipher::{PubKey, SecKey};
use skywire_pty::config::{
    self, DEFAULT_DMSG_DISC, HostConfig, VisorPtyConfig, default_cli_addr_in,
};
use skywire_pty::whitelist::{Whitelist, WhitelistFile};

const PK_A: &str = "02ba7f8b63268617e35637629bf2b7c6a9746f66d3e064a1f11f9ff9971e1b969c";
const PK_B: &str = "0376ed59c81c5f31c673787e47347061f0d1276718b8f28cc10cd0b578799466dd";

fn keys() -> (PubKey, PubKey) {
    (PK_A.parse().unwrap(), PK_B.parse().unwrap())
}

/// The spec's observed `confgen` output (pty.md 4.3) with the key pair and socket path filled in.
fn spec_confgen(sk: &str, pk: &str, cliaddr: &str) -> String {
    format!(
        r#"{{
    "dmsgdisc": "http://dmsgd.skywire.skycoin.com",
    "dmsgsessions": 1,
    "dmsgport": 22,
    "clinet": "unix",
    "cliaddr": "{cliaddr}",
    "sk": "{sk}",
    "pk": "{pk}",
    "wl": null
}}
"#
    )
}

#[test]
fn confgen_matches_reference_json() {
    let sk = SecKey::generate();
    let conf = HostConfig::generate(&sk);
    let cliaddr = default_cli_addr_in(&std::env::temp_dir(), "dmsgpty.sock");
    assert_eq!(
        conf.to_confgen_json(),
        spec_confgen(&sk.to_hex(), &sk.pub_key().to_hex(), &cliaddr)
    );
    assert_eq!(conf.secret_key().unwrap().unwrap(), sk);
    // And the spec's file (with the usual /tmp) loads back into the same values.
    let spec = spec_confgen(&sk.to_hex(), &sk.pub_key().to_hex(), "/tmp/dmsgpty.sock");
    let loaded = HostConfig::from_json(spec.as_bytes()).unwrap();
    assert_eq!(loaded.dmsg_disc, DEFAULT_DMSG_DISC);
    assert_eq!(
        (loaded.dmsg_sessions, loaded.dmsg_port),
        (1, config::DEFAULT_DMSG_PORT)
    );
    assert_eq!(loaded.cli_net, "unix");
    assert_eq!(loaded.cli_addr, "/tmp/dmsgpty.sock");
    assert_eq!(loaded.wl, None);
    assert!(loaded.extra.is_empty());
    assert_eq!(loaded.to_confgen_json(), spec);
}

#[test]
fn host_config_defaults_keys_and_env() {
    let d = HostConfig::from_json(b"{}").unwrap();
    assert_eq!(d, HostConfig::default());
    assert_eq!(d.secret_key().unwrap(), None);
    assert_eq!(d.tcp_listen_addr(), None);
    // G2/G3 listen keys: omitted when empty, written when set, tcplisten wins.
    let mut c = HostConfig {
        ssh_listen: ":2022".into(),
        ..HostConfig::zero()
    };
    assert_eq!(c.tcp_listen_addr(), Some(":2022"));
    c.tcp_listen = ":2023".into();
    assert_eq!(c.tcp_listen_addr(), Some(":2023"));
    let text = c.to_whitelist_file_json();
    let order = [
        "dmsgdisc",
        "dmsgsessions",
        "dmsgport",
        "clinet",
        "cliaddr",
        "sk",
        "pk",
        "wl",
        "tcplisten",
        "ssh_listen",
    ];
    let pos: Vec<usize> = order
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} in {text}"))
        })
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(
        HostConfig::zero().to_whitelist_file_json(),
        "{\n  \"dmsgdisc\": \"\",\n  \"dmsgsessions\": 0,\n  \"dmsgport\": 0,\n  \"clinet\": \"\",\n  \"cliaddr\": \"\",\n  \"sk\": \"\",\n  \"pk\": \"\",\n  \"wl\": null\n}"
    );
    // Environment overrides.
    let mut c = HostConfig::default();
    c.apply_env("DMSGPTY", |k| match k {
        "DMSGPTY_DMSGPORT" => Some("2200".into()),
        "DMSGPTY_CLIADDR" => Some("/run/pty.sock".into()),
        "DMSGPTY_DMSGSESSIONS" => Some("3".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!((c.dmsg_port, c.dmsg_sessions), (2200, 3));
    assert_eq!(c.cli_addr, "/run/pty.sock");
    assert!(
        c.apply_env("X", |k| (k == "X_DMSGPORT").then(|| "70000".into()))
            .is_err()
    );
    // Invalid key material is reported, not panicked on.
    let bad = HostConfig {
        sk: "zz".into(),
        ..HostConfig::default()
    };
    assert!(bad.secret_key().is_err());
    assert!(HostConfig::from_json(br#"{"wl": ["nothex"]}"#).is_err());
}

#[test]
fn visor_section() {
    let d = VisorPtyConfig::default();
    assert_eq!(d.dmsg_port, 22);
    assert_eq!(d.cli_network, "unix");
    assert_eq!(
        d.cli_address,
        default_cli_addr_in(&std::env::temp_dir(), "pty.sock")
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "dmsg_port": 22,
            "cli_network": "unix",
            "cli_address": d.cli_address,
            "whitelist": []
        })
    );
    let (a, _) = keys();
    let visor = serde_json::json!({
        "dmsgpty": { "dmsg_port": 0, "cli_network": "", "cli_address": "/x", "whitelist": [PK_A], "ssh_listen": ":2022", "allow_rpc_exec": true }
    });
    let s = VisorPtyConfig::from_visor_config(&visor).unwrap().unwrap();
    assert_eq!(s.dmsg_port, 0);
    assert_eq!(s.whitelist, [a]);
    assert_eq!(s.ssh_listen, ":2022");
    assert!(s.allow_rpc_exec);
    let both = serde_json::json!({ "pty": { "dmsg_port": 23 }, "dmsgpty": { "dmsg_port": 24 } });
    assert_eq!(
        VisorPtyConfig::from_visor_config(&both)
            .unwrap()
            .unwrap()
            .dmsg_port,
        23
    );
    assert!(
        VisorPtyConfig::from_visor_config(&serde_json::json!({}))
            .unwrap()
            .is_none()
    );
}

#[test]
fn whitelist_semantics() {
    let (a, b) = keys();
    let host = SecKey::generate().pub_key();
    let mut wl = Whitelist::new();
    // Empty: only the host itself.
    assert!(!wl.is_allowed(&host, &a));
    assert!(wl.is_allowed(&host, &host));
    assert!(!wl.is_allowed(&host, &PubKey::NULL));
    let out = wl.add(&[a, b, a]);
    assert_eq!(out.added, [a, b]);
    assert_eq!(
        out.error_text().unwrap(),
        format!("skipping append for {PK_A}. Already exists")
    );
    let out = wl.add(&[b, a]);
    assert!(out.added.is_empty());
    assert_eq!(
        out.error_text().unwrap(),
        format!("skipping append for {PK_B},{PK_A}. Already exists")
    );
    assert!(wl.is_allowed(&host, &a));
    assert_eq!(wl.remove(&[a, host]), 1);
    assert_eq!(wl.list(), [b]);
    assert!(!wl.is_allowed(&host, &a));
    assert_eq!(Whitelist::from_keys([b, b, PubKey::NULL]).list(), [b]);
}

#[test]
fn whitelist_file_round_trip() {
    let (a, b) = keys();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let f = WhitelistFile::new(&path);
    // Missing file: empty whitelist, nothing created by reading.
    assert!(f.load().unwrap().is_empty());
    assert!(!path.exists());

    // A confgen'd file with an extra key from a newer version.
    let sk = SecKey::generate();
    let mut conf = HostConfig::generate(&sk);
    conf.extra
        .insert("future_key".into(), serde_json::json!({"x": 1}));
    std::fs::write(&path, conf.to_confgen_json()).unwrap();
    assert!(f.load().unwrap().is_empty());
    // Saving an empty list keeps `wl: null`.
    f.save(&Whitelist::new()).unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"wl\": null")
    );

    let out = f.add(&[a, b]).unwrap();
    assert_eq!(out.added, [a, b]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\n  \"dmsgdisc\": "), "{text}");
    assert!(!text.ends_with('\n'));
    assert!(text.contains(&format!("\"wl\": [\n    \"{PK_A}\",\n    \"{PK_B}\"\n  ]")));
    let reread = HostConfig::from_json(text.as_bytes()).unwrap();
    assert_eq!(reread.sk, sk.to_hex());
    assert_eq!(reread.extra["future_key"], serde_json::json!({"x": 1}));
    assert_eq!(reread.wl, Some(vec![a, b]));

    assert!(f.add(&[a]).unwrap().error_text().is_some());
    assert_eq!(f.remove(&[a]).unwrap(), 1);
    assert_eq!(f.load().unwrap().list(), [b]);
    assert!(f.is_allowed(&sk.pub_key(), &b).unwrap());
    assert!(!f.is_allowed(&sk.pub_key(), &a).unwrap());
    assert!(f.is_allowed(&sk.pub_key(), &sk.pub_key()).unwrap());
    // Emptied by removal: `[]`, not `null`.
    f.remove(&[b]).unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"wl\": []")
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Only the config file is left (temp files renamed away).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("config.json")]);

    // A zero-length file counts as a default config and is rewritten as one.
    std::fs::write(&path, b"").unwrap();
    f.add(&[a]).unwrap();
    let c = HostConfig::load(&path).unwrap();
    assert_eq!(c.wl, Some(vec![a]));
    assert_eq!(c.dmsg_port, 22);
    // Garbage is an error, not a silent reset.
    std::fs::write(&path, b"{not json").unwrap();
    assert!(f.load().is_err());
    assert!(f.add(&[a]).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
}
