//! The hypervisor: a visor with a `hypervisor` config section manages other visors through a web
//! UI. Managed visors (configured with this visor's key in `hypervisors`) dial it on the
//! hypervisor dmsg port (46) and serve their control API on that stream ([`remotes`]); the UI
//! and its JSON API are served on `http_addr` ([`api`]), behind a password login ([`auth`]).
//!
//! `enable_auth: false` is honoured only when `http_addr` is a loopback address; anything else
//! refuses to start (a web UI that opens shells must not be reachable without a password).

pub mod api;
pub mod auth;
pub mod remotes;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::HypervisorSection;
use crate::visor::{Visor, VisorError};

/// Starts the hypervisor of `visor` (dmsg listener, HTTP UI) as tasks of the visor.
pub async fn start(visor: &Arc<Visor>, cfg: HypervisorSection) -> Result<(), VisorError> {
    let addr = crate::apps::parse_listen(&cfg.http_addr)
        .map_err(|e| VisorError::Other(format!("hypervisor.http_addr: {e}")))?;
    let auth = if cfg.enable_auth {
        let a = auth::Auth::open(&PathBuf::from(&cfg.db_path))
            .map_err(|e| VisorError::Other(format!("hypervisor: {e}")))?;
        Some(Arc::new(a))
    } else if api::auth_may_be_off(addr.ip()) {
        tracing::warn!(%addr, "hypervisor UI without login (enable_auth: false, loopback only)");
        None
    } else {
        return Err(VisorError::Other(format!(
            "hypervisor: enable_auth is false but http_addr {addr} is not a loopback address; \
             refusing to serve shells without a login"
        )));
    };
    let listener = visor
        .dmsg()
        .listen(cfg.dmsg_port)
        .map_err(|e| VisorError::Dmsg(format!("hypervisor dmsg port {}: {e}", cfg.dmsg_port)))?;
    let http = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| VisorError::Bind {
            what: "hypervisor UI (http_addr)",
            addr: cfg.http_addr.clone(),
            source,
        })?;
    let bound = http.local_addr().unwrap_or(addr);

    let remotes = remotes::Remotes::new(visor.pk(), crate::control::router(visor.clone()));
    visor.spawn_task(remotes.clone().accept_loop(listener));
    let hv = Arc::new(api::Hv {
        visor: visor.clone(),
        remotes,
        auth,
    });
    let app = api::router(hv);
    visor.spawn_task(async move {
        if let Err(e) = axum::serve(http, app).await {
            tracing::error!(error = %e, "hypervisor UI stopped");
        }
    });
    visor.set_hypervisor_ui(bound);
    tracing::info!(
        "hypervisor UI on http://{bound}/ (managed visors on dmsg port {})",
        cfg.dmsg_port
    );
    Ok(())
}
