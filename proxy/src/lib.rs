//! SOCKS5 over skywire (skysocks), the `.dmsg`/`.skynet` resolving proxy and skynet port
//! forwards (apps.md 2, 4, 5).
//!
//! Modules:
//! * [`handshake`]: the skynet forwarding handshake (sans-IO codec + drivers, 2025/2026).
//! * [`hostname`]: the resolvers' `[vhost.]<pk>.dmsg|skynet` name grammar (sans-IO).
//! * [`http_connect`]: the HTTP CONNECT request head parser of the skysocks client (sans-IO).
//! * [`net`]: carriers (dmsg streams, direct noise-XK TCP), dialling by key, byte relay.
//! * [`skysocks`]: the skysocks server (yamux over the app connection, one SOCKS5 exchange
//!   per stream, fast-socks5) and client.
//! * [`skynet`]: the forwarding server (port list, key whitelist) and client.
//! * [`resolver`]: the resolving SOCKS5 proxy.

pub mod handshake;
pub mod hostname;
pub mod http_connect;
pub mod net;
pub mod resolver;
pub mod skynet;
pub mod skysocks;

pub use handshake::{ForwardReply, ForwardRequest, HandshakeError, Variant};
pub use net::{BoxStream, Dialer, Network, ProxyError};
pub use resolver::{ResolverConfig, serve_resolver};
pub use skynet::{ForwardServer, ForwardServerConfig, serve_forward_client};
pub use skysocks::{SkysocksConfig, serve_skysocks, serve_skysocks_client};
