//! End to end: the real `skywire` binary in network namespaces this test creates
//! (`swe2e<pid><x>`). "infra" (i) runs the dmsg discovery and two relay servers as processes;
//! three visor namespaces (a, b, c) each run `skywire visor` from a generated config and reach
//! only infra; "internet" (n) has an HTTP server and is reachable only through c, which runs
//! the vpn-server app. Everything is driven by `skywire cli ... --rpc unix:<sock>` run inside the
//! visor's namespace: `visor info` on all three, app stop/start, `pty exec` and `pty fs mount`
//! from a on c (c whitelists a) with a file round trip, `proxy start --pk <b>` on a with
//! `curl --socks5-hostname` to a server on b's loopback, a skynet forward from a to a TCP port on
//! c's loopback (the standalone `cli skynet` instances: the visor-integrated one is not on this
//! branch yet), and `vpn start <c>` on a with curl to the internet server through the tunnel,
//! `vpn status`, `vpn stop` and the routes gone. Needs root, iproute2, curl and FUSE.
//!
//! The test binary lives in the cli crate so that `CARGO_BIN_EXE_skywire` names the binary
//! under test (no guessing of target directories). Fixed ports are used only inside the
//! namespaces this test creates, where nothing else runs. Namespaces, the FUSE mount and the
//! detached skynet instances are removed on drop, also when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, skywire, text};
use serde_json::Value;

/// Bound on one command.
const BOUND: Duration = Duration::from_secs(90);

/// Runs `cmd` to completion within `bound` (killed otherwise).
fn run_cmd(mut cmd: Command, what: &str, bound: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
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
            panic!("`{what}` did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn sh(args: &[&str]) -> Output {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    run_cmd(c, &args.join(" "), BOUND)
}

fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// `ip netns exec <ns> skywire`, with the environment of `common::skywire()`.
fn sw_in(ns: &str, dir: &Path) -> Command {
    let base = skywire();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(base.get_program());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(dir);
    c
}

/// Runs `skywire args` inside `ns`, bounded.
fn sw(ns: &str, dir: &Path, args: &[&str]) -> Output {
    let mut c = sw_in(ns, dir);
    c.args(args);
    run_cmd(c, &format!("{ns}: skywire {}", args.join(" ")), BOUND)
}

/// Like `sw`, asserting success; returns stdout.
fn sw_ok(ns: &str, dir: &Path, args: &[&str]) -> String {
    let o = sw(ns, dir, args);
    assert!(
        o.status.success(),
        "{ns}: skywire {}: {}\n{}",
        args.join(" "),
        text(&o.stderr),
        text(&o.stdout)
    );
    text(&o.stdout)
}

/// Runs `f` on a thread that joined `ns`'s network namespace (sockets it binds and processes it
/// spawns stay in that namespace; the mount namespace stays the test's).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// HTTP server answering every request with `<tag> <client ip>`.
fn http_whoami(l: TcpListener, tag: &'static str) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let body = format!("{tag} {}", s.peer_addr().unwrap().ip());
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
}

fn serve_in(ns: &str, addr: &str, tag: &'static str) -> SocketAddr {
    let addr: SocketAddr = addr.parse().unwrap();
    let l = in_netns(ns, move || TcpListener::bind(addr).unwrap());
    let a = l.local_addr().unwrap();
    http_whoami(l, tag);
    a
}

/// curl inside `ns` (3 s bound); the body on success.
fn curl(ns: &str, extra: &[&str], url: &str) -> Option<String> {
    let mut v = vec!["ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "3"];
    v.extend_from_slice(extra);
    v.push(url);
    let o = sh(&v);
    o.status.success().then(|| text(&o.stdout))
}

fn poll<T>(what: &str, bound: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The test's namespaces (their veths go with them); deleted on drop.
struct Nets(Vec<String>);

impl Drop for Nets {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = sh(&["ip", "netns", "del", n]);
        }
    }
}

/// A FUSE mount point: lazily unmounted on drop (after its client was killed).
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = sh(&["umount", "-l", self.0.to_str().unwrap()]);
    }
}

/// Stops the detached `cli skynet` instances of a state directory on drop.
struct SkynetGuard(PathBuf);

impl Drop for SkynetGuard {
    fn drop(&mut self) {
        let st = self.0.to_str().unwrap();
        let mut c = skywire();
        c.args(["cli", "skynet", "stop", "--state-dir", st]);
        let _ = run_cmd(c, "skynet stop", Duration::from_secs(20));
        let mut c = skywire();
        c.args(["cli", "skynet", "srv", "stop", "--state-dir", st]);
        let _ = run_cmd(c, "skynet srv stop", Duration::from_secs(20));
    }
}

struct Visor {
    ns: String,
    dir: PathBuf,
    pk: String,
    rpc: String,
    proc: Proc,
}

impl Visor {
    /// `cli <args[..2]> --rpc <rpc> <args[2..]>` inside the visor's namespace.
    fn cli(&self, args: &[&str]) -> Output {
        let mut full = vec!["cli"];
        let split = args.len().min(2);
        full.extend_from_slice(&args[..split]);
        full.extend(["--rpc", &self.rpc]);
        full.extend_from_slice(&args[split..]);
        sw(&self.ns, &self.dir, &full)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "{}: cli {args:?}: {}\n{}",
            self.ns,
            text(&o.stderr),
            text(&o.stdout)
        );
        text(&o.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }
}

/// `cli config gen` for a visor of this test (unix control socket, no stcp listener, app
/// server on loopback :0), then its own pty socket and local path.
fn gen_config(dir: &Path, name: &str, disc: &str, extra: &[&str]) -> (PathBuf, String, String) {
    let conf = dir.join(format!("{name}.json"));
    let rpc = format!("unix:{}", dir.join(format!("{name}.rpc.sock")).display());
    let mut c = skywire();
    c.args(["cli", "config", "gen", "-o", conf.to_str().unwrap()])
        .args(["--dmsg-disc", disc, "--cli-addr", &rpc])
        .args([
            "--stcp-local-address",
            "",
            "--app-server-addr",
            "127.0.0.1:0",
        ])
        .args(extra);
    let o = run_cmd(c, "config gen", BOUND);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&conf).unwrap()).unwrap();
    v["dmsgpty"]["cli_address"] =
        Value::String(dir.join(format!("{name}.pty.sock")).display().to_string());
    v["local_path"] = Value::String(dir.join(format!("{name}-local")).display().to_string());
    std::fs::write(&conf, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let pk = v["pk"].as_str().unwrap().to_string();
    (conf, rpc, pk)
}

fn start_visor(ns: &str, dir: &Path, conf: &Path, rpc: &str) -> Visor {
    let mut c = sw_in(ns, dir);
    c.args(["visor", "-c", conf.to_str().unwrap()]);
    let mut proc = Proc::spawn_named(c, &format!("{ns}: visor"), Stdio::null());
    let pk = proc.wait_for(|l| {
        l.strip_prefix("visor ")
            .and_then(|r| r.strip_suffix(" running"))
            .map(String::from)
    });
    Visor {
        ns: ns.to_string(),
        dir: dir.to_path_buf(),
        pk,
        rpc: rpc.to_string(),
        proc,
    }
}

fn app<'a>(apps: &'a Value, name: &str) -> &'a Value {
    apps.as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no app {name} in {apps}"))
}

#[test]
fn e2e_visors_in_network_namespaces() {
    let pid = std::process::id();
    let [i, a, b, c, n] = ["i", "a", "b", "c", "n"].map(|x| format!("swe2e{pid}{x}"));
    let nets = Nets(vec![i.clone(), a.clone(), b.clone(), c.clone(), n.clone()]);
    for ns in &nets.0 {
        ok(&["ip", "netns", "add", ns]);
        ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let veth = |x: &str, xn: &str, y: &str, yn: &str| {
        ok(&[
            "ip", "link", "add", x, "netns", xn, "type", "veth", "peer", "name", y, "netns", yn,
        ]);
        ok(&["ip", "-n", xn, "link", "set", x, "up"]);
        ok(&["ip", "-n", yn, "link", "set", y, "up"]);
    };
    let addr = |ns: &str, ip: &str, dev: &str| ok(&["ip", "-n", ns, "addr", "add", ip, "dev", dev]);
    let route = |ns: &str, args: &[&str]| {
        let mut v = vec!["ip", "-n", ns, "route", "add"];
        v.extend_from_slice(args);
        ok(&v);
    };
    // infra: discovery and relays on 10.200.0.1 (its loopback); a /24 link to each visor.
    // infra does not forward, so the visors reach the relays and nothing else.
    addr(&i, "10.200.0.1/32", "lo");
    for (k, ns) in [(1, &a), (2, &b), (3, &c)] {
        veth(&format!("v{k}"), &i, "eth0", ns);
        addr(&i, &format!("10.210.{k}.1/24"), &format!("v{k}"));
        addr(ns, &format!("10.210.{k}.2/24"), "eth0");
        route(ns, &["10.200.0.0/24", "via", &format!("10.210.{k}.1")]);
    }
    route(&a, &["default", "via", "10.210.1.1"]);
    route(&b, &["default", "via", "10.210.2.1"]);
    // internet <-> c (c's default route, so its exit interface).
    veth("inet0", &n, "exit0", &c);
    addr(&n, "198.18.0.2/24", "inet0");
    addr(&c, "198.18.0.1/24", "exit0");
    route(&c, &["default", "via", "198.18.0.2"]);

    let internet = serve_in(&n, "198.18.0.2:80", "internet");
    let on_b = serve_in(&b, "127.0.0.1:0", "b-local");
    let on_c = serve_in(&c, "127.0.0.1:0", "c-local");

    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    // dmsg discovery and two relays in infra.
    let disc = "http://10.200.0.1:9090";
    let mut cmd = sw_in(&i, d);
    cmd.args([
        "dmsg",
        "disc",
        "--addr",
        "10.200.0.1:9090",
        "--store",
        "memory",
    ]);
    let _disc = Proc::spawn_named(cmd, "infra: dmsg disc", Stdio::null());
    poll("discovery", Duration::from_secs(30), || {
        curl(&i, &[], &format!("{disc}/health"))
    });
    let mut relays = Vec::new();
    for (k, port) in [(1, 8081), (2, 8083)] {
        let conf = d.join(format!("relay{k}.json"));
        let (local, health) = (
            format!("10.200.0.1:{port}"),
            format!("10.200.0.1:{}", port + 1),
        );
        let mut cmd = skywire();
        cmd.args(["dmsg", "server", "config", "gen", "-o"])
            .arg(&conf)
            .args(["--discovery", disc, "--local-address", &local])
            .args(["--public-address", &local, "--health-address", &health]);
        let o = run_cmd(cmd, "dmsg server config gen", BOUND);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let mut cmd = sw_in(&i, d);
        cmd.args(["dmsg", "server", "-c", conf.to_str().unwrap()]);
        relays.push(Proc::spawn_named(
            cmd,
            &format!("infra: dmsg server {k}"),
            Stdio::null(),
        ));
    }
    poll("both relays registered", Duration::from_secs(30), || {
        curl(&i, &[], &format!("{disc}/dmsg-discovery/all_servers"))
            .filter(|s| s.contains("10.200.0.1:8081") && s.contains("10.200.0.1:8083"))
    });

    // Visors: c whitelists a for pty; b serves skysocks (the default); c does not.
    let (conf_a, rpc_a, pk_a) = gen_config(d, "a", disc, &[]);
    let (conf_b, rpc_b, _) = gen_config(d, "b", disc, &[]);
    let (conf_c, rpc_c, _) = gen_config(d, "c", disc, &["--dmsgpty", &pk_a, "--noproxyserver"]);
    let va = start_visor(&a, d, &conf_a, &rpc_a);
    let vb = start_visor(&b, d, &conf_b, &rpc_b);
    let vc = start_visor(&c, d, &conf_c, &rpc_c);
    assert_eq!(va.pk, pk_a);

    // info on all three, once each has its relay sessions.
    for v in [&va, &vb, &vc] {
        let info = poll(
            &format!("{}: dmsg sessions", v.ns),
            Duration::from_secs(60),
            || {
                let i = v.json(&["visor", "info"]);
                i["dmsg_servers"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())
                    .then_some(i)
            },
        );
        assert_eq!(info["pk"], v.pk.as_str(), "{info}");
        let table = v.ok(&["visor", "info"]);
        assert!(table.contains(&v.pk), "{table}");
    }

    // Apps: start vpn-server on c; stop and start skysocks on a.
    let apps_c = vc.json(&["visor", "app", "ls"]);
    assert_eq!(app(&apps_c, "vpn-server")["status"], 0, "{apps_c}");
    assert_eq!(app(&apps_c, "skysocks")["status"], 0, "{apps_c}");
    vc.ok(&["visor", "app", "start", "vpn-server"]);
    poll("vpn-server running on c", Duration::from_secs(30), || {
        let s = vc.json(&["visor", "app", "ls"]);
        let v = app(&s, "vpn-server");
        (v["status"] == 1 && v["detailed_status"] == "Running").then_some(())
    });
    let apps_a = va.json(&["visor", "app", "ls"]);
    assert_eq!(app(&apps_a, "skysocks")["status"], 1, "{apps_a}");
    let st = va.json(&["visor", "app", "stop", "skysocks"]);
    assert_eq!(st["status"], 0, "{st}");
    let st = va.json(&["visor", "app", "start", "skysocks"]);
    assert!(st["status"] == 1 || st["status"] == 3, "{st}");

    // pty exec on c from a through a's visor; b is not whitelisted on c.
    let o = va.cli(&[
        "pty",
        "exec",
        &vc.pk,
        "--",
        "sh",
        "-c",
        "echo on-c $(cat /proc/sys/net/ipv4/ip_forward); exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    // ip_forward is per namespace: 1 only in c, where vpn-server runs.
    assert_eq!(text(&o.stdout), "on-c 1\n");
    let o = vb.cli(&["pty", "exec", &vc.pk, "--", "true"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("whitelist"), "{}", text(&o.stderr));

    // fs mount of a directory of c on a, through a's visor, with a file round trip. The mount
    // client runs in a's network namespace but in the test's mount namespace.
    let share = d.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("f.txt"), b"file on c").unwrap();
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let guard_mnt = MountGuard(mnt.clone());
    let mut mount = {
        let mut cmd = skywire();
        cmd.args(["cli", "pty", "fs", "mount", &vc.pk])
            .arg(&mnt)
            .arg("--remote-root")
            .arg(&share)
            .args(["--rpc", &va.rpc])
            .current_dir(d);
        in_netns(&a, move || {
            Proc::spawn_named(cmd, "a: pty fs mount", Stdio::null())
        })
    };
    poll("the mount", Duration::from_secs(60), || {
        if let Ok(Some(s)) = mount.child.try_wait() {
            panic!(
                "mount exited {s}: {:?}",
                mount.stderr.try_iter().collect::<Vec<_>>()
            );
        }
        (std::fs::read(mnt.join("f.txt")).ok().as_deref() == Some(&b"file on c"[..])).then_some(())
    });
    std::fs::write(mnt.join("back.txt"), b"written on a").unwrap();
    assert_eq!(
        std::fs::read(share.join("back.txt")).unwrap(),
        b"written on a"
    );
    std::fs::write(share.join("later.txt"), b"second file").unwrap();
    assert_eq!(
        std::fs::read(mnt.join("later.txt")).unwrap(),
        b"second file"
    );
    let st = mount.terminate();
    assert!(st.success(), "{st}");
    drop(guard_mnt);

    // SOCKS5 proxy on a through b's skysocks: the target is b's loopback.
    assert!(curl(&a, &[], &format!("http://{on_b}/")).is_none());
    va.ok(&["proxy", "start", "--pk", &vb.pk, "--addr", "127.0.0.1:1080"]);
    assert_eq!(va.json(&["proxy", "status"])["status"], 1);
    let got = poll("curl through the proxy", Duration::from_secs(30), || {
        curl(
            &a,
            &["--socks5-hostname", "127.0.0.1:1080"],
            &format!("http://{on_b}/"),
        )
    });
    assert_eq!(got, "b-local 127.0.0.1");
    va.ok(&["proxy", "stop"]);
    assert_eq!(va.json(&["proxy", "status"])["status"], 0);
    assert!(
        curl(
            &a,
            &["--socks5-hostname", "127.0.0.1:1080"],
            &format!("http://{on_b}/")
        )
        .is_none()
    );

    // skynet forward from a to a TCP port on c's loopback.
    let st_dir = d.join("skynet");
    let _guard_skynet = SkynetGuard(st_dir.clone());
    let st = st_dir.to_str().unwrap();
    let (srv_sk, cli_sk) = (
        skywire_cipher::SecKey::generate(),
        skywire_cipher::SecKey::generate(),
    );
    let out = sw_ok(
        &c,
        d,
        &[
            "cli",
            "skynet",
            "srv",
            "start",
            "--ports",
            &on_c.port().to_string(),
            "--wl",
            &cli_sk.pub_key().to_hex(),
            "--sk",
            &srv_sk.to_hex(),
            "--disc",
            disc,
            "--state-dir",
            st,
        ],
    );
    assert!(out.contains("skynet-srv started"), "{out}");
    let out = sw_ok(
        &a,
        d,
        &[
            "cli",
            "skynet",
            "start",
            "--pk",
            &srv_sk.pub_key().to_hex(),
            "--remote",
            &on_c.port().to_string(),
            "--local",
            "0",
            "--dmsg",
            "--sk",
            &cli_sk.to_hex(),
            "--disc",
            disc,
            "--state-dir",
            st,
        ],
    );
    let name = out.split_whitespace().next().unwrap().to_owned();
    let state: Value =
        serde_json::from_slice(&std::fs::read(st_dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let local = state["addrs"]["local"].as_str().unwrap().to_owned();
    let got = poll("curl through skynet", Duration::from_secs(30), || {
        curl(&a, &[], &format!("http://{local}/"))
    });
    assert_eq!(got, "c-local 127.0.0.1");

    // VPN: a reaches the internet only through c.
    let url = format!("http://{internet}/");
    assert!(
        curl(&a, &[], &url).is_none(),
        "internet reachable without VPN"
    );
    let routes_before = ok(&["ip", "-n", &a, "-4", "route", "show", "table", "all"]);
    let out = va.ok(&["vpn", "start", &vc.pk]);
    assert!(out.contains("vpn connected"), "{out}");
    let got = poll("curl through the VPN", Duration::from_secs(30), || {
        curl(&a, &[], &url)
    });
    // c masquerades: the internet sees c's exit address.
    assert_eq!(got, "internet 198.18.0.1");
    let status = va.json(&["vpn", "status"]);
    assert_eq!(status["status"], 1, "{status}");
    assert_eq!(status["detailed_status"], "Running", "{status}");
    let routes = ok(&["ip", "-n", &a, "-4", "route", "show"]);
    assert!(
        routes.contains("0.0.0.0/1") && routes.contains("128.0.0.0/1"),
        "{routes}"
    );
    va.ok(&["vpn", "stop"]);
    let routes = poll("vpn routes removed", Duration::from_secs(30), || {
        let r = ok(&["ip", "-n", &a, "-4", "route", "show", "table", "all"]);
        (!r.contains("0.0.0.0/1")).then_some(r)
    });
    assert_eq!(routes, routes_before, "a's routes restored");
    assert_eq!(va.json(&["vpn", "status"])["status"], 0);
    assert!(
        curl(&a, &[], &url).is_none(),
        "internet reachable after VPN stop"
    );

    // The visors stop cleanly on SIGTERM.
    for mut v in [va, vb, vc] {
        let st = v.proc.terminate();
        assert!(st.success(), "{}: visor exit {st}", v.ns);
    }
}
