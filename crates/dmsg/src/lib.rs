//! dmsg: Skywire's relay network. A client holds noise-XK sessions to relay servers, multiplexes
//! streams over them with a hashicorp-compatible yamux, and dials `(public key, port)` through a
//! server both ends share; the stream then carries an end-to-end noise-KK channel.
//!
//! Modules:
//! * [`addr`]: `(pk, port)` addresses.
//! * [`objects`]: the signed gob dial objects (`StreamRequest`, `StreamResponse`).
//! * [`error`]: the reference's numbered errors and the library error type.
//! * [`client`]: sessions to servers, registration, `dial` and `listen`.
//! * [`server`]: the relay server.
//! * [`stream`]: end-to-end streams and listeners; [`porter`]: local ports.
//! * [`disc`]: discovery entries (signed JSON, exact reference serialisation) and the HTTP
//!   client for the discovery API.
//! * [`mux`]: yamux v0.1.1 wire-compatible stream multiplexer (sans-IO core + tokio driver).
//! * [`http`]: dmsghttp, HTTP/1.1 on dmsg streams (serve a tower service, send requests).
//! * [`server_http`]: the relay server's `/health` and `/metrics` endpoint.

pub mod addr;
pub mod client;
pub mod disc;
pub mod error;
pub mod http;
pub mod mux;
pub mod objects;
pub mod porter;
pub mod server;
pub mod server_http;
mod session;
pub mod stream;

pub use addr::{Addr, AddrParseError};
pub use client::{Client, ClientConfig};
pub use error::{DmsgError, ErrorCode};
pub use http::{DmsgUrl, HttpError};
pub use objects::{Sha256, SignedRequest, SignedResponse, StreamRequest, StreamResponse};
pub use server::{ServerConfig, ServerHandle, ServerStats};
pub use server_http::{HealthInfo, serve_health};
pub use stream::{DmsgStream, Listener};
