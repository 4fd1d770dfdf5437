//! `hello`: the example custom app built on the skywire-app SDK.
//!
//! * `hello` (launched by a visor): listens on its routing port over dmsg, sets its status to
//!   `Running`, and answers every line it receives with `hello <line> from <visor pk>`. SIGINT
//!   (the visor stopping it) ends it with exit code 0.
//! * `hello --dial <pk> [--port N] <text>`: dials the hello app of the visor `<pk>` (port 45 by
//!   default, the example server port of apps.md §1.4), sends `<text>`, prints the answer and
//!   exits 0.

use std::process::ExitCode;

use skywire_app::{AppConn, Client, Net};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The example server app's port (apps.md §1.4).
const DEFAULT_PORT: u16 = 45;

enum Mode {
    Serve,
    Dial { pk: String, port: u16, text: String },
}

fn usage() -> String {
    "usage: hello                          (serve, launched by a visor)\n       hello --dial <pk> [--port N] <text>"
        .to_owned()
}

fn parse_args(args: &[String]) -> Result<Mode, String> {
    let mut pk = None;
    let mut port = DEFAULT_PORT;
    let mut text: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dial" => pk = Some(it.next().ok_or("--dial needs a public key")?.clone()),
            "--port" => {
                let v = it.next().ok_or("--port needs a number")?;
                port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
            }
            "-h" | "--help" => return Err(usage()),
            s if s.starts_with("--") => return Err(format!("unknown flag {s}\n{}", usage())),
            s => text.push(s.to_owned()),
        }
    }
    match pk {
        None if text.is_empty() => Ok(Mode::Serve),
        None => Err(usage()),
        Some(_) if text.is_empty() => Err(format!("--dial needs a text to send\n{}", usage())),
        Some(pk) => Ok(Mode::Dial {
            pk,
            port,
            text: text.join(" "),
        }),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match parse_args(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match mode {
        Mode::Serve => serve().await,
        Mode::Dial { pk, port, text } => dial(&pk, port, &text).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serve() -> Result<(), BoxError> {
    let client = Client::from_env().await?;
    let port = match client.routing_port() {
        0 => DEFAULT_PORT,
        p => p,
    };
    let listener = client.listen(Net::Dmsg, port).await?;
    client.set_app_port(port).await?;
    client.set_detailed_status("Running").await?;
    eprintln!(
        "hello: listening on dmsg {} as app {:?}",
        listener.addr(),
        client.app_name()
    );
    let visor = client.visor_pk();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            r = listener.accept() => match r {
                Ok((conn, remote)) => {
                    println!("hello: conn from {remote}");
                    tokio::spawn(async move {
                        if let Err(e) = answer(conn, visor).await {
                            eprintln!("hello: conn from {remote}: {e}");
                        }
                    });
                }
                Err(e) => {
                    let _ = client.set_error(&e.to_string()).await;
                    return Err(e.into());
                }
            }
        }
    }
    let _ = client.set_detailed_status("Shutting down").await;
    eprintln!("hello: interrupted, exiting");
    Ok(())
}

/// Answers each line with `hello <line> from <visor pk>` until EOF.
async fn answer(conn: AppConn, visor: skywire_cipher::PubKey) -> std::io::Result<()> {
    let (r, mut w) = tokio::io::split(conn);
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        w.write_all(format!("hello {line} from {visor}\n").as_bytes())
            .await?;
    }
    w.shutdown().await
}

async fn dial(pk: &str, port: u16, text: &str) -> Result<(), BoxError> {
    let pk = skywire_cipher::PubKey::from_hex(pk)?;
    let client = Client::from_env().await?;
    let conn = client.dial(Net::Dmsg, pk, port).await?;
    eprintln!("hello: connected to {}", conn.remote());
    let (r, mut w) = tokio::io::split(conn);
    w.write_all(format!("{text}\n").as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(r).read_line(&mut answer).await?;
    if answer.is_empty() {
        return Err("the remote hello closed without answering".into());
    }
    print!("{answer}");
    Ok(())
}
