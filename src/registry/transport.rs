//! Transport: which host and scheme a registry is reached at (loopback and
//! `--insecure-registry` hosts over plain HTTP, everything else HTTPS, Docker Hub at
//! `registry-1.docker.io`), which redirects and token realms may be followed without
//! taking credentials to plain HTTP, the HTTP client itself, and reading answers
//! (headers, `Retry-After`, `Docker-Content-Digest`, bodies under a size cap, TLS
//! failures found in an error's chain).

use std::time::Duration;

use reqwest::header::RETRY_AFTER;

use super::error::Error;
use super::manifest::{MAX_MANIFEST_BYTES, checked_digest};
use super::setup::Options;
use crate::imageref::{DOCKER_HUB, Digest};

/// The HTTP client for a run: the options' timeouts, a redirect policy that never
/// downgrades to plain HTTP ([`redirect_allowed`]), at most 10 redirects.
///
/// # Errors
/// [`Error::Invalid`] when the TLS stack cannot be set up.
pub(super) fn http_client(options: &Options) -> Result<reqwest::Client, Error> {
    let insecure = options.insecure.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("too many redirects");
        }
        let from = attempt.previous().last().cloned();
        match from.map(|from| redirect_allowed(&from, attempt.url(), &insecure)) {
            Some(Err(why)) => attempt.error(why),
            _ => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .redirect(redirects)
        .user_agent(concat!("repin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Invalid {
            registry: "(all)".into(),
            what: "HTTP client setup",
            why: e.to_string(),
        })
}

/// The base URL of the API of the registry reached at `endpoint` (a host, after
/// mirrors): `https://registry-1.docker.io` for Docker Hub, plain HTTP where allowed.
#[must_use]
pub fn base_url(endpoint: &str, insecure: &[String]) -> String {
    let host = if endpoint == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        endpoint
    };
    let plain = plain_http_allowed(endpoint, insecure);
    format!("{}://{host}", if plain { "http" } else { "https" })
}

/// The `Docker-Content-Digest` header, checked; `None` when absent.
pub(super) fn content_digest(
    registry: &str,
    response: &reqwest::Response,
) -> Result<Option<Digest>, Error> {
    header_str(response, "docker-content-digest")
        .map(|value| {
            checked_digest("Docker-Content-Digest header", &value).map_err(|why| {
                Error::NotADigest {
                    registry: registry.to_owned(),
                    why,
                }
            })
        })
        .transpose()
}

/// Whether a host is reached over plain HTTP: loopback always, as Docker does.
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(|| host.split(':').next().unwrap_or(host), |(h, _)| h);
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether plain HTTP may be used to reach `host` (`name[:port]`): loopback always, and
/// the hosts named with `--insecure-registry` (or `insecure = true`).
#[must_use]
pub fn plain_http_allowed(host: &str, insecure: &[String]) -> bool {
    is_loopback(host) || insecure.iter().any(|h| h == host)
}

/// The `host[:port]` of a URL, as references and `--insecure-registry` write it.
pub(super) fn authority(url: &reqwest::Url) -> String {
    // `host_str` writes IPv6 addresses in brackets, as references do.
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Whether a redirect from `from` to `to` may be followed: never from HTTPS to plain
/// HTTP, and to plain HTTP only where plain HTTP is allowed at all. (`reqwest` already
/// drops `Authorization` when a redirect changes host.)
///
/// # Errors
/// Why not, naming both schemes and the target host.
pub fn redirect_allowed(
    from: &reqwest::Url,
    to: &reqwest::Url,
    insecure: &[String],
) -> Result<(), String> {
    match (from.scheme(), to.scheme()) {
        (_, "https") => Ok(()),
        ("https", "http") => Err(format!(
            "refused a redirect from HTTPS to plain HTTP ({})",
            authority(to)
        )),
        (_, "http") if plain_http_allowed(&authority(to), insecure) => Ok(()),
        (_, "http") => Err(format!(
            "refused a redirect to plain HTTP ({}); name it with --insecure-registry if that is intended",
            authority(to)
        )),
        (_, other) => Err(format!("refused a redirect to a {other}: URL")),
    }
}

/// Whether a token realm may be used for a registry reached at `base`: HTTPS always;
/// plain HTTP only when the registry itself is reached over plain HTTP, and the realm's
/// host may be too (loopback, `--insecure-registry`) or is the registry's own host name
/// (a token server beside an insecure registry). An HTTPS registry's credentials and
/// tokens never travel over plain HTTP, not even to a loopback host.
///
/// # Errors
/// Why not, naming the realm's host.
pub fn realm_allowed(
    base: &reqwest::Url,
    realm: &str,
    insecure: &[String],
) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(realm).map_err(|_| {
        format!(
            "token realm {} is not a URL",
            crate::imageref::shorten(realm)
        )
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http"
            if base.scheme() == "http"
                && (plain_http_allowed(&authority(&url), insecure)
                    || base.host_str() == url.host_str()) =>
        {
            Ok(url)
        }
        "http" => Err(format!(
            "refused the token realm on {} over plain HTTP: credentials and tokens travel only over HTTPS",
            authority(&url)
        )),
        other => Err(format!("refused a token realm with scheme {other:?}")),
    }
}

/// The TLS error somewhere in a request error's chain, if the request failed in TLS.
/// (`std::io::Error` wraps its payload without exposing it as a `source`, so wrapped
/// I/O errors are unwrapped by hand.)
pub(super) fn tls_failure(e: &reqwest::Error) -> Option<rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// `a=b&c=d`, percent-encoded.
pub(super) fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn header_str(
    response: &reqwest::Response,
    name: impl reqwest::header::AsHeaderName,
) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `Retry-After` in seconds (the HTTP-date form is rare on registries and ignored).
pub(super) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    header_str(response, RETRY_AFTER)?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads a body, refusing more than [`MAX_MANIFEST_BYTES`].
pub(super) async fn read_capped(
    registry: &str,
    mut response: reqwest::Response,
    what: &'static str,
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        registry: registry.to_owned(),
        what,
        limit: MAX_MANIFEST_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_MANIFEST_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) if e.is_timeout() => {
                return Err(Error::Timeout {
                    registry: registry.to_owned(),
                    timeout,
                    attempts: 1,
                });
            }
            Err(e) => {
                return Err(Error::Transport {
                    registry: registry.to_owned(),
                    attempts: 1,
                    source: e.without_url(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[fe80::1]",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    /// Credentials go only where they belong: no redirect and no token realm may take a
    /// request from HTTPS to plain HTTP, and plain HTTP is used only where allowed.
    #[test]
    fn credentials_only_where_they_belong_no_downgrade() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let insecure = vec!["registry.lan:5000".to_owned()];
        for (from, to, ok) in [
            ("https://r.io/v2/", "https://cdn.example/blob", true),
            ("https://r.io/v2/", "http://r.io/v2/x", false),
            ("https://r.io/v2/", "http://127.0.0.1:5000/x", false),
            ("http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/x", true),
            ("http://127.0.0.1:5000/v2/", "http://10.0.0.1/x", false),
            ("http://127.0.0.1:5000/v2/", "https://10.0.0.1/x", true),
            (
                "http://registry.lan:5000/v2/",
                "http://registry.lan:5000/y",
                true,
            ),
            ("http://registry.lan:5000/v2/", "file:///etc/passwd", false),
            ("http://[::1]:5000/v2/", "http://[::1]:5001/x", true),
        ] {
            assert_eq!(
                redirect_allowed(&url(from), &url(to), &insecure).is_ok(),
                ok,
                "{from} -> {to}"
            );
        }
        for (base, realm, ok) in [
            ("https://r.io", "https://auth.r.io/token", true),
            ("https://r.io", "http://other-host/token", false),
            ("https://r.io", "http://r.io/token", false),
            ("https://r.io", "http://127.0.0.1:5001/token", false),
            ("https://r.io", "ftp://r.io/token", false),
            ("https://r.io", "not a url", false),
            ("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", true),
            ("http://127.0.0.1:5000", "http://auth.example/token", false),
            (
                "http://registry.lan:5000",
                "http://registry.lan:5001/token",
                true,
            ),
            ("http://registry.lan:5000", "http://evil.lan/token", false),
        ] {
            assert_eq!(
                realm_allowed(&url(base), realm, &insecure).is_ok(),
                ok,
                "{base} realm {realm}"
            );
        }
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_body(&[("scope", "repository:a/b:pull"), ("x", "1 2")]),
            "scope=repository%3Aa%2Fb%3Apull&x=1%202"
        );
    }
}
