//! Plain-file OS state: sysctls under /proc/sys (per network namespace) and resolv.conf, which
//! is rewritten in place (truncate + write) so it also works when it is a bind mount
//! (`ip netns exec` mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf). Also the
//! plain-data route description shared by the journal and [`super::net`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OsError;

/// An IPv4 route: destination prefix, optional gateway, optional output interface by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Destination network.
    pub dst: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Next hop.
    pub gateway: Option<Ipv4Addr>,
    /// Output interface.
    pub dev: Option<String>,
}

fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Reads a sysctl (`net.ipv4.ip_forward` or `net/ipv4/ip_forward`).
pub fn read_sysctl(key: &str) -> Result<String, OsError> {
    let path = sysctl_path(key);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|source| OsError::File {
            what: "reading sysctl",
            path,
            source,
        })
}

/// Writes a sysctl.
pub fn write_sysctl(key: &str, value: &str) -> Result<(), OsError> {
    let path = sysctl_path(key);
    std::fs::write(&path, format!("{}\n", value.trim())).map_err(|source| OsError::File {
        what: "writing sysctl",
        path,
        source,
    })
}

/// Reads a whole text file ("" if it does not exist).
pub fn read_or_empty(path: &Path) -> Result<String, OsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(OsError::File {
            what: "reading",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Truncates and rewrites `path` without replacing the inode (works on bind mounts).
pub fn write_in_place(path: &Path, contents: &str) -> Result<(), OsError> {
    use std::io::Write;
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()
    })();
    res.map_err(|source| OsError::File {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// The resolv.conf text that sends all queries to `servers`.
pub fn resolv_conf(servers: &[Ipv4Addr]) -> String {
    let mut s = String::from("# written by skywire vpn-client; restored when it exits\n");
    for ip in servers {
        s.push_str(&format!("nameserver {ip}\n"));
    }
    s
}
