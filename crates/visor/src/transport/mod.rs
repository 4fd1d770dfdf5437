//! Transports (apps.md 6.1–6.3, 6.5, 6.9): stcp (direct TCP with the skywire handshake and
//! noise KK) and dmsg transports, settled with signed entries, carrying routing packets.
//!
//! * [`handshake`]: sans-IO skywire transport handshake (Frame0–3, exact signing bytes).
//! * [`entry`]: transport ID, entry, signed entry (settlement message) and response codes.
//! * [`packet`]: routing packets (all 7 types of 2024; newer types carried opaquely).
//! * [`kk`]: the noise KK wrapper over a carrier (reuses `skywire-noise`).
//! * [`manager`]: the tokio [`TransportManager`] (dial, accept, list, remove, persistent).

pub mod entry;
pub mod handshake;
pub mod kk;
pub mod manager;
pub mod packet;

#[cfg(test)]
mod vectors;

pub use entry::{Entry, SettlementError, SettlementResponse, SignedEntry, transport_id};
pub use handshake::HandshakeError;
pub use manager::{DMSG, STCP, TransportConfig, TransportLog, TransportManager, TransportSummary};
pub use packet::{Packet, PacketBody, PacketError};

use skywire_cipher::PubKey;

/// Failures of the transport manager (dialling, accepting, listing, removing).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A type other than `stcp`, or `dmsg` without a dmsg client.
    #[error("transport type {0:?} is not available (have stcp, and dmsg with a dmsg client)")]
    UnknownType(String),
    /// stcp to a key that has no address in `pk_table`.
    #[error("no stcp address for {0}: the key is not in the pk_table")]
    NotInPkTable(PubKey),
    /// A transport to ourselves.
    #[error("cannot create a transport to our own key")]
    SelfTransport,
    /// TCP connect failed.
    #[error("cannot connect to {addr}")]
    Dial {
        /// The address dialled.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stcp listener could not be bound.
    #[error("cannot listen for stcp transports on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The skywire transport handshake failed.
    #[error("transport handshake failed")]
    Handshake(#[from] HandshakeError),
    /// Noise KK failed (for example: the peer does not hold the expected key).
    #[error("transport noise handshake failed (wrong key on the other end?)")]
    Noise(#[source] skywire_noise::NoiseError),
    /// The settlement failed.
    #[error("transport settlement failed")]
    Settlement(#[from] SettlementError),
    /// A dmsg dial or listen failed.
    #[error("dmsg transport")]
    Dmsg(#[source] skywire_dmsg::DmsgError),
    /// A packet could not be encoded.
    #[error("routing packet")]
    Packet(#[source] PacketError),
    /// I/O on the carrier.
    #[error("transport i/o")]
    Io(#[source] std::io::Error),
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// No transport with this ID.
    #[error("no transport with id {0}")]
    NotFound(uuid::Uuid),
    /// Another carrier of the same transport is kept.
    #[error("the transport already exists")]
    AlreadyExists,
    /// The manager is closed.
    #[error("the transport manager is closed")]
    Closed,
}
