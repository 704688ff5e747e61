//! Rate limits per client address (governor's GCRA: a steady rate with a
//! burst on top), and which address a request comes from.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitSettings;

/// Requests between sweeps of addresses that have been quiet long enough
/// to be back at a full burst (they would be allowed anyway; this bounds
/// the memory a stream of new addresses can take).
const SWEEP_EVERY: u64 = 10_000;

/// A per-address limit; `None` inside when configured off.
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    seen: AtomicU64,
}

impl RateLimit {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let limiter = NonZeroU32::new(settings.per_minute).map(|rate| {
            let burst = NonZeroU32::new(settings.burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self {
            limiter,
            seen: AtomicU64::new(0),
        }
    }

    /// Counts a request from `client`: `Err(seconds)` to wait when over the
    /// limit.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&bucket(client)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Rounded up: a client that waits exactly this long gets in.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The key an address is counted under: IPv6 by its /64, which is what one
/// subscriber gets (else every address of it would bring a fresh burst),
/// and an IPv4-mapped IPv6 address as the IPv4 address it is.
fn bucket(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The address a request comes from: the peer, or, when the peer is one of
/// `trusted` proxies, the last address in `X-Forwarded-For` that is not
/// (each proxy appends the address it was reached from, so everything to
/// the left of the first untrusted hop could be made up by the client).
pub fn client_address(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    // Right to left: each hop was appended by the proxy that received it.
    // The first one that is not a trusted proxy is the client; a malformed
    // hop before that cannot come from a trusted proxy, so the chain stops
    // being believed there and the last trusted proxy is taken instead.
    let mut client = peer;
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        let address = address.to_canonical();
        client = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn limit(per_minute: u32, burst: u32) -> RateLimit {
        RateLimit::new(&RateLimitSettings { per_minute, burst })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_address() {
        let limit = limit(60, 3);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limit.check(a), Ok(()));
        }
        assert_eq!(limit.check(a), Err(1), "one a second after the burst");
        assert_eq!(limit.check(b), Ok(()), "another address has its own");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = limit(0, 0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..10_000).all(|_| limit.check(a).is_ok()));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let request = |peer: &str, forwarded: &str| {
            TestRequest::default()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("x-forwarded-for", forwarded))
                .to_http_request()
        };
        let spoofed = request("203.0.113.9:5000", "198.51.100.7");
        assert_eq!(
            client_address(&spoofed, &[proxy]),
            Some("203.0.113.9".parse().unwrap()),
            "an untrusted peer's header is ignored"
        );
        let proxied = request("10.0.0.1:5000", "6.6.6.6, 198.51.100.7");
        assert_eq!(
            client_address(&proxied, &[proxy]),
            Some("198.51.100.7".parse().unwrap()),
            "the hop the trusted proxy saw, not what the client wrote before it"
        );
        let garbage = request("10.0.0.1:5000", "not an address");
        assert_eq!(client_address(&garbage, &[proxy]), Some(proxy));
        let written_by_the_client = request("10.0.0.1:5000", "x, 198.51.100.7");
        assert_eq!(
            client_address(&written_by_the_client, &[proxy]),
            Some("198.51.100.7".parse().unwrap()),
            "junk left of the real hop does not push the client onto the proxy's bucket"
        );
        let mapped = request("[::ffff:10.0.0.1]:5000", "198.51.100.7");
        assert_eq!(
            client_address(&mapped, &[proxy]),
            Some("198.51.100.7".parse().unwrap()),
            "an IPv4-mapped peer is the IPv4 proxy"
        );
    }

    #[test]
    fn an_ipv6_subscriber_shares_one_bucket() {
        let limit = limit(60, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit.check(a), Ok(()));
        assert_eq!(limit.check(b), Ok(()));
        assert!(limit.check(a).is_err(), "the same /64");
        assert_eq!(limit.check(elsewhere), Ok(()), "another /64");
    }
}
