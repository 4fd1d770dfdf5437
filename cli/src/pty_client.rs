//! The pty client commands (pty.md 9): `skywire cli pty exec|shell|start` and the hidden
//! `skywire cli sshd --via …` alias of `shell`. Each connects one [`PtyClient`] — direct TCP with
//! noise XK (`tcp://<pk>@<host>:<port>` or `<pk>@<host>[:<port>]`), a dmsg stream to `<pk>:22`
//! through a short-lived dmsg client, or (`start --cliaddr`) a local host's control-socket proxy.
//!
//! `exec` (and `shell -- cmd` without a terminal) runs the buffered `pty.Exec` and exits like the
//! reference (pty.md 6.2): the remote exit code, 124 on timeout, 255 for −1, 1 when the host
//! cannot be reached. `shell`/`start` without a command run an interactive session: raw mode on a
//! terminal (always restored), `pty.Start` with the window size and TERM/COLORTERM/LANG/LC_ALL,
//! stdin → `pty.Write`, `pty.Read` → stdout, SIGWINCH → `pty.SetPtySize`; it ends with exit 0
//! when the remote session ends (the protocol carries no exit status), or on SIGTERM/SIGHUP
//! (and SIGINT when stdin is not a terminal) with 128+signal.
//!
//! Identity: `--sk`/`DMSGPTY_SK` > the `sk` of a visor config (`-c FILE`, else
//! `./skywire-config.json`, else `/opt/skywire/skywire.json`) unless `--no-visor-key` > a random
//! key (noted on stderr).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig};
use skywire_pty::client::{DEFAULT_DMSG_PORT, DEFAULT_TCP_PORT, PtyClient, Target, is_read_end};
use skywire_pty::types::{self, CommandReq, WinSize};
use tokio::io::AsyncWriteExt;

use crate::dmsg_disc::parse_go_duration;
use crate::util::DEFAULT_DISCOVERY;

/// The reference's default visor config path.
pub const DEFAULT_VISOR_CONFIG: &str = "/opt/skywire/skywire.json";
/// The visor config looked for in the working directory first.
pub const LOCAL_VISOR_CONFIG: &str = "./skywire-config.json";
/// Bound on reaching a host (dmsg registration + dial, or TCP dial + handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// `skywire cli pty ...`: the client side.
#[derive(Debug, Subcommand)]
pub enum PtyCommand {
    /// Run one command on a host and exit with its exit code (buffered pty.Exec).
    Exec(ExecArgs),
    /// Interactive shell on a host (`<pk>@<ip>[:<port>]` = direct TCP, `<pk>` = dmsg), or one
    /// command with `-- cmd ...`.
    Shell(ShellArgs),
    /// Interactive shell on a host by public key (dmsg, `--via` TCP, or a local host's control
    /// socket proxy with `--cliaddr`).
    Start(StartArgs),
}

/// Who we are towards the host.
#[derive(Debug, Args)]
pub struct Identity {
    /// Client secret key (64 hex characters).
    #[arg(
        short = 's',
        long = "sk",
        env = "DMSGPTY_SK",
        hide_env_values = true,
        value_name = "HEX"
    )]
    pub sk: Option<SecKey>,

    /// Do not borrow the local visor's key; use a random one unless --sk is given.
    #[arg(long)]
    pub no_visor_key: bool,

    /// Visor config to take the key from (default ./skywire-config.json, then
    /// /opt/skywire/skywire.json, when present).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Control API of the local visor; `<pk>` targets go through it when it answers and no --sk is
    /// given (`host:port` or `unix:/path`).
    #[arg(long, env = "SKYWIRE_RPC", default_value = crate::visor::DEFAULT_RPC, value_name = "ADDR")]
    pub rpc: String,

    /// dmsg discovery URL (dmsg targets only).
    #[arg(long = "disc", visible_alias = "dmsg-disc", default_value = DEFAULT_DISCOVERY, value_name = "URL")]
    pub disc: String,
}

/// `skywire cli pty exec <pk> [--via tcp://<pk>@<ip>:<port>] -- <cmd> [args...]`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The host: `<pk>`, `dmsg://<pk>[:<port>]`, `tcp://<pk>@<host>:<port>` or `unix://<path>`.
    #[arg(value_name = "PK")]
    pub target: String,

    /// Reach the host over direct TCP: `tcp://<pk>@<host>:<port>`.
    #[arg(long, value_name = "TARGET")]
    pub via: Option<String>,

    /// dmsg port of the host.
    #[arg(short = 'p', long, default_value_t = DEFAULT_DMSG_PORT)]
    pub port: u16,

    #[command(flatten)]
    pub exec: ExecOpts,

    #[command(flatten)]
    pub id: Identity,

    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub cmd: Vec<String>,
}

/// Options of a buffered exec.
#[derive(Debug, Args)]
pub struct ExecOpts {
    /// Remote time limit (Go duration; the host caps it at 5m); exit 124 when reached.
    #[arg(short = 't', long, default_value = "30s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Environment entry `KEY=VALUE` for the command (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Do not forward stdin (otherwise forwarded, up to 1 MiB, when it is not a terminal).
    #[arg(short = 'n', long)]
    pub no_stdin: bool,
}

/// `skywire cli pty shell <pk>[@<ip>[:<port>]] [-- cmd ...]`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The host: `<pk>@<host>[:<port>]` (direct TCP), `tcp://…`, `<pk>` (dmsg) or `unix://<path>`.
    #[arg(value_name = "TARGET", required_unless_present = "via")]
    pub target: Option<String>,

    /// Reach the host over direct TCP: `tcp://<pk>@<host>:<port>`.
    #[arg(long, value_name = "TARGET")]
    pub via: Option<String>,

    /// TCP port when the target has none.
    #[arg(short = 'p', long, default_value_t = DEFAULT_TCP_PORT)]
    pub port: u16,

    /// Run the command without a pty (buffered exec) even on a terminal.
    #[arg(long, requires = "cmd")]
    pub no_pty: bool,

    #[command(flatten)]
    pub exec: ExecOpts,

    #[command(flatten)]
    pub id: Identity,

    /// Command to run instead of the login shell (`/bin/bash`).
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// `skywire cli pty start <pk>`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The host's public key (or any `shell` target).
    #[arg(value_name = "PK")]
    pub target: String,

    /// Reach the host over direct TCP: `tcp://<pk>@<host>:<port>`.
    #[arg(long, value_name = "TARGET")]
    pub via: Option<String>,

    /// dmsg port of the host.
    #[arg(short = 'p', long, default_value_t = DEFAULT_DMSG_PORT)]
    pub port: u16,

    /// Go through a local pty host's control socket (its `dmsgpty/proxy`, the host's identity).
    #[arg(long, value_name = "PATH")]
    pub cliaddr: Option<PathBuf>,

    #[command(flatten)]
    pub id: Identity,

    /// Command to run instead of `/bin/bash`.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// Runs a `cli pty` client command; exits the process with the remote's code when non-zero.
pub fn run(cmd: PtyCommand) -> Result<()> {
    let code = match cmd {
        PtyCommand::Exec(a) => {
            let target =
                resolve_target(Some(&a.target), a.via.as_deref(), DEFAULT_TCP_PORT, a.port)?;
            let stdin = exec_stdin(a.exec.no_stdin)?;
            let sk = identity(&a.id)?;
            crate::util::block_on(async {
                let conn = Conn::open(&target, &sk, &a.id).await?;
                let r = exec(&conn.client, &a.cmd, &a.exec, stdin).await;
                conn.close().await;
                r
            })??
        }
        PtyCommand::Shell(a) => run_shell(a)?,
        PtyCommand::Start(a) => {
            let sk = if a.cliaddr.is_some() {
                SecKey::generate()
            } else {
                identity(&a.id)?
            };
            let target = match &a.cliaddr {
                Some(_) => None,
                None => Some(resolve_target(
                    Some(&a.target),
                    a.via.as_deref(),
                    DEFAULT_TCP_PORT,
                    a.port,
                )?),
            };
            crate::util::block_on(async {
                let conn = match (&a.cliaddr, &target) {
                    (Some(path), _) => {
                        let pk: PubKey = a
                            .target
                            .parse()
                            .with_context(|| format!("invalid public key {:?}", a.target))?;
                        Conn {
                            client: PtyClient::connect_unix_proxy(path, pk, a.port).await?,
                            dmsg: None,
                        }
                    }
                    (None, Some(t)) => Conn::open(t, &sk, &a.id).await?,
                    (None, None) => bail!("no target"),
                };
                let r = interactive(&conn.client, &a.cmd).await;
                conn.close().await;
                r
            })??
        }
    };
    exit_with(code)
}

/// `skywire cli sshd --via ...` / `cli pty shell`.
pub fn run_shell(a: ShellArgs) -> Result<i32> {
    let target = resolve_target(a.target.as_deref(), a.via.as_deref(), a.port, 22)?;
    let buffered = !a.cmd.is_empty() && (a.no_pty || !std::io::stdin().is_terminal());
    let stdin = if buffered {
        exec_stdin(a.exec.no_stdin)?
    } else {
        Vec::new()
    };
    let sk = identity(&a.id)?;
    crate::util::block_on(async {
        let conn = Conn::open(&target, &sk, &a.id).await?;
        let r = if buffered {
            exec(&conn.client, &a.cmd, &a.exec, stdin).await
        } else {
            interactive(&conn.client, &a.cmd).await
        };
        conn.close().await;
        r
    })?
}

/// Exits the process with `code` (after everything was dropped and flushed) unless it is 0.
pub fn exit_with(code: i32) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// The target from the positional argument and `--via` (which wins; their keys must agree).
fn resolve_target(
    positional: Option<&str>,
    via: Option<&str>,
    tcp_port: u16,
    dmsg_port: u16,
) -> Result<Target> {
    let parse = |s: &str| Target::parse_with(s, tcp_port, dmsg_port).map_err(anyhow::Error::from);
    let pos = positional.map(parse).transpose()?;
    let Some(via) = via else {
        return pos.context("no target given");
    };
    let via = parse(via)?;
    if !matches!(via, Target::Tcp { .. }) {
        bail!("--via takes tcp://<pk>@<host>:<port>, got {via}");
    }
    if let (Some(p), Some(v)) = (pos.as_ref().and_then(Target::pk), via.pk())
        && p != v
    {
        bail!("the target key {p} differs from the --via key {v}");
    }
    Ok(via)
}

/// The client key (module doc for the order).
pub(crate) fn identity(id: &Identity) -> Result<SecKey> {
    if let Some(sk) = &id.sk {
        return Ok(sk.clone());
    }
    if !id.no_visor_key {
        if let Some(path) = &id.config {
            return visor_sk(path);
        }
        for p in [LOCAL_VISOR_CONFIG, DEFAULT_VISOR_CONFIG] {
            let p = Path::new(p);
            if p.exists() {
                return visor_sk(p);
            }
        }
    }
    let sk = SecKey::generate();
    if !id.no_visor_key {
        eprintln!(
            "note: no --sk and no visor config ({LOCAL_VISOR_CONFIG}, {DEFAULT_VISOR_CONFIG}); using the random key {}",
            sk.pub_key()
        );
    }
    Ok(sk)
}

/// The `sk` field of a visor config (or any JSON with a top-level `sk`).
fn visor_sk(path: &Path) -> Result<SecKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the visor config {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing the visor config {}", path.display()))?;
    let hex = v
        .get("sk")
        .and_then(|s| s.as_str())
        .with_context(|| format!("{} has no \"sk\"", path.display()))?;
    SecKey::from_hex(hex).with_context(|| format!("the \"sk\" of {}", path.display()))
}

/// Stdin for a buffered exec: empty on a terminal or with `--no-stdin`, else all of it (≤ 1 MiB).
pub(crate) fn exec_stdin(no_stdin: bool) -> Result<Vec<u8>> {
    let stdin = std::io::stdin();
    if no_stdin || stdin.is_terminal() {
        return Ok(Vec::new());
    }
    let mut buf = Vec::new();
    stdin
        .lock()
        .take(types::EXEC_MAX_STDIN as u64 + 1)
        .read_to_end(&mut buf)
        .context("reading stdin")?;
    if buf.len() > types::EXEC_MAX_STDIN {
        bail!(
            "stdin is larger than the exec limit of {} bytes (use --no-stdin to not send it)",
            types::EXEC_MAX_STDIN
        );
    }
    Ok(buf)
}

/// A connected client and the dmsg client it may run on.
struct Conn {
    client: PtyClient,
    dmsg: Option<Client>,
}

impl Conn {
    async fn open(target: &Target, sk: &SecKey, id: &Identity) -> Result<Conn> {
        if let Some(io) = via_visor(target, id).await? {
            let client =
                PtyClient::over(io, format!("{target} (via the local visor)"), None).await?;
            return Ok(Conn { client, dmsg: None });
        }
        let disc = id.disc.as_str();
        let dmsg = match target {
            Target::Dmsg { .. } => {
                let d = DiscClient::new(disc)
                    .with_context(|| format!("invalid discovery URL {disc:?}"))?;
                Some(Client::start(ClientConfig::new(sk.clone(), d)))
            }
            _ => None,
        };
        let connect = async {
            if let Some(d) = &dmsg {
                d.ready(CONNECT_TIMEOUT)
                    .await
                    .context("reaching the dmsg network")?;
            }
            PtyClient::connect(target, sk, dmsg.as_ref())
                .await
                .map_err(anyhow::Error::from)
        };
        let res = tokio::time::timeout(CONNECT_TIMEOUT * 2, connect).await;
        let client = match res {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                close_dmsg(dmsg).await;
                return Err(e);
            }
            Err(_) => {
                close_dmsg(dmsg).await;
                bail!("reaching {target}: timed out");
            }
        };
        Ok(Conn { client, dmsg })
    }

    async fn close(self) {
        self.client.close();
        close_dmsg(self.dmsg).await;
    }
}

/// For a `<pk>` (dmsg) target without `--sk`: a stream to it dialled by the local visor, when one
/// answers at `--rpc` (so the CLI does not start a second dmsg client with the visor's key); `None`
/// when no visor is listening there.
pub(crate) async fn via_visor(
    target: &Target,
    id: &Identity,
) -> Result<Option<skywire_visor::control::RawStream>> {
    let Target::Dmsg { pk, port } = target else {
        return Ok(None);
    };
    if id.sk.is_some() {
        return Ok(None);
    }
    let c = skywire_visor::ControlClient::new(skywire_visor::ControlAddr::parse(&id.rpc));
    match c.dial(*pk, *port).await {
        Ok(s) => Ok(Some(s)),
        Err(skywire_visor::control::ClientError::Connect { .. }) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("reaching {target} through the visor at {}", id.rpc))),
    }
}

async fn close_dmsg(dmsg: Option<Client>) {
    if let Some(d) = dmsg
        && tokio::time::timeout(Duration::from_secs(5), d.close())
            .await
            .is_err()
    {
        tracing::debug!("closing the dmsg client took too long");
    }
}

/// Buffered exec; returns the process exit code (pty.md 6.2).
pub(crate) async fn exec(
    client: &PtyClient,
    cmd: &[String],
    opts: &ExecOpts,
    stdin: Vec<u8>,
) -> Result<i32> {
    let (name, args) = cmd.split_first().context("no command given")?;
    let res = client
        .exec(name, args, &opts.env, stdin, opts.timeout)
        .await
        .with_context(|| format!("pty.Exec on {}", client.target()))?;
    let mut out = tokio::io::stdout();
    out.write_all(&res.stdout).await?;
    out.flush().await?;
    let mut err = tokio::io::stderr();
    err.write_all(&res.stderr).await?;
    for note in types::client_exit_notes(&res) {
        err.write_all(format!("{note}\n").as_bytes()).await?;
    }
    err.flush().await?;
    Ok(types::client_exit_code(&res))
}

/// The local terminal's size (stdout, else stdin), if it is one.
fn term_size() -> Option<WinSize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin()))
        .ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| WinSize::from_cols_rows(ws.ws_col, ws.ws_row))
}

/// Raw mode on stdin for the guard's lifetime (restored on drop, also when unwinding).
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Result<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).context("reading the terminal mode")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).context("setting raw terminal mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// The environment the Go CLI passes to an interactive session.
fn session_env() -> Vec<String> {
    let mut env = vec![format!(
        "TERM={}",
        std::env::var("TERM")
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "xterm-256color".to_owned())
    )];
    for k in ["COLORTERM", "LANG", "LC_ALL"] {
        if let Ok(v) = std::env::var(k) {
            env.push(format!("{k}={v}"));
        }
    }
    env
}

/// An interactive session running `cmd` (default `/bin/bash`); returns the exit code.
pub(crate) async fn interactive(client: &PtyClient, cmd: &[String]) -> Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};

    let (name, args) = match cmd.split_first() {
        Some((n, a)) => (n.clone(), a.to_vec()),
        None => ("/bin/bash".to_owned(), Vec::new()),
    };
    let tty = std::io::stdin().is_terminal();
    client
        .start_req(&CommandReq {
            name,
            arg: args,
            size: term_size(),
            env: session_env(),
        })
        .await
        .with_context(|| format!("pty.Start on {}", client.target()))?;
    let raw = if tty { Some(RawMode::enter()?) } else { None };

    // stdin on a plain thread: a blocking read must not keep the runtime from shutting down.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut winch = signal(SignalKind::window_change())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;

    let reader = async {
        let mut out = tokio::io::stdout();
        loop {
            match client.read(types::READ_MAX).await {
                Ok(b) => {
                    out.write_all(&b).await?;
                    out.flush().await?;
                }
                Err(e) if is_read_end(&e) => return Ok::<(), anyhow::Error>(()),
                Err(e) => return Err(anyhow::Error::from(e).context("pty.Read")),
            }
        }
    };
    tokio::pin!(reader);
    let mut stdin_open = true;
    let result = loop {
        tokio::select! {
            r = &mut reader => break r.map(|()| 0),
            data = rx.recv(), if stdin_open => match data {
                Some(d) => {
                    if let Err(e) = client.write(&d).await
                        && e.is_connection_error()
                    {
                        break Err(anyhow::Error::from(e).context("pty.Write"));
                    }
                }
                None => {
                    stdin_open = false;
                    // Piped input ended: an EOF character for the remote line discipline.
                    if !tty {
                        let _ = client.write(&[0x04]).await;
                    }
                }
            },
            _ = winch.recv() => {
                if let Some(size) = term_size() {
                    let _ = client.set_size(size).await;
                }
            }
            _ = term.recv() => break Ok(128 + 15),
            _ = hup.recv() => break Ok(128 + 1),
            // With raw mode on, Ctrl-C is a byte for the remote; this only fires when signalled
            // from elsewhere or when stdin is not a terminal.
            _ = int.recv() => break Ok(128 + 2),
        }
    };
    if result.as_ref().is_ok_and(|c| *c != 0) {
        let _ = tokio::time::timeout(Duration::from_secs(2), client.stop()).await;
    }
    drop(raw);
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PK: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn targets_and_via() {
        let via = format!("tcp://{PK}@127.0.0.1:9");
        let t = resolve_target(Some(PK), Some(&via), 2022, 22).unwrap();
        assert_eq!(t.to_string(), via);
        assert!(matches!(
            resolve_target(Some(PK), None, 2022, 22).unwrap(),
            Target::Dmsg { port: 22, .. }
        ));
        let other = SecKey::generate().pub_key();
        assert!(resolve_target(Some(&other.to_string()), Some(&via), 2022, 22).is_err());
        assert!(resolve_target(None, Some(PK), 2022, 22).is_err());
        assert!(resolve_target(None, None, 2022, 22).is_err());
    }

    #[test]
    fn visor_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let sk = SecKey::generate();
        let p = dir.path().join("skywire-config.json");
        std::fs::write(&p, format!(r#"{{"pk":"x","sk":"{}"}}"#, sk.to_hex())).unwrap();
        assert_eq!(visor_sk(&p).unwrap().pub_key(), sk.pub_key());
        std::fs::write(&p, "{}").unwrap();
        assert!(visor_sk(&p).is_err());
    }
}
