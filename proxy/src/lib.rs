//! SOCKS5 over skywire (skysocks), the .dmsg resolving proxy and skynet port forwards (skeleton, see issue 6).
