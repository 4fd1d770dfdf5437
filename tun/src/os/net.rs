//! Links, addresses and routes over rtnetlink (no `ip` binary): default-route lookup, route
//! lookup for one destination (like `ip route get`), adding and deleting IPv4 routes, and the
//! IPv4 addresses configured on the host.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::OsError;
use super::files::RouteSpec;

/// A netlink connection (its driver runs on the current tokio runtime).
#[derive(Debug, Clone)]
pub struct Net {
    handle: Handle,
}

/// Where packets to some destination go now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Next hop, if not on-link.
    pub gateway: Option<Ipv4Addr>,
    /// Output interface name.
    pub dev: Option<String>,
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> OsError {
    let what = what.into();
    move |source| OsError::Netlink { what, source }
}

/// Whether a netlink error means "not there" (deleting something already gone).
fn is_absent(e: &rtnetlink::Error) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(m) => {
            let code = m.raw_code().abs();
            code == 3 || code == 2 || code == 19 // ESRCH, ENOENT, ENODEV
        }
        _ => false,
    }
}

fn is_exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == 17)
}

impl Net {
    /// Opens a netlink socket in the current network namespace.
    pub fn new() -> Result<Net, OsError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(OsError::NetlinkSocket)?;
        tokio::spawn(conn);
        Ok(Net { handle })
    }

    /// Index of the link named `name`.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, OsError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(nl(format!("looking up link {name}"))(e)),
        }
    }

    /// Name of the link with index `index`.
    pub async fn link_name(&self, index: u32) -> Result<Option<String>, OsError> {
        let mut s = self.handle.link().get().match_index(index).execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })),
            Ok(None) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(nl(format!("looking up link {index}"))(e)),
        }
    }

    async fn info(&self, m: &RouteMessage) -> Result<RouteInfo, OsError> {
        let mut info = RouteInfo {
            gateway: None,
            dev: None,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => info.gateway = Some(*g),
                RouteAttribute::Oif(i) => info.dev = self.link_name(*i).await?,
                _ => {}
            }
        }
        Ok(info)
    }

    /// The IPv4 default routes of the main table.
    pub async fn default_routes(&self) -> Result<Vec<RouteInfo>, OsError> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let mut s = self.handle.route().get(msg).execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.map_err(nl("listing routes"))? {
            if m.header.destination_prefix_length == 0 && m.header.table == 254 {
                out.push(self.info(&m).await?);
            }
        }
        Ok(out)
    }

    /// How the kernel routes to `ip` now (`ip route get`).
    pub async fn lookup(&self, ip: Ipv4Addr) -> Result<RouteInfo, OsError> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(ip, 32)
            .build();
        let mut s = self.handle.route().get(msg).execute();
        match s
            .try_next()
            .await
            .map_err(nl(format!("route lookup {ip}")))?
        {
            Some(m) => self.info(&m).await,
            None => Err(OsError::NoDefaultRoute(format!(" to {ip}"))),
        }
    }

    async fn message(&self, r: &RouteSpec) -> Result<RouteMessage, OsError> {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(r.dst, r.prefix);
        if let Some(g) = r.gateway {
            b = b.gateway(g);
        }
        if let Some(dev) = &r.dev {
            let idx = self
                .link_index(dev)
                .await?
                .ok_or_else(|| OsError::NoSuchLink(dev.clone()))?;
            b = b.output_interface(idx);
        }
        Ok(b.build())
    }

    /// Adds (or replaces) a route.
    pub async fn add_route(&self, r: &RouteSpec) -> Result<(), OsError> {
        let m = self.message(r).await?;
        match self.handle.route().add(m).replace().execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_exists(&e) => Ok(()),
            Err(e) => Err(nl(format!("adding route {}/{}", r.dst, r.prefix))(e)),
        }
    }

    /// Deletes a route; a missing route or interface is fine.
    pub async fn del_route(&self, r: &RouteSpec) -> Result<(), OsError> {
        let m = match self.message(r).await {
            Ok(m) => m,
            Err(OsError::NoSuchLink(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.handle.route().del(m).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(nl(format!("deleting route {}/{}", r.dst, r.prefix))(e)),
        }
    }

    /// Whether a main-table route with exactly this destination exists.
    pub async fn has_route(&self, r: &RouteSpec) -> bool {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let mut s = self.handle.route().get(msg).execute();
        while let Ok(Some(m)) = s.try_next().await {
            if m.header.table != 254 || m.header.destination_prefix_length != r.prefix {
                continue;
            }
            let dst = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                _ => None,
            });
            if dst.unwrap_or(Ipv4Addr::UNSPECIFIED) == r.dst {
                return true;
            }
        }
        false
    }

    /// Every IPv4 address configured on any interface except loopback.
    pub async fn local_ipv4(&self) -> Result<Vec<Ipv4Addr>, OsError> {
        let mut s = self.handle.address().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.map_err(nl("listing addresses"))? {
            for a in &m.attributes {
                if let AddressAttribute::Address(IpAddr::V4(ip)) = a
                    && !ip.is_loopback()
                    && !out.contains(ip)
                {
                    out.push(*ip);
                }
            }
        }
        Ok(out)
    }
}
