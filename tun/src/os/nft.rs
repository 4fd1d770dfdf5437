//! nftables through the `nft` binary (Debian `nftables`): a whole table is created, replaced or
//! deleted in one atomic batch (`nft -f -`), so a half-applied rule set never exists. The rule
//! sets of the VPN are built as text here: the server's NAT + `--secure` filter, and the
//! client's IPv6 block + kill switch.
//!
//! The text batch format is used instead of the JSON one of the `nftables` crate because these
//! tables are small and fixed, and the text form is what `nft list table` prints back, which
//! keeps the tests readable.

use std::net::Ipv4Addr;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::OsError;

/// Private IPv4 ranges dropped by `--secure` (RFC 1918).
pub const PRIVATE_V4: &str = "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16";

async fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, OsError> {
    let mut cmd = tokio::process::Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(OsError::NftSpawn)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(OsError::NftSpawn)?;
        drop(pipe);
    }
    let out = child.wait_with_output().await.map_err(OsError::NftSpawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(OsError::Nft(format!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Creates or replaces table `<family> <name>` with `body` (the text between the braces) in
/// one atomic batch.
pub async fn apply_table(family: &str, name: &str, body: &str) -> Result<(), OsError> {
    let batch = format!(
        "table {family} {name}\ndelete table {family} {name}\ntable {family} {name} {{\n{body}\n}}\n"
    );
    nft(&["-f", "-"], Some(&batch)).await.map(|_| ())
}

/// Deletes a table; a missing table is fine.
pub async fn delete_table(family: &str, name: &str) -> Result<(), OsError> {
    if !table_exists(family, name).await {
        return Ok(());
    }
    nft(&["delete", "table", family, name], None)
        .await
        .map(|_| ())
}

/// Whether the table exists.
pub async fn table_exists(family: &str, name: &str) -> bool {
    nft(&["list", "table", family, name], None).await.is_ok()
}

/// The server table (family `ip`): masquerade what comes out of client TUNs (`tun_prefix*`)
/// and leaves through `exit_ifc`, and with `secure`, drop client traffic to private ranges
/// (forwarded and to the server itself).
pub fn server_table(tun_prefix: &str, exit_ifc: &str, secure: bool) -> String {
    let mut s = String::new();
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    s.push_str(&format!(
        "    iifname \"{tun_prefix}*\" oifname \"{exit_ifc}\" masquerade\n  }}\n"
    ));
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    if secure {
        s.push_str(&format!(
            "    iifname \"{tun_prefix}*\" ip daddr {{ {PRIVATE_V4} }} drop\n"
        ));
    }
    s.push_str(&format!("    iifname \"{tun_prefix}*\" accept\n"));
    s.push_str(&format!(
        "    oifname \"{tun_prefix}*\" ct state established,related accept\n  }}\n"
    ));
    s.push_str("  chain input {\n    type filter hook input priority filter; policy accept;\n");
    if secure {
        s.push_str(&format!(
            "    iifname \"{tun_prefix}*\" ip daddr {{ {PRIVATE_V4} }} drop\n"
        ));
    }
    s.push_str("  }");
    s
}

/// The client table (family `inet`). `block_ipv6`: no IPv6 leaves except on loopback (IPv6 is
/// not tunnelled). `killswitch`: IPv4 may only leave through `tun` or to the `direct` hosts
/// (relays, discovery), which holds while the tunnel is down between reconnects.
pub fn client_table(tun: &str, direct: &[Ipv4Addr], block_ipv6: bool, killswitch: bool) -> String {
    let mut s = String::new();
    for (chain, hook, dev) in [
        ("output", "output", "oifname"),
        ("forward", "forward", "oifname"),
    ] {
        s.push_str(&format!(
            "  chain {chain} {{\n    type filter hook {hook} priority filter; policy accept;\n"
        ));
        s.push_str(&format!("    {dev} \"lo\" accept\n"));
        if block_ipv6 {
            s.push_str("    meta nfproto ipv6 reject with icmpx admin-prohibited\n");
        }
        if killswitch {
            s.push_str(&format!("    {dev} \"{tun}\" accept\n"));
            if !direct.is_empty() {
                let list: Vec<String> = direct.iter().map(|ip| ip.to_string()).collect();
                s.push_str(&format!("    ip daddr {{ {} }} accept\n", list.join(", ")));
            }
            s.push_str("    reject with icmpx admin-prohibited\n");
        }
        s.push_str("  }\n");
    }
    s
}
