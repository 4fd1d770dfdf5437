//! dmsg discovery service (`skywire dmsg disc`): stores the signed entries of dmsg clients and
//! servers and answers the reference's HTTP API byte for byte (spec `dmsg-wire.md` section 5).
//!
//! * [`config`]: [`DiscConfig`] / [`StoreConfig`] with the reference defaults.
//! * [`store`]: the [`Store`] trait and its memory, redb (embedded default) and Redis backends.
//! * `api`: the axum router and handlers (validation order of 5.3, bodies of 5.4).
//! * [`server`]: [`serve`] and the [`DiscHandle`] that owns the running service.
//! * [`netaddr`]: Go-compatible `SplitHostPort` and the loopback check.
//! * [`timefmt`]: Go's RFC 3339 time text for `/health`.
//!
//! Entry types, signing and the HTTP client live in `skywire_dmsg::disc`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), skywire_disc::DiscServiceError> {
//! let config = skywire_disc::DiscConfig {
//!     listen: "127.0.0.1:0".parse().unwrap_or(skywire_disc::config::DEFAULT_LISTEN),
//!     store: skywire_disc::StoreConfig::Memory,
//!     ..Default::default()
//! };
//! let handle = skywire_disc::serve(config).await?;
//! println!("discovery at {}", handle.url());
//! handle.shutdown().await
//! # }
//! ```

mod api;
pub mod config;
pub mod netaddr;
pub mod server;
pub mod store;
pub mod timefmt;

pub use config::{BuildInfo, DiscConfig, StoreConfig, parse_listen_addr};
pub use server::{DiscHandle, DiscServiceError, serve, serve_on, serve_with_store};
pub use store::{MemoryStore, RedbStore, RedisStore, Store, StoreError};
