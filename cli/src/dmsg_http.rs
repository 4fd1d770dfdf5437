//! `skywire dmsg http serve`: serves a directory over dmsghttp (`dmsg://<pk>:<port>/...`) until
//! Ctrl-C / SIGTERM. This file owns the small read-only static file handler (files streamed
//! with a guessed Content-Type, `index.html` or a generated listing for directories, no path
//! escapes) and the client glue around [`skywire_dmsg::http::serve`].

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use clap::{Args, Subcommand};
use skywire_cipher::SecKey;
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig};

use crate::dmsg_disc::parse_go_duration;
use crate::util::DEFAULT_DISCOVERY;

#[derive(Debug, Subcommand)]
pub enum HttpCommand {
    /// Serve a directory over dmsghttp.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory to serve (read-only).
    #[arg(long, value_name = "PATH")]
    pub dir: PathBuf,
    /// dmsg port to listen on.
    #[arg(short = 'p', long, default_value_t = skywire_dmsg::http::DEFAULT_PORT)]
    pub port: u16,
    /// Secret key of the serving identity (64 hex characters); a random key when unset.
    #[arg(
        short = 's',
        long = "sk",
        env = "DMSGHTTP_SK",
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
    /// Deadline for reaching the dmsg network (Go duration).
    #[arg(long, default_value = "30s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
}

/// Runs `skywire dmsg http ...`.
pub fn run(cmd: HttpCommand) -> Result<()> {
    match cmd {
        HttpCommand::Serve(args) => crate::util::block_on(serve(args))?,
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let root = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("cannot serve {}", args.dir.display()))?;
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    if args.port == 0 {
        bail!("--port must be 1..=65535");
    }
    let sk = args.sk.clone().unwrap_or_else(SecKey::generate);
    let disc = DiscClient::new(&args.disc)
        .with_context(|| format!("invalid discovery URL {:?}", args.disc))?;
    let mut cfg = ClientConfig::new(sk, disc);
    cfg.min_sessions = args.sessions.max(1);
    let client = Client::start(cfg);
    let result = async {
        let listener = client
            .listen(args.port)
            .with_context(|| format!("listening on dmsg port {}", args.port))?;
        client
            .ready(args.connect_timeout)
            .await
            .context("connecting to the dmsg network")?;
        eprintln!(
            "serving {} at dmsg://{}:{}/",
            root.display(),
            client.pk(),
            args.port
        );
        tokio::select! {
            () = skywire_dmsg::http::serve(listener, static_router(root)) => {
                bail!("the dmsg client stopped")
            }
            () = crate::util::shutdown_signal() => Ok(()),
        }
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    result
}

/// A router serving the files under `root` (which must be canonical).
pub fn static_router(root: PathBuf) -> axum::Router {
    axum::Router::new()
        .fallback(static_file)
        .with_state(Arc::new(root))
}

async fn static_file(State(root): State<Arc<PathBuf>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n").into_response();
    }
    let Some(rel) = safe_relative_path(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "400 bad path\n").into_response();
    };
    let path = root.join(&rel);
    let Ok(meta) = tokio::fs::metadata(&path).await else {
        return not_found();
    };
    // Symlinks may point outside the root: serve only what resolves inside it.
    match tokio::fs::canonicalize(&path).await {
        Ok(real) if real.starts_with(root.as_path()) => {}
        _ => return not_found(),
    }
    if meta.is_dir() {
        if !uri.path().ends_with('/') {
            let to = format!("{}/", uri.path());
            return (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response();
        }
        let index = path.join("index.html");
        if tokio::fs::metadata(&index).await.is_ok_and(|m| m.is_file()) {
            return send_file(&index).await;
        }
        return listing(&path, uri.path()).await;
    }
    send_file(&path).await
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// Percent-decodes `path` and keeps only normal components (no `..`, no root, no NUL).
fn safe_relative_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut out = PathBuf::new();
    for comp in Path::new(&decoded).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

async fn send_file(path: &Path) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return not_found(),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    (
        [
            (header::CONTENT_TYPE, content_type(path).to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

async fn listing(dir: &Path, url_path: &str) -> Response {
    let mut names = Vec::new();
    if let Ok(mut rd) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let mut name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().await.is_ok_and(|t| t.is_dir()) {
                name.push('/');
            }
            names.push(name);
        }
    }
    names.sort();
    let title = html_escape(url_path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<ul>\n"
    );
    for n in names {
        let href = percent_encode_segment(&n);
        html.push_str(&format!(
            "<li><a href=\"{href}\">{}</a></li>\n",
            html_escape(&n)
        ));
    }
    html.push_str("</ul></body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "md" | "log" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "deb" => "application/vnd.debian.binary-package",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(safe_relative_path("/"), Some(PathBuf::new()));
        assert_eq!(
            safe_relative_path("/a/./b%20c.txt"),
            Some(PathBuf::from("a/b c.txt"))
        );
        assert_eq!(safe_relative_path("/../etc/passwd"), None);
        assert_eq!(safe_relative_path("/a/%2e%2e/%2e%2e/x"), None);
        assert_eq!(safe_relative_path("/a%00b"), None);
        assert_eq!(safe_relative_path("/%zz"), None);
        assert_eq!(
            content_type(Path::new("x/INDEX.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(percent_encode_segment("a b/"), "a%20b/");
    }
}
