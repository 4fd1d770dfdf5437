//! The dmsgpty protocol core (`shared/spec/pty.md`): everything a pty host or client speaks on a
//! stream, without the host's process management.
//!
//! A stream (dmsg, noise-XK TCP, skynet or the local control socket) starts with a one-byte-length
//! URI request answered by one status byte ([`uri`]); on `dmsgpty/pty`, `dmsgpty/whitelist` and
//! `dmsgpty/proxy` it then carries Go's `net/rpc` with the gob codec ([`rpc`]) whose argument and
//! reply types are in [`types`]. [`whitelist`] holds the authorization list and its persistence in
//! the standalone host's config file, [`config`] the standalone host config and the visor's `pty`
//! section.
//!
//! Layout follows the workspace rule: sans-IO cores ([`uri::encode_request`],
//! [`rpc::RpcClientCodec`], [`rpc::RpcServerCodec`], the pure functions of [`types`]) plus thin
//! tokio drivers ([`uri::request_uri`], [`rpc::RpcClient`], [`rpc::RpcServer`]).
//!
//! The host itself: [`gateway`] (the per-stream `pty` service on a real pty), [`exec`] (buffered
//! `pty.Exec`) and [`host`] ([`PtyHost`]: whitelist gate, request mux, RPC sessions, and the dmsg,
//! noise-XK TCP and unix control-socket listeners).
//!
//! The client: [`client`] ([`PtyClient`]: connect over TCP, dmsg or the control socket; buffered
//! exec and the interactive session calls). [`web`]: xterm.js assets and the WebSocket bridge.

pub mod client;
pub mod config;
pub mod exec;
pub mod gateway;
pub mod host;
pub mod rpc;
pub mod types;
pub mod uri;
pub mod web;
pub mod whitelist;

pub use client::{ClientError, PtyClient, Target, open_stream, request_on};
pub use config::{ConfigError, HostConfig, VisorPtyConfig};
pub use gateway::{PtyGateway, pty_router};
pub use host::{
    BoxedStream, Carrier, HostError, HostHandle, PtyHost, PtyHostConfig, RawStream, SftpService,
    WhitelistStore,
};
pub use rpc::{
    Router, RpcClient, RpcClientCodec, RpcError, RpcServer, RpcServerCodec, ServiceError,
};
pub use uri::{Endpoint, Status, UriError};
pub use whitelist::{Whitelist, WhitelistError, WhitelistFile};
