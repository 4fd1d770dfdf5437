//! net/rpc over gob (pty.md section 3): the 2023 capture and the 2026 shapes. One decoder per
//! session and direction; typed decoding of every header and body; dynamic decoding of the
//! concatenated streams; byte-exact re-encoding with one encoder per direction.
//!
//! Type ids in these files are process-global (client and host ran in one Go process, and the
//! capture's sessions S1..S5 ran one after the other in that process). They are reproduced by one
//! [`SharedRegistry`] per file, fed in file order — the same order in which the Go process first
//! used each type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use serde::Deserialize;
use skywire_cipher::PubKey;
use skywire_gob::{Decoder, Encoder, GobType, SharedRegistry, Value};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct Request {
    service_method: String,
    seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct Response {
    service_method: String,
    seq: u64,
    error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct WinSize {
    x: u16,
    y: u16,
    rows: u16,
    cols: u16,
}

/// G1 layout (no Env).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "CommandReq")]
struct CommandReqG1 {
    name: String,
    arg: Vec<String>,
    size: Option<WinSize>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct CommandReq {
    name: String,
    arg: Vec<String>,
    size: Option<WinSize>,
    env: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct CommandExecReq {
    name: String,
    arg: Vec<String>,
    env: Vec<String>,
    stdin: Vec<u8>,
    #[serde(rename = "TimeoutMS")]
    timeout_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct CommandExecResult {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_truncated: bool,
    stderr_truncated: bool,
    exit_code: isize,
    timed_out: bool,
    #[serde(rename = "DurationMS")]
    duration_ms: i64,
}

/// The anonymous `struct{ Name string }` the S5 client sent to the missing `pty.Exec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "")]
struct AnonName {
    name: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Unit,
    PubKeys(Vec<PubKey>),
    CmdG1(CommandReqG1),
    Cmd(CommandReq),
    Int(isize),
    Bytes(Vec<u8>),
    Win(WinSize),
    Str(String),
    ExecReq(CommandExecReq),
    ExecRes(CommandExecResult),
    Anon(AnonName),
}

#[derive(Debug, Clone, PartialEq)]
enum Header {
    Req(Request),
    Resp(Response),
}

impl Header {
    fn method(&self) -> &str {
        match self {
            Header::Req(r) => &r.service_method,
            Header::Resp(r) => &r.service_method,
        }
    }
}

#[derive(Debug)]
struct Line {
    session: String,
    c2h: bool,
    bytes: Vec<u8>,
}

/// Gob lines of a vector file (the dmsgpty URI preamble and the accept byte are not gob).
fn lines(file: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for l in common::read_vector(file).lines() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = l.split_whitespace().collect();
        let (session, dir, hex) = match parts.as_slice() {
            [s, d, h] => (s.to_string(), *d, *h),
            [d, h] => (String::new(), *d, *h),
            _ => panic!("bad line {l}"),
        };
        let bytes = hex::decode(hex).unwrap();
        let is_uri = bytes.get(1..9) == Some(b"dmsgpty/".as_slice());
        if is_uri || (dir == "H>C" && bytes.len() == 1) {
            continue;
        }
        out.push(Line {
            session,
            c2h: dir == "C>H",
            bytes,
        });
    }
    out
}

fn decode_body(dec: &mut Decoder, input: &[u8], h: &Header, g3: bool) -> (Body, usize) {
    fn d<T: for<'de> Deserialize<'de> + GobType>(
        dec: &mut Decoder,
        input: &[u8],
        f: fn(T) -> Body,
    ) -> (Body, usize) {
        let (v, n) = dec.decode_value::<T>(input).unwrap().unwrap();
        (f(v), n)
    }
    let m = h.method();
    match h {
        Header::Req(_) => match m {
            "whitelist.Whitelist" | "pty.Stop" | "pty.Ping" => d(dec, input, |()| Body::Unit),
            "whitelist.WhitelistAdd" | "whitelist.WhitelistRemove" => d(dec, input, Body::PubKeys),
            "pty.Start" if !g3 => d(dec, input, Body::CmdG1),
            "pty.Start" | "pty.StartSession" => d(dec, input, Body::Cmd),
            "pty.Read" => d(dec, input, Body::Int),
            "pty.Write" => d(dec, input, Body::Bytes),
            "pty.SetPtySize" => d(dec, input, Body::Win),
            "pty.Attach" => d(dec, input, Body::Str),
            "pty.Exec" if !g3 => d(dec, input, Body::Anon),
            "pty.Exec" | "pty.Exec2" => d(dec, input, Body::ExecReq),
            other => panic!("unknown method {other}"),
        },
        Header::Resp(r) if !r.error.is_empty() => d(dec, input, |()| Body::Unit),
        Header::Resp(_) => match m {
            "whitelist.Whitelist" => d(dec, input, Body::PubKeys),
            "pty.Read" => d(dec, input, Body::Bytes),
            "pty.Write" => d(dec, input, Body::Int),
            "pty.StartSession" => d(dec, input, Body::Str),
            "pty.Exec" | "pty.Exec2" => d(dec, input, Body::ExecRes),
            _ => d(dec, input, |()| Body::Unit),
        },
    }
}

fn encode_body(enc: &mut Encoder, b: &Body, out: &mut Vec<u8>) {
    match b {
        Body::Unit => enc.encode(&(), out),
        Body::PubKeys(v) => enc.encode(v, out),
        Body::CmdG1(v) => enc.encode(v, out),
        Body::Cmd(v) => enc.encode(v, out),
        Body::Int(v) => enc.encode(v, out),
        Body::Bytes(v) => enc.encode(v, out),
        Body::Win(v) => enc.encode(v, out),
        Body::Str(v) => enc.encode(v, out),
        Body::ExecReq(v) => enc.encode(v, out),
        Body::ExecRes(v) => enc.encode(v, out),
        Body::Anon(v) => enc.encode(v, out),
    }
    .unwrap();
}

/// Session, direction (true = client to host) and the calls of one line.
type LineCalls = (String, bool, Vec<(Header, Body)>);

/// Decodes every line typed (one decoder per session+direction) and re-encodes it with one encoder
/// per session+direction sharing a process-wide registry. Returns the decoded calls per line.
fn typed_round_trip(file: &str, g3: bool) -> Vec<LineCalls> {
    let reg = SharedRegistry::new();
    let mut decs: HashMap<(String, bool), Decoder> = HashMap::new();
    let mut encs: HashMap<(String, bool), Encoder> = HashMap::new();
    let mut all = Vec::new();
    for line in lines(file) {
        let key = (line.session.clone(), line.c2h);
        let dec = decs.entry(key.clone()).or_default();
        let mut pos = 0;
        let mut calls = Vec::new();
        while pos < line.bytes.len() {
            let input = &line.bytes[pos..];
            let (h, n) = if line.c2h {
                let (v, n) = dec.decode_value::<Request>(input).unwrap().unwrap();
                (Header::Req(v), n)
            } else {
                let (v, n) = dec.decode_value::<Response>(input).unwrap().unwrap();
                (Header::Resp(v), n)
            };
            pos += n;
            let (b, n) = decode_body(dec, &line.bytes[pos..], &h, g3);
            pos += n;
            calls.push((h, b));
        }
        let enc = encs
            .entry(key)
            .or_insert_with(|| Encoder::with_shared_registry(reg.clone()));
        let mut out = Vec::new();
        for (h, b) in &calls {
            match h {
                Header::Req(r) => enc.encode(r, &mut out).unwrap(),
                Header::Resp(r) => enc.encode(r, &mut out).unwrap(),
            }
            encode_body(enc, b, &mut out);
        }
        assert_eq!(
            hex::encode(&out),
            hex::encode(&line.bytes),
            "{file} {} {} {:?}",
            line.session,
            if line.c2h { "C>H" } else { "H>C" },
            calls
        );
        all.push((line.session, line.c2h, calls));
    }
    all
}

const PK_A: &str = "02ba7f8b63268617e35637629bf2b7c6a9746f66d3e064a1f11f9ff9971e1b969c";
const PK_B: &str = "0376ed59c81c5f31c673787e47347061f0d1276718b8f28cc10cd0b578799466dd";

#[test]
fn capture_2023_typed_decode_and_exact_reencode() {
    let all = typed_round_trip("pty-gob-capture-2023.txt", false);
    let pk_a: PubKey = PK_A.parse().unwrap();
    let pk_b: PubKey = PK_B.parse().unwrap();
    let find = |s: &str, c2h: bool, method: &str, nth: usize| -> Body {
        all.iter()
            .filter(|(sess, d, _)| sess == s && *d == c2h)
            .flat_map(|(_, _, calls)| calls.iter())
            .filter(|(h, _)| h.method() == method)
            .nth(nth)
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    assert_eq!(
        find("S1", false, "whitelist.Whitelist", 0),
        Body::PubKeys(vec![])
    );
    assert_eq!(
        find("S1", false, "whitelist.Whitelist", 1),
        Body::PubKeys(vec![pk_a, pk_b])
    );
    assert_eq!(
        find("S1", false, "whitelist.Whitelist", 2),
        Body::PubKeys(vec![pk_b])
    );
    assert_eq!(
        find("S1", true, "whitelist.WhitelistAdd", 0),
        Body::PubKeys(vec![pk_a, pk_b])
    );
    assert_eq!(
        find("S2", true, "pty.Start", 0),
        Body::CmdG1(CommandReqG1 {
            name: "/bin/sh".into(),
            arg: vec!["-c".into(), "printf hi; sleep 1".into()],
            size: Some(WinSize {
                rows: 30,
                cols: 100,
                ..Default::default()
            }),
        })
    );
    assert_eq!(find("S2", true, "pty.Read", 0), Body::Int(4096));
    assert_eq!(
        find("S2", false, "pty.Read", 0),
        Body::Bytes(b"hi".to_vec())
    );
    assert_eq!(
        find("S2", true, "pty.SetPtySize", 0),
        Body::Win(WinSize {
            x: 1,
            y: 2,
            rows: 40,
            cols: 120
        })
    );
    assert_eq!(find("S2", false, "pty.Write", 0), Body::Int(2));
    assert_eq!(
        find("S4", true, "pty.Start", 0),
        Body::CmdG1(CommandReqG1 {
            name: "/bin/echo".into(),
            arg: vec!["hello".into()],
            size: None,
        })
    );
    assert_eq!(
        find("S5", true, "pty.Exec", 0),
        Body::Anon(AnonName {
            name: "true".into()
        })
    );
    // Error replies.
    let errors: Vec<String> = all
        .iter()
        .flat_map(|(_, _, calls)| calls.iter())
        .filter_map(|(h, _)| match h {
            Header::Resp(r) if !r.error.is_empty() => Some(r.error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        [
            "no active pty session",
            "a pty session is already running",
            "read /dev/ptmx: input/output error",
            "rpc: can't find method pty.Exec",
            "no active pty session",
        ]
    );
}

#[test]
fn shapes_2026_typed_decode_and_exact_reencode() {
    let all = typed_round_trip("pty-gob-shapes-2026.txt", true);
    let bodies: Vec<&Body> = all
        .iter()
        .flat_map(|(_, _, calls)| calls.iter().map(|(_, b)| b))
        .collect();
    assert!(bodies.contains(&&Body::Cmd(CommandReq {
        name: "/bin/bash".into(),
        arg: vec![],
        size: Some(WinSize {
            x: 100,
            y: 30,
            rows: 30,
            cols: 100
        }),
        env: vec!["TERM=xterm-256color".into()],
    })));
    assert!(bodies.contains(&&Body::Str("0123456789abcdef".into())));
    assert!(bodies.contains(&&Body::ExecReq(CommandExecReq {
        name: "/bin/sh".into(),
        arg: vec!["-c".into(), "echo out; echo err >&2; exit 7".into()],
        env: vec!["A=1".into()],
        stdin: b"in".to_vec(),
        timeout_ms: 30000,
    })));
    assert!(bodies.contains(&&Body::ExecRes(CommandExecResult {
        stdout: b"out\n".to_vec(),
        stderr: b"err\n".to_vec(),
        exit_code: 7,
        duration_ms: 12,
        ..Default::default()
    })));
    assert!(bodies.contains(&&Body::ExecRes(CommandExecResult {
        exit_code: -1,
        timed_out: true,
        duration_ms: 300,
        ..Default::default()
    })));
    let attach_err = all
        .iter()
        .flat_map(|(_, _, calls)| calls.iter())
        .find_map(|(h, _)| match h {
            Header::Resp(r) if r.service_method == "pty.Attach" => Some(r.error.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(attach_err, "dmsgpty: session not found");
}

/// All values of each (session, direction) stream decoded dynamically from the concatenation.
fn dynamic_streams(file: &str) -> HashMap<(String, bool), Vec<Value>> {
    let mut streams: HashMap<(String, bool), Vec<u8>> = HashMap::new();
    for l in lines(file) {
        streams
            .entry((l.session, l.c2h))
            .or_default()
            .extend_from_slice(&l.bytes);
    }
    let mut out = HashMap::new();
    for (key, bytes) in streams {
        let mut dec = Decoder::new();
        let mut values = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let (v, n) = dec
                .decode_dynamic(&bytes[pos..])
                .unwrap_or_else(|e| panic!("{key:?} at {pos}: {e}"))
                .unwrap_or_else(|| panic!("{key:?}: incomplete at {pos}"));
            values.push(v);
            pos += n;
        }
        assert_eq!(values.len() % 2, 0, "{key:?}: header/body pairs");

        // The same stream fed incrementally, one byte at a time, gives the same values.
        let mut dec = Decoder::new();
        let mut buf = Vec::new();
        let mut inc = Vec::new();
        for &b in &bytes {
            buf.push(b);
            while let Some((v, n)) = dec.decode_dynamic(&buf).unwrap() {
                inc.push(v);
                buf.drain(..n);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(inc, values, "{key:?} incremental");

        // And skipping every value consumes exactly the same bytes.
        let mut dec = Decoder::new();
        let mut pos = 0;
        let mut count = 0;
        while pos < bytes.len() {
            pos += dec.skip_value(&bytes[pos..]).unwrap().unwrap();
            count += 1;
        }
        assert_eq!(count, values.len());
        out.insert(key, values);
    }
    out
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn capture_2023_dynamic() {
    let streams = dynamic_streams("pty-gob-capture-2023.txt");
    assert_eq!(streams.len(), 8); // S1, S2, S4, S5 x 2 directions
    let h2c = &streams[&("S1".to_string(), false)];
    // Second Whitelist reply: the two keys as opaque PubKey values.
    let view2 = &h2c[5];
    let keys: Vec<String> = view2
        .as_slice()
        .unwrap()
        .iter()
        .map(|k| match k {
            Value::Opaque { name, bytes, .. } => {
                assert_eq!(name, "PubKey");
                hex::encode(bytes)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, [PK_A, PK_B]);
    let c2h = &streams[&("S2".to_string(), true)];
    let start = &c2h[1];
    assert_eq!(start.field("Name"), Some(&s("/bin/sh")));
    assert_eq!(
        start.field("Arg"),
        Some(&Value::Slice(vec![s("-c"), s("printf hi; sleep 1")]))
    );
    assert_eq!(
        start.field("Size"),
        Some(&Value::Struct {
            name: "WinSize".into(),
            fields: vec![
                ("Rows".into(), Value::Uint(30)),
                ("Cols".into(), Value::Uint(100))
            ]
        })
    );
    assert_eq!(c2h[3], Value::Int(4096));
    let last_resp = &streams[&("S2".to_string(), false)][10];
    assert_eq!(last_resp.field("Error"), Some(&s("no active pty session")));
    assert_eq!(
        streams[&("S2".to_string(), false)][11],
        Value::Struct {
            name: String::new(),
            fields: vec![]
        }
    );
}

#[test]
fn shapes_2026_dynamic() {
    let streams = dynamic_streams("pty-gob-shapes-2026.txt");
    let h2c = &streams[&(String::new(), false)];
    assert_eq!(h2c[1], s("0123456789abcdef"));
    assert_eq!(
        h2c[2].field("Error"),
        Some(&s("dmsgpty: session not found"))
    );
    let exec = &h2c[7];
    assert_eq!(exec.field("ExitCode"), Some(&Value::Int(7)));
    assert_eq!(exec.field("Stdout"), Some(&Value::Bytes(b"out\n".to_vec())));
    assert_eq!(exec.field("DurationMS"), Some(&Value::Int(12)));
    let timeout = &h2c[9];
    assert_eq!(timeout.field("ExitCode"), Some(&Value::Int(-1)));
    assert_eq!(timeout.field("TimedOut"), Some(&Value::Bool(true)));
    assert_eq!(timeout.field("DurationMS"), Some(&Value::Int(300)));
    let c2h = &streams[&(String::new(), true)];
    assert_eq!(
        c2h[1].field("Env"),
        Some(&Value::Slice(vec![s("TERM=xterm-256color")]))
    );
}

#[test]
fn singleton_zero_int_is_sent() {
    let bytes = skywire_gob::to_vec(&0isize).unwrap();
    assert_eq!(bytes, [0x03, 0x04, 0x00, 0x00]);
    let empty: Vec<PubKey> = Vec::new();
    let bytes = skywire_gob::to_vec(&empty).unwrap();
    // []PubKey: PubKey is 64 (defined second), the slice 65 (defined first).
    assert_eq!(
        hex::encode(&bytes),
        "0dff81020102ff820001ff800000117f060101065075624b657901ff8000000004ff820000"
    );
}
