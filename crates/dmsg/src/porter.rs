//! Local port bookkeeping of a dmsg client (`dmsg-wire.md` 4.3): listening ports chosen by
//! applications and ephemeral dialing ports from a counter that starts at 49152, is incremented
//! before use (first ephemeral port 49153), wraps after 65535 back to 49152 and skips ports in
//! use. Ports are purely local; nobody verifies the remote's choice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// First value of the ephemeral counter (incremented before use).
pub const EPHEMERAL_START: u16 = 49152;

#[derive(Debug)]
struct Ports {
    next: u16,
    used: HashSet<u16>,
}

/// Shared port table of one client. Reservations are released by dropping their [`PortGuard`].
#[derive(Debug, Clone)]
pub struct Porter {
    inner: Arc<Mutex<Ports>>,
}

impl Default for Porter {
    fn default() -> Self {
        Porter::new()
    }
}

impl Porter {
    /// An empty table.
    pub fn new() -> Porter {
        Porter {
            inner: Arc::new(Mutex::new(Ports {
                next: EPHEMERAL_START,
                used: HashSet::new(),
            })),
        }
    }

    /// Reserves a specific port; `None` if it is 0 or taken.
    pub fn reserve(&self, port: u16) -> Option<PortGuard> {
        if port == 0 {
            return None;
        }
        let mut p = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !p.used.insert(port) {
            return None;
        }
        Some(PortGuard {
            porter: self.clone(),
            port,
        })
    }

    /// Reserves the next free ephemeral port; `None` if all 16384 are in use.
    pub fn reserve_ephemeral(&self) -> Option<PortGuard> {
        let mut p = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..=(u16::MAX - EPHEMERAL_START) {
            p.next = if p.next == u16::MAX {
                EPHEMERAL_START
            } else {
                p.next + 1
            };
            let candidate = p.next;
            if p.used.insert(candidate) {
                return Some(PortGuard {
                    porter: self.clone(),
                    port: candidate,
                });
            }
        }
        None
    }

    /// Whether `port` is reserved.
    pub fn in_use(&self, port: u16) -> bool {
        let p = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        p.used.contains(&port)
    }

    fn release(&self, port: u16) {
        let mut p = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        p.used.remove(&port);
    }
}

/// A reserved port; released when dropped.
#[derive(Debug)]
pub struct PortGuard {
    porter: Porter,
    port: u16,
}

impl PortGuard {
    /// The reserved port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        self.porter.release(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_ports_follow_the_reference_counter() {
        let p = Porter::new();
        let a = p.reserve_ephemeral().unwrap();
        assert_eq!(a.port(), 49153);
        let b = p.reserve_ephemeral().unwrap();
        assert_eq!(b.port(), 49154);
        drop(a);
        // The counter moves on; freed ports are reused only after wrapping.
        assert_eq!(p.reserve_ephemeral().unwrap().port(), 49155);
        assert!(p.in_use(49154));
        drop(b);
        assert!(!p.in_use(49154));
    }

    #[test]
    fn wraps_and_skips_used_ports() {
        let p = Porter::new();
        let held = p.reserve(49152).unwrap();
        let mut guards = Vec::new();
        for _ in 0..(u16::MAX - EPHEMERAL_START) {
            guards.push(p.reserve_ephemeral().unwrap());
        }
        assert_eq!(guards.last().unwrap().port(), u16::MAX);
        // Everything is taken now, including 49152.
        assert!(p.reserve_ephemeral().is_none());
        drop(held);
        assert_eq!(p.reserve_ephemeral().unwrap().port(), 49152);
        assert!(p.reserve(0).is_none());
        assert!(p.reserve(u16::MAX).is_none());
    }
}
