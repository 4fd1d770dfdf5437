//! `skywire app pty exec` (≡ reference `dmsg pty cli`, G1 `dmsgpty-cli`; pty.md 9): the
//! standalone client of a pty host running on this machine, through its local control socket
//! (`cliaddr`, never whitelist-checked).
//!
//! * no subcommand: an interactive session (`--cmd`, default `/bin/bash`, with `--args`) on the
//!   local host's `dmsgpty/pty` — the same raw-terminal code as `cli pty shell`;
//! * `exec [<pk>] [--] <cmd> [args...]`: a buffered `pty.Exec`, exiting with the command's exit
//!   code like `cli pty exec` (pty.md 6.2);
//! * `whitelist [--json]`, `whitelist-add <pk>...`, `whitelist-remove <pk>...`: the host's
//!   `dmsgpty/whitelist` service. Like the reference, an error the host reports for an
//!   add/remove (e.g. keys already present) is printed and the exit code stays 0.
//!
//! A remote host (`--addr <pk>:<port>`, or a `<pk>` before the `exec` command) is reached
//! through the local host's `dmsgpty/proxy` endpoint: the host dials it over its own dmsg client
//! with its own key (so the remote must whitelist the local host's key). A host without dmsg
//! (`--no-dmsg`) refuses such requests.
//!
//! Socket: `--cliaddr` > the `cliaddr` of `--confpath` > the host's default
//! (`<tmp>/dmsgpty.sock`). Only the `unix` control network is supported.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use skywire_cipher::PubKey;
use skywire_pty::client::{DEFAULT_DMSG_PORT, PtyClient};
use skywire_pty::types;
use skywire_pty::uri::{self, WHITELIST_URI};
use skywire_pty::{HostConfig, RpcClient};

use crate::dmsg_disc::parse_go_duration;
use crate::pty_client::{self, ExecOpts};

/// Bound on connecting to the control socket and each whitelist call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `skywire app pty exec [flags] [exec|whitelist|whitelist-add|whitelist-remove]`.
#[derive(Debug, Args)]
pub struct AppExecArgs {
    #[command(subcommand)]
    pub command: Option<AppExecCommand>,

    #[command(flatten)]
    pub sock: SocketOpts,

    /// Remote host `<pk>[:<port>]` reached through the local host's `dmsgpty/proxy` (the host
    /// dials it over dmsg with its own key; not available on a `--no-dmsg` host). Default: the
    /// local host itself.
    #[arg(long, value_name = "PK:PORT", global = true)]
    pub addr: Option<String>,

    /// Command of the interactive session.
    #[arg(
        short = 'c',
        long = "cmd",
        default_value = "/bin/bash",
        value_name = "CMD"
    )]
    pub cmd: String,

    /// Argument of `--cmd` (repeatable).
    #[arg(
        short = 'a',
        long = "args",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// Which control socket to use.
#[derive(Debug, Args)]
pub struct SocketOpts {
    /// Control-socket network (only `unix`).
    #[arg(short = 'n', long, value_name = "NET", global = true)]
    pub clinet: Option<String>,

    /// Control-socket path of the host (default: the config's `cliaddr`, else
    /// `<tmp>/dmsgpty.sock`).
    #[arg(short = 'r', long, value_name = "SOCK", global = true)]
    pub cliaddr: Option<PathBuf>,

    /// Host config file (must exist) whose `clinet`/`cliaddr` are used.
    #[arg(short = 'p', long, value_name = "FILE", global = true)]
    pub confpath: Option<PathBuf>,
}

/// The subcommands of `app pty exec`.
#[derive(Debug, Subcommand)]
pub enum AppExecCommand {
    /// Run one command (buffered, no pty) on the host and exit with its exit code
    /// (`exec [<pk>] [--] <cmd> [args...]`; a `<pk>` goes through the host's proxy endpoint,
    /// which needs a host with dmsg).
    Exec(ExecCmdArgs),
    /// Print the host's whitelist, one key per line (`--json`: a JSON array).
    Whitelist {
        /// Print a JSON array of hex keys.
        #[arg(long)]
        json: bool,
    },
    /// Add keys to the host's whitelist (errors the host reports are printed; exit 0).
    WhitelistAdd {
        /// Public keys (66 hex characters).
        #[arg(required = true, value_name = "PK")]
        pks: Vec<PubKey>,
    },
    /// Remove keys from the host's whitelist (unknown keys are ignored).
    WhitelistRemove {
        /// Public keys (66 hex characters).
        #[arg(required = true, value_name = "PK")]
        pks: Vec<PubKey>,
    },
}

/// `app pty exec exec [<pk>] [--] <cmd> [args...]`.
#[derive(Debug, Args)]
pub struct ExecCmdArgs {
    /// Remote time limit (Go duration; the host caps it at 5m); exit 124 when reached.
    #[arg(short = 't', long, default_value = "30s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Environment entry `KEY=VALUE` for the command (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Do not forward stdin (otherwise forwarded, up to 1 MiB, when it is not a terminal).
    #[arg(long)]
    pub no_stdin: bool,

    /// `[<pk>] <cmd> [args...]`: a leading 66-hex key selects a remote host (proxy).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub words: Vec<String>,
}

/// Runs `skywire app pty exec`.
pub fn run(a: AppExecArgs) -> Result<()> {
    let sock = socket_path(&a.sock)?;
    let addr = a.addr.as_deref().map(parse_addr).transpose()?;
    let code = match a.command {
        None => {
            let mut cmd = vec![a.cmd];
            cmd.extend(a.args);
            crate::util::block_on(async {
                let client = connect(&sock, addr).await?;
                let r = pty_client::interactive(&client, &cmd).await;
                client.close();
                r
            })??
        }
        Some(AppExecCommand::Exec(e)) => {
            let (remote, cmd) = split_pk(&e.words);
            let remote = match (remote, addr) {
                (Some(pk), Some((apk, _))) if pk != apk => {
                    bail!("the exec key {pk} differs from the --addr key {apk}")
                }
                (Some(pk), addr) => Some((pk, addr.map_or(DEFAULT_DMSG_PORT, |(_, p)| p))),
                (None, addr) => addr,
            };
            let opts = ExecOpts {
                timeout: e.timeout,
                env: e.env,
                no_stdin: e.no_stdin,
            };
            let stdin = pty_client::exec_stdin(opts.no_stdin)?;
            crate::util::block_on(async {
                let client = connect(&sock, remote).await?;
                let r = pty_client::exec(&client, cmd, &opts, stdin).await;
                client.close();
                r
            })??
        }
        Some(AppExecCommand::Whitelist { json }) => {
            let keys = crate::util::block_on(whitelist_call(&sock, |wl| async move {
                wl.call_method::<types::WhitelistList>(&()).await
            }))??
            .context("whitelist.Whitelist")?;
            let hex: Vec<String> = keys.iter().map(PubKey::to_hex).collect();
            if json {
                println!("{}", serde_json::to_string(&hex)?);
            } else {
                for k in hex {
                    println!("{k}");
                }
            }
            0
        }
        Some(AppExecCommand::WhitelistAdd { pks }) => {
            let r = crate::util::block_on(whitelist_call(&sock, |wl| async move {
                wl.call_method::<types::WhitelistAdd>(&pks).await
            }))??;
            report_mutation(r)?
        }
        Some(AppExecCommand::WhitelistRemove { pks }) => {
            let r = crate::util::block_on(whitelist_call(&sock, |wl| async move {
                wl.call_method::<types::WhitelistRemove>(&pks).await
            }))??;
            report_mutation(r)?
        }
    };
    pty_client::exit_with(code)
}

/// The control socket: `--cliaddr` > the config's `cliaddr` > the host's default.
fn socket_path(s: &SocketOpts) -> Result<PathBuf> {
    let cfg = match &s.confpath {
        Some(p) => {
            if !p.exists() {
                bail!("config file {} does not exist", p.display());
            }
            Some(HostConfig::load(p).with_context(|| format!("loading {}", p.display()))?)
        }
        None => None,
    };
    let net = s
        .clinet
        .clone()
        .or_else(|| cfg.as_ref().map(|c| c.cli_net.clone()))
        .unwrap_or_else(|| "unix".to_owned());
    if net != "unix" {
        bail!("control-socket network {net:?} is not supported (use \"unix\")");
    }
    if let Some(p) = &s.cliaddr {
        return Ok(p.clone());
    }
    let addr = cfg.map_or_else(|| HostConfig::default().cli_addr, |c| c.cli_addr);
    if addr.is_empty() {
        bail!("the config's `cliaddr` is empty");
    }
    Ok(PathBuf::from(addr))
}

/// `--addr <pk>[:<port>]`.
fn parse_addr(s: &str) -> Result<(PubKey, u16)> {
    let (pk, port) = match s.rsplit_once(':') {
        Some((pk, port)) => (
            pk,
            port.parse()
                .with_context(|| format!("invalid port in --addr {s:?}"))?,
        ),
        None => (s, DEFAULT_DMSG_PORT),
    };
    let pk = pk
        .parse()
        .with_context(|| format!("invalid public key in --addr {s:?}"))?;
    Ok((pk, port))
}

/// A leading public key (when more words follow) and the command. A `--` between the key and the
/// command (`exec <pk> -- cmd`) is dropped: clap keeps it once the first word was taken.
fn split_pk(words: &[String]) -> (Option<PubKey>, &[String]) {
    if let [first, rest @ ..] = words
        && !rest.is_empty()
        && first.len() == 66
        && let Ok(pk) = first.parse::<PubKey>()
    {
        return (Some(pk), strip_separator(rest));
    }
    (None, strip_separator(words))
}

/// Drops a `--` that clap left in front of the command.
fn strip_separator(words: &[String]) -> &[String] {
    match words {
        [dd, cmd @ ..] if dd == "--" && !cmd.is_empty() => cmd,
        _ => words,
    }
}

/// `dmsgpty/pty` on the control socket, or its `dmsgpty/proxy` to `remote`.
async fn connect(sock: &std::path::Path, remote: Option<(PubKey, u16)>) -> Result<PtyClient> {
    let fut = async {
        match remote {
            None => PtyClient::connect_unix(sock).await,
            Some((pk, port)) => PtyClient::connect_unix_proxy(sock, pk, port).await,
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(_) => bail!(
            "connecting to the control socket {}: timed out",
            sock.display()
        ),
    }
}

/// One call on the host's `dmsgpty/whitelist` service. The outer error is a connection
/// failure; the inner result is the call's.
async fn whitelist_call<T, F, Fut>(
    sock: &std::path::Path,
    call: F,
) -> Result<Result<T, skywire_pty::RpcError>>
where
    F: FnOnce(RpcClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, skywire_pty::RpcError>>,
{
    let connect = async {
        let mut s = tokio::net::UnixStream::connect(sock)
            .await
            .with_context(|| format!("connecting to the control socket {}", sock.display()))?;
        uri::request_uri(&mut s, WHITELIST_URI)
            .await
            .with_context(|| format!("{WHITELIST_URI} on unix://{}", sock.display()))?;
        Ok::<_, anyhow::Error>(RpcClient::new(s))
    };
    let wl = tokio::time::timeout(CALL_TIMEOUT, connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {}: timed out", sock.display()))??;
    let handle = wl.clone();
    let r = tokio::time::timeout(CALL_TIMEOUT, call(wl))
        .await
        .map_err(|_| anyhow::anyhow!("the whitelist call timed out"));
    handle.close();
    r
}

/// Add/remove: an error text from the host is printed (exit 0, as the reference); a broken
/// connection is a failure.
fn report_mutation(r: Result<(), skywire_pty::RpcError>) -> Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(e) => match e.remote_text() {
            Some(text) => {
                eprintln!("{text}");
                Ok(0)
            }
            None => Err(anyhow::Error::from(e).context("whitelist call")),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PK: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn addr_and_leading_key() {
        let (pk, port) = parse_addr(&format!("{PK}:23")).unwrap();
        assert_eq!((pk.to_hex().as_str(), port), (PK, 23));
        assert_eq!(parse_addr(PK).unwrap().1, DEFAULT_DMSG_PORT);
        assert!(parse_addr("zz:22").is_err());

        let w = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let words = w(&[PK, "echo", "hi"]);
        let (pk, cmd) = split_pk(&words);
        assert_eq!(
            (pk.map(|p| p.to_hex()), cmd),
            (Some(PK.to_owned()), &words[1..])
        );
        let words = w(&[PK, "--", "echo", "hi"]);
        assert_eq!(split_pk(&words).1, &words[2..]);
        let words = w(&[PK]);
        assert_eq!(split_pk(&words), (None, &words[..]));
        let words = w(&["sh", "-c", "true"]);
        assert_eq!(split_pk(&words), (None, &words[..]));
        // `--addr <pk> exec -- cmd`: clap leaves the separator in front of the command.
        let words = w(&["--", "echo", "hi"]);
        assert_eq!(split_pk(&words), (None, &words[1..]));
    }
}
