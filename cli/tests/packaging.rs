//! Packaging: `skywire gen-docs` writes a man page for every command of the real tree (found here
//! independently, by walking `--help`) and the shell completions; `packaging/build-deb.sh` turns
//! the debug binary of this test run into a .deb (cargo-deb, in a temporary target dir), which is
//! extracted with `dpkg -x` and checked: file list, the extracted binary runs, man pages, bash
//! completion, maintainer scripts, and `systemd-analyze verify --root=<extracted tree>` on every
//! unit (warnings count as failures), with deliberately broken units that must fail.
//!
//! Needs cargo-deb, dpkg, systemd (systemd-analyze and the host's unit files), man-db, gzip and
//! bash; `.ci/run` installs them. Every file goes to temp dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Units shipped in packaging/systemd/ and installed by the package.
const UNITS: [&str; 7] = [
    "skywire-dmsg-disc.service",
    "skywire-dmsg-server-confgen.service",
    "skywire-dmsg-server.service",
    "skywire-pty-confgen.service",
    "skywire-pty.socket",
    "skywire-pty@.service",
    "skywire-visor.service",
];

/// Units that run as a DynamicUser and must stay hardened (`systemd-analyze security` ≤ 2.0).
const DYNAMIC_USER_UNITS: [&str; 2] = ["skywire-dmsg-server.service", "skywire-dmsg-disc.service"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` to completion, killing it after `bound`; stdout and stderr are captured.
fn run(mut cmd: Command, bound: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn run_ok(cmd: Command, bound: Duration) -> Output {
    let what = format!("{cmd:?}");
    let out = run(cmd, bound);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn tool(name: &str) -> Command {
    Command::new(name)
}

/// Names of the subcommands listed under `Commands:` in clap's `-h` output (`help` excluded).
fn listed_subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if !in_commands {
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        // `  name   description`; wrapped descriptions are indented further.
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
        {
            let name = rest.split_whitespace().next().unwrap();
            if name != "help" {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// Every command path reachable through `--help` of `bin`, as man page stems
/// (`skywire-cli-pty-fs-mount`), the root included.
fn command_paths(bin: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        assert!(found.len() < 500, "runaway command tree walk");
        let mut cmd = Command::new(bin);
        cmd.args(&path).arg("-h");
        let out = run_ok(cmd, Duration::from_secs(30));
        let stem = std::iter::once("skywire".to_owned())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        found.insert(stem);
        for sub in listed_subcommands(&text(&out.stdout)) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
    }
    found
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn gen_docs_writes_a_man_page_per_command_and_completions() {
    let bin = Path::new(env!("CARGO_BIN_EXE_skywire"));
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("gen-docs").arg("--out").arg(tmp.path());
    run_ok(cmd, Duration::from_secs(60));

    let paths = command_paths(bin);
    // The walk found the deep commands, and hidden ones stay out of --help.
    for p in ["skywire-cli-pty-fs-mount", "skywire-dmsg-server-config-gen"] {
        assert!(paths.contains(p), "{p} not found by walking --help");
    }
    assert!(!paths.iter().any(|p| p.contains("gen-docs")));
    let want: BTreeSet<String> = paths.iter().map(|p| format!("{p}.1")).collect();
    assert_eq!(file_names(&tmp.path().join("man")), want);
    for page in &want {
        let roff = std::fs::read_to_string(tmp.path().join("man").join(page)).unwrap();
        let stem = page.strip_suffix(".1").unwrap();
        assert!(roff.contains(&format!(".TH {stem} 1 ")), "{page}: {roff}");
        let name = stem.replace('-', "\\-");
        assert!(
            roff.contains(&format!(".SH NAME\n{name} \\- ")),
            "{page}: {roff}"
        );
    }
    // The root page lists its subcommands' pages.
    let root = std::fs::read_to_string(tmp.path().join("man/skywire.1")).unwrap();
    assert!(root.contains("skywire\\-dmsg(1)"), "{root}");

    let completions = tmp.path().join("completions");
    assert_eq!(
        file_names(&completions),
        ["_skywire", "skywire.bash", "skywire.fish"]
            .map(String::from)
            .into()
    );
    assert_bash_completion(&completions.join("skywire.bash"));
    let zsh = std::fs::read_to_string(completions.join("_skywire")).unwrap();
    assert!(zsh.starts_with("#compdef skywire"), "{zsh}");
    let fish = std::fs::read_to_string(completions.join("skywire.fish")).unwrap();
    assert!(fish.contains("complete -c skywire"), "{fish}");
}

/// Sources a bash completion file and checks that it registers `skywire` and completes its
/// first-level commands.
fn assert_bash_completion(file: &Path) {
    let mut cmd = tool("bash");
    cmd.arg("-c")
        .arg(
            "set -e; source \"$1\"; complete -p skywire; \
             COMP_WORDS=(skywire dm); COMP_CWORD=1; COMP_LINE='skywire dm'; COMP_POINT=10; \
             $(complete -p skywire | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p') skywire dm skywire; \
             printf '%s\\n' \"${COMPREPLY[@]}\"",
        )
        .arg("bash")
        .arg(file);
    let out = run_ok(cmd, Duration::from_secs(30));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(" -F _skywire skywire"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "dmsg"), "{stdout}");
}

/// The `skywire` command lines of a unit file (`ExecStart=`, `ExecStartPre=`, ...), as the
/// arguments after `/usr/bin/skywire`, with systemd specifiers replaced by sample paths and
/// `$VAR` words (optional extra flags from environment files) dropped.
fn skywire_command_lines(unit: &str, body: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for line in body.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.starts_with("Exec") {
            continue;
        }
        let value = value.trim_start_matches(['-', '+', '@', '!', ':']);
        let mut words = value.split_whitespace();
        assert_eq!(
            words.next(),
            Some("/usr/bin/skywire"),
            "{unit}: {line} (units only run the packaged binary)"
        );
        let args: Vec<String> = words
            .filter(|w| !w.starts_with('$'))
            .map(|w| {
                w.replace("%d", "/run/credentials/x")
                    .replace("%S", "/var/lib")
            })
            .collect();
        assert!(
            !args.iter().any(|a| a.contains('%')),
            "{unit}: unexpected specifier in {line}"
        );
        lines.push(args);
    }
    lines
}

/// Runs every `skywire` command line of the units with `--help` appended: clap rejects unknown
/// subcommands and flags before it prints the help, so this checks the units against the
/// binary's real command tree without starting anything.
fn check_unit_command_lines(bin: &Path, unit_dir: &Path, tree: &BTreeSet<String>) {
    let mut checked = 0;
    for u in UNITS {
        let body = std::fs::read_to_string(unit_dir.join(u)).unwrap();
        for args in skywire_command_lines(u, &body) {
            let path: Vec<&str> = args
                .iter()
                .map(String::as_str)
                .take_while(|a| !a.starts_with('-'))
                .collect();
            let stem = std::iter::once("skywire")
                .chain(path.iter().copied())
                .collect::<Vec<_>>()
                .join("-");
            assert!(
                tree.contains(&stem),
                "{u}: `{}` is not a skywire command",
                args.join(" ")
            );
            let mut cmd = Command::new(bin);
            cmd.args(&args).arg("--help");
            let out = run(cmd, Duration::from_secs(30));
            assert!(
                out.status.success(),
                "{u}: `skywire {}` is rejected: {}",
                args.join(" "),
                text(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} unit command lines checked");
}

/// A packaged, extracted skywire .deb in a temp dir.
struct Extracted {
    _tmp: tempfile::TempDir,
    deb: PathBuf,
    root: PathBuf,
    control: PathBuf,
}

/// Packages this test run's debug binary with packaging/build-deb.sh (cargo-deb, no build) in a
/// temporary target dir, then `dpkg -x` and `dpkg-deb -e` it.
fn build_and_extract() -> Extracted {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    std::fs::create_dir_all(target.join("debug")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_skywire"),
        target.join("debug").join("skywire"),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();

    let mut cmd = tool("bash");
    cmd.arg(workspace_root().join("packaging/build-deb.sh"))
        .args(["--profile", "dev", "--no-build", "--fast", "--output"])
        .arg(format!("{}/", out_dir.display()))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(tmp.path());
    let out = run_ok(cmd, Duration::from_secs(300));
    let deb = PathBuf::from(text(&out.stdout).trim());
    assert!(deb.starts_with(&out_dir), "{}", deb.display());
    let name = deb.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("skywire_{}-1_", env!("CARGO_PKG_VERSION")))
            && name.ends_with(".deb"),
        "{name}"
    );

    let root = tmp.path().join("root");
    let mut cmd = tool("dpkg");
    cmd.arg("-x").arg(&deb).arg(&root);
    run_ok(cmd, Duration::from_secs(60));
    let control = tmp.path().join("control");
    let mut cmd = tool("dpkg-deb");
    cmd.arg("-e").arg(&deb).arg(&control);
    run_ok(cmd, Duration::from_secs(60));
    Extracted {
        _tmp: tmp,
        deb,
        root,
        control,
    }
}

/// `systemd-analyze verify --root=ROOT UNIT`, man pages looked up in ROOT.
fn verify(root: &Path, unit: &str) -> Output {
    let mut cmd = tool("systemd-analyze");
    cmd.arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg(unit)
        .env("MANPATH", root.join("usr/share/man"))
        .env("SYSTEMD_LOG_COLOR", "0");
    run(cmd, Duration::from_secs(60))
}

/// Verify passes only with exit 0 and nothing printed (unknown keys and unparsable values are
/// only warnings for systemd-analyze).
fn verify_clean(out: &Output) -> bool {
    out.status.success() && out.stdout.is_empty() && out.stderr.is_empty()
}

/// Copies the host's unit files (sysinit.target, network-online.target, ...) into the extracted
/// tree without replacing the package's, so that dependencies resolve inside the root.
fn add_host_units(root: &Path) {
    let dest = root.join("usr/lib/systemd/system");
    let mut seen = BTreeSet::new();
    for dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        let Ok(canon) = std::fs::canonicalize(dir) else {
            continue;
        };
        if seen.insert(canon.clone()) {
            copy_missing(&canon, &dest, 0);
        }
    }
    assert!(
        dest.join("sysinit.target").exists(),
        "the host has no systemd unit files (install systemd)"
    );
}

/// Copies `from` into `to` recursively (symlinks as symlinks), keeping what `to` already has.
fn copy_missing(from: &Path, to: &Path, depth: usize) {
    assert!(
        depth < 8,
        "unit directory nesting too deep at {}",
        from.display()
    );
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if dest.symlink_metadata().is_ok() {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if kind.is_dir() {
            copy_missing(&entry.path(), &dest, depth + 1);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

#[test]
fn deb_installs_binary_docs_and_units_that_verify() {
    let x = build_and_extract();
    let root = &x.root;

    // Control fields.
    let mut cmd = tool("dpkg-deb");
    cmd.arg("-f")
        .arg(&x.deb)
        .args(["Package", "Depends", "Recommends", "Section"]);
    let fields = text(&run_ok(cmd, Duration::from_secs(30)).stdout);
    assert!(fields.contains("Package: skywire\n"), "{fields}");
    assert!(fields.contains("Depends: libc6"), "{fields}");
    assert!(fields.contains("Recommends: nftables, fuse3"), "{fields}");
    assert!(fields.contains("Section: net"), "{fields}");

    // The binary runs from the extracted tree.
    let bin = root.join("usr/bin/skywire");
    let mode = std::fs::metadata(&bin).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "{}", bin.display());
    let mut cmd = Command::new(&bin);
    cmd.arg("--version");
    let version = text(&run_ok(cmd, Duration::from_secs(30)).stdout);
    assert_eq!(
        version.trim(),
        format!("skywire {}", env!("CARGO_PKG_VERSION"))
    );

    // Units: exactly the files of packaging/systemd/, byte for byte.
    let unit_dir = root.join("usr/lib/systemd/system");
    let want_units: BTreeSet<String> = UNITS.map(String::from).into();
    assert_eq!(file_names(&unit_dir), want_units);
    assert_eq!(
        file_names(&workspace_root().join("packaging/systemd")),
        want_units
    );
    for u in UNITS {
        assert_eq!(
            std::fs::read(unit_dir.join(u)).unwrap(),
            std::fs::read(workspace_root().join("packaging/systemd").join(u)).unwrap(),
            "{u}"
        );
    }

    // The units' command lines are valid for this binary.
    let tree = command_paths(&bin);
    check_unit_command_lines(&bin, &unit_dir, &tree);

    // One gzipped man page per command of the extracted binary's tree.
    let man_dir = root.join("usr/share/man/man1");
    let want_pages: BTreeSet<String> = tree.iter().map(|p| format!("{p}.1.gz")).collect();
    assert!(want_pages.len() > 30, "{want_pages:?}");
    assert_eq!(file_names(&man_dir), want_pages);
    for page in [
        "skywire.1.gz",
        "skywire-cli-pty-fs-mount.1.gz",
        "skywire-dmsg-pty-host.1.gz",
    ] {
        let mut cmd = tool("gzip");
        cmd.arg("-dc").arg(man_dir.join(page));
        let roff = text(&run_ok(cmd, Duration::from_secs(30)).stdout);
        assert!(roff.contains(".TH skywire"), "{page}: {roff}");
    }

    // Completions in the standard directories.
    assert_bash_completion(&root.join("usr/share/bash-completion/completions/skywire"));
    for f in [
        "usr/share/zsh/vendor-completions/_skywire",
        "usr/share/fish/vendor_completions.d/skywire.fish",
    ] {
        let body = std::fs::read_to_string(root.join(f)).unwrap();
        assert!(body.contains("skywire"), "{f}");
    }

    // Documentation, config examples (conffiles, not world-readable), maintainer scripts.
    for f in ["copyright", "README.md", "README.Debian"] {
        assert!(root.join("usr/share/doc/skywire").join(f).is_file(), "{f}");
    }
    for f in ["dmsg-disc.env", "dmsg-server.env"] {
        let meta = std::fs::metadata(root.join("etc/skywire").join(f)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640, "{f}");
    }
    let conffiles = std::fs::read_to_string(x.control.join("conffiles")).unwrap();
    assert!(
        conffiles.contains("/etc/skywire/dmsg-disc.env"),
        "{conffiles}"
    );
    let prerm = std::fs::read_to_string(x.control.join("prerm")).unwrap();
    for u in UNITS.iter().filter(|u| !u.contains('@')) {
        assert!(prerm.contains(u), "prerm does not stop {u}:\n{prerm}");
    }
    let postinst = std::fs::read_to_string(x.control.join("postinst")).unwrap();
    assert!(postinst.contains("deb-systemd-helper"), "{postinst}");
    assert!(
        !postinst.contains("deb-systemd-invoke start"),
        "units must not start on installation:\n{postinst}"
    );

    // systemd-analyze verify against the extracted tree: every unit passes cleanly.
    add_host_units(root);
    for u in UNITS {
        let out = verify(root, u);
        assert!(
            verify_clean(&out),
            "verify {u}: {}\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    for u in DYNAMIC_USER_UNITS {
        let mut cmd = tool("systemd-analyze");
        cmd.args(["security", "--offline=true", "--threshold=20"])
            .arg(format!("--root={}", root.display()))
            .arg(u);
        run_ok(cmd, Duration::from_secs(60));
    }

    // ... and it really checks: broken units fail.
    let visor = std::fs::read_to_string(unit_dir.join("skywire-visor.service")).unwrap();
    let broken = [
        (
            "skywire-broken-exec.service",
            visor.replace(
                "ExecStart=/usr/bin/skywire ",
                "ExecStart=/usr/bin/skywire-missing ",
            ),
            "skywire-missing",
        ),
        (
            "skywire-broken-key.service",
            visor.replace("Restart=on-failure", "Restrat=on-failure"),
            "Restrat",
        ),
        (
            "skywire-broken-man.service",
            visor.replace("man:skywire(1)", "man:skywire-no-such-page(1)"),
            "skywire-no-such-page",
        ),
    ];
    for (name, body, complaint) in &broken {
        assert_ne!(body, &visor);
        std::fs::write(unit_dir.join(name), body).unwrap();
        let out = verify(root, name);
        assert!(!verify_clean(&out), "{name} passed verify");
        assert!(
            text(&out.stderr).contains(complaint),
            "{name}: {}",
            text(&out.stderr)
        );
        std::fs::remove_file(unit_dir.join(name)).unwrap();
    }
    // ExecStart= paths resolve inside the root, not on this machine.
    let moved = root.join("usr/bin/skywire.moved");
    std::fs::rename(&bin, &moved).unwrap();
    let out = verify(root, "skywire-visor.service");
    assert!(
        !out.status.success(),
        "verify passed without /usr/bin/skywire in the root"
    );
    assert!(
        text(&out.stderr).contains("/usr/bin/skywire"),
        "{}",
        text(&out.stderr)
    );
    std::fs::rename(&moved, &bin).unwrap();
    assert!(verify_clean(&verify(root, "skywire-visor.service")));
}

/// Kills a background process (and reaps it) when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `skywire cli config gen-keys [--sk HEX]` as (pk, sk).
fn gen_keys(bin: &Path, sk: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(["cli", "config", "gen-keys"]);
    if let Some(sk) = sk {
        cmd.args(["--sk", sk]);
    }
    let out = run_ok(cmd, Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pk = v["pk"].as_str().unwrap().to_owned();
    let sk = v["sk"]
        .as_str()
        .map_or_else(|| sk.unwrap().to_owned(), str::to_owned);
    (pk, sk)
}

/// The pty socket units as systemd would run them: skywire-pty-confgen's command writes the
/// host config, then systemd-socket-activate (systemd's own `Accept=yes` implementation) runs
/// skywire-pty@'s command for each connection on a loopback listener. A whitelisted key gets
/// its command run, another key is refused.
#[test]
fn pty_socket_units_serve_sessions_through_socket_activation() {
    let bin = Path::new(env!("CARGO_BIN_EXE_skywire"));
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("dmsg-pty-host.json");
    let units = workspace_root().join("packaging/systemd");
    let command_of = |unit: &str| {
        let body = std::fs::read_to_string(units.join(unit)).unwrap();
        let mut lines = skywire_command_lines(unit, &body);
        assert_eq!(lines.len(), 1, "{unit}");
        let args: Vec<String> = lines
            .remove(0)
            .into_iter()
            .map(|a| a.replace("/etc/skywire/dmsg-pty-host.json", conf.to_str().unwrap()))
            .collect();
        assert!(
            args.iter().any(|a| a == conf.to_str().unwrap()),
            "{unit}: {args:?}"
        );
        args
    };

    // First use: the confgen unit writes the config; whitelist one client key.
    let mut cmd = Command::new(bin);
    cmd.args(command_of("skywire-pty-confgen.service"));
    run_ok(cmd, Duration::from_secs(30));
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    let (host_pk, _) = gen_keys(bin, Some(cfg["sk"].as_str().unwrap()));
    let (client_pk, client_sk) = gen_keys(bin, None);
    cfg["wl"] = serde_json::json!([client_pk]);
    std::fs::write(&conf, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

    // The listener is ours (port 0), handed to systemd-socket-activate as its fd 3.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = tmp.path().join("activate.log");
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(
            r#"exec 3<&0 0</dev/null; export LISTEN_FDS=1 LISTEN_PID=$$; unset LISTEN_FDNAMES;
               exec systemd-socket-activate --accept "$@""#,
        )
        .arg("sh")
        .arg(bin)
        .args(command_of("skywire-pty@.service"))
        .env_remove("SKYWIRE_LOG")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let _activator = KillOnDrop(sh.spawn().unwrap());

    let via = format!("tcp://{host_pk}@{addr}");
    let exec = |sk: &str| {
        let mut cmd = Command::new(bin);
        cmd.args([
            "cli", "pty", "exec", &host_pk, "--via", &via, "--sk", sk, "-n",
        ])
        .args(["--", "sh", "-c", "echo served by $0", "socket-activation"]);
        run(cmd, Duration::from_secs(60))
    };
    let out = exec(&client_sk);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\nactivator log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        log_text()
    );
    assert_eq!(text(&out.stdout), "served by socket-activation\n");

    // A second connection gets its own host process; a key outside `wl` is refused.
    let (_, stranger_sk) = gen_keys(bin, None);
    let out = exec(&stranger_sk);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stderr),
        log_text()
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
