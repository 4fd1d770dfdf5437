//! Helpers shared by the CLI integration tests: the `skywire` command builder, a background
//! process guard with stdout/stderr line channels, bounded runners, and testnet / pty host
//! starters. Not every test binary uses every helper.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skywire_cipher::PubKey;

/// Bound on waiting for a start-up line.
pub const STARTUP: Duration = Duration::from_secs(60);
/// Bound on waiting for a process to exit.
pub const STOP: Duration = Duration::from_secs(20);

/// The `skywire` binary with the environment variables that would change its defaults removed.
pub fn skywire() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_skywire"));
    c.env_remove("SKYWIRE_LOG").env_remove("DMSGCURL_SK");
    for v in [
        "DMSGPORT",
        "DMSGDISC",
        "DMSGSESSIONS",
        "CLINET",
        "CLIADDR",
        "SK",
    ] {
        c.env_remove(format!("DMSGPTY_{v}"));
    }
    c
}

/// The lines of `r`, read on a thread, on a channel.
pub fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lossy UTF-8.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A current-thread tokio runtime.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A background process (usually `skywire`); its stdout and stderr lines arrive on channels.
/// Killed on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

impl Proc {
    /// `skywire args` in `dir`, stdin from `/dev/null`.
    pub fn start(args: &[&str], dir: &Path) -> Proc {
        Proc::start_with(args, dir, Stdio::null())
    }

    /// `skywire args` in `dir` with the given stdin.
    pub fn start_with(args: &[&str], dir: &Path, stdin: Stdio) -> Proc {
        Proc::spawn(skywire(), args, dir, stdin)
    }

    /// `cmd args` in `dir` with the given stdin.
    pub fn spawn(mut cmd: Command, args: &[&str], dir: &Path, stdin: Stdio) -> Proc {
        cmd.args(args).current_dir(dir);
        Proc::spawn_named(cmd, &args.join(" "), stdin)
    }

    /// `cmd` as it is (arguments, directory), called `name` in messages.
    pub fn spawn_named(mut cmd: Command, name: &str, stdin: Stdio) -> Proc {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Proc {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    /// The first stderr line for which `f` returns something, within `STARTUP`.
    pub fn wait_for<T>(&mut self, f: impl FnMut(&str) -> Option<T>) -> T {
        self.wait_on(true, f)
    }

    /// The first line on stderr (or stdout) for which `f` returns something, within `STARTUP`.
    pub fn wait_on<T>(&mut self, stderr: bool, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + STARTUP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let rx = if stderr { &self.stderr } else { &self.stdout };
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = f(&line) {
                        return v;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    let other: Vec<String> = if stderr {
                        self.stdout.try_iter().collect()
                    } else {
                        self.stderr.try_iter().collect()
                    };
                    panic!(
                        "`skywire {}`: expected line not seen (exit: {status:?})\nseen: {seen:#?}\nother stream: {other:#?}",
                        self.name
                    );
                }
            }
        }
    }

    /// Waits for a pty host's start-up lines: its key, its TCP address and `pty host ready`.
    pub fn wait_ready(&mut self) -> (PubKey, SocketAddr) {
        let pk: PubKey = self.wait_for(|l| l.strip_prefix("pty host ")?.parse().ok());
        let addr: SocketAddr = self.wait_for(|l| {
            l.strip_prefix("pty host listening on tcp ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        });
        self.wait_for(|l| (l == "pty host ready").then_some(()));
        (pk, addr)
    }

    /// Waits (bounded by `STOP`) for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "`skywire {}` did not exit within {STOP:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        self.wait_exit()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `skywire args` to completion, unbounded (for commands that do not block).
pub fn run(args: &[&str], dir: &Path) -> Output {
    skywire()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run skywire")
}

/// Runs `skywire args` to completion within `bound` (killed otherwise), feeding `stdin`.
pub fn run_bounded(args: &[&str], dir: &Path, stdin: Option<&[u8]>, bound: Duration) -> Output {
    let mut child = skywire()
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn skywire");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`skywire {}` did not finish within {bound:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A running `skywire testnet --json`.
pub struct Testnet {
    pub proc: Proc,
    /// The layout line it printed on stdout.
    pub layout: serde_json::Value,
    /// The discovery URL.
    pub disc: String,
}

impl Testnet {
    /// `skywire testnet --json --servers <servers> --clients <clients>` in `dir`, once it
    /// printed its layout.
    pub fn start(dir: &Path, servers: usize, clients: usize) -> Testnet {
        let (s, c) = (servers.to_string(), clients.to_string());
        let mut proc = Proc::start(
            &["testnet", "--json", "--servers", &s, "--clients", &c],
            dir,
        );
        let layout: serde_json::Value = proc.wait_on(false, |l| serde_json::from_str(l).ok());
        let disc = layout["discovery"].as_str().unwrap().to_owned();
        Testnet { proc, layout, disc }
    }
}

/// A `skywire dmsg pty host` with its own generated config; killed on drop.
pub struct PtyHost {
    pub proc: Proc,
    pub conf: PathBuf,
    pub sock: PathBuf,
    pub pk: PubKey,
    /// Its TCP address, when it printed one before `until`.
    pub addr: Option<SocketAddr>,
}

impl PtyHost {
    /// `confgen -o <dir>/<conf_name>`, then the host with that config, the control socket
    /// `<dir>/<sock_name>` and the extra flags `args`; returns once it printed a line starting
    /// with `until`.
    pub fn start(
        dir: &Path,
        conf_name: &str,
        sock_name: &str,
        args: &[&str],
        until: &str,
    ) -> PtyHost {
        let out = run_bounded(
            &["dmsg", "pty", "host", "confgen", "-o", conf_name],
            dir,
            None,
            STOP,
        );
        assert!(out.status.success(), "{out:?}");
        let conf = dir.join(conf_name);
        let sock = dir.join(sock_name);
        let mut full = vec!["dmsg", "pty", "host"];
        full.extend_from_slice(args);
        full.extend([
            "--cliaddr",
            sock.to_str().unwrap(),
            "-c",
            conf.to_str().unwrap(),
        ]);
        let mut proc = Proc::start(&full, dir);
        let (mut pk, mut addr) = (None, None);
        proc.wait_for(|l| {
            if let Some(k) = l.strip_prefix("pty host ").and_then(|k| k.parse().ok()) {
                pk = Some(k);
            }
            if let Some(a) = l
                .strip_prefix("pty host listening on tcp ")
                .and_then(|r| r.split(' ').next())
                .and_then(|a| a.parse().ok())
            {
                addr = Some(a);
            }
            l.starts_with(until).then_some(())
        });
        PtyHost {
            proc,
            conf,
            sock,
            pk: pk.expect("host key line"),
            addr,
        }
    }
}

/// A tiny HTTP server: every request gets `body` (connection closed after the response).
pub fn http_server(body: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}
