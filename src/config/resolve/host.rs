//! Host names in the config: `HOST[:PORT]` parsing of upstream servers and the loopback
//! checks that decide where plain `none` / `http://` are allowed.

use std::net::IpAddr;

/// "host", "host:port", "[v6]", "[v6]:port".
pub(super) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '/') {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((h.to_string(), None)),
            p => Some((h.to_string(), Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => {
            Some((h.to_string(), Some(p.parse().ok()?)))
        }
        Some(_) => None,
        None => Some((s.to_string(), None)),
    }
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

pub(super) fn is_loopback_host_url(h: &str) -> bool {
    is_loopback_host(h.trim_start_matches('[').trim_end_matches(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let t = |s: &str| split_host_port(s);
        assert_eq!(
            t("imap.gmail.com:993"),
            Some(("imap.gmail.com".into(), Some(993)))
        );
        assert_eq!(t("imap.gmail.com"), Some(("imap.gmail.com".into(), None)));
        assert_eq!(t("[::1]:143"), Some(("::1".into(), Some(143))));
        assert_eq!(t("[::1]"), Some(("::1".into(), None)));
        assert_eq!(t("::1"), None);
        assert_eq!(t("host:notaport"), None);
        assert_eq!(t(""), None);
        assert_eq!(t("a b:1"), None);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.1.2.3"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("example.com"));
        assert!(is_loopback_host_url("[::1]"));
    }
}
