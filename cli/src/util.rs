//! Small pieces shared by the long-running commands: the tokio runtime, waiting for Ctrl-C or
//! SIGTERM, the reference discovery addresses, and Go-style listen addresses.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;

/// The public deployment's dmsg discovery (reference `dmsg.DiscAddr(false)`).
pub const DEFAULT_DISCOVERY: &str = "http://dmsgd.skywire.skycoin.com";
/// The test deployment's dmsg discovery (reference `dmsg.DiscAddr(true)`).
pub const TEST_DISCOVERY: &str = "http://dmsgd.skywire.dev";

/// Runs `fut` to completion on a new multi-threaded tokio runtime.
pub fn block_on<F: Future>(fut: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(fut))
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Parses a listen address in Go form (`:8081` = all interfaces, `host:port`).
pub fn listen_addr(text: &str, what: &str) -> anyhow::Result<SocketAddr> {
    skywire_disc::parse_listen_addr(text)
        .with_context(|| format!("invalid {what} {text:?} (expected host:port or :port)"))
}

/// `addr` with an unspecified IP replaced by loopback (what a local client can dial).
pub fn dialable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}
