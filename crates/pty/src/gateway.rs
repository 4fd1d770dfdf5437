//! The `pty` RPC service of one stream (pty.md 3.2, 2.5): a [`PtyGateway`] owns at most one
//! interactive pty session (child process in its own session with the pty slave as controlling
//! terminal and stdio) and serves `Start`, `Stop`, `Read`, `Write` (ordered), `SetPtySize`,
//! `Ping` and the buffered `Exec` of [`crate::exec`] through [`pty_router`].
//!
//! One gateway per accepted stream. When the stream ends the host calls
//! [`PtyGateway::shutdown`]; dropping the gateway does the same without waiting: the child's
//! process group is SIGKILLed and a reaper task waits for the child, so no zombie remains.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pty_process::{OwnedReadPty, OwnedWritePty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex as AsyncMutex, watch};

use crate::exec;
use crate::rpc::{Router, ServiceError};
use crate::types::{self, CommandReq, WinSize, errors};

/// Go's `os.ErrClosed` text as a `Read` interrupted by `Stop` reports it.
pub const READ_CLOSED_TEXT: &str = "read /dev/ptmx: file already closed";

/// How long [`PtyGateway::shutdown`] and `Stop` wait for the killed child to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One running pty session: the master halves, the child's process group and its reaper.
struct Session {
    reader: AsyncMutex<OwnedReadPty>,
    writer: AsyncMutex<OwnedWritePty>,
    /// Process group id (= child pid: the child is a session leader).
    pgid: Pid,
    /// Flips to `true` on `Stop`: pending reads return [`READ_CLOSED_TEXT`].
    closed: watch::Sender<bool>,
    /// Becomes `true` once the child has been reaped.
    reaped: watch::Receiver<bool>,
    /// Set once a read saw EOF/EIO: every later read reports the end again.
    ended: Mutex<bool>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pgid", &self.pgid)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// SIGKILLs the process group (ESRCH = already gone) and marks the session closed.
    fn kill(&self) {
        self.closed.send_replace(true);
        if !*self.reaped.borrow() {
            match killpg(self.pgid, Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => tracing::warn!(pgid = %self.pgid, error = %e, "pty: killpg failed"),
            }
        }
    }

    /// Waits (bounded) until the reaper has collected the child.
    async fn wait_reaped(&self) {
        let mut rx = self.reaped.clone();
        if tokio::time::timeout(REAP_WAIT, rx.wait_for(|r| *r))
            .await
            .is_err()
        {
            tracing::warn!(pgid = %self.pgid, "pty: child not reaped in time");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The per-stream `pty` service state.
#[derive(Debug, Default)]
pub struct PtyGateway {
    session: Mutex<Option<Arc<Session>>>,
}

impl PtyGateway {
    /// A gateway without a session.
    pub fn new() -> Self {
        Self::default()
    }

    fn current(&self) -> Result<Arc<Session>, ServiceError> {
        lock(&self.session)
            .clone()
            .ok_or_else(|| ServiceError::new(errors::NO_ACTIVE_SESSION))
    }

    /// `pty.Start`: spawns `req.name` with `req.arg` on a new pty, host environment with
    /// `req.env` entries replacing same-named variables, optional initial size.
    pub fn start(&self, req: &CommandReq) -> Result<(), ServiceError> {
        let mut slot = lock(&self.session);
        if slot.is_some() {
            return Err(ServiceError::new(errors::ALREADY_RUNNING));
        }
        let (pty, pts) = pty_process::open().map_err(|e| pty_error("open pty", &e))?;
        if let Some(size) = req.size {
            pty.resize(to_size(size))
                .map_err(|e| pty_error("set size", &e))?;
        }
        let mut cmd = pty_process::Command::new(&req.name).args(&req.arg);
        for (k, v) in env_overrides(&req.env) {
            cmd = cmd.env(k, v);
        }
        let mut child = cmd
            .spawn(pts)
            .map_err(|e| ServiceError::new(spawn_error_text(&req.name, &e)))?;
        let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
            return Err(ServiceError::new("pty: child has no pid"));
        };
        let (reaped_tx, reaped_rx) = watch::channel(false);
        tokio::spawn(async move {
            match child.wait().await {
                Ok(status) => tracing::debug!(pid, %status, "pty: child exited"),
                Err(e) => tracing::warn!(pid, error = %e, "pty: waiting for child"),
            }
            reaped_tx.send_replace(true);
        });
        let (reader, writer) = pty.into_split();
        let (closed, _) = watch::channel(false);
        *slot = Some(Arc::new(Session {
            reader: AsyncMutex::new(reader),
            writer: AsyncMutex::new(writer),
            pgid: Pid::from_raw(pid),
            closed,
            reaped: reaped_rx,
            ended: Mutex::new(false),
        }));
        tracing::debug!(name = %req.name, pid, "pty: session started");
        Ok(())
    }

    /// `pty.Read`: blocks until output is available, returns at most `n` (capped) bytes; after the
    /// child side is closed, the error [`errors::PTMX_EIO`].
    pub async fn read(&self, n: i64) -> Result<Vec<u8>, ServiceError> {
        let n = types::read_size(n)?;
        let s = self.current()?;
        let mut closed = s.closed.subscribe();
        if *closed.borrow() {
            return Err(ServiceError::new(READ_CLOSED_TEXT));
        }
        if *lock(&s.ended) {
            return Err(ServiceError::new(errors::PTMX_EIO));
        }
        let mut reader = tokio::select! {
            r = s.reader.lock() => r,
            _ = closed.wait_for(|c| *c) => return Err(ServiceError::new(READ_CLOSED_TEXT)),
        };
        let mut buf = vec![0u8; n];
        let res = tokio::select! {
            r = reader.read(&mut buf) => r,
            _ = closed.wait_for(|c| *c) => return Err(ServiceError::new(READ_CLOSED_TEXT)),
        };
        match res {
            Ok(0) => Err(end_of_session(&s)),
            Ok(k) => {
                buf.truncate(k);
                Ok(buf)
            }
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EIO as i32) => {
                Err(end_of_session(&s))
            }
            Err(e) => Err(ServiceError::new(format!("read /dev/ptmx: {e}"))),
        }
    }

    /// `pty.Write`: writes all of `data` to the pty master; replies with the byte count.
    pub async fn write(&self, data: &[u8]) -> Result<i64, ServiceError> {
        let s = self.current()?;
        let mut w = s.writer.lock().await;
        w.write_all(data)
            .await
            .map_err(|e| ServiceError::new(format!("write /dev/ptmx: {e}")))?;
        w.flush()
            .await
            .map_err(|e| ServiceError::new(format!("write /dev/ptmx: {e}")))?;
        Ok(i64::try_from(data.len()).unwrap_or(i64::MAX))
    }

    /// `pty.SetPtySize`: TIOCSWINSZ with rows, cols, xpixel = `X`, ypixel = `Y`.
    pub async fn set_pty_size(&self, size: WinSize) -> Result<(), ServiceError> {
        let s = self.current()?;
        let w = s.writer.lock().await;
        w.resize(to_size(size))
            .map_err(|e| pty_error("set size", &e))
    }

    /// `pty.Stop`: ends the session (pending reads fail), SIGKILLs the child's process group and
    /// waits (bounded) until the child is reaped.
    pub async fn stop(&self) -> Result<(), ServiceError> {
        let s = lock(&self.session)
            .take()
            .ok_or_else(|| ServiceError::new(errors::NO_ACTIVE_SESSION))?;
        s.kill();
        s.wait_reaped().await;
        Ok(())
    }

    /// Ends any session (as `Stop`, without an error when there is none). Called by the host
    /// when the stream ends.
    pub async fn shutdown(&self) {
        let s = lock(&self.session).take();
        if let Some(s) = s {
            s.kill();
            s.wait_reaped().await;
        }
    }

    /// Whether a session is running on this stream.
    pub fn has_session(&self) -> bool {
        lock(&self.session).is_some()
    }

    /// The running session's process group id (= child pid), for diagnostics and tests.
    pub fn session_pid(&self) -> Option<i32> {
        lock(&self.session).as_ref().map(|s| s.pgid.as_raw())
    }
}

fn end_of_session(s: &Session) -> ServiceError {
    *lock(&s.ended) = true;
    ServiceError::new(errors::PTMX_EIO)
}

fn to_size(w: WinSize) -> pty_process::Size {
    pty_process::Size::new_with_pixel(w.rows, w.cols, w.x, w.y)
}

fn pty_error(what: &str, e: &pty_process::Error) -> ServiceError {
    ServiceError::new(format!("pty: {what}: {e}"))
}

/// `KEY=VALUE` entries as (key, value); entries without `=` are ignored.
pub(crate) fn env_overrides(env: &[String]) -> impl Iterator<Item = (&str, &str)> {
    env.iter().filter_map(|e| e.split_once('='))
}

/// The error text for a failed spawn, in Go's `os/exec` words where they are known.
pub(crate) fn spawn_error_text(name: &str, e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    if !name.contains('/') && text.contains("No such file or directory") {
        return format!("exec: \"{name}\": executable file not found in $PATH");
    }
    format!("fork/exec {name}: {text}")
}

/// The `pty` service method table over a per-stream [`PtyGateway`]: `Start`, `Stop`, `Read`,
/// `Write` (ordered), `SetPtySize`, `Exec`, `Ping`.
pub fn pty_router() -> Router<PtyGateway> {
    Router::new()
        .method::<types::Start, _, _>(
            |g: Arc<PtyGateway>, req: CommandReq| async move { g.start(&req) },
        )
        .method::<types::Stop, _, _>(|g: Arc<PtyGateway>, (): ()| async move { g.stop().await })
        .method::<types::Read, _, _>(|g: Arc<PtyGateway>, n: i64| async move { g.read(n).await })
        .method_ordered::<types::Write, _, _>(|g: Arc<PtyGateway>, data: Vec<u8>| async move {
            g.write(&data).await
        })
        .method::<types::SetPtySize, _, _>(|g: Arc<PtyGateway>, size: WinSize| async move {
            g.set_pty_size(size).await
        })
        .method::<types::Exec, _, _>(|_, req| async move {
            exec::run(&req).await.map_err(ServiceError::new)
        })
        .method::<types::Ping, _, _>(|_, (): ()| async move { Ok(()) })
}
