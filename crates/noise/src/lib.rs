//! Skywire's Noise layer: the XK/KK handshakes over secp256k1 and the explicit-nonce transport
//! framing used by dmsg (`shared/spec/dmsg-wire.md`, sections 1.3, 2, 3 and 4.4).
//!
//! # Why `snow` needs a custom resolver and a name override
//!
//! Skywire runs Noise with a non-standard DH: secp256k1 with 33-byte compressed keys and a
//! 33-byte DH output (`SHA-256(compressed shared point) || 0x00`). `snow` 0.10's `DHChoice`
//! is a closed enum (25519, 448, P256), so the protocol name `Noise_XK_Secp256k1_ChaChaPoly_SHA256`
//! cannot be parsed. We parse the `25519` variant of the name, overwrite `params.name` with the
//! Skywire name (that string is what gets hashed into `h`), and install a [`CryptoResolver`]
//! ([`dh::SkywireResolver`]) that hands out our [`dh::Secp256k1Dh`] for *any* DH choice. Hashing,
//! ChaCha20-Poly1305 and the RNG come from snow's default resolver.
//!
//! # Why the frame layer is ours
//!
//! After the handshake Skywire does not use Noise's standard transport messages. Every frame
//! carries its own explicit 8-byte big-endian nonce (`BE16(L) || BE64(nonce) || ct || tag`), the
//! AEAD nonce is `00000000 || LE64(nonce)`, the nonce starts at 1, gaps are allowed but the nonce
//! must strictly increase on stream data, and session objects skip the ordering check entirely.
//! Also the two `Split()` keys are assigned by *who wrote the last handshake message* rather than
//! by role (2.3). So the handshake ends with the raw split keys and [`transport`] drives
//! ChaCha20-Poly1305 itself, in place, without per-frame allocations (backend: `ring`, about 3x
//! the pure-Rust crate here; see the private `aead` module).
//!
//! # Layout
//!
//! * [`dh`]: the secp256k1 `Dh` implementation and the resolver.
//! * [`handshake`]: sans-IO [`Handshake`] (XK and KK, both roles) ending in a [`Transport`].
//! * [`transport`]: per-direction frame encryption/decryption and the session-object variant.
//! * [`frame`]: sans-IO [`FrameDecoder`] that splits a byte stream into frames.
//! * [`stream`]: [`NoiseStream`], a tokio `AsyncRead + AsyncWrite` over any byte stream, with the
//!   framed handshake drivers of 2.5.
//! * [`error`]: error types.
//!
//! [`CryptoResolver`]: snow::resolvers::CryptoResolver

mod aead;
pub mod dh;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod stream;
pub mod transport;

use std::time::Duration;

pub use error::{FrameError, NoiseError};
pub use frame::FrameDecoder;
pub use handshake::{Handshake, HandshakeBuilder, Pattern, Role};
pub use stream::NoiseStream;
pub use transport::{Transport, TransportReceiver, TransportSender};

/// Size of the big-endian length prefix in front of every frame and handshake message.
pub const LEN_PREFIX: usize = 2;
/// Explicit nonce bytes at the start of every frame body.
pub const NONCE_LEN: usize = 8;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Per-frame overhead after the length prefix (nonce + tag).
pub const FRAME_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Largest frame on the wire, including the 2-byte prefix.
pub const MAX_WIRE_FRAME: usize = 4096;
/// Largest accepted length prefix `L` for stream frames (`maxPrefixValue`).
pub const MAX_FRAME_LEN: usize = MAX_WIRE_FRAME - LEN_PREFIX;
/// Smallest meaningful length prefix (an empty plaintext).
pub const MIN_FRAME_LEN: usize = FRAME_OVERHEAD;
/// Largest plaintext carried by one stream frame (`MaxWriteSize`); writes are split at this size.
pub const MAX_PLAINTEXT_PER_FRAME: usize = MAX_FRAME_LEN - FRAME_OVERHEAD;
/// Largest session-object length prefix (only bounded by the 16-bit prefix, 4.4).
pub const MAX_OBJECT_FRAME_LEN: usize = u16::MAX as usize;
/// Largest plaintext of one session object.
pub const MAX_OBJECT_PLAINTEXT: usize = MAX_OBJECT_FRAME_LEN - FRAME_OVERHEAD;
/// Largest handshake message accepted from the wire (2.5).
pub const MAX_HANDSHAKE_MSG_LEN: usize = MAX_FRAME_LEN;
/// Default timeout of the framed handshake drivers (dmsg session handshake, 2.5).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Noise protocol name of the dmsg session handshake.
pub const XK_PROTOCOL_NAME: &str = "Noise_XK_Secp256k1_ChaChaPoly_SHA256";
/// Noise protocol name of the end-to-end stream handshake.
pub const KK_PROTOCOL_NAME: &str = "Noise_KK_Secp256k1_ChaChaPoly_SHA256";
