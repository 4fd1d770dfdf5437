//! The HTTP CONNECT front of `skysocks-client --http` (sans-IO): finds the end of a request
//! head in a buffer and extracts the `CONNECT host:port` target. Only CONNECT is served (HTTPS
//! and any tunnelled protocol); plain absolute-URI proxy requests get 405 from the driver.

/// Longest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// `CONNECT host:port`, and the head's length in bytes.
    Connect {
        /// Host name or IP literal (brackets of IPv6 removed).
        host: String,
        /// Port.
        port: u16,
        /// Bytes of the head including the blank line.
        len: usize,
    },
    /// Any other method (the driver answers 405).
    Other {
        /// The method.
        method: String,
    },
}

/// Errors of [`parse_head`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Longer than [`MAX_HEAD`].
    #[error("HTTP request head longer than {MAX_HEAD} bytes")]
    TooLong,
    /// Malformed request line.
    #[error("malformed HTTP request line")]
    Malformed,
}

/// `Ok(None)` while the head is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(HeadError::TooLong)
        } else {
            Ok(None)
        };
    };
    let len = end + 4;
    if len > MAX_HEAD {
        return Err(HeadError::TooLong);
    }
    let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap_or(end);
    let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| HeadError::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Err(HeadError::Malformed);
    }
    if method != "CONNECT" {
        return Ok(Some(Head::Other {
            method: method.to_owned(),
        }));
    }
    let (host, port) = target.rsplit_once(':').ok_or(HeadError::Malformed)?;
    let port: u16 = port.parse().map_err(|_| HeadError::Malformed)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.len() > 255 {
        return Err(HeadError::Malformed);
    }
    Ok(Some(Head::Connect {
        host: host.to_owned(),
        port,
        len,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect() {
        let req = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nrest";
        assert_eq!(
            parse_head(req).unwrap(),
            Some(Head::Connect {
                host: "example.com".into(),
                port: 443,
                len: req.len() - 4
            })
        );
        assert_eq!(parse_head(b"CONNECT [::1]:80 HTTP/1.0\r\n").unwrap(), None);
        assert!(matches!(
            parse_head(b"CONNECT [::1]:80 HTTP/1.0\r\n\r\n").unwrap(),
            Some(Head::Connect { ref host, port: 80, .. }) if host == "::1"
        ));
        assert!(matches!(
            parse_head(b"GET http://x/ HTTP/1.1\r\n\r\n").unwrap(),
            Some(Head::Other { .. })
        ));
        assert!(parse_head(b"CONNECT x HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_head(&buf);
        }

        #[test]
        fn round_trip(host in "[a-z0-9.-]{1,60}", port in any::<u16>(), extra in "[A-Za-z-]{1,10}: [ -~]{0,30}") {
            let head = format!("CONNECT {host}:{port} HTTP/1.1\r\n{extra}\r\n\r\n");
            prop_assert_eq!(
                parse_head(head.as_bytes()).unwrap(),
                Some(Head::Connect { host, port, len: head.len() })
            );
        }
    }
}
