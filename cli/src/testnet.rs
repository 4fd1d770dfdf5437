//! `skywire testnet`: a whole dmsg network on this machine (127.0.0.1) in one process: a
//! discovery (memory store, test mode), `--servers` relay servers and `--clients` client nodes.
//! Every client serves a small dmsghttp site on port 80 (`/` shows its key, `POST /echo` returns
//! the request body) and a raw echo on port 7. The layout is printed as a table, or with
//! `--json` as one JSON line on stdout for scripts; the network stays up until Ctrl-C/SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::routing::{get, post};
use clap::Args;
use serde::Serialize;
use skywire_cipher::{PubKey, SecKey};
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// dmsg port of each client's raw echo service.
pub const ECHO_PORT: u16 = 7;
const READY: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// Number of relay servers.
    #[arg(long, default_value_t = 2)]
    pub servers: usize,
    /// Number of client nodes (each serves dmsghttp on port 80 and an echo on port 7).
    #[arg(long, default_value_t = 3)]
    pub clients: usize,
    /// Print the layout as one JSON line (discovery, servers, clients) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// First TCP port: discovery on BASE, servers on BASE+1.. (0 picks free ports).
    #[arg(long, default_value_t = 0, value_name = "BASE")]
    pub base_port: u16,
}

#[derive(Debug, Serialize)]
struct Layout {
    discovery: String,
    servers: Vec<ServerInfo>,
    clients: Vec<ClientInfo>,
}

#[derive(Debug, Serialize)]
struct ServerInfo {
    pk: PubKey,
    addr: SocketAddr,
}

#[derive(Debug, Serialize)]
struct ClientInfo {
    pk: PubKey,
    sk: SecKey,
    http: String,
    echo_port: u16,
}

/// Runs `skywire testnet`.
pub fn run(args: TestnetArgs) -> Result<()> {
    crate::util::block_on(run_async(args))?
}

fn port(base: u16, offset: usize) -> Result<u16> {
    if base == 0 {
        return Ok(0);
    }
    u16::try_from(offset)
        .ok()
        .and_then(|o| base.checked_add(o))
        .context("--base-port is too high for this many servers")
}

async fn run_async(args: TestnetArgs) -> Result<()> {
    if args.servers == 0 {
        bail!("--servers must be at least 1");
    }
    let loopback = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let disc = skywire_disc::serve(DiscConfig {
        listen: loopback(port(args.base_port, 0)?),
        store: StoreConfig::Memory,
        test_mode: true,
        ..DiscConfig::default()
    })
    .await
    .context("starting the discovery")?;
    let url = disc.url();
    let mut net = Net {
        disc: Some(disc),
        servers: Vec::new(),
        clients: Vec::new(),
        tasks: JoinSet::new(),
    };
    let result = async {
        let dc = || DiscClient::new(&url).context("discovery client");
        for i in 0..args.servers {
            let mut cfg = ServerConfig::new(SecKey::generate());
            cfg.local_addr = loopback(port(args.base_port, i + 1)?);
            cfg.discovery = Some(dc()?);
            let s = ServerHandle::start(cfg)
                .await
                .with_context(|| format!("starting relay server {i}"))?;
            net.servers.push(s);
        }
        wait_for_servers(&dc()?, args.servers).await?;
        let mut layout = Layout {
            discovery: url.clone(),
            servers: net
                .servers
                .iter()
                .map(|s| ServerInfo {
                    pk: s.pk(),
                    addr: s.local_addr(),
                })
                .collect(),
            clients: Vec::new(),
        };
        for i in 0..args.clients {
            let sk = SecKey::generate();
            let client = Client::start(ClientConfig::new(sk.clone(), dc()?));
            let web = client.listen(skywire_dmsg::http::DEFAULT_PORT)?;
            let echo = client.listen(ECHO_PORT)?;
            net.tasks
                .spawn(skywire_dmsg::http::serve(web, site(i, client.pk())));
            net.tasks.spawn(echo_service(echo));
            layout.clients.push(ClientInfo {
                pk: client.pk(),
                sk,
                http: format!("dmsg://{}/", client.pk()),
                echo_port: ECHO_PORT,
            });
            net.clients.push(client);
        }
        for (i, c) in net.clients.iter().enumerate() {
            c.ready(READY)
                .await
                .with_context(|| format!("client {i} did not join the network"))?;
        }
        print_layout(&layout, args.json)?;
        crate::util::shutdown_signal().await;
        Ok(())
    }
    .await;
    net.shutdown().await;
    result
}

struct Net {
    disc: Option<DiscHandle>,
    servers: Vec<ServerHandle>,
    clients: Vec<Client>,
    tasks: JoinSet<()>,
}

impl Net {
    async fn shutdown(mut self) {
        let stop = async {
            futures::future::join_all(self.clients.iter().map(Client::close)).await;
            self.tasks.abort_all();
            futures::future::join_all(self.servers.drain(..).map(ServerHandle::shutdown)).await;
            if let Some(d) = self.disc.take()
                && let Err(e) = d.shutdown().await
            {
                tracing::warn!(error = %e, "stopping the discovery failed");
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), stop)
            .await
            .is_err()
        {
            tracing::warn!("the testnet did not stop within 10 s");
        }
    }
}

async fn wait_for_servers(dc: &DiscClient, n: usize) -> Result<()> {
    let deadline = Instant::now() + READY;
    loop {
        if dc.available_servers().await.map(|l| l.len()).unwrap_or(0) >= n {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the relay servers did not appear in discovery within {READY:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_layout(layout: &Layout, json: bool) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, layout).context("writing the layout")?;
        writeln!(out).context("writing the layout")?;
    } else {
        writeln!(out, "skywire testnet is up (Ctrl-C to stop)\n")?;
        writeln!(out, "discovery  {}\n", layout.discovery)?;
        writeln!(out, "{:<8} {:<66}  address", "server", "public key")?;
        for (i, s) in layout.servers.iter().enumerate() {
            writeln!(out, "{:<8} {}  {}", i, s.pk, s.addr)?;
        }
        writeln!(
            out,
            "\n{:<8} {:<66}  secret key (dmsghttp on port 80, echo on port {ECHO_PORT})",
            "client", "public key"
        )?;
        for (i, c) in layout.clients.iter().enumerate() {
            writeln!(out, "{:<8} {}  {}", i, c.pk, c.sk.to_hex())?;
        }
        if let Some(c) = layout.clients.first() {
            writeln!(
                out,
                "\ntry:  skywire dmsg curl --disc {} dmsg://{}/",
                layout.discovery, c.pk
            )?;
        }
    }
    out.flush().context("writing the layout")
}

/// The dmsghttp site of client `index`.
fn site(index: usize, pk: PubKey) -> axum::Router {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>skywire testnet client {index}</title></head>\n\
         <body><h1>skywire testnet client {index}</h1>\n<p>public key: <code>{pk}</code></p>\n\
         <p>served over dmsghttp (dmsg://{pk}:80/)</p></body></html>\n"
    );
    let page_handler = move || {
        let page = page.clone();
        async move { axum::response::Html(page) }
    };
    axum::Router::new()
        .route("/", get(page_handler.clone()))
        .route("/index.html", get(page_handler))
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
}

/// Raw echo: every accepted stream gets back what it sends, until it half-closes.
async fn echo_service(mut listener: skywire_dmsg::Listener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Some(mut s) = accepted else { break };
                conns.spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        }
    }
}
