//! Memory of a running `skywire visor`. Run with:
//!
//! ```text
//! cargo build --release -p skywire
//! flock /work/wt/bench.lock cargo run --release -p skywire-bench --bin visor-bench
//! cargo run --release -p skywire-bench --bin visor-bench -- --sessions 50 --rounds 5
//! ```
//!
//! Starts `target/release/skywire testnet --servers 1 --clients 0` (discovery and one relay in
//! one process) and one `skywire visor` from a `skywire cli config gen` config (default apps:
//! skysocks running; pty whitelisting this benchmark's key; unix control socket; no stcp
//! listener), and reads `VmRSS`, `VmHWM`, `Threads` and the open fds of the visor process from
//! `/proc/<pid>` at four points:
//!
//! 1. idle, 5 s after its first relay session (the control API answers `visor info`);
//! 2. with `--sessions` (100) concurrent pty sessions open to it: an in-process dmsg client
//!    dials the visor's pty port 22 once per session (one dmsg stream each, all over the one
//!    relay session) and `pty.Start`s `sleep 600` on a new pty; measured 3 s after the last one
//!    started;
//! 3. 5 s after all those streams were closed (the visor ends the sessions and their children);
//! 4. again for `--rounds` (3) rounds in all, with the same number of sessions (growth from
//!    round to round would be a leak, not memory the allocator keeps), and after they close.
//!
//! Every wait is bounded; the visor and the testnet are killed at the end, also on error.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_bench::skywire_bin;
use skywire_cipher::SecKey;
use skywire_pty::PtyClient;

/// Bound on each start-up step.
const READY: Duration = Duration::from_secs(60);
/// The visor's pty port on dmsg.
const PTY_PORT: u16 = 22;

/// A child process killed on drop, its stderr (or stdout) lines on a channel.
struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    fn spawn(cmd: &mut Command, stdout: bool) -> Result<Bg> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(if stdout {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        let r: Box<dyn std::io::Read + Send> = match (child.stdout.take(), child.stderr.take()) {
            (Some(o), _) => Box::new(o),
            (None, Some(e)) => Box::new(e),
            (None, None) => bail!("no output pipe"),
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Bg { child, lines })
    }

    /// The first line for which `f` returns something, within `READY`.
    fn wait_line<T>(&self, what: &str, mut f: impl FnMut(&str) -> Option<T>) -> Result<T> {
        let deadline = Instant::now() + READY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(v) = f(&l) {
                        return Ok(v);
                    }
                }
                Err(_) => bail!("{what}: the expected line did not come within {READY:?}"),
            }
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One reading of a process's memory.
#[derive(Debug, Clone, Copy)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    fds: usize,
}

fn mem(pid: u32) -> Result<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .count();
    Ok(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        threads: field("Threads:")?,
        fds,
    })
}

/// Child processes of `pid` (the visor's pty sessions' commands), over all its threads (each
/// thread's `children` lists only the children it forked).
fn children(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .map(|s| s.split_whitespace().count())
        .sum()
}

fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {} ({})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes the visor config: generated, then its own pty socket and local path.
fn visor_config(bin: &Path, dir: &Path, disc: &str, allow: &str) -> Result<(PathBuf, String)> {
    let conf = dir.join("visor.json");
    let rpc = format!("unix:{}", dir.join("visor.rpc.sock").display());
    run_ok(
        Command::new(bin)
            .args(["cli", "config", "gen", "-o"])
            .arg(&conf)
            .args(["--dmsg-disc", disc, "--cli-addr", &rpc, "--dmsgpty", allow])
            .args([
                "--stcp-local-address",
                "",
                "--app-server-addr",
                "127.0.0.1:0",
            ]),
    )?;
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&conf)?)?;
    v["dmsgpty"]["cli_address"] = dir.join("visor.pty.sock").display().to_string().into();
    v["local_path"] = dir.join("local").display().to_string().into();
    std::fs::write(&conf, serde_json::to_string_pretty(&v)?)?;
    Ok((conf, rpc))
}

/// Opens `n` pty sessions (`sleep 600`) on `host` through `dmsg`, 16 at a time.
async fn open_sessions(
    dmsg: &skywire_dmsg::Client,
    host: skywire_cipher::PubKey,
    n: usize,
) -> Result<Vec<PtyClient>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(16);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let dmsg = dmsg.clone();
            set.spawn(async move {
                let c = PtyClient::connect_dmsg(&dmsg, host, PTY_PORT).await?;
                c.start("sleep", &["600".to_string()], None).await?;
                anyhow::Ok(c)
            });
        }
        while let Some(r) = set.join_next().await {
            out.push(r.context("session task")??);
        }
    }
    Ok(out)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn main() -> Result<()> {
    let mut sessions = 100usize;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sessions" => {
                sessions = args
                    .next()
                    .context("--sessions N")?
                    .parse()
                    .context("--sessions N")?;
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .context("--rounds N")?
                    .parse()
                    .context("--rounds N")?;
            }
            other => bail!("unknown argument {other} (--sessions N, --rounds N)"),
        }
    }
    let bin = skywire_bin()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();

    let testnet = Bg::spawn(
        Command::new(&bin)
            .args(["testnet", "--json", "--servers", "1", "--clients", "0"])
            .current_dir(dir),
        true,
    )?;
    let layout: serde_json::Value =
        testnet.wait_line("testnet", |l| serde_json::from_str(l).ok())?;
    let disc = layout["discovery"]
        .as_str()
        .context("testnet layout without discovery")?
        .to_string();

    let sk = SecKey::generate();
    let (conf, rpc) = visor_config(&bin, dir, &disc, &sk.pub_key().to_hex())?;
    let visor = Bg::spawn(
        Command::new(&bin)
            .args(["visor", "-c"])
            .arg(&conf)
            .env_remove("SKYWIRE_LOG")
            .current_dir(dir),
        false,
    )?;
    let pk: skywire_cipher::PubKey = visor.wait_line("visor", |l| {
        l.strip_prefix("visor ")?
            .strip_suffix(" running")?
            .parse()
            .ok()
    })?;
    let vpid = visor.child.id();
    let deadline = Instant::now() + READY;
    loop {
        let info =
            run_ok(Command::new(&bin).args(["cli", "visor", "info", "--rpc", &rpc, "--json"]))?;
        let v: serde_json::Value = serde_json::from_str(&info)?;
        if v["dmsg_servers"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the visor has no relay session after {READY:?}: {info}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let settle = |secs: u64| std::thread::sleep(Duration::from_secs(secs));
    settle(5);
    let idle = mem(vpid)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut cfg =
        skywire_dmsg::ClientConfig::new(sk.clone(), skywire_dmsg::disc::DiscClient::new(&disc)?);
    cfg.first_stream_delay = Duration::ZERO;
    let dmsg = rt.block_on(async { skywire_dmsg::Client::start(cfg) });

    let mut rows: Vec<(String, Mem, usize)> =
        vec![("idle after start-up".into(), idle, children(vpid))];
    for round in 1..=rounds {
        let t0 = Instant::now();
        let open = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(120), open_sessions(&dmsg, pk, sessions))
                .await
                .context("opening the sessions took over 120 s")?
        })?;
        let open_secs = t0.elapsed().as_secs_f64();
        settle(3);
        let kids = children(vpid);
        if kids < sessions {
            bail!("round {round}: {kids} children of the visor, {sessions} sessions wanted");
        }
        rows.push((
            format!("round {round}: {sessions} pty sessions open ({open_secs:.1} s to open)"),
            mem(vpid)?,
            kids,
        ));
        for c in &open {
            c.close();
        }
        drop(open);
        settle(5);
        rows.push((
            format!("round {round}: 5 s after closing them"),
            mem(vpid)?,
            children(vpid),
        ));
    }
    drop(dmsg);
    drop(rt);

    println!(
        "visor-bench: `skywire visor` (release) pid {vpid}, default apps (skysocks running), one relay; \
         2 shared cores\n"
    );
    println!(
        "| visor process                                     | VmRSS MiB | VmHWM MiB | threads | fds | children |"
    );
    println!(
        "|---------------------------------------------------|----------:|----------:|--------:|----:|---------:|"
    );
    for (what, m, kids) in &rows {
        println!(
            "| {what:<49} | {:>9} | {:>9} | {:>7} | {:>3} | {kids:>8} |",
            mib(m.rss_kib),
            mib(m.hwm_kib),
            m.threads,
            m.fds
        );
    }
    if let Some((_, with, _)) = rows.get(1) {
        let per = (with.rss_kib.saturating_sub(idle.rss_kib)) as f64 / sessions as f64;
        println!("\nRSS per open pty session (round 1, over idle): {per:.1} KiB");
    }
    let after: Vec<String> = rows
        .iter()
        .skip(2)
        .step_by(2)
        .map(|(_, m, _)| mib(m.rss_kib))
        .collect();
    println!("RSS after each round closed, MiB: {}", after.join(", "));
    drop(visor);
    drop(testnet);
    Ok(())
}
