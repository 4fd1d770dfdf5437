//! `skywire app skysocks` (the exit: SOCKS5 over dmsg port 3, `--passcode`) and `skywire app
//! skysocks-client` (local SOCKS5 port, `--http` HTTP CONNECT front) as standalone processes
//! with their own dmsg identity (inside a visor they are built-in apps); plus the dmsg identity flags shared by
//! the proxy commands (`--sk`, `--disc`, `--sess`).

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Addr, Client, ClientConfig};
use skywire_proxy::skysocks::{self, SKYSOCKS_PORT, SkysocksConfig};

use crate::util::{DEFAULT_DISCOVERY, listen_addr, shutdown_signal};

/// Bound on joining the dmsg network.
const READY: Duration = Duration::from_secs(30);

/// The dmsg identity of a standalone proxy process.
#[derive(Debug, Clone, Args)]
pub struct DmsgOpts {
    /// Secret key (64 hex); a new random identity when unset.
    #[arg(short = 's', long = "sk", value_name = "HEX")]
    pub sk: Option<SecKey>,
    /// dmsg discovery URL.
    #[arg(long = "disc", visible_alias = "dmsg-disc", default_value = DEFAULT_DISCOVERY, value_name = "URL")]
    pub disc: String,
    /// Number of dmsg servers to keep sessions with.
    #[arg(long = "sess", default_value_t = 1, value_name = "N")]
    pub sessions: usize,
}

impl DmsgOpts {
    /// The secret key (generated once when unset).
    pub fn secret(&mut self) -> SecKey {
        self.sk.get_or_insert_with(SecKey::generate).clone()
    }

    /// Starts a dmsg client and waits until it is reachable.
    pub async fn client(&mut self) -> Result<Client> {
        let disc = DiscClient::new(&self.disc)
            .with_context(|| format!("invalid discovery URL {:?}", self.disc))?;
        let mut cfg = ClientConfig::new(self.secret(), disc);
        cfg.min_sessions = self.sessions.max(1);
        let client = Client::start(cfg);
        client
            .ready(READY)
            .await
            .context("connecting to the dmsg network")?;
        Ok(client)
    }
}

/// `skywire app skysocks`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Require this passcode as SOCKS5 username or password.
    #[arg(long, value_name = "PASSCODE")]
    pub passcode: Option<String>,
    /// dmsg port to serve on.
    #[arg(long, default_value_t = SKYSOCKS_PORT)]
    pub port: u16,
    #[command(flatten)]
    pub dmsg: DmsgOpts,
}

/// `skywire app skysocks-client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Public key of the skysocks server.
    #[arg(long, value_name = "PK")]
    pub srv: PubKey,
    /// Local SOCKS5 listen address (`:1080` = all interfaces).
    #[arg(long, default_value = ":1080", value_name = "ADDR")]
    pub addr: String,
    /// Also serve an HTTP CONNECT proxy on this address.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Passcode the HTTP front uses for the SOCKS5 exchange (SOCKS clients send their own).
    #[arg(long, value_name = "PASSCODE")]
    pub passcode: Option<String>,
    /// The server's dmsg port.
    #[arg(long, default_value_t = SKYSOCKS_PORT)]
    pub port: u16,
    #[command(flatten)]
    pub dmsg: DmsgOpts,
}

/// Runs `skywire app skysocks`.
pub fn run_server(args: ServerArgs) -> Result<()> {
    crate::util::block_on(server(args))?
}

async fn server(mut args: ServerArgs) -> Result<()> {
    let client = args.dmsg.client().await?;
    let result = async {
        let listener = client
            .listen(args.port)
            .with_context(|| format!("listening on dmsg port {}", args.port))?;
        eprintln!(
            "skysocks serving SOCKS5 on dmsg://{}:{}{}",
            client.pk(),
            args.port,
            if args.passcode.is_some() {
                " (passcode required)"
            } else {
                ""
            }
        );
        let cfg = SkysocksConfig {
            passcode: args.passcode.clone(),
            ..SkysocksConfig::default()
        };
        tokio::select! {
            () = skysocks::serve_skysocks(listener, cfg) => anyhow::bail!("the dmsg client stopped"),
            () = shutdown_signal() => Ok(()),
        }
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    result
}

/// Runs `skywire app skysocks-client`.
pub fn run_client(args: ClientArgs) -> Result<()> {
    crate::util::block_on(client(args))?
}

async fn client(mut args: ClientArgs) -> Result<()> {
    let socks = tokio::net::TcpListener::bind(listen_addr(&args.addr, "--addr")?)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let http = match &args.http {
        Some(a) => Some(
            tokio::net::TcpListener::bind(listen_addr(a, "--http")?)
                .await
                .with_context(|| format!("listening on {a}"))?,
        ),
        None => None,
    };
    let client = args.dmsg.client().await?;
    let result = async {
        let remote = Addr::new(args.srv, args.port);
        // Like the reference: retry every second until the server answers.
        let conn = loop {
            tokio::select! {
                r = client.dial(remote) => match r {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!(error = %e, "skysocks-client: dial {remote} failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                () = shutdown_signal() => return Ok(()),
            }
        };
        eprintln!("skysocks-client connected to {remote}");
        eprintln!(
            "skysocks-client listening on socks5://{}",
            socks.local_addr().context("local address")?
        );
        if let Some(h) = &http {
            eprintln!(
                "skysocks-client listening on http://{}",
                h.local_addr().context("local address")?
            );
        }
        let session = skysocks::client_session(conn);
        tokio::select! {
            e = skysocks::serve_skysocks_client(session, socks, http, args.passcode.clone()) => {
                Err(anyhow::Error::new(e).context("the connection to the skysocks server ended"))
            }
            () = shutdown_signal() => Ok(()),
        }
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    result
}
