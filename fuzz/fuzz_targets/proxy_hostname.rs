//! Resolver host names: `parse_host` on the input as (lossy) UTF-8.
//!
//! Properties checked besides "never panics": a parsed target rebuilt as
//! `[vhost.][route.]<pk>.<suffix>` parses to the same target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_proxy::hostname::{Suffix, parse_host};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(Some(t)) = parse_host(&s) {
        let mut labels: Vec<String> = Vec::new();
        if let Some(v) = &t.vhost {
            labels.push(v.clone());
        }
        labels.extend(t.route.iter().map(|k| k.to_hex()));
        labels.push(t.pk.to_hex());
        labels.push(match t.suffix {
            Suffix::Dmsg => "dmsg".into(),
            Suffix::Skynet => "skynet".into(),
        });
        assert_eq!(parse_host(&labels.join(".")).ok(), Some(Some(t)));
    }
});
