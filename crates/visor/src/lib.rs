//! skywire-visor: the daemon people install. It holds the identity, keeps the dmsg client up, hosts the
//! pty (with the sftp channel), runs the resolving proxy, the skynet forwarding service and the configured
//! apps, and is driven by `skywire cli` over the control API and by hypervisors over dmsg.
//!
//! Module ownership:
//! - [`config`]: `skywire-config.json` (the reference's key names), generation and validation.
//! - [`apps`]: the apps manager (built-in apps as tasks, custom apps as child processes, restarts).
//! - [`appserver`] / [`proc`]: the local app protocol server and child-process launcher for custom apps.
//! - [`transport`]: stcp (direct noise-TCP) and dmsg transports with the skywire handshake and settlement.
//! - [`skynet`]: the built-in port-forwarding service (dmsg port 57) and forwarding clients.
//! - [`control`]: the JSON-over-HTTP control API served on `cli_addr` (and to hypervisors over dmsg).
//! - [`hypervisor`]: the hypervisor web UI and the links of the visors it manages.
//! - [`visor`]: wiring: start everything from a config, graceful shutdown.

pub mod apps;
pub mod appserver;
pub mod config;
pub mod control;
pub mod hypervisor;
pub mod proc;
pub mod skynet;
pub mod transport;
pub mod visor;

pub use config::{GenOptions, VisorConfig};
pub use control::{ControlAddr, ControlClient};
pub use visor::{Visor, VisorError, VisorInfo};

/// dmsg port a visor dials its hypervisors on (spec apps.md §1.4).
pub const HYPERVISOR_DMSG_PORT: u16 = 46;
