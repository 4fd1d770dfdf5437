//! skywire-app: the SDK for custom skywire apps, and the local app protocol it speaks with the
//! visor's app server (`PROTOCOL.md` in this crate).
//!
//! A visor launches a custom app as a child process with `PROC_CONFIG` in its environment. The
//! app connects back to the visor's app server on loopback with its proc key, and then dials and
//! listens on the visor's networks (`dmsg` today; `skynet` once the router exists). Each conn is
//! its own local TCP connection that the visor pipes straight to the remote stream, so reading
//! and writing cost no RPC.
//!
//! Modules:
//! * [`proto`]: message types and the sans-IO frame codec (shared with the visor).
//! * [`frame_io`]: read/write one frame on a tokio stream.
//! * [`config`]: `PROC_CONFIG` and the legacy environment variables.
//! * [`client`]: [`Client`], [`AppConn`], [`AppListener`].
//!
//! # Example
//!
//! An echo app on its routing port:
//!
//! ```no_run
//! use skywire_app::{Client, Net};
//! use tokio::io::copy;
//!
//! # async fn run() -> Result<(), skywire_app::AppError> {
//! let client = Client::from_env().await?;
//! let listener = client.listen(Net::Dmsg, client.routing_port()).await?;
//! client.set_detailed_status("Running").await?;
//! loop {
//!     let (conn, remote) = listener.accept().await?;
//!     println!("conn from {remote}");
//!     tokio::spawn(async move {
//!         let (mut r, mut w) = tokio::io::split(conn);
//!         let _ = copy(&mut r, &mut w).await;
//!     });
//! }
//! # }
//! ```
//!
//! And the other side, on another visor:
//!
//! ```no_run
//! # use skywire_app::{Client, Net};
//! # use tokio::io::AsyncWriteExt;
//! # async fn run(server: skywire_cipher::PubKey) -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env().await?;
//! let mut conn = client.dial(Net::Dmsg, server, 45).await?;
//! conn.write_all(b"hi\n").await?;
//! # Ok(()) }
//! ```

pub mod client;
pub mod config;
pub mod frame_io;
pub mod proto;

pub use client::{AppConn, AppError, AppListener, Client};
pub use config::{ConfigError, ProcConfig};
pub use proto::{Addr, Net, ProcKey};
