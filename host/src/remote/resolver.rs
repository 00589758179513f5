//! Name resolution for the endpoints' connection pools: once per host name, not per call.
//!
//! ureq resolves an endpoint's host before it looks in its pool for an idle connection,
//! so every call resolved, even one that then reused a kept-alive connection. Its default
//! resolver, given a timeout (every call here has one), resolves on a thread of its own
//! so that it can give up on time: a thread started and ended per call (measured: about
//! 7,600 a second, with a stack mapped and unmapped each time, under 32 concurrent chat
//! requests to an nginx mock). The addresses are only used when a new connection is
//! opened, so [`CachedResolver`] answers an IP address as it is and keeps a host name's
//! addresses for [`NAME_TTL`], resolving it again (with ureq's timeout) after that.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a host name's addresses are reused: a provider moving its addresses is seen
/// by new connections within this time (kept-alive ones stay where they are, as before).
pub const NAME_TTL: Duration = Duration::from_secs(30);

/// ureq's resolver, with IP addresses taken as they are and names remembered for
/// [`NAME_TTL`].
#[derive(Debug, Default)]
pub struct CachedResolver {
    inner: DefaultResolver,
    names: Mutex<HashMap<(String, u16), (Instant, ResolvedSocketAddrs)>>,
}

impl CachedResolver {
    /// `host:port` of `uri` (the port from the scheme when not given), or `None` when the
    /// URI has no host or its scheme has no default port.
    fn key(uri: &Uri) -> Option<(String, u16)> {
        let authority = uri.authority()?;
        let port = authority.port_u16().or_else(|| match uri.scheme_str() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        })?;
        Some((authority.host().to_ascii_lowercase(), port))
    }
}

impl Resolver for CachedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some((host, port)) = Self::key(uri) else {
            return self.inner.resolve(uri, config, timeout);
        };
        // `[::1]` in a URI is the address ::1.
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = (host, port);
        let now = Instant::now();
        if let Some((at, addrs)) = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && now.duration_since(*at) < NAME_TTL
        {
            return Ok(addrs.clone());
        }
        // Resolved outside the lock: a slow lookup must not hold up calls to other names.
        let addrs = self.inner.resolve(uri, config, timeout)?;
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(resolver: &CachedResolver, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().expect("uri");
        let config = Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let addrs = resolver.resolve(&uri, &config, timeout).expect("resolved");
        addrs.iter().copied().collect()
    }

    #[test]
    fn addresses_are_taken_as_they_are() {
        let resolver = CachedResolver::default();
        assert_eq!(
            resolve(&resolver, "http://127.0.0.1:8080/v1"),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(
            resolve(&resolver, "https://[::1]/v1"),
            vec!["[::1]:443".parse::<SocketAddr>().expect("addr")]
        );
        assert!(resolver.names.lock().expect("lock").is_empty());
    }

    #[test]
    fn a_name_is_resolved_once_and_reused() {
        let resolver = CachedResolver::default();
        let first = resolve(&resolver, "http://localhost:9000/chat/completions");
        assert!(
            first
                .iter()
                .all(|a| a.port() == 9000 && a.ip().is_loopback())
        );
        assert_eq!(resolver.names.lock().expect("lock").len(), 1);
        // A planted answer shows the second call did not resolve again.
        let planted: SocketAddr = "127.0.0.9:9000".parse().expect("addr");
        let mut addrs = resolver.empty();
        addrs.push(planted);
        resolver.names.lock().expect("lock").insert(
            ("localhost".to_owned(), 9000),
            (Instant::now(), addrs.clone()),
        );
        assert_eq!(resolve(&resolver, "http://LOCALHOST:9000/x"), vec![planted]);
        // Past its time the name is resolved again.
        resolver.names.lock().expect("lock").insert(
            ("localhost".to_owned(), 9000),
            (Instant::now() - NAME_TTL - Duration::from_secs(1), addrs),
        );
        assert_ne!(resolve(&resolver, "http://localhost:9000/x"), vec![planted]);
    }
}
