//! `skywire app vpn-server` / `vpn-client` end to end in network namespaces this test creates
//! (`swvpn<pid><x>`): "internet" (i) with HTTP and echo servers, the exit (s) that is the only
//! way to it, a router (r) that runs the dmsg discovery and relay and is the client's old
//! gateway, and the client (c). Checks the tunnel (curl sees the exit's address, ping, echo),
//! `--secure`, the IPv6 block, the kill switch after the server is killed, reconnect, and that
//! routes, nft tables, sysctls and resolv.conf are back to the snapshot after exit and after
//! `kill -9` + restart. Needs root, iproute2, nftables, iputils-ping and curl.
//!
//! Fixed ports are used only inside the namespaces this test creates, where nothing else runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, skywire, text};

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
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

/// The test's namespaces; deleted (with their links) on drop.
struct Nets {
    names: Vec<String>,
    etc: PathBuf,
}

impl Drop for Nets {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = sh(&["ip", "netns", "del", n]);
        }
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

fn ns_exec(ns: &str, args: &[&str]) -> Output {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    sh(&v)
}

/// A TCP listener bound inside `ns` (the socket stays in that namespace).
fn bind_in(ns: &str, addr: &str) -> TcpListener {
    let path = format!("/run/netns/{ns}");
    let addr: SocketAddr = addr.parse().unwrap();
    std::thread::spawn(move || {
        let f = std::fs::File::open(path).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpListener::bind(addr).unwrap()
    })
    .join()
    .unwrap()
}

/// HTTP server answering every request with the client's IP address.
fn http_whoami(l: TcpListener) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let body = s.peer_addr().unwrap().ip().to_string();
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
}

fn echo(l: TcpListener) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
}

fn curl(ns: &str, url: &str) -> Option<String> {
    let o = ns_exec(ns, &["curl", "-sS", "--max-time", "3", url]);
    o.status.success().then(|| text(&o.stdout))
}

fn ping(ns: &str, ip: &str) -> bool {
    ns_exec(ns, &["ping", "-c1", "-W2", ip]).status.success()
}

fn poll<T>(what: &str, bound: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn wait_state(path: &Path, state: &str) -> serde_json::Value {
    poll(
        &format!("state {state} in {}", path.display()),
        Duration::from_secs(60),
        || status(path).filter(|s| s["state"] == state),
    )
}

/// Routes (v4 and v6), nft ruleset, forwarding sysctls and resolv.conf of a namespace.
fn snapshot(ns: &str, resolv: &Path) -> String {
    let mut s = String::new();
    for args in [
        &["ip", "-4", "route", "show", "table", "all"][..],
        &["ip", "-6", "route", "show", "table", "all"][..],
        &["nft", "list", "ruleset"][..],
        &["cat", "/proc/sys/net/ipv4/ip_forward"][..],
        &["cat", "/proc/sys/net/ipv6/conf/all/forwarding"][..],
    ] {
        // Link-local routes appear by themselves once DAD finishes: not ours, not compared.
        for line in text(&ns_exec(ns, args).stdout).lines() {
            if !line.contains("fe80:") {
                s.push_str(line);
                s.push('\n');
            }
        }
        s.push_str("--\n");
    }
    s.push_str(&std::fs::read_to_string(resolv).unwrap_or_default());
    s
}

fn kill9(p: &mut Proc) {
    let _ = p.child.kill();
    let _ = p.child.wait();
}

#[test]
fn vpn_in_network_namespaces() {
    let pid = std::process::id();
    let [i, s, r, c] = ["i", "s", "r", "c"].map(|x| format!("swvpn{pid}{x}"));
    let nets = Nets {
        names: vec![i.clone(), s.clone(), r.clone(), c.clone()],
        etc: PathBuf::from(format!("/etc/netns/{c}")),
    };
    for n in &nets.names {
        ok(&["ip", "netns", "add", n]);
        ok(&["ip", "-n", n, "link", "set", "lo", "up"]);
    }
    let veth = |a: &str, an: &str, b: &str, bn: &str| {
        ok(&[
            "ip", "link", "add", a, "netns", an, "type", "veth", "peer", "name", b, "netns", bn,
        ]);
        ok(&["ip", "-n", an, "link", "set", a, "up"]);
        ok(&["ip", "-n", bn, "link", "set", b, "up"]);
    };
    let addr = |ns: &str, ip: &str, dev: &str| ok(&["ip", "-n", ns, "addr", "add", ip, "dev", dev]);
    let route = |ns: &str, args: &[&str]| {
        let mut v = vec!["ip", "-n", ns, "route", "add"];
        v.extend_from_slice(args);
        ok(&v);
    };
    // internet <-> exit
    veth("inet0", &i, "exit0", &s);
    addr(&i, "198.18.0.2/24", "inet0");
    addr(&s, "198.18.0.1/24", "exit0");
    addr(&i, "10.205.0.2/32", "lo"); // a private target behind the exit
    route(&s, &["default", "via", "198.18.0.2"]);
    route(&s, &["10.205.0.0/24", "via", "198.18.0.2"]);
    // exit <-> router (relay + discovery live on the router)
    veth("lan0", &s, "rs0", &r);
    addr(&s, "10.202.0.2/24", "lan0");
    addr(&r, "10.202.0.1/24", "rs0");
    // router <-> client
    veth("rc0", &r, "eth0", &c);
    addr(&r, "10.203.0.1/24", "rc0");
    addr(&c, "10.203.0.2/24", "eth0");
    ok(&[
        "ip",
        "-n",
        &r,
        "addr",
        "add",
        "fd77::1/64",
        "dev",
        "rc0",
        "nodad",
    ]);
    ok(&[
        "ip",
        "-n",
        &c,
        "addr",
        "add",
        "fd77::2/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    addr(&r, "10.204.0.1/32", "lo"); // reachable only outside the tunnel: the leak detector
    route(&c, &["default", "via", "10.203.0.1"]);
    route(&s, &["10.203.0.0/24", "via", "10.202.0.1"]);
    ok(&[
        "ip",
        "netns",
        "exec",
        &r,
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
    ]);
    std::fs::create_dir_all(&nets.etc).unwrap();
    let resolv = nets.etc.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.203.0.1\n").unwrap();

    http_whoami(bind_in(&i, "198.18.0.2:80"));
    echo(bind_in(&i, "198.18.0.2:7"));
    http_whoami(bind_in(&i, "10.205.0.2:80"));
    http_whoami(bind_in(&r, "10.204.0.1:80"));

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let in_ns = |ns: &str, args: &[&str]| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_skywire")])
            .args(args)
            .current_dir(d)
            .env_remove("SKYWIRE_LOG");
        Proc::spawn_named(cmd, &format!("{ns}: {}", args.join(" ")), Stdio::null())
    };
    let _disc = in_ns(
        &r,
        &[
            "dmsg",
            "disc",
            "--addr",
            "10.202.0.1:9090",
            "--store",
            "memory",
        ],
    );
    let disc = "http://10.202.0.1:9090";
    let conf = d.join("relay.json");
    let o = skywire()
        .args([
            "dmsg",
            "server",
            "config",
            "gen",
            "-o",
            conf.to_str().unwrap(),
        ])
        .args(["--discovery", disc, "--local-address", "10.202.0.1:8081"])
        .args([
            "--public-address",
            "10.202.0.1:8081",
            "--health-address",
            "10.202.0.1:8082",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    poll("discovery", Duration::from_secs(30), || {
        curl(&r, &format!("{disc}/health")).map(|_| ())
    });
    let _relay = in_ns(&r, &["dmsg", "server", "-c", conf.to_str().unwrap()]);
    poll("relay registered", Duration::from_secs(30), || {
        curl(&r, &format!("{disc}/dmsg-discovery/all_servers"))
            .filter(|b| b.contains("10.202.0.1:8081"))
    });

    // Before: the client has no way to the internet but reaches the leak target and IPv6.
    let snap_c = snapshot(&c, &resolv);
    let snap_s = snapshot(&s, &resolv);
    assert_eq!(
        curl(&c, "http://10.204.0.1/").as_deref(),
        Some("10.203.0.2")
    );
    assert!(curl(&c, "http://198.18.0.2/").is_none());
    assert!(ping(&c, "fd77::1"), "IPv6 works before the VPN");
    assert!(
        curl(&s, "http://10.205.0.2/").is_some(),
        "private target behind the exit"
    );

    let srv_sk = "1111111111111111111111111111111111111111111111111111111111111111";
    let srv_state = d.join("srv-state");
    let srv_status = d.join("srv-status.json");
    let server_args = [
        "app",
        "vpn-server",
        "--sk",
        srv_sk,
        "--disc",
        disc,
        "--passcode",
        "pw",
        "--state-dir",
        srv_state.to_str().unwrap(),
        "--status-file",
        srv_status.to_str().unwrap(),
    ];
    let mut server = in_ns(&s, &server_args);
    let st = wait_state(&srv_status, "running");
    let srv_pk = st["pk"].as_str().unwrap().to_string();
    assert_eq!(st["exit_interface"], "exit0");

    // Wrong passcode: refused, the client exits with an error and leaves nothing behind.
    let cli_state = d.join("cli-state");
    let cli_status = d.join("cli-status.json");
    let mut bad = in_ns(
        &c,
        &[
            "app",
            "vpn-client",
            "--srv",
            &srv_pk,
            "--disc",
            disc,
            "--passcode",
            "nope",
            "--state-dir",
            cli_state.to_str().unwrap(),
            "--status-file",
            cli_status.to_str().unwrap(),
        ],
    );
    assert!(!bad.wait_exit().success());
    assert_eq!(
        snapshot(&c, &resolv),
        snap_c,
        "refused client restored everything"
    );

    let client_args = [
        "app",
        "vpn-client",
        "--srv",
        &srv_pk,
        "--disc",
        disc,
        "--passcode",
        "pw",
        "--killswitch",
        "--dns",
        "198.18.0.53",
        "--resolv-conf",
        resolv.to_str().unwrap(),
        "--state-dir",
        cli_state.to_str().unwrap(),
        "--status-file",
        cli_status.to_str().unwrap(),
    ];
    let mut client = in_ns(&c, &client_args);
    let st = wait_state(&cli_status, "connected");
    assert_eq!(st["tun_ip"], "172.16.0.12");
    assert_eq!(st["tun_gateway"], "172.16.0.11");
    assert_eq!(st["server"], srv_pk.as_str());

    // Through the tunnel: the internet server sees the exit's address.
    assert_eq!(
        curl(&c, "http://198.18.0.2/").as_deref(),
        Some("198.18.0.1")
    );
    assert!(ping(&c, "198.18.0.2"), "ping through the tunnel");
    let o = ns_exec(
        &c,
        &[
            "bash",
            "-c",
            "exec 3<>/dev/tcp/198.18.0.2/7; echo hello-vpn >&3; timeout 3 head -c9 <&3",
        ],
    );
    assert_eq!(text(&o.stdout), "hello-vpn");
    // --secure (the default): private targets behind the exit are dropped.
    assert!(
        curl(&c, "http://10.205.0.2/").is_none(),
        "--secure must drop private targets"
    );
    // No IPv6 leak, no IPv4 leak to the old gateway's networks.
    assert!(!ping(&c, "fd77::1"), "IPv6 must not leak");
    assert!(curl(&c, "http://10.204.0.1/").is_none());
    assert!(
        std::fs::read_to_string(&resolv)
            .unwrap()
            .contains("nameserver 198.18.0.53")
    );
    let st = poll("byte counters", Duration::from_secs(10), || {
        status(&cli_status).filter(|s| s["bytes_in"].as_u64() > Some(0))
    });
    assert!(st["bytes_out"].as_u64().unwrap() > 0);
    let st = poll("server counters", Duration::from_secs(10), || {
        status(&srv_status).filter(|s| s["clients"].as_array().is_some_and(|c| c.len() == 1))
    });
    assert_eq!(st["clients"][0]["tun_ip"], "172.16.0.12");

    // Kill the exit: with the kill switch nothing leaks while the client tries again.
    kill9(&mut server);
    wait_state(&cli_status, "reconnecting");
    assert!(
        curl(&c, "http://10.204.0.1/").is_none(),
        "kill switch must block"
    );
    assert!(!ping(&c, "10.204.0.1"), "kill switch must block ping");
    assert!(!ping(&c, "fd77::1"));

    // The restarted server reverts what the killed one left, and the client reconnects.
    let mut server = in_ns(&s, &server_args);
    wait_state(&cli_status, "connected");
    assert_eq!(
        curl(&c, "http://198.18.0.2/").as_deref(),
        Some("198.18.0.1")
    );

    // kill -9 the client, restart it: it cleans up and connects again; SIGTERM restores all.
    kill9(&mut client);
    let _ = std::fs::remove_file(&cli_status);
    let mut client = in_ns(&c, &client_args);
    wait_state(&cli_status, "connected");
    assert_eq!(
        curl(&c, "http://198.18.0.2/").as_deref(),
        Some("198.18.0.1")
    );
    assert!(client.terminate().success());
    assert_eq!(snapshot(&c, &resolv), snap_c, "client namespace restored");
    assert_eq!(
        curl(&c, "http://10.204.0.1/").as_deref(),
        Some("10.203.0.2")
    );
    assert!(ping(&c, "fd77::1"), "IPv6 back after exit");

    assert!(server.terminate().success());
    assert_eq!(snapshot(&s, &resolv), snap_s, "server namespace restored");
    drop(nets);
}
