//! Rate limits per client address or per credential (governor's GCRA: a
//! steady rate with a burst on top), which address a request comes from,
//! and the API's limits ([`ApiLimits`], `rate_limits` in the settings).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{RateLimitSettings, RateLimits, Settings};
use crate::error::ApiError;

/// Requests between sweeps of addresses that have been quiet long enough
/// to be back at a full burst (they would be allowed anyway; this bounds
/// the memory a stream of new addresses can take).
const SWEEP_EVERY: u64 = 10_000;

/// A limit per key (a client address unless said otherwise); `None`
/// inside when configured off.
pub struct RateLimit<K: Hash + Eq + Clone = IpAddr> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    seen: AtomicU64,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
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

    /// Counts a request under `key`: `Err(seconds)` to wait when over the
    /// limit.
    pub fn check_key(&self, key: &K) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Rounded up: a client that waits exactly this long gets in.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

impl RateLimit {
    /// Counts a request from `client`: `Err(seconds)` to wait when over the
    /// limit.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.check_key(&bucket(client))
    }
}

/// The API's limits, one set shared by every HTTP worker.
pub struct ApiLimits {
    per_address: RateLimit,
    per_credential: RateLimit<String>,
    sign_in_per_address: RateLimit,
    sign_in_per_account: RateLimit<String>,
}

/// What the per-address limits count: every API path but the answer links
/// (their own limit, `answers.rate_limit`, is tuned for a whole office
/// answering from one address at once).
fn counted(path: &str) -> bool {
    path.starts_with("/api/v1/") && !path.starts_with("/api/v1/answers/")
}

impl ApiLimits {
    pub fn new(settings: &RateLimits) -> Self {
        Self {
            per_address: RateLimit::new(&settings.api_per_address),
            per_credential: RateLimit::new(&settings.api_per_credential),
            sign_in_per_address: RateLimit::new(&settings.sign_in_per_address),
            sign_in_per_account: RateLimit::new(&settings.sign_in_per_account),
        }
    }

    /// Counts a request against its client address's limits (before any
    /// handler runs, so a refused request costs nothing else).
    pub fn admit(&self, req: &HttpRequest) -> Result<(), ApiError> {
        // The path as routing sees it, percent-escapes decoded: the raw
        // path (`/api/%761/teams`) would slip past the prefix checks.
        let path = req.match_info().as_str();
        if !counted(path) {
            return Ok(());
        }
        // No peer address: an in-process request, nothing to count.
        let Some(client) = client_of(req) else {
            return Ok(());
        };
        self.per_address.check(client).map_err(too_many)?;
        if req.method() == actix_web::http::Method::POST && path == "/api/v1/auth/login" {
            self.sign_in_per_address.check(client).map_err(too_many)?;
        }
        Ok(())
    }

    /// Counts an authenticated request against its credential's limit.
    pub fn admit_credential(req: &HttpRequest, credential: &str) -> Result<(), ApiError> {
        match req.app_data::<actix_web::web::Data<ApiLimits>>() {
            Some(limits) => limits
                .per_credential
                .check_key(&credential.to_owned())
                .map_err(too_many),
            None => Ok(()),
        }
    }

    /// Counts a sign-in attempt against the email address it names.
    pub fn admit_sign_in(&self, email: &str) -> Result<(), ApiError> {
        self.sign_in_per_account
            .check_key(&email.to_owned())
            .map_err(too_many)
    }
}

fn too_many(retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests { retry_after_secs }
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

/// The client address of a request, as the rate limits and the audit log
/// see it: [`client_address`] with the configured trusted proxies.
pub fn client_of(req: &HttpRequest) -> Option<IpAddr> {
    let trusted = req
        .app_data::<actix_web::web::Data<Settings>>()
        .map(|s| s.server.trusted_proxies.as_slice())
        .unwrap_or_default();
    client_address(req, trusted)
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
