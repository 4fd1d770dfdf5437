//! skywire-vpn: the VPN server and client of Skywire (apps.md 3) over dmsg streams, and the
//! privileged OS work they need (TUN devices, routes, NAT, sysctls, resolv.conf, kill switch),
//! which lives only in this crate.
//!
//! * [`proto`]: sans-IO hellos, address allocation and packet re-splitting.
//! * [`os`]: apply / verify / revert plans with a crash-safe journal.
//! * [`server`] / [`client`]: tokio drivers over `skywire_dmsg` streams.

pub mod client;
pub mod os;
pub mod proto;
pub mod server;
mod session;

pub use client::{ClientConfig, ClientHandle, ClientStatus, VpnClient};
pub use server::{ServerConfig, ServerHandle, VpnServer};
pub use session::Counters;

/// Errors of the VPN drivers.
#[derive(Debug, thiserror::Error)]
pub enum VpnError {
    /// An OS change failed.
    #[error("VPN OS setup")]
    Os(#[from] os::OsError),
    /// The peer violated the protocol.
    #[error("VPN protocol")]
    Proto(#[from] proto::ProtoError),
    /// Reading or writing the dmsg stream or the TUN device failed.
    #[error("VPN {what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// dmsg failed.
    #[error("dmsg")]
    Dmsg(#[from] skywire_dmsg::DmsgError),
    /// The server refused the client.
    #[error("VPN server refused the connection: {0}")]
    Refused(proto::Status),
    /// A step took too long.
    #[error("VPN {0} timed out")]
    Timeout(&'static str),
    /// The peer closed the stream during the handshake.
    #[error("VPN peer closed the stream during the handshake")]
    Closed,
}
