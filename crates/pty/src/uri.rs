//! The host request mux (pty.md section 2): the one-byte-length URI request a client sends first
//! on every stream, the one-byte status the host answers, the endpoint table and the host's
//! routing decision, plus async helpers that run the exchange on any tokio byte stream.
//!
//! Wire format: request = `[N u8][N bytes of URI]` (N ≤ 255, no terminator), response = one byte,
//! `0x00` accepted, anything else rejected (the host always sends `0x01`). The host strips one
//! leading `/`, parses the rest as a URL and compares the escaped path exactly with the registered
//! endpoints; the query string matters only to `dmsgpty/proxy`.

use skywire_cipher::PubKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest URI a request can carry (its length travels in one byte).
pub const MAX_URI_LEN: usize = 255;
/// Interactive pty service (`net/rpc` service `pty`).
pub const PTY_URI: &str = "dmsgpty/pty";
/// Whitelist management (`net/rpc` service `whitelist`, control socket only).
pub const WHITELIST_URI: &str = "dmsgpty/whitelist";
/// Proxied pty service (`dmsgpty/proxy?pk=<66 hex>&port=<decimal>`, control socket only).
pub const PROXY_URI: &str = "dmsgpty/proxy";
/// Raw SFTP v3 subsystem (G3, remote carriers only).
pub const SFTP_URI: &str = "dmsgpty/sftp";
/// The Go client's error text for a non-zero status byte.
pub const REJECTED_TEXT: &str = "request rejected by remote dmsgpty-host";

/// The host's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `0x00`: the subsystem protocol starts with the next byte.
    Accepted,
    /// Any non-zero byte (hosts send `0x01`); the host closes the stream.
    Rejected(u8),
}

impl Status {
    /// The byte a host sends to reject.
    pub const REJECT_BYTE: u8 = 0x01;
    /// The status a host sends to reject (`0x01`).
    pub const REJECT: Status = Status::Rejected(Status::REJECT_BYTE);

    /// Interprets a received status byte.
    pub fn from_byte(b: u8) -> Status {
        if b == 0 {
            Status::Accepted
        } else {
            Status::Rejected(b)
        }
    }

    /// The byte to send. `Rejected(0)` is not representable and is sent as `0x01`.
    pub fn to_byte(self) -> u8 {
        match self {
            Status::Accepted => 0,
            Status::Rejected(0) => Status::REJECT_BYTE,
            Status::Rejected(b) => b,
        }
    }
}

/// Everything that can go wrong in the request/response exchange.
#[derive(Debug, thiserror::Error)]
pub enum UriError {
    /// The URI does not fit the one-byte length.
    #[error("dmsgpty request URI is {0} bytes, longer than {MAX_URI_LEN}")]
    TooLong(usize),
    /// The request bytes are not UTF-8 (Go would fail to parse such a URL too).
    #[error("dmsgpty request URI is not valid UTF-8")]
    InvalidUtf8,
    /// The URI cannot be parsed as a URL; the host answers with a reject byte.
    #[error("dmsgpty request URI {uri:?} is malformed: {reason}")]
    Malformed {
        /// The URI as received.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URI names no endpoint served on this carrier; the host answers with a reject byte.
    #[error("no dmsgpty endpoint for path {0:?}")]
    NoEndpoint(String),
    /// The proxy endpoint's query is unusable; the host closes without a status byte.
    #[error("invalid dmsgpty proxy request: {0}")]
    InvalidProxyQuery(String),
    /// The host answered with a non-zero status byte.
    #[error("request rejected by remote dmsgpty-host (status {0:#04x})")]
    Rejected(u8),
    /// The host closed the stream without answering (TCP whitelist rejection, proxy set-up
    /// failure).
    #[error("dmsgpty host closed the stream without answering the request")]
    ClosedWithoutResponse,
    /// The underlying stream failed.
    #[error("dmsgpty request I/O")]
    Io(#[from] std::io::Error),
}

/// Encodes a request: the length byte followed by the URI.
pub fn encode_request(uri: &str) -> Result<Vec<u8>, UriError> {
    let len = u8::try_from(uri.len()).map_err(|_| UriError::TooLong(uri.len()))?;
    let mut out = Vec::with_capacity(1 + uri.len());
    out.push(len);
    out.extend_from_slice(uri.as_bytes());
    Ok(out)
}

/// Decodes a request from the start of `buf`: `Ok(None)` until all `1 + N` bytes are present,
/// then the URI and the number of bytes it took.
pub fn decode_request(buf: &[u8]) -> Result<Option<(String, usize)>, UriError> {
    let Some((&n, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let n = usize::from(n);
    let Some(raw) = rest.get(..n) else {
        return Ok(None);
    };
    let uri = std::str::from_utf8(raw).map_err(|_| UriError::InvalidUtf8)?;
    Ok(Some((uri.to_owned(), 1 + n)))
}

/// The proxy request URI for a remote host `pk` on dmsg `port`.
pub fn proxy_uri(pk: &PubKey, port: u16) -> String {
    format!("{PROXY_URI}?pk={pk}&port={port}")
}

/// A request URI as the host sees it: one leading `/` stripped, split into the escaped path and
/// the raw query (fragment dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUri {
    /// The escaped path, compared literally with the endpoint table.
    pub path: String,
    /// The raw query string without `?` (empty when absent).
    pub query: String,
}

/// Parses a request URI the way the Go host does (`strings.TrimPrefix(uri, "/")` then
/// `url.Parse`): control characters and bad percent escapes in the path are errors.
///
/// A URI with a scheme or an authority parses in Go but yields a path that can never equal an
/// endpoint; this function returns such paths unchanged (they fail the endpoint match).
pub fn parse_uri(uri: &str) -> Result<ParsedUri, UriError> {
    let malformed = |reason| UriError::Malformed {
        uri: uri.to_owned(),
        reason,
    };
    let s = uri.strip_prefix('/').unwrap_or(uri);
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(malformed("invalid control character in URL"));
    }
    let s = s.split_once('#').map_or(s, |(before, _)| before);
    let (path, query) = s.split_once('?').unwrap_or((s, ""));
    if !valid_escapes(path) {
        return Err(malformed("invalid URL escape"));
    }
    Ok(ParsedUri {
        path: path.to_owned(),
        query: query.to_owned(),
    })
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The endpoints of the table in pty.md 2.3 (the exec-stream URI is unconfirmed and absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// `dmsgpty/pty`.
    Pty,
    /// `dmsgpty/whitelist`.
    Whitelist,
    /// `dmsgpty/proxy`.
    Proxy,
    /// `dmsgpty/sftp`.
    Sftp,
}

impl EndpointKind {
    /// The endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            EndpointKind::Pty => PTY_URI,
            EndpointKind::Whitelist => WHITELIST_URI,
            EndpointKind::Proxy => PROXY_URI,
            EndpointKind::Sftp => SFTP_URI,
        }
    }

    /// Whether the session protocol after `0x00` is `net/rpc` over gob.
    pub fn is_rpc(self) -> bool {
        !matches!(self, EndpointKind::Sftp)
    }
}

/// Endpoints served on the local control socket (no whitelist check there).
pub const CONTROL_ENDPOINTS: &[EndpointKind] = &[
    EndpointKind::Pty,
    EndpointKind::Whitelist,
    EndpointKind::Proxy,
];
/// Endpoints served on remote carriers (dmsg, noise-XK TCP, skynet), after the whitelist check.
pub const REMOTE_ENDPOINTS: &[EndpointKind] = &[EndpointKind::Pty, EndpointKind::Sftp];
/// Control-socket endpoints of a host that also serves sftp (`PtyHostConfig::sftp`).
pub const CONTROL_ENDPOINTS_SFTP: &[EndpointKind] = &[
    EndpointKind::Pty,
    EndpointKind::Whitelist,
    EndpointKind::Proxy,
    EndpointKind::Sftp,
];
/// Remote endpoints of a G1/G2 host (no sftp): what older peers serve.
pub const REMOTE_ENDPOINTS_G1: &[EndpointKind] = &[EndpointKind::Pty];

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Which endpoint matched.
    pub kind: EndpointKind,
    /// The raw query string (only the proxy handler reads it).
    pub query: String,
}

/// The host's routing decision for a received URI, among the endpoints `served` on this carrier.
///
/// `Err` means: answer [`Status::REJECT`] and close. `Ok` means: set the handler up, then answer
/// [`Status::Accepted`] (or close without a byte if set-up fails, e.g. a bad proxy query).
pub fn route(uri: &str, served: &[EndpointKind]) -> Result<Endpoint, UriError> {
    let parsed = parse_uri(uri)?;
    served
        .iter()
        .find(|k| k.path() == parsed.path)
        .map(|&kind| Endpoint {
            kind,
            query: parsed.query.clone(),
        })
        .ok_or(UriError::NoEndpoint(parsed.path))
}

/// Parses the proxy query (`pk=<66 hex>&port=<decimal>`) into the remote host and dmsg port.
/// Failure is a handler set-up failure: the host closes the stream without a status byte.
pub fn parse_proxy_query(query: &str) -> Result<(PubKey, u16), UriError> {
    let pk_text = query_get(query, "pk").unwrap_or_default();
    let pk = PubKey::from_hex(&pk_text)
        .map_err(|e| UriError::InvalidProxyQuery(format!("pk {pk_text:?}: {e}")))?;
    if pk.is_null() {
        return Err(UriError::InvalidProxyQuery("pk is the null key".into()));
    }
    let port_text = query_get(query, "port").unwrap_or_default();
    let port = scan_u16(&port_text)
        .ok_or_else(|| UriError::InvalidProxyQuery(format!("port {port_text:?}")))?;
    Ok((pk, port))
}

/// First value of `key` in a URL query (Go's `url.Values.Get` after `ParseQuery`: pairs with a
/// bad escape or a `;` are dropped, `+` is a space).
fn query_get(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((query_unescape(k)?, query_unescape(v)?))
        })
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `fmt.Sscan` of a decimal uint16: leading white space skipped, digits up to the first
/// non-digit, overflow is an error. (Go's base prefixes `0x`/`0o`/`0b`/leading-zero octal are
/// not accepted here.)
fn scan_u16(s: &str) -> Option<u16> {
    let s = s.trim_start();
    let digits: &str = &s[..s.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

/// Client side: sends `uri` in one write and waits for the status byte.
pub async fn request_uri<IO>(io: &mut IO, uri: &str) -> Result<(), UriError>
where
    IO: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let req = encode_request(uri)?;
    io.write_all(&req).await?;
    io.flush().await?;
    let mut b = [0u8; 1];
    match io.read_exact(&mut b).await {
        Ok(_) => match Status::from_byte(b[0]) {
            Status::Accepted => Ok(()),
            Status::Rejected(x) => Err(UriError::Rejected(x)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(UriError::ClosedWithoutResponse)
        }
        Err(e) => Err(e.into()),
    }
}

/// Host side: reads exactly one request (`1 + N` bytes, no read-ahead) and returns its URI.
pub async fn read_request<IO>(io: &mut IO) -> Result<String, UriError>
where
    IO: AsyncRead + Unpin + ?Sized,
{
    let n = io.read_u8().await?;
    let mut raw = vec![0u8; usize::from(n)];
    io.read_exact(&mut raw).await?;
    String::from_utf8(raw).map_err(|_| UriError::InvalidUtf8)
}

/// Host side: writes the status byte and flushes.
pub async fn write_response<IO>(io: &mut IO, status: Status) -> Result<(), UriError>
where
    IO: AsyncWrite + Unpin + ?Sized,
{
    io.write_all(&[status.to_byte()]).await?;
    io.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_round_trip_and_limits() {
        let b = encode_request(WHITELIST_URI).unwrap();
        assert_eq!(b[0], 17);
        assert_eq!(
            decode_request(&b).unwrap(),
            Some((WHITELIST_URI.into(), 18))
        );
        assert_eq!(decode_request(&b[..5]).unwrap(), None);
        assert_eq!(decode_request(&[]).unwrap(), None);
        assert_eq!(decode_request(&[0]).unwrap(), Some((String::new(), 1)));
        assert!(encode_request(&"a".repeat(255)).is_ok());
        assert!(matches!(
            encode_request(&"a".repeat(256)),
            Err(UriError::TooLong(256))
        ));
        assert!(matches!(
            decode_request(&[1, 0xff]),
            Err(UriError::InvalidUtf8)
        ));
    }

    #[test]
    fn routing() {
        let r = route("dmsgpty/pty", REMOTE_ENDPOINTS).unwrap();
        assert_eq!(r.kind, EndpointKind::Pty);
        assert_eq!(
            route("/dmsgpty/pty", REMOTE_ENDPOINTS).unwrap().kind,
            EndpointKind::Pty
        );
        assert!(route("//dmsgpty/pty", REMOTE_ENDPOINTS).is_err());
        assert!(route("dmsgpty/whitelist", REMOTE_ENDPOINTS).is_err());
        assert!(route("dmsgpty/whitelist", CONTROL_ENDPOINTS).is_ok());
        assert!(route("dmsgpty/sftp", CONTROL_ENDPOINTS).is_err());
        assert!(route("dmsgpty/nope", CONTROL_ENDPOINTS).is_err());
        assert!(route("dmsgpty/%70ty", REMOTE_ENDPOINTS).is_err());
        assert!(route("dmsgpty/%zz", REMOTE_ENDPOINTS).is_err());
        assert!(route("dmsgpty/pty\n", REMOTE_ENDPOINTS).is_err());
        assert_eq!(
            route("dmsgpty/pty?x=1#frag", REMOTE_ENDPOINTS)
                .unwrap()
                .query,
            "x=1"
        );
        let p = route("dmsgpty/proxy?pk=zz&port=22", CONTROL_ENDPOINTS).unwrap();
        assert_eq!(p.kind, EndpointKind::Proxy);
        assert!(parse_proxy_query(&p.query).is_err());
    }

    #[test]
    fn proxy_query() {
        let pk: PubKey = "02ba7f8b63268617e35637629bf2b7c6a9746f66d3e064a1f11f9ff9971e1b969c"
            .parse()
            .unwrap();
        let uri = proxy_uri(&pk, 22);
        let ep = route(&uri, CONTROL_ENDPOINTS).unwrap();
        assert_eq!(parse_proxy_query(&ep.query).unwrap(), (pk, 22));
        assert!(parse_proxy_query(&format!("pk={pk}&port=65536")).is_err());
        assert!(parse_proxy_query(&format!("pk={pk}")).is_err());
        assert!(parse_proxy_query("port=22").is_err());
        assert_eq!(
            parse_proxy_query(&format!("port=%2022x&pk={pk}&pk=zz"))
                .unwrap()
                .1,
            22
        );
    }

    #[test]
    fn status_bytes() {
        assert_eq!(Status::from_byte(0), Status::Accepted);
        assert_eq!(Status::from_byte(7), Status::Rejected(7));
        assert_eq!(Status::REJECT.to_byte(), 1);
        assert_eq!(Status::Rejected(0).to_byte(), 1);
    }
}
