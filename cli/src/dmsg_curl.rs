//! `skywire dmsg curl`: the reference `dmsgcurl`/`dmsgget`. Starts a short-lived dmsg client
//! (key from `--sk`, `DMSGCURL_SK`, or a random one), sends one HTTP request to
//! `dmsg://<pk>[:<port>]/path` over dmsghttp, and streams the body to stdout or a file (`-o FILE`,
//! or `-O` for the remote name as curl does). A progress bar is drawn on stderr when it is a
//! terminal and the body does not go to the same terminal. A non-2xx status is an error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use skywire_cipher::SecKey;
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::http::DmsgUrl;
use skywire_dmsg::{Client, ClientConfig};
use tokio::io::AsyncWriteExt;

use crate::dmsg_disc::parse_go_duration;
use crate::util::DEFAULT_DISCOVERY;

/// Fetch a URL over dmsghttp: `skywire dmsg curl dmsg://<pk>[:<port>]/path`.
#[derive(Debug, Args)]
pub struct CurlArgs {
    /// `dmsg://<pk>[:<port>]/path` (port 80 when omitted).
    #[arg(value_name = "URL")]
    pub url: String,

    /// Write the body to FILE instead of stdout.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "remote_name"
    )]
    pub output: Option<PathBuf>,

    /// Write the body to a file named like the last segment of the URL path (curl -O).
    #[arg(short = 'O', long = "remote-name")]
    pub remote_name: bool,

    /// Send DATA as the request body (POST unless -X says otherwise); `@FILE` reads a file,
    /// `@-` stdin.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,

    /// Request method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,

    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// User-Agent header.
    #[arg(short = 'A', long = "user-agent", value_name = "AGENT",
          default_value = concat!("skywire-dmsgcurl/", env!("CARGO_PKG_VERSION")))]
    pub user_agent: String,

    /// Client secret key (64 hex characters); a random key when unset.
    #[arg(
        short = 's',
        long = "sk",
        env = "DMSGCURL_SK",
        hide_env_values = true,
        value_name = "HEX"
    )]
    pub sk: Option<SecKey>,

    /// dmsg discovery URL.
    #[arg(short = 'c', long = "disc", visible_alias = "dmsg-disc", default_value = DEFAULT_DISCOVERY, value_name = "URL")]
    pub disc: String,

    /// Number of dmsg servers to keep sessions with.
    #[arg(short = 'e', long = "sess", default_value_t = 1, value_name = "N")]
    pub sessions: usize,

    /// Deadline for reaching the dmsg network and the peer (Go duration).
    #[arg(long, default_value = "30s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
}

enum Sink {
    Stdout(tokio::io::Stdout),
    File(tokio::fs::File, PathBuf),
}

/// Runs `skywire dmsg curl`.
pub fn run(args: CurlArgs) -> Result<()> {
    crate::util::block_on(run_async(args))?
}

async fn run_async(args: CurlArgs) -> Result<()> {
    let url = DmsgUrl::parse(&args.url)?;
    let output = match (&args.output, args.remote_name) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(remote_file_name(&url)?),
        (None, false) => None,
    };
    let req = build_request(&args, &url).await?;

    let sk = args.sk.clone().unwrap_or_else(SecKey::generate);
    let disc = DiscClient::new(&args.disc)
        .with_context(|| format!("invalid discovery URL {:?}", args.disc))?;
    let mut cfg = ClientConfig::new(sk, disc);
    cfg.min_sessions = args.sessions.max(1);
    let client = Client::start(cfg);
    let result = fetch(&client, req, &url, output.as_deref(), args.connect_timeout).await;
    if tokio::time::timeout(Duration::from_secs(5), client.close())
        .await
        .is_err()
    {
        tracing::debug!("closing the dmsg client took too long");
    }
    result
}

fn remote_file_name(url: &DmsgUrl) -> Result<PathBuf> {
    match url.file_name() {
        Some(name) if name != "." && name != ".." && !name.contains('\\') => Ok(name.into()),
        _ => bail!("-O needs a file name at the end of the URL path (or use -o FILE)"),
    }
}

async fn build_request(args: &CurlArgs, url: &DmsgUrl) -> Result<http::Request<Full<Bytes>>> {
    let body = match args.data.as_deref() {
        None => None,
        Some("@-") => {
            let mut buf = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut buf)
                .await
                .context("reading --data from stdin")?;
            Some(buf)
        }
        Some(d) => match d.strip_prefix('@') {
            Some(path) => Some(
                tokio::fs::read(path)
                    .await
                    .with_context(|| format!("reading --data file {path}"))?,
            ),
            None => Some(d.as_bytes().to_vec()),
        },
    };
    let method = match (&args.method, &body) {
        (Some(m), _) => http::Method::from_bytes(m.as_bytes())
            .with_context(|| format!("invalid method {m:?}"))?,
        (None, Some(_)) => http::Method::POST,
        (None, None) => http::Method::GET,
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url.to_string())
        .header(http::header::USER_AGENT, &args.user_agent)
        .header(http::header::ACCEPT, "*/*");
    if body.is_some()
        && !args
            .headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("content-type:"))
    {
        builder = builder.header(http::header::CONTENT_TYPE, "text/plain");
    }
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("invalid header {h:?} (expected `Name: value`)");
        };
        builder = builder.header(name.trim(), value.trim());
    }
    builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("building the request")
}

async fn fetch(
    client: &Client,
    req: http::Request<Full<Bytes>>,
    url: &DmsgUrl,
    output: Option<&Path>,
    timeout: Duration,
) -> Result<()> {
    let head = async {
        client
            .ready(timeout)
            .await
            .context("connecting to the dmsg network")?;
        skywire_dmsg::http::request(client, req)
            .await
            .context("sending the request")
    };
    let resp = tokio::time::timeout(timeout.saturating_mul(2), head)
        .await
        .with_context(|| format!("no response from {} within {:?}", url.addr, timeout * 2))??;
    let status = resp.status();
    if !status.is_success() {
        bail!("{url}: HTTP {status}");
    }
    let total = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());

    // Only a regular file that this run created may be removed again after a failed transfer:
    // never an existing file, and never a device such as /dev/null.
    let created_here = output.is_some_and(|p| std::fs::symlink_metadata(p).is_err());
    let mut sink = match output {
        None => Sink::Stdout(tokio::io::stdout()),
        Some(path) => Sink::File(
            tokio::fs::File::create(path)
                .await
                .with_context(|| format!("creating {}", path.display()))?,
            path.to_owned(),
        ),
    };
    let to_terminal = output.is_none() && std::io::stdout().is_terminal();
    let progress = progress_bar(total, std::io::stderr().is_terminal() && !to_terminal);

    let mut body = resp.into_body();
    let copied = async {
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the response body")?;
            if let Ok(data) = frame.into_data() {
                n += data.len() as u64;
                match &mut sink {
                    Sink::Stdout(s) => s.write_all(&data).await.context("writing to stdout")?,
                    Sink::File(f, p) => f
                        .write_all(&data)
                        .await
                        .with_context(|| format!("writing {}", p.display()))?,
                }
                progress.set_position(n);
            }
        }
        match &mut sink {
            Sink::Stdout(s) => s.flush().await.context("writing to stdout")?,
            // Like curl: hand everything to the OS, no fsync (fsync fails on /dev/null and
            // other special files).
            Sink::File(f, p) => f
                .flush()
                .await
                .with_context(|| format!("writing {}", p.display()))?,
        }
        if let Some(t) = total.filter(|&t| t != n) {
            bail!("body ended after {n} of {t} bytes");
        }
        Ok(())
    }
    .await;
    progress.finish_and_clear();
    if copied.is_err()
        && created_here
        && let Sink::File(_, p) = &sink
        && std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
    {
        let _ = std::fs::remove_file(p);
    }
    copied
}

fn progress_bar(total: Option<u64>, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}
