//! The pty RPC vocabulary (pty.md 3.2-3.4, 6.1, 6.2): argument and reply types with their Go
//! names and fields, the `net/rpc` method names, one marker type per method tying name, argument
//! and reply together ([`Method`]), the host's error texts and limits, and the pure helpers of
//! `Read`, `Exec` and the client exit-code mapping.
//!
//! Go type names and field names are significant (gob matches struct fields by name); field
//! order is the Go declaration order (it decides the type-definition bytes).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use skywire_cipher::PubKey;
use skywire_gob::GobType;

/// Go `WinSize{X, Y, Rows, Cols uint16}` (X/Y = pixel width/height for TIOCSWINSZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
pub struct WinSize {
    /// Pixel width (`ws_xpixel`).
    pub x: u16,
    /// Pixel height (`ws_ypixel`).
    pub y: u16,
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl WinSize {
    /// The size the G3 web terminal sends for a `cols` × `rows` window (`X = cols, Y = rows`).
    pub fn from_cols_rows(cols: u16, rows: u16) -> WinSize {
        WinSize {
            x: cols,
            y: rows,
            rows,
            cols,
        }
    }
}

/// Go `CommandReq{Name string; Arg []string; Size *WinSize; Env []string}` (`Env` is G2+; G1
/// hosts ignore it), the argument of `pty.Start` and `pty.StartSession`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
pub struct CommandReq {
    /// Program, resolved through the host's `PATH`.
    pub name: String,
    /// Arguments (without the program name).
    pub arg: Vec<String>,
    /// Initial window size; `None` = no TIOCSWINSZ at start.
    pub size: Option<WinSize>,
    /// `KEY=VALUE` entries replacing same-named host variables (G2+).
    pub env: Vec<String>,
}

/// Go `CommandExecReq{Name; Arg; Env; Stdin []byte; TimeoutMS int64}`, the argument of
/// `pty.Exec` (G2+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
pub struct CommandExecReq {
    /// Program, resolved through the host's `PATH` (no shell).
    pub name: String,
    /// Arguments.
    pub arg: Vec<String>,
    /// `KEY=VALUE` entries replacing same-named host variables.
    pub env: Vec<String>,
    /// Standard input (≤ [`EXEC_MAX_STDIN`]); empty = no stdin.
    pub stdin: Vec<u8>,
    /// Timeout in milliseconds; ≤ 0 = [`EXEC_DEFAULT_TIMEOUT`], clamped to [`EXEC_MAX_TIMEOUT`].
    #[serde(rename = "TimeoutMS")]
    pub timeout_ms: i64,
}

/// Go `CommandExecResult{Stdout; Stderr []byte; StdoutTruncated; StderrTruncated bool;
/// ExitCode int; TimedOut bool; DurationMS int64}`, the reply of `pty.Exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
pub struct CommandExecResult {
    /// Captured standard output (≤ [`EXEC_OUTPUT_CAP`]).
    pub stdout: Vec<u8>,
    /// Captured standard error (≤ [`EXEC_OUTPUT_CAP`]).
    pub stderr: Vec<u8>,
    /// Output beyond the cap was dropped.
    pub stdout_truncated: bool,
    /// Error output beyond the cap was dropped.
    pub stderr_truncated: bool,
    /// Exit status; −1 when killed by a signal, timed out, or not started.
    pub exit_code: i64,
    /// The timeout expired and the process was killed.
    pub timed_out: bool,
    /// Spawn to exit, milliseconds.
    #[serde(rename = "DurationMS")]
    pub duration_ms: i64,
}

/// `net/rpc` service names.
pub mod service {
    /// The pty service (also the proxied one behind `dmsgpty/proxy`).
    pub const PTY: &str = "pty";
    /// The whitelist service (control socket only).
    pub const WHITELIST: &str = "whitelist";
}

/// Full `ServiceMethod` strings, exactly as on the wire.
pub mod method {
    /// `pty.Start(CommandReq) struct{}`. (The Go client's `StartWithSize` helper is this call with
    /// `Size` set; there is no `pty.StartWithSize` method.)
    pub const START: &str = "pty.Start";
    /// `pty.Stop(struct{}) struct{}`.
    pub const STOP: &str = "pty.Stop";
    /// `pty.Read(int) []byte`.
    pub const READ: &str = "pty.Read";
    /// `pty.Write([]byte) int`.
    pub const WRITE: &str = "pty.Write";
    /// `pty.SetPtySize(WinSize) struct{}`.
    pub const SET_PTY_SIZE: &str = "pty.SetPtySize";
    /// `pty.Exec(CommandExecReq) CommandExecResult` (G2+).
    pub const EXEC: &str = "pty.Exec";
    /// `pty.Ping(struct{}) struct{}` (G3).
    pub const PING: &str = "pty.Ping";
    /// `pty.StartSession(CommandReq) string` (G3, persistent hosts).
    pub const START_SESSION: &str = "pty.StartSession";
    /// `pty.Attach(string) struct{}` (G3, persistent hosts).
    pub const ATTACH: &str = "pty.Attach";
    /// `whitelist.Whitelist(struct{}) []PubKey`.
    pub const WHITELIST: &str = "whitelist.Whitelist";
    /// `whitelist.WhitelistAdd([]PubKey) struct{}`.
    pub const WHITELIST_ADD: &str = "whitelist.WhitelistAdd";
    /// `whitelist.WhitelistRemove([]PubKey) struct{}`.
    pub const WHITELIST_REMOVE: &str = "whitelist.WhitelistRemove";
}

/// A `net/rpc` method: its wire name with argument and reply types. `()` is Go's `struct{}`.
pub trait Method: Send + Sync + 'static {
    /// `"<service>.<Method>"`.
    const NAME: &'static str;
    /// Argument type.
    type Arg: GobType + for<'de> Deserialize<'de> + Send + Sync + 'static;
    /// Reply type.
    type Reply: GobType + for<'de> Deserialize<'de> + Send + Sync + 'static;
}

macro_rules! methods {
    ($($(#[$m:meta])* $ty:ident = $name:path : $arg:ty => $reply:ty;)*) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $ty;
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Arg = $arg;
            type Reply = $reply;
        }
    )*};
}

methods! {
    /// `pty.Start`.
    Start = method::START: CommandReq => ();
    /// `pty.Stop`.
    Stop = method::STOP: () => ();
    /// `pty.Read`: argument = maximum byte count.
    Read = method::READ: i64 => Vec<u8>;
    /// `pty.Write`: reply = bytes written.
    Write = method::WRITE: Vec<u8> => i64;
    /// `pty.SetPtySize`.
    SetPtySize = method::SET_PTY_SIZE: WinSize => ();
    /// `pty.Exec`.
    Exec = method::EXEC: CommandExecReq => CommandExecResult;
    /// `pty.Ping`.
    Ping = method::PING: () => ();
    /// `pty.StartSession`: reply = 16-hex-character session id.
    StartSession = method::START_SESSION: CommandReq => String;
    /// `pty.Attach`: argument = session id.
    Attach = method::ATTACH: String => ();
    /// `whitelist.Whitelist`.
    WhitelistList = method::WHITELIST: () => Vec<PubKey>;
    /// `whitelist.WhitelistAdd`.
    WhitelistAdd = method::WHITELIST_ADD: Vec<PubKey> => ();
    /// `whitelist.WhitelistRemove`.
    WhitelistRemove = method::WHITELIST_REMOVE: Vec<PubKey> => ();
}

/// Error texts hosts send (compared literally by Go clients in places).
pub mod errors {
    /// Any pty method before `Start` or after `Stop`.
    pub const NO_ACTIVE_SESSION: &str = "no active pty session";
    /// A second `Start`/`StartSession`/`Attach` on one stream.
    pub const ALREADY_RUNNING: &str = "a pty session is already running";
    /// `Read` after the child exited (Linux); the Go CLI treats it as a normal end of session.
    pub const PTMX_EIO: &str = "read /dev/ptmx: input/output error";
    /// `Attach` with an unknown id.
    pub const SESSION_NOT_FOUND: &str = "dmsgpty: session not found";
    /// `Attach` to a session owned by another key.
    pub const SESSION_OTHER_OWNER: &str = "dmsgpty: session owned by a different public key";
    /// `Exec` with an empty `Name`.
    pub const EXEC_EMPTY_NAME: &str = "dmsgpty: Exec: empty command name";
}

/// Largest `Read` a G2+ host serves in one call.
pub const READ_MAX: usize = 65536;
/// `Exec` stdin limit (1 MiB).
pub const EXEC_MAX_STDIN: usize = 1 << 20;
/// `Exec` cap on each of stdout and stderr (16 MiB).
pub const EXEC_OUTPUT_CAP: usize = 16 << 20;
/// `Exec` timeout when `TimeoutMS ≤ 0`.
pub const EXEC_DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// `Exec` timeout ceiling.
pub const EXEC_MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Client exit code for a timed-out exec.
pub const EXIT_TIMED_OUT: i32 = 124;
/// Client exit code for an RPC or dial failure.
pub const EXIT_RPC_FAILURE: i32 = 1;
/// Client exit code when interrupted (SIGINT) while waiting on the visor.
pub const EXIT_INTERRUPTED: i32 = 130;

/// G2+ `Read` size check: `n ≤ 0` is the error `invalid read size: <n>`, larger sizes are capped
/// at [`READ_MAX`].
pub fn read_size(n: i64) -> Result<usize, String> {
    if n <= 0 {
        return Err(format!("invalid read size: {n}"));
    }
    Ok(usize::try_from(n).unwrap_or(READ_MAX).min(READ_MAX))
}

/// Host-side validation of an `Exec` request, with the host's error texts.
pub fn validate_exec(req: &CommandExecReq) -> Result<(), String> {
    if req.name.is_empty() {
        return Err(errors::EXEC_EMPTY_NAME.to_owned());
    }
    if req.stdin.len() > EXEC_MAX_STDIN {
        return Err(format!(
            "dmsgpty: Exec: stdin {} > max {EXEC_MAX_STDIN}",
            req.stdin.len()
        ));
    }
    Ok(())
}

/// The effective `Exec` timeout for `TimeoutMS`.
pub fn exec_timeout(timeout_ms: i64) -> Duration {
    match u64::try_from(timeout_ms) {
        Ok(0) | Err(_) => EXEC_DEFAULT_TIMEOUT,
        Ok(ms) => Duration::from_millis(ms).min(EXEC_MAX_TIMEOUT),
    }
}

/// The text G3 hosts append to `Stderr` when the command could not be started.
pub fn exec_spawn_error_note(name: &str, err: &str) -> String {
    format!("dmsgpty: exec {name}: {err}\n")
}

/// Appends `chunk` to a capture buffer without exceeding [`EXEC_OUTPUT_CAP`]; returns whether
/// bytes were dropped (the caller ORs this into `StdoutTruncated`/`StderrTruncated`).
pub fn capture_capped(buf: &mut Vec<u8>, chunk: &[u8]) -> bool {
    let room = EXEC_OUTPUT_CAP.saturating_sub(buf.len());
    let take = room.min(chunk.len());
    buf.extend_from_slice(&chunk[..take]);
    take < chunk.len()
}

/// Merges `overrides` (`KEY=VALUE`) over `base`: same-named keys are replaced in place, new keys
/// appended in order (entries without `=` are kept as they are).
pub fn merge_env(base: impl IntoIterator<Item = String>, overrides: &[String]) -> Vec<String> {
    fn key(e: &str) -> &str {
        e.split_once('=').map_or(e, |(k, _)| k)
    }
    let mut out: Vec<String> = base.into_iter().collect();
    for o in overrides {
        match out.iter_mut().find(|e| key(e) == key(o)) {
            Some(slot) => slot.clone_from(o),
            None => out.push(o.clone()),
        }
    }
    out
}

/// The process exit code a client uses after an `Exec` (pty.md 6.2): 124 on timeout, else the
/// remote exit code as the OS would report it (`code & 0xff`, so −1 → 255).
pub fn client_exit_code(res: &CommandExecResult) -> i32 {
    if res.timed_out {
        return EXIT_TIMED_OUT;
    }
    (res.exit_code & 0xff) as i32
}

/// The notes a client prints to stderr after the output (truncation, timeout), in order.
pub fn client_exit_notes(res: &CommandExecResult) -> Vec<String> {
    let mut notes = Vec::new();
    if res.stdout_truncated {
        notes.push("[stdout truncated at 16MiB]".to_owned());
    }
    if res.stderr_truncated {
        notes.push("[stderr truncated at 16MiB]".to_owned());
    }
    if res.timed_out {
        notes.push(format!("[timed out after {}ms]", res.duration_ms));
    }
    notes
}

/// The io sentinels the Go client maps remote error texts back to (`pkg/dmsgpty/rpc_util.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoIoSentinel {
    /// `io.EOF` (`"EOF"`): a clean end, e.g. of the CLI read loop.
    Eof,
    /// `io.ErrUnexpectedEOF`.
    UnexpectedEof,
    /// `io.ErrClosedPipe`.
    ClosedPipe,
    /// `io.ErrNoProgress`.
    NoProgress,
    /// `io.ErrShortBuffer`.
    ShortBuffer,
    /// `io.ErrShortWrite`.
    ShortWrite,
}

impl GoIoSentinel {
    /// The sentinel a remote error text stands for, if any.
    pub fn from_text(text: &str) -> Option<GoIoSentinel> {
        Some(match text {
            "EOF" => GoIoSentinel::Eof,
            "unexpected EOF" => GoIoSentinel::UnexpectedEof,
            "io: read/write on closed pipe" => GoIoSentinel::ClosedPipe,
            "multiple Read calls return no data or error" => GoIoSentinel::NoProgress,
            "short buffer" => GoIoSentinel::ShortBuffer,
            "short write" => GoIoSentinel::ShortWrite,
            _ => return None,
        })
    }

    /// The Go error text.
    pub fn text(self) -> &'static str {
        match self {
            GoIoSentinel::Eof => "EOF",
            GoIoSentinel::UnexpectedEof => "unexpected EOF",
            GoIoSentinel::ClosedPipe => "io: read/write on closed pipe",
            GoIoSentinel::NoProgress => "multiple Read calls return no data or error",
            GoIoSentinel::ShortBuffer => "short buffer",
            GoIoSentinel::ShortWrite => "short write",
        }
    }
}

/// Whether a remote error text marks the normal end of an interactive session (`EOF` or the
/// pty's EIO after the child exited).
pub fn is_session_end(text: &str) -> bool {
    text == "EOF" || text == errors::PTMX_EIO
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exit_codes() {
        let mut r = CommandExecResult {
            exit_code: 7,
            ..Default::default()
        };
        assert_eq!(client_exit_code(&r), 7);
        r.exit_code = -1;
        assert_eq!(client_exit_code(&r), 255);
        r.exit_code = 256 + 3;
        assert_eq!(client_exit_code(&r), 3);
        r.timed_out = true;
        r.duration_ms = 300;
        assert_eq!(client_exit_code(&r), 124);
        assert_eq!(client_exit_notes(&r), ["[timed out after 300ms]"]);
    }

    #[test]
    fn read_and_exec_limits() {
        assert_eq!(read_size(0).unwrap_err(), "invalid read size: 0");
        assert_eq!(read_size(-5).unwrap_err(), "invalid read size: -5");
        assert_eq!(read_size(4096).unwrap(), 4096);
        assert_eq!(read_size(i64::MAX).unwrap(), READ_MAX);
        assert_eq!(exec_timeout(0), EXEC_DEFAULT_TIMEOUT);
        assert_eq!(exec_timeout(-1), EXEC_DEFAULT_TIMEOUT);
        assert_eq!(exec_timeout(1500), Duration::from_millis(1500));
        assert_eq!(exec_timeout(i64::MAX), EXEC_MAX_TIMEOUT);
        let mut req = CommandExecReq::default();
        assert_eq!(validate_exec(&req).unwrap_err(), errors::EXEC_EMPTY_NAME);
        req.name = "true".into();
        req.stdin = vec![0; EXEC_MAX_STDIN + 1];
        assert_eq!(
            validate_exec(&req).unwrap_err(),
            "dmsgpty: Exec: stdin 1048577 > max 1048576"
        );
        req.stdin.pop();
        assert!(validate_exec(&req).is_ok());
        let mut buf = vec![0; EXEC_OUTPUT_CAP - 2];
        assert!(capture_capped(&mut buf, b"abc"));
        assert_eq!(buf.len(), EXEC_OUTPUT_CAP);
        assert!(!capture_capped(&mut buf, b""));
    }

    #[test]
    fn env_merge() {
        let base = vec!["A=1".to_owned(), "B=2".to_owned()];
        assert_eq!(
            merge_env(base, &["B=3".into(), "C=4".into()]),
            ["A=1", "B=3", "C=4"]
        );
    }
}
