//! Ports on 127.0.0.1 for the subjects the harness serves or starts on
//! this machine.

use anyhow::Result;

/// A port on 127.0.0.1 that was free a moment ago, below the kernel's
/// ephemeral range. A webhook's port is bound, released and bound again
/// (a stop and a start keep its address); a port from `bind(:0)` is an
/// ephemeral one, which the kernel may meanwhile give to any outgoing
/// connection as its local port (seen in CI: "Address already in use" when
/// the injector of one scenario started while other tests made calls).
pub fn free_port() -> Result<u16> {
    let (low, _) = ephemeral_range();
    let floor: u16 = 20_000;
    if low > floor + 1000 {
        let span = u64::from(low - floor);
        let mut seed = {
            use std::hash::{BuildHasher, Hasher};
            // std seeds each RandomState from the OS's random source.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish()
        };
        for _ in 0..64 {
            let port = floor + (seed % span) as u16;
            seed = seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The kernel's ephemeral port range (Linux's default when unreadable).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_free_port_is_below_the_ephemeral_range_and_bindable() {
        let (low, _) = super::ephemeral_range();
        for _ in 0..20 {
            let port = super::free_port().unwrap();
            if low > 21_000 {
                assert!(
                    (20_000..low).contains(&port),
                    "{port} (ephemeral from {low})"
                );
            }
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
