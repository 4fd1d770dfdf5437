//! Error types of the noise layer: [`FrameError`] for the transport framing (small, `Copy`, so a
//! poisoned reader can return the same error forever) and [`NoiseError`] for everything else.

use std::io;
use std::time::Duration;

/// A transport-phase failure. Reading errors are permanent: once a receiver or decoder returned
/// one, it returns the same error on every later call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is larger than the limit of this framing.
    #[error("frame length prefix {len} exceeds the maximum of {max}")]
    TooLong {
        /// Received length prefix.
        len: usize,
        /// Maximum allowed.
        max: usize,
    },
    /// The length prefix cannot even hold the nonce and the tag.
    #[error("frame length prefix {len} is below the minimum of {min}", min = crate::MIN_FRAME_LEN)]
    TooShort {
        /// Received length prefix.
        len: usize,
    },
    /// The explicit nonce did not increase.
    #[error("stale or replayed nonce {nonce} (last accepted {last})")]
    StaleNonce {
        /// Received nonce.
        nonce: u64,
        /// Last accepted nonce.
        last: u64,
    },
    /// Authentication failed (wrong key, tampered bytes, wrong nonce).
    #[error("frame failed authentication")]
    Decrypt,
    /// The plaintext does not fit into one frame of this framing.
    #[error("plaintext of {len} bytes exceeds the maximum of {max}")]
    PlaintextTooLong {
        /// Offered plaintext length.
        len: usize,
        /// Maximum per frame.
        max: usize,
    },
    /// The 64-bit send counter is exhausted.
    #[error("send nonce counter exhausted")]
    NonceExhausted,
    /// The AEAD refused to encrypt (cannot happen for frame-sized inputs).
    #[error("encryption failed")]
    Encrypt,
    /// The AEAD backend refused a key (cannot happen for 32-byte keys).
    #[error("invalid transport key")]
    Key,
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Errors of handshakes, key handling and the stream drivers.
#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    /// The Noise state machine rejected a message or an operation (includes DH failures on
    /// malformed peer keys and authentication failures).
    #[error("noise handshake: {0}")]
    Snow(#[from] snow::Error),
    /// A key could not be used.
    #[error("invalid key: {0}")]
    Key(#[from] skywire_cipher::CipherError),
    /// A handshake operation failed earlier; the handshake cannot continue.
    #[error("handshake already failed")]
    HandshakeFailed,
    /// `into_transport` was called before the last handshake message.
    #[error("handshake not finished")]
    HandshakeIncomplete,
    /// A handshake message (or the payload to put in one) is longer than allowed.
    #[error("handshake message of {len} bytes exceeds the maximum of {max}")]
    HandshakeMessageTooLong {
        /// Offending length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// The peer's static key is missing or invalid after the handshake.
    #[error("remote static key missing or invalid")]
    RemoteStatic,
    /// Transport framing failure.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// I/O failure of the underlying connection.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The framed handshake did not finish in time; the connection was dropped.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
}

impl From<NoiseError> for io::Error {
    fn from(e: NoiseError) -> Self {
        match e {
            NoiseError::Io(e) => e,
            NoiseError::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
