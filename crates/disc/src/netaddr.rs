//! Go-compatible address checks of the discovery: `net.SplitHostPort` and the reference's
//! `isLoopbackAddr` (spec `dmsg-wire.md` 5.3). Only IP literals count as loopback; a host name
//! such as `localhost` passes, and an address that does not split into host and port slips
//! through, exactly as in the reference.

use std::net::IpAddr;

/// Why an address did not split (Go's `net.AddrError` texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// No `:port` part.
    #[error("missing port in address")]
    MissingPort,
    /// `[` without `]`.
    #[error("missing ']' in address")]
    MissingBracket,
    /// More than one colon outside brackets.
    #[error("too many colons in address")]
    TooManyColons,
    /// A stray `[`.
    #[error("unexpected '[' in address")]
    UnexpectedOpenBracket,
    /// A stray `]`.
    #[error("unexpected ']' in address")]
    UnexpectedCloseBracket,
}

/// Go's `net.SplitHostPort`: `host:port`, `[host]:port`; the host may be empty.
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), SplitError> {
    let i = hostport.rfind(':').ok_or(SplitError::MissingPort)?;
    let (host, j, k);
    if hostport.starts_with('[') {
        let end = hostport.find(']').ok_or(SplitError::MissingBracket)?;
        if end + 1 == hostport.len() {
            return Err(SplitError::MissingPort);
        } else if end + 1 != i {
            return Err(if hostport.as_bytes()[end + 1] == b':' {
                SplitError::TooManyColons
            } else {
                SplitError::MissingPort
            });
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return Err(SplitError::TooManyColons);
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') {
        return Err(SplitError::UnexpectedOpenBracket);
    }
    if hostport[k..].contains(']') {
        return Err(SplitError::UnexpectedCloseBracket);
    }
    Ok((host, &hostport[i + 1..]))
}

/// The reference's `isLoopbackAddr(addr)` verdict: true if the host part is empty or a
/// loopback IP literal (127/8, `::1`, IPv4-mapped 127/8). Unsplittable addresses are not
/// loopback.
pub fn is_loopback_addr(addr: &str) -> bool {
    let Ok((host, _)) = split_host_port(addr) else {
        return false;
    };
    if host.is_empty() {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_go() {
        assert_eq!(split_host_port("1.2.3.4:80"), Ok(("1.2.3.4", "80")));
        assert_eq!(split_host_port(":8081"), Ok(("", "8081")));
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1", "80")));
        assert_eq!(split_host_port("host:"), Ok(("host", "")));
        assert_eq!(split_host_port("host"), Err(SplitError::MissingPort));
        assert_eq!(split_host_port("::1:80"), Err(SplitError::TooManyColons));
        assert_eq!(split_host_port("[::1]"), Err(SplitError::MissingPort));
        assert_eq!(split_host_port("[::1]x:80"), Err(SplitError::MissingPort));
        assert_eq!(
            split_host_port("[::1]:80:1"),
            Err(SplitError::TooManyColons)
        );
        assert_eq!(split_host_port("[::1:80"), Err(SplitError::MissingBracket));
        assert_eq!(
            split_host_port("a]:80"),
            Err(SplitError::UnexpectedCloseBracket)
        );
        assert_eq!(
            split_host_port("a[:80"),
            Err(SplitError::UnexpectedOpenBracket)
        );
    }

    #[test]
    fn loopback_like_reference() {
        for a in [
            "127.0.0.1:8081",
            "127.9.9.9:1",
            ":8081",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback_addr(a), "{a}");
        }
        for a in [
            "localhost:8081",
            "203.0.113.7:8081",
            "[::2]:1",
            "127.0.0.1",
            "garbage",
            "",
        ] {
            assert!(!is_loopback_addr(a), "{a}");
        }
    }
}
