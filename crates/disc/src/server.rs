//! Running the service: [`serve`] binds, opens the store, starts the HTTP server and the
//! expired-server sweep, and returns a [`DiscHandle`] that owns them. Dropping the handle or
//! calling [`DiscHandle::shutdown`] stops both (graceful HTTP shutdown).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{ApiState, router};
use crate::config::DiscConfig;
use crate::store::{self, Store, StoreError};
use crate::timefmt::rfc3339_nano_utc;

/// Errors of starting and running the service.
#[derive(Debug, thiserror::Error)]
pub enum DiscServiceError {
    /// The listen address could not be bound.
    #[error("binding {addr} failed")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("opening the discovery store failed")]
    Store(#[from] StoreError),
    /// Accepting connections failed.
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
    /// The server task panicked.
    #[error("discovery server task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// A running discovery service.
#[derive(Debug)]
pub struct DiscHandle {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), DiscServiceError>>>,
}

/// Binds `config.listen`, opens `config.store` and starts serving.
pub async fn serve(config: DiscConfig) -> Result<DiscHandle, DiscServiceError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| DiscServiceError::Bind {
                addr: config.listen,
                source,
            })?;
    serve_on(listener, config).await
}

/// Serves on an already bound listener (e.g. socket activation); `config.listen` is ignored.
pub async fn serve_on(
    listener: TcpListener,
    config: DiscConfig,
) -> Result<DiscHandle, DiscServiceError> {
    let store = store::open(&config.store, config.store_timeout).await?;
    serve_with_store(listener, config, store).await
}

/// Serves with a caller-provided store; `config.listen` and `config.store` are ignored.
pub async fn serve_with_store(
    listener: TcpListener,
    config: DiscConfig,
    store: Arc<dyn Store>,
) -> Result<DiscHandle, DiscServiceError> {
    let addr = listener.local_addr().map_err(DiscServiceError::Serve)?;
    let sweep_interval = config.sweep_interval;
    let state = Arc::new(ApiState::new(
        store.clone(),
        config,
        rfc3339_nano_utc(SystemTime::now()),
    ));
    let state_alive = Arc::downgrade(&state);
    let app = router(state);
    let (tx, rx) = oneshot::channel::<()>();

    let sweep_store = store.clone();
    let sweep = tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(sweep_interval.max(std::time::Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sweep_store.remove_expired().await {
                tracing::error!(error = %e, "failed to remove expired server entries");
            }
        }
    });
    let task = tokio::spawn(async move {
        tracing::info!(%addr, "serving dmsg discovery API");
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped handle counts as a shutdown request.
                let _ = rx.await;
            })
            .await
            .map_err(DiscServiceError::Serve);
        sweep.abort();
        // Wait until the sweep task is gone so the store (e.g. the redb file lock) is released
        // when shutdown returns.
        let _ = sweep.await;
        // Connection tasks drop their clone of the API state (and with it the store) just after
        // they report closed; wait for that, bounded, so that the store is released (e.g. the
        // redb file lock) by the time shutdown returns.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while state_alive.strong_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tracing::info!(%addr, "dmsg discovery API stopped");
        r
    });
    Ok(DiscHandle {
        addr,
        store,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl DiscHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` for clients (an unspecified bind address becomes loopback).
    pub fn url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{a}")
    }

    /// The store the service uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), DiscServiceError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join().await
    }

    /// Runs until `signal` completes (then shuts down) or the server fails.
    pub async fn run_until<F: Future<Output = ()>>(
        mut self,
        signal: F,
    ) -> Result<(), DiscServiceError> {
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        tokio::select! {
            r = &mut task => return r.map_err(DiscServiceError::Task)?,
            () = signal => {}
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        task.await.map_err(DiscServiceError::Task)?
    }

    async fn join(&mut self) -> Result<(), DiscServiceError> {
        match self.task.take() {
            Some(t) => t.await.map_err(DiscServiceError::Task)?,
            None => Ok(()),
        }
    }
}

impl Drop for DiscHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
