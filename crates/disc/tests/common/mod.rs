//! Test harness: discovery servers on 127.0.0.1:0 over each store backend, a throwaway
//! `redis-server`, raw HTTP helpers and entry builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skywire_cipher::{PubKey, SecKey};
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::{Entry, now_unix_nanos};

/// A `redis-server` on a free loopback port, without persistence, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts redis-server; panics (fails the test) if it is not installed.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is required by these tests (Debian package redis-server): {e}")
            });
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A direct connection for inspecting keys.
    pub async fn connection(&self) -> redis::aio::ConnectionManager {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_manager()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test runs against; keeps the backing resources alive.
pub enum Backend {
    Memory,
    Redb(tempfile::TempDir),
    Redis(RedisServer),
}

impl Backend {
    pub fn new(kind: &str) -> Backend {
        match kind {
            "memory" => Backend::Memory,
            "redb" => Backend::Redb(tempfile::tempdir().unwrap()),
            "redis" => Backend::Redis(RedisServer::start()),
            other => panic!("unknown backend {other}"),
        }
    }

    pub fn store_config(&self) -> StoreConfig {
        match self {
            Backend::Memory => StoreConfig::Memory,
            Backend::Redb(dir) => StoreConfig::Redb(dir.path().join("disc.redb")),
            Backend::Redis(r) => StoreConfig::Redis {
                url: r.url(),
                password: None,
            },
        }
    }

    pub fn config(&self) -> DiscConfig {
        DiscConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: self.store_config(),
            ..DiscConfig::default()
        }
    }

    pub async fn serve(&self, config: DiscConfig) -> DiscHandle {
        skywire_disc::serve(config).await.unwrap()
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

pub struct Http {
    pub base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.body(b.to_owned());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.text().await.unwrap();
        Resp {
            status,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req(reqwest::Method::GET, path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Resp {
        self.req(reqwest::Method::POST, path, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: &str) -> Resp {
        self.req(reqwest::Method::DELETE, path, &[], Some(body))
            .await
    }
}

/// Asserts status, `application/json` and the exact body.
pub fn assert_json(r: &Resp, status: u16, body: &str) {
    assert_eq!(
        (r.status, r.content_type.as_deref(), r.body.as_str()),
        (status, Some("application/json"), body),
        "{r:?}"
    );
}

pub fn msg(text: &str, code: u16) -> String {
    format!(r#"{{"message":"{text}","code":{code}}}"#)
}

pub fn validation(cause: &str) -> String {
    msg(&format!("entry validation error: {cause}"), 422)
}

/// A signed client entry.
pub fn client_entry(sk: &SecKey, seq: u64, servers: Vec<PubKey>) -> Entry {
    let mut e = Entry::new_client(sk.pub_key(), seq, servers);
    e.sign(sk).unwrap();
    e
}

/// A signed server entry with a fresh timestamp.
pub fn server_entry(sk: &SecKey, seq: u64, addr: &str, sessions: i64) -> Entry {
    let mut e = Entry::new_server(sk.pub_key(), seq, addr, sessions);
    e.timestamp = now_unix_nanos();
    e.sign(sk).unwrap();
    e
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
