//! Buffered `pty.Exec` (pty.md 6.1): runs one command without a pty in its own process group,
//! feeds `Stdin`, captures stdout and stderr separately up to [`types::EXEC_OUTPUT_CAP`] each,
//! and enforces the timeout (default 30 s, at most 5 min). On expiry the whole process group is
//! SIGKILLed (stricter than Go, which kills only the direct child) and the child reaped; the
//! result is `TimedOut`, `ExitCode` −1, RPC success.
//!
//! Deviation: the child gets a new process group (`setpgid`), not a new session (`setsid`),
//! because the workspace forbids the `unsafe` `pre_exec` hook needed for `setsid`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;

use crate::gateway::{env_overrides, spawn_error_text};
use crate::types::{self, CommandExecReq, CommandExecResult};

/// How long to wait for a killed child to be reaped before giving up on it (tokio's orphan
/// reaper then collects it).
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Runs `req` to completion or timeout. `Err` carries the RPC error text (validation failures);
/// everything about the command itself is in the result.
pub async fn run(req: &CommandExecReq) -> Result<CommandExecResult, String> {
    types::validate_exec(req)?;
    run_with_timeout(req, types::exec_timeout(req.timeout_ms)).await
}

/// [`run`] with an explicit timeout (no clamping), for callers with their own policy.
pub async fn run_with_timeout(
    req: &CommandExecReq,
    timeout: Duration,
) -> Result<CommandExecResult, String> {
    types::validate_exec(req)?;
    let mut cmd = tokio::process::Command::new(&req.name);
    cmd.args(&req.arg)
        .stdin(if req.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in env_overrides(&req.env) {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let text = spawn_error_text(&req.name, &e);
            tracing::debug!(name = %req.name, error = %text, "exec: spawn failed");
            return Ok(CommandExecResult {
                stderr: types::exec_spawn_error_note(&req.name, &text).into_bytes(),
                exit_code: -1,
                ..CommandExecResult::default()
            });
        }
    };
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    let mut res = CommandExecResult::default();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdin = child.stdin.take();
    let outcome = {
        let work = async {
            let (out_trunc, err_trunc, ()) = tokio::join!(
                pump(stdout, &mut res.stdout),
                pump(stderr, &mut res.stderr),
                feed(stdin, &req.stdin),
            );
            res.stdout_truncated = out_trunc;
            res.stderr_truncated = err_trunc;
            child.wait().await
        };
        tokio::time::timeout(timeout, work).await
    };
    match outcome {
        Ok(Ok(status)) => {
            res.exit_code = status.code().map_or(-1, i64::from);
        }
        Ok(Err(e)) => {
            tracing::warn!(name = %req.name, error = %e, "exec: waiting for child");
            res.exit_code = -1;
        }
        Err(_) => {
            res.timed_out = true;
            res.exit_code = -1;
            kill_group(pgid);
            // Also the direct child, in case it left the group.
            let _ = child.start_kill();
            if tokio::time::timeout(REAP_WAIT, child.wait()).await.is_err() {
                tracing::warn!(name = %req.name, "exec: killed child not reaped in time");
            }
        }
    }
    res.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    Ok(res)
}

/// Reads `src` to EOF into `buf` up to the cap; returns whether bytes were dropped.
async fn pump<R: AsyncRead + Unpin>(src: Option<R>, buf: &mut Vec<u8>) -> bool {
    let Some(mut src) = src else { return false };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        match src.read(&mut chunk).await {
            Ok(0) | Err(_) => return truncated,
            Ok(n) => truncated |= types::capture_capped(buf, &chunk[..n]),
        }
    }
}

/// Writes `data` to the child's stdin and closes it (a child that exits early is not an error).
async fn feed(stdin: Option<ChildStdin>, data: &[u8]) {
    if let Some(mut w) = stdin {
        let _ = w.write_all(data).await;
        let _ = w.shutdown().await;
    }
}

fn kill_group(pgid: Option<Pid>) {
    if let Some(pgid) = pgid {
        match killpg(pgid, Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => tracing::warn!(%pgid, error = %e, "exec: killpg failed"),
        }
    }
}
