//! dmsg errors: the numbered error codes of the reference (`dmsg-wire.md` 4.7, text form
//! `dmsg error <code> - <message>`), which are also what a `StreamResponse.ErrCode` carries, and
//! the library's error type that wraps them with transport, gob and discovery causes.

use std::fmt;

/// The reference's numbered dmsg errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// 100
    EntryNotFound = 100,
    /// 101
    EntryNotServer = 101,
    /// 102
    EntryNotClient = 102,
    /// 103
    NoDelegatedServers = 103,
    /// 200
    EntityClosed = 200,
    /// 201
    SessionClosed = 201,
    /// 202
    CannotConnectToDelegated = 202,
    /// 203
    SessionHandshakeExtraBytes = 203,
    /// 300
    InvalidReqSignature = 300,
    /// 301
    InvalidTimestamp = 301,
    /// 302
    InvalidSrcPk = 302,
    /// 303
    InvalidDstPk = 303,
    /// 304
    InvalidSrcPort = 304,
    /// 305
    InvalidDstPort = 305,
    /// 306
    NoListener = 306,
    /// 307
    NoSessionToDst = 307,
    /// 350
    InvalidRespSignature = 350,
    /// 351
    RespHashMismatch = 351,
    /// 352
    RejectedWithoutReason = 352,
    /// 370
    SignedObjectTooShort = 370,
    /// 400
    PortOccupied = 400,
    /// 401
    AcceptQueueFull = 401,
}

impl ErrorCode {
    /// Maps a wire code to its error; unknown codes become 352 as in the reference.
    pub fn from_u16(code: u16) -> ErrorCode {
        use ErrorCode::*;
        match code {
            100 => EntryNotFound,
            101 => EntryNotServer,
            102 => EntryNotClient,
            103 => NoDelegatedServers,
            200 => EntityClosed,
            201 => SessionClosed,
            202 => CannotConnectToDelegated,
            203 => SessionHandshakeExtraBytes,
            300 => InvalidReqSignature,
            301 => InvalidTimestamp,
            302 => InvalidSrcPk,
            303 => InvalidDstPk,
            304 => InvalidSrcPort,
            305 => InvalidDstPort,
            306 => NoListener,
            307 => NoSessionToDst,
            350 => InvalidRespSignature,
            351 => RespHashMismatch,
            370 => SignedObjectTooShort,
            400 => PortOccupied,
            401 => AcceptQueueFull,
            _ => RejectedWithoutReason,
        }
    }

    /// Human text of the code.
    pub fn message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            EntryNotFound => "entry of public key is not found in discovery",
            EntryNotServer => "entry of public key is not of a server",
            EntryNotClient => "entry of public key is not of a client",
            NoDelegatedServers => "client entry has no delegated servers",
            EntityClosed => "local entity closed",
            SessionClosed => "local session closed",
            CannotConnectToDelegated => "failed to connect to delegated server",
            SessionHandshakeExtraBytes => "extra bytes received during session handshake",
            InvalidReqSignature => "request has invalid signature",
            InvalidTimestamp => "request timestamp should be higher than last",
            InvalidSrcPk => "request has invalid source public key",
            InvalidDstPk => "request has invalid destination public key",
            InvalidSrcPort => "request has invalid source port",
            InvalidDstPort => "request has invalid destination port",
            NoListener => "request has no associated listener",
            NoSessionToDst => "request has no associated session on the dmsg server",
            InvalidRespSignature => "response has invalid signature",
            RespHashMismatch => "response hash does not match request hash",
            RejectedWithoutReason => "response rejected without reason",
            SignedObjectTooShort => "signed object is too short",
            PortOccupied => "port already occupied",
            AcceptQueueFull => "accept buffer is full",
        }
    }

    /// Whether the reference marks the error temporary.
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorCode::NoListener | ErrorCode::AcceptQueueFull)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dmsg error {} - {}", *self as u16, self.message())
    }
}

/// Errors of the dmsg library.
#[derive(Debug, thiserror::Error)]
pub enum DmsgError {
    /// A numbered dmsg error (also what a peer may report in a response).
    #[error("{0}")]
    Code(ErrorCode),
    /// A gob encoding/decoding failure of a dial object.
    #[error("dial object: {0}")]
    Gob(#[source] skywire_gob::Error),
    /// A key or signature failure.
    #[error("cipher: {0}")]
    Cipher(#[source] skywire_cipher::CipherError),
    /// A noise handshake failure.
    #[error("noise handshake: {0}")]
    Noise(#[source] skywire_noise::NoiseError),
    /// A sealed object could not be opened or sealed.
    #[error("session object: {0}")]
    Frame(#[source] skywire_noise::FrameError),
    /// An I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TCP connect to a server failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A multiplexer failure.
    #[error("mux: {0}")]
    Mux(#[source] crate::mux::Error),
    /// A discovery request failed.
    #[error("discovery: {0}")]
    Discovery(#[source] crate::disc::DiscError),
    /// Something took longer than its deadline.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The peer is reachable only through servers this client may not use.
    #[error(
        "no common dmsg server with {remote}: it is reachable via {servers:?}, this client uses {ours:?}"
    )]
    NoCommonServer {
        /// The peer.
        remote: skywire_cipher::PubKey,
        /// The peer's delegated servers.
        servers: Vec<skywire_cipher::PubKey>,
        /// Our session servers.
        ours: Vec<skywire_cipher::PubKey>,
    },
    /// The dmsg server refused the dial (for example, no session to the destination).
    #[error("dmsg server {server} refused the stream: {code}")]
    ServerRejected {
        /// The server that refused.
        server: skywire_cipher::PubKey,
        /// Its reason.
        code: ErrorCode,
    },
    /// Every delegated server of the peer failed; the last error is kept.
    #[error("cannot reach {remote} through any of its {tried} dmsg server(s); last error: {last}")]
    AllServersFailed {
        /// The peer.
        remote: skywire_cipher::PubKey,
        /// How many servers were tried.
        tried: usize,
        /// The last failure.
        #[source]
        last: Box<DmsgError>,
    },
    /// The server or client was shut down.
    #[error("dmsg client or server is closed")]
    Closed,
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl DmsgError {
    /// Wraps a numbered error.
    pub fn code(c: ErrorCode) -> DmsgError {
        DmsgError::Code(c)
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: &'static str, source: std::io::Error) -> DmsgError {
        DmsgError::Io { context, source }
    }

    /// The numbered error, if this is one (directly or as a server's reason).
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            DmsgError::Code(c) | DmsgError::ServerRejected { code: c, .. } => Some(*c),
            DmsgError::AllServersFailed { last, .. } => last.error_code(),
            _ => None,
        }
    }
}
