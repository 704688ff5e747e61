//! Where a webhook may point. Peil posts to whatever URL an admin gives it,
//! from inside the network it runs in; without a guard an endpoint on
//! `http://10.0.0.5/` or `http://169.254.169.254/` (a cloud's metadata
//! service) would turn webhooks into a probe of that network. So, unless
//! `webhooks.allow_private_addresses` is set, only public unicast
//! addresses are allowed: checked for literal addresses when an endpoint is
//! registered, and at every delivery by the resolver the client uses, which
//! refuses a host name if any address it resolves to is not public (a name
//! that resolved to a public address at registration and to an internal one
//! later — DNS rebinding — is refused then). Redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::config::WebhookSettings;

/// Whether `ip` is a public unicast address, reachable on the internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // An IPv4 address in IPv6 clothing is judged as IPv4: mapped
    // (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7; link-local, fe80::/10; the old
        // site-local, fec0::/10; local-use NAT64, 64:ff9b:1::/48.
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // Documentation, 2001:db8::/32; Teredo, 2001::/32; discard, 100::/64.
        || (s[0] == 0x2001 && (s[1] == 0x0db8 || s[1] == 0))
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
        // The rest of the IPv4-compatible range, ::/96.
        || s[..6] == [0, 0, 0, 0, 0, 0])
}

/// Checks an endpoint URL against the settings: http(s), a host, no
/// credentials or fragment, https unless allowed otherwise, and a literal
/// address only if it is public (or private ones are allowed). Host names
/// are checked when they are resolved, at each delivery ([`Resolver`]).
pub fn check_url(text: &str, settings: &WebhookSettings) -> Result<Url, &'static str> {
    if text.len() > 2_000 {
        return Err("must be at most 2000 characters");
    }
    let url = Url::parse(text).map_err(|_| "must be an absolute http:// or https:// URL")?;
    match url.scheme() {
        "https" => {}
        "http" if !settings.require_https => {}
        "http" => return Err("must be an https:// URL (webhooks.require_https)"),
        _ => return Err("must be an absolute http:// or https:// URL"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user name or password (the signature authenticates Peil)");
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment (#…)");
    }
    let literal = match url.host() {
        None => return Err("must name a host"),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let Some(ip) = literal
        && !settings.allow_private_addresses
        && !is_public(ip)
    {
        return Err(
            "points to a loopback, private or otherwise internal address, which webhooks may not reach (webhooks.allow_private_addresses)",
        );
    }
    Ok(url)
}

/// Resolves host names for webhook deliveries, refusing a name any of whose
/// addresses is not public.
pub struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // Which address is not said: the log would map the network.
            if addresses.iter().any(|a| !is_public(a.ip())) {
                return Err(format!(
                    "{host} resolves to an internal address, which webhooks may not reach"
                )
                .into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether a host name resolves to an internal address now: asked when an
/// endpoint is registered, so an admin hears of it at once rather than at
/// the first failed delivery. A name that does not resolve yet passes.
pub async fn resolves_internally(url: &Url) -> bool {
    let Some(Host::Domain(host)) = url.host() else {
        return false;
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
        Ok(Ok(addresses)) => addresses.into_iter().any(|a| !is_public(a.ip())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow_private_addresses: bool, require_https: bool) -> WebhookSettings {
        let mut settings = crate::config::Settings::from_toml(&[])
            .expect("the defaults")
            .webhooks;
        settings.allow_private_addresses = allow_private_addresses;
        settings.require_https = require_https;
        settings
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for internal in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "64:ff9b:1::a00:1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "100::1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_against_the_settings() {
        let strict = settings(false, true);
        assert!(check_url("https://hooks.example.org/peil?x=1", &strict).is_ok());
        assert!(check_url("https://8.8.8.8/hook", &strict).is_ok());
        for bad in [
            "http://hooks.example.org/",
            "ftp://hooks.example.org/",
            "hooks.example.org/peil",
            "https://user:pw@hooks.example.org/",
            "https://hooks.example.org/#part",
            "https://127.0.0.1/",
            "https://10.0.0.5:8443/",
            "https://[::1]/",
            "https://[::ffff:192.168.0.1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://0x7f000001/",
        ] {
            assert!(check_url(bad, &strict).is_err(), "{bad}");
        }
        let open = settings(true, false);
        assert!(check_url("http://127.0.0.1:9000/hook", &open).is_ok());
        assert!(check_url("http://[::1]:9000/", &open).is_ok());
        assert!(check_url("ftp://127.0.0.1/", &open).is_err());
    }
}
