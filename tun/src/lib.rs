//! TUN devices, routes, NAT and the VPN client and server (skeleton, see issue 7).
