//! `skywire cli config ...`: identity commands. `gen-keys` prints a fresh keypair as the JSON
//! object `{"pk": ..., "sk": ...}` (the key names of `skywire-config.json`), and `check-pk`
//! validates a public key the way every Skywire component parses one.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use skywire_cipher::{PubKey, SecKey};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
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

pub fn run(cmd: ConfigCommand) -> Result<()> {
    match cmd {
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
