//! `skywire cli config ...`: `gen` writes a visor config (`skywire-config.json`, the reference's key
//! names and defaults), `gen-keys` prints a fresh keypair as the JSON object `{"pk": ..., "sk": ...}`,
//! and `check-pk` validates a public key the way every Skywire component parses one.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use skywire_cipher::{PubKey, SecKey};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a visor config with a new identity (or keep the keys with `-r`).
    Gen(Box<GenArgs>),
    /// Print a new keypair (or the public key of `--sk`) as JSON.
    GenKeys {
        /// Derive the public key from this secret key (64 hex characters) instead of a new one.
        #[arg(long)]
        sk: Option<String>,
    },
    /// Check that a public key is a valid secp256k1 compressed key.
    CheckPk {
        /// The public key, 66 hex characters.
        pk: String,
    },
}

#[derive(Debug, Serialize)]
struct Identity {
    pk: PubKey,
    sk: SecKey,
}

/// `skywire cli config gen`.
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// Output file (`-` prints to stdout).
    #[arg(
        short = 'o',
        long,
        default_value = "skywire-config.json",
        value_name = "FILE"
    )]
    pub output: std::path::PathBuf,
    /// Leave an existing output file untouched and exit 0 (first-start generation).
    #[arg(long)]
    pub if_missing: bool,
    /// Overwrite an existing output file.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Regenerate an existing output file, keeping its keys.
    #[arg(short = 'r', long)]
    pub regen: bool,
    /// Use this secret key.
    #[arg(long, value_name = "HEX")]
    pub sk: Option<String>,
    /// Package paths: local_path /var/lib/skywire/local, pty socket /run/skywire/dmsgpty.sock.
    #[arg(short = 'p', long)]
    pub pkg: bool,
    /// The reference's test deployment (dmsgd.skywire.dev).
    #[arg(short = 't', long, conflicts_with = "dmsg_disc")]
    pub testenv: bool,
    /// dmsg discovery URL, e.g. a local `skywire testnet`'s http://127.0.0.1:<port>.
    #[arg(long, value_name = "URL")]
    pub dmsg_disc: Option<String>,
    /// Listen for stcp transports here (default :7777; `""` = no listener).
    #[arg(long, value_name = "ADDR")]
    pub stcp_local_address: Option<String>,
    /// Hypervisors that may manage this visor (comma separated keys).
    #[arg(short = 'j', long, value_delimiter = ',', value_name = "PK,...")]
    pub hypervisor_pks: Vec<PubKey>,
    /// Make this visor a hypervisor (web UI on :8000).
    #[arg(short = 'i', long)]
    pub is_hypervisor: bool,
    /// Keys allowed to open shells and mounts (comma separated).
    #[arg(long = "dmsgpty", value_delimiter = ',', value_name = "PK,...")]
    pub pty_whitelist: Vec<PubKey>,
    /// Control API address (`localhost:3435` or `unix:/path`).
    #[arg(long, value_name = "ADDR")]
    pub cli_addr: Option<String>,
    /// Direct noise-XK TCP entry of the pty host (`ssh_listen`, e.g. :2022).
    #[arg(long, value_name = "ADDR")]
    pub ssh_listen: Option<String>,
    /// Local app server address (`launcher.server_addr`).
    #[arg(long, value_name = "ADDR")]
    pub app_server_addr: Option<String>,
    /// Start vpn-server with the visor.
    #[arg(long)]
    pub servevpn: bool,
    /// Do not start skysocks with the visor.
    #[arg(long)]
    pub noproxyserver: bool,
    /// skysocks passcode.
    #[arg(long, value_name = "PASS")]
    pub proxyserverpass: Option<String>,
    /// Run the `.dmsg` resolving SOCKS5 proxy on 127.0.0.1:4445.
    #[arg(long)]
    pub resolver: bool,
    /// dmsg sessions to keep.
    #[arg(long, value_name = "N")]
    pub minsess: Option<usize>,
}

fn generate(a: GenArgs) -> Result<()> {
    use skywire_visor::{GenOptions, VisorConfig};
    let to_stdout = a.output.as_os_str() == "-";
    let exists = !to_stdout && a.output.exists();
    if exists && a.if_missing {
        return Ok(());
    }
    let mut sk = match &a.sk {
        Some(t) => Some(SecKey::from_hex(t.trim()).context("invalid --sk")?),
        None => None,
    };
    if exists && a.regen && sk.is_none() {
        let old = VisorConfig::load(&a.output)
            .with_context(|| format!("-r: reading the keys of {}", a.output.display()))?;
        sk = Some(old.sk);
    }
    if exists && !a.force && !a.regen {
        anyhow::bail!(
            "{} exists (use -r to regenerate it keeping its keys, -f to overwrite, --if-missing to keep it)",
            a.output.display()
        );
    }
    let opts = GenOptions {
        sk,
        dmsg_disc: if a.testenv {
            Some("test".into())
        } else {
            a.dmsg_disc.clone()
        },
        stcp_local_address: a.stcp_local_address.clone(),
        hypervisor_pks: a.hypervisor_pks.clone(),
        hypervisor: a.is_hypervisor,
        pty_whitelist: a.pty_whitelist.clone(),
        package_paths: a.pkg,
        cli_addr: a.cli_addr.clone(),
        ssh_listen: a.ssh_listen.clone(),
        serve_vpn: a.servevpn,
        no_proxy_server: a.noproxyserver,
        proxy_server_pass: a.proxyserverpass.clone(),
        resolver: a.resolver,
        app_server_addr: a.app_server_addr.clone(),
        sessions: a.minsess,
    };
    let cfg = VisorConfig::generate(&opts);
    if to_stdout {
        print!("{}", cfg.to_json());
        return Ok(());
    }
    cfg.write(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!("wrote {} (visor {})", a.output.display(), cfg.pk);
    Ok(())
}

pub fn run(cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Gen(a) => generate(*a),
        ConfigCommand::GenKeys { sk } => {
            let sk = match sk {
                Some(text) => SecKey::from_hex(text.trim()).context("invalid --sk")?,
                None => SecKey::generate(),
            };
            let id = Identity {
                pk: sk.pub_key(),
                sk,
            };
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &id).context("writing keys")?;
            writeln!(out).context("writing keys")?;
            Ok(())
        }
        ConfigCommand::CheckPk { pk } => {
            let key = PubKey::from_hex(pk.trim())
                .with_context(|| format!("invalid public key {pk:?}"))?;
            if key.is_null() {
                anyhow::bail!("invalid public key {pk:?}: the null key is not an identity");
            }
            println!("{key} is a valid public key");
            Ok(())
        }
    }
}
