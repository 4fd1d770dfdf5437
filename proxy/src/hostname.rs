//! The resolving proxies' host-name grammar (apps.md 5.2), sans-IO:
//! `[vhost.][route labels.]<pk>.<suffix>` with suffix `dmsg` or `skynet`; the port comes from
//! the SOCKS request (80 when a browser opens `http://<pk>.dmsg/`). `dest` must be a 66-hex
//! public key here (the 53-char base32 form and aliases such as `skywire` or `tpd` are not
//! supported yet). Labels left of the key that parse as keys are route hints (a dmsg server
//! for `.dmsg`, hops for `.skynet`); the rest form the virtual host.

use skywire_cipher::PubKey;

/// Which resolver a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// `.dmsg`: a dmsg stream to the key's port.
    Dmsg,
    /// `.skynet`: the key's forwarding service, asking for the port.
    Skynet,
}

/// A parsed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The resolver.
    pub suffix: Suffix,
    /// The destination key.
    pub pk: PubKey,
    /// Route hints (keys) between the virtual host and the destination.
    pub route: Vec<PubKey>,
    /// Virtual host labels, joined with dots.
    pub vhost: Option<String>,
}

/// Errors of [`parse_host`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing between the key and the suffix... or no key at all.
    #[error("{0:?}: expected <pk>.{1} with a 66-hex public key before the suffix")]
    NoKey(String, &'static str),
}

/// Parses `host` (no port). `Ok(None)` for names without a `.dmsg`/`.skynet` suffix.
pub fn parse_host(host: &str) -> Result<Option<Target>, HostError> {
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    let mut labels: Vec<&str> = lower.split('.').collect();
    let (suffix, name) = match labels.last().copied() {
        Some("dmsg") => (Suffix::Dmsg, "dmsg"),
        Some("skynet") => (Suffix::Skynet, "skynet"),
        _ => return Ok(None),
    };
    labels.pop();
    let pk = labels
        .pop()
        .and_then(|l| (l.len() == 66).then(|| PubKey::from_hex(l).ok()).flatten())
        .ok_or_else(|| HostError::NoKey(host.to_owned(), name))?;
    let mut route = Vec::new();
    while let Some(l) = labels.last() {
        match (l.len() == 66).then(|| PubKey::from_hex(l).ok()).flatten() {
            Some(k) => {
                route.insert(0, k);
                labels.pop();
            }
            None => break,
        }
    }
    let vhost = (!labels.is_empty()).then(|| labels.join("."));
    Ok(Some(Target {
        suffix,
        pk,
        route,
        vhost,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn key(i: u8) -> PubKey {
        let mut b = [0u8; 32];
        b[31] = i.max(1);
        skywire_cipher::SecKey::from_bytes(&b).unwrap().pub_key()
    }

    #[test]
    fn grammar() {
        let (a, b) = (key(1), key(2));
        assert_eq!(parse_host("example.com").unwrap(), None);
        assert_eq!(parse_host("127.0.0.1").unwrap(), None);
        let t = parse_host(&format!("{a}.dmsg")).unwrap().unwrap();
        assert_eq!((t.suffix, t.pk, t.vhost), (Suffix::Dmsg, a, None));
        let t = parse_host(&format!("www.shop.{b}.{a}.SKYNET."))
            .unwrap()
            .unwrap();
        assert_eq!(t.suffix, Suffix::Skynet);
        assert_eq!(t.pk, a);
        assert_eq!(t.route, vec![b]);
        assert_eq!(t.vhost.as_deref(), Some("www.shop"));
        assert!(parse_host("dmsg").is_err());
        assert!(parse_host("foo.dmsg").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse_host(&s);
        }

        #[test]
        fn vhost_round_trip(v in "[a-z]{1,10}(\\.[a-z]{1,10}){0,3}", sk in 1u8..255) {
            let pk = key(sk);
            let t = parse_host(&format!("{v}.{pk}.dmsg")).unwrap().unwrap();
            prop_assert_eq!(t.pk, pk);
            prop_assert_eq!(t.vhost, Some(v));
        }
    }
}
