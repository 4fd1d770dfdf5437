//! `skywire cli pty fs mount|umount` (pty.md 7): mount a pty host's filesystem through FUSE over
//! the `dmsgpty/sftp` subsystem, and the host-side glue ([`HostSftp`]) that plugs
//! `skywire-fs`'s sftp server into every pty host the CLI runs.
//!
//! Targets: `<pk>@<ip>[:<port>]` / `tcp://…` (direct noise-XK TCP, port 2022 by default),
//! `<pk> --standalone` (an own dmsg client with `--sk`/`DMSGPTY_SK`, `--disc`), `unix://<path>`
//! (a local host's control socket). A plain `<pk>` goes through the local visor's control API
//! (`--rpc`): the visor dials the host and the sftp channel runs on that stream. The hidden `--sftp-server-cmd CMD` mounts from a local
//! sftp server speaking on its stdio (e.g. OpenSSH's `/usr/lib/openssh/sftp-server`).
//!
//! The mount runs in the foreground until Ctrl-C/SIGTERM, an external `umount`, or a lost
//! connection (each unmounts and says why); `-d/--daemon` re-runs the command detached and
//! returns once the mount is live. The hidden `cli pty fs sftp-server` serves sftp on
//! stdin/stdout (for OpenSSH's `sftp -D`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig};
use skywire_fs::mount::{MountConfig, MountHandle};
use skywire_fs::{ServerConfig, SftpClient};
use skywire_pty::client::{DEFAULT_DMSG_PORT, DEFAULT_TCP_PORT, Target};
use skywire_pty::uri::SFTP_URI;
use skywire_pty::{BoxedStream, SftpService};

use crate::dmsg_disc::parse_go_duration;
use crate::pty_client::Identity;

/// Bound on reaching the host (dmsg registration + dial, or TCP dial + handshake + sftp INIT).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a detached mount coming up.
const DAEMON_START: Duration = Duration::from_secs(60);

/// `skywire cli pty fs ...`.
#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// Mount a host's filesystem: `<pk>@<ip>[:<port>]` (direct TCP) or `<pk> --standalone`
    /// (dmsg).
    Mount(Box<MountArgs>),
    /// Unmount a mount point (umount(2) as root, else `fusermount3 -u`).
    Umount(UmountArgs),
    /// Serve sftp on stdin/stdout (for `sftp -D`).
    #[command(hide = true)]
    SftpServer,
}

/// `skywire cli pty fs mount <target> <dir>`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// `<pk>@<ip>[:<port>]`, `tcp://<pk>@<ip>:<port>`, `<pk>` (with --standalone) or
    /// `unix://<control socket>` (with --sftp-server-cmd only a label).
    #[arg(value_name = "TARGET")]
    pub target: String,

    /// The local mount point (an existing directory).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// TCP port when the target has none.
    #[arg(short = 'p', long, default_value_t = DEFAULT_TCP_PORT)]
    pub port: u16,

    /// Reach `<pk>` over dmsg with an own short-lived dmsg client (no visor).
    #[arg(long)]
    pub standalone: bool,

    /// Mount read-only (same as `-o ro`).
    #[arg(long)]
    pub ro: bool,

    /// Mount options, comma separated: `ro`, `allow_other`.
    #[arg(short = 'o', value_name = "OPT,...", value_delimiter = ',')]
    pub options: Vec<String>,

    /// Let other users access the mount.
    #[arg(long)]
    pub allow_other: bool,

    /// Attribute/entry cache lifetime (Go duration). Our own writes update the cache at once.
    #[arg(long, default_value = "1s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub cache_timeout: Duration,

    /// Show every file as owned by this local uid.
    #[arg(long)]
    pub uid: Option<u32>,

    /// Show every file as owned by this local gid.
    #[arg(long)]
    pub gid: Option<u32>,

    /// Remote directory to mount.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub remote_root: PathBuf,

    /// Detach: run the mount in the background and return once it is live.
    #[arg(short = 'd', long)]
    pub daemon: bool,

    /// Mount from a local sftp server command speaking on its stdio instead of a pty host.
    #[arg(long, hide = true, value_name = "CMD")]
    pub sftp_server_cmd: Option<String>,

    #[command(flatten)]
    pub id: Identity,
}

/// `skywire cli pty fs umount <dir>`.
#[derive(Debug, Args)]
pub struct UmountArgs {
    /// The mount point.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The host-side `dmsgpty/sftp` subsystem: `skywire-fs`'s server on the accepted stream.
#[derive(Debug, Default)]
pub struct HostSftp;

impl SftpService for HostSftp {
    fn serve(
        &self,
        io: BoxedStream,
        remote: Option<PubKey>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        Box::pin(async move {
            tracing::debug!(?remote, "sftp session started");
            if let Err(e) = skywire_fs::serve(io, ServerConfig::default()).await {
                tracing::debug!(error = %e, ?remote, "sftp session ended with an error");
            }
        })
    }
}

/// The sftp hook every CLI pty host gets.
pub fn host_sftp() -> Arc<dyn SftpService> {
    Arc::new(HostSftp)
}

/// Runs a `cli pty fs` command.
pub fn run(cmd: FsCommand) -> Result<()> {
    match cmd {
        FsCommand::Mount(a) => {
            if a.daemon {
                return daemonize(&a.dir);
            }
            crate::util::block_on(mount(*a))?
        }
        FsCommand::Umount(a) => umount(&a.dir),
        FsCommand::SftpServer => crate::util::block_on(async {
            let io = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
            skywire_fs::serve(io, ServerConfig::default())
                .await
                .context("sftp server")
        })?,
    }
}

fn is_mounted(dir: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(dir) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Re-runs this command without `-d` in a new process group, detached from our stdio, and
/// returns once the mount is live (or fails with the child's exit status).
fn daemonize(dir: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding our own executable")?;
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "-d" && a != "--daemon")
        .collect();
    let mut child = std::process::Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the background mount")?;
    let deadline = Instant::now() + DAEMON_START;
    while Instant::now() < deadline {
        if is_mounted(dir) {
            println!("mounted at {} (pid {})", dir.display(), child.id());
            return Ok(());
        }
        if let Some(status) = child.try_wait().context("watching the background mount")? {
            bail!("the background mount exited with {status} (run without -d to see why)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    bail!(
        "the mount at {} did not come up within {DAEMON_START:?}",
        dir.display()
    )
}

/// How the sftp stream is reached and what keeps it alive.
enum Conn {
    Stream(Option<Client>),
    Child(tokio::process::Child),
}

async fn connect(a: &MountArgs) -> Result<(SftpClient, Conn)> {
    if let Some(cmd) = &a.sftp_server_cmd {
        let mut child = tokio::process::Command::new("/bin/sh")
            .args(["-c", cmd])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let (Some(w), Some(r)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("no stdio for {cmd:?}");
        };
        let c = SftpClient::new(tokio::io::join(r, w))
            .await
            .with_context(|| format!("sftp with {cmd:?}"))?;
        return Ok((c, Conn::Child(child)));
    }
    let raw = a.target.as_str();
    let target = Target::parse_with(raw, a.port, DEFAULT_DMSG_PORT)?;
    if matches!(target, Target::Dmsg { .. }) && !a.standalone {
        let Some(io) = crate::pty_client::via_visor(&target, &a.id).await? else {
            bail!(
                "no visor answers at {} (start `skywire visor`, point --rpc at its cli_addr, or use \
                 --standalone for an own dmsg client, or <pk>@<ip>:<port> for direct TCP)",
                a.id.rpc
            );
        };
        let name = format!("{target} (via the local visor)");
        let io = tokio::time::timeout(
            CONNECT_TIMEOUT,
            skywire_pty::request_on(io, SFTP_URI, name.clone()),
        )
        .await
        .with_context(|| format!("reaching {name}: timed out"))??;
        let c = tokio::time::timeout(CONNECT_TIMEOUT, SftpClient::new(io))
            .await
            .with_context(|| format!("sftp with {name}: timed out"))?
            .with_context(|| format!("sftp with {name} (does the host serve {SFTP_URI}?)"))?;
        return Ok((c, Conn::Stream(None)));
    }
    let sk: SecKey = crate::pty_client::identity(&a.id)?;
    let dmsg = match target {
        Target::Dmsg { .. } => {
            let d = DiscClient::new(&a.id.disc)
                .with_context(|| format!("invalid discovery URL {:?}", a.id.disc))?;
            let c = Client::start(ClientConfig::new(sk.clone(), d));
            c.ready(CONNECT_TIMEOUT)
                .await
                .context("reaching the dmsg network")?;
            Some(c)
        }
        _ => None,
    };
    let io = tokio::time::timeout(
        CONNECT_TIMEOUT,
        skywire_pty::open_stream(&target, &sk, dmsg.as_ref(), SFTP_URI),
    )
    .await
    .with_context(|| format!("reaching {target}: timed out"))??;
    let c = tokio::time::timeout(CONNECT_TIMEOUT, SftpClient::new(io))
        .await
        .with_context(|| format!("sftp with {target}: timed out"))?
        .with_context(|| format!("sftp with {target} (does the host serve {SFTP_URI}?)"))?;
    Ok((c, Conn::Stream(dmsg)))
}

async fn mount(a: MountArgs) -> Result<()> {
    let mut read_only = a.ro;
    let mut allow_other = a.allow_other;
    for o in &a.options {
        match o.as_str() {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "allow_other" => allow_other = true,
            "" => {}
            other => bail!("unknown mount option {other:?} (known: ro, rw, allow_other)"),
        }
    }
    if !a.dir.is_dir() {
        bail!("mount point {} is not a directory", a.dir.display());
    }
    let (client, conn) = connect(&a).await?;
    use std::os::unix::ffi::OsStrExt;
    let cfg = MountConfig {
        read_only,
        cache_timeout: a.cache_timeout,
        uid: a.uid,
        gid: a.gid,
        allow_other,
        remote_root: a.remote_root.as_os_str().as_bytes().to_vec(),
        fs_name: a.target.clone(),
        ..MountConfig::default()
    };
    let handle: MountHandle = skywire_fs::mount::mount(client.clone(), &a.dir, cfg)
        .await
        .with_context(|| format!("mounting at {}", a.dir.display()))?;
    eprintln!("mounted at {}", a.dir.display());
    let reason = tokio::select! {
        _ = crate::util::shutdown_signal() => None,
        _ = handle.wait() => Some("unmounted"),
        _ = client.closed() => Some("lost the connection to the host"),
    };
    match reason {
        None => eprintln!("signal received: unmounting {}", a.dir.display()),
        Some("unmounted") => eprintln!("{} was unmounted", a.dir.display()),
        Some(r) => eprintln!("{r}: unmounting {}", a.dir.display()),
    }
    if let Err(e) = handle.unmount() {
        tracing::debug!(error = %e, "unmount");
    }
    tokio::time::timeout(Duration::from_secs(10), handle.wait())
        .await
        .ok();
    client.close();
    match conn {
        Conn::Stream(Some(d)) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), d.close()).await;
        }
        Conn::Stream(None) => {}
        Conn::Child(mut c) => {
            let _ = c.kill().await;
        }
    }
    if reason == Some("lost the connection to the host") {
        bail!(
            "lost the connection to the host; {} unmounted",
            a.dir.display()
        );
    }
    Ok(())
}

fn umount(dir: &Path) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        nix::mount::umount2(dir, nix::mount::MntFlags::empty())
            .or_else(|_| nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH))
            .with_context(|| format!("unmounting {}", dir.display()))?;
        return Ok(());
    }
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(dir)
        .status()
        .context("running fusermount3 (Debian package fuse3)")?;
    if !status.success() {
        bail!("fusermount3 -u {} failed: {status}", dir.display());
    }
    Ok(())
}
