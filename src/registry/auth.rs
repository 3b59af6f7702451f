//! Registry authentication: the `WWW-Authenticate` challenge, credentials, and bearer
//! tokens.
//!
//! The flow is the one Docker uses. A registry is pinged once (`GET /v2/`); its challenge
//! is remembered, so every later repository goes straight to the token endpoint. A
//! `Bearer` challenge means a token per scope (`repository:<name>:pull`), fetched
//! anonymously or with the registry's credentials (HTTP Basic, or an identity token as an
//! `OAuth2` refresh token); a `Basic` challenge means credentials on every request.
//! Tokens are kept per registry in a [`TokenCache`] until they expire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::secret::Secret;

/// What a registry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The registry answered `/v2/` without asking for anything.
    None,
    /// HTTP Basic with the registry's credentials on every request.
    Basic,
    /// A bearer token from `realm`, per repository scope.
    Bearer {
        /// The token endpoint (URL).
        realm: String,
        /// The `service` to ask tokens for, if the registry names one.
        service: Option<String>,
    },
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or token).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: Secret,
    },
    /// An `OAuth2` refresh token (`identitytoken` in Docker's config).
    IdentityToken(Secret),
}

impl Credential {
    /// An `Authorization: Basic …` value, for credentials that have one.
    #[must_use]
    pub fn basic_header(&self) -> Option<Secret> {
        match self {
            Self::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                Some(Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )))
            }
            Self::IdentityToken(_) => None,
        }
    }
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub value: Secret,
    /// When it expires (capped at 24 hours from issue).
    pub expires: Instant,
    /// Asked for several repositories at once (repeated `scope`); the registry may
    /// have granted fewer.
    pub batch: bool,
}

/// Bearer tokens by scope, for one registry: one cell per scope, so concurrent lookups
/// in a repository share one token fetch.
#[derive(Debug, Default)]
pub struct TokenCache {
    cells: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
    /// Set when a token asked for several scopes was refused for one of them: the
    /// registry grants fewer scopes than asked, so it gets one scope per token.
    batches_refused: std::sync::atomic::AtomicBool,
}

impl TokenCache {
    /// The scope's cell: lock it to read the token, or to fetch one while others wait.
    #[must_use]
    pub fn cell(&self, scope: &str) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        let mut cells = self
            .cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cells.entry(scope.to_owned()).or_default().clone()
    }

    /// A request with `used` (its `Authorization` value) was refused: drops the scope's
    /// token if it is still that one (a token fetched since is kept). Returns whether
    /// it was a token asked for with other scopes: then the registry grants fewer
    /// scopes than asked, and gets no more batches ([`Self::batches`]).
    pub async fn refused(&self, scope: &str, used: &Secret) -> bool {
        let cell = self.cell(scope);
        let mut slot = cell.lock().await;
        let Some(token) = slot
            .as_ref()
            .filter(|t| t.bearer().expose() == used.expose())
        else {
            return false;
        };
        let batch = token.batch;
        if batch {
            self.batches_refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        *slot = None;
        batch
    }

    /// Whether tokens may be asked for several scopes at once (until one was refused).
    #[must_use]
    pub fn batches(&self) -> bool {
        !self
            .batches_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Token {
    /// Whether the token is still good for a request starting now (with a margin for the
    /// request's own duration).
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        Instant::now() + Duration::from_secs(5) < self.expires
    }

    /// The `Authorization` value: `Bearer <token>`.
    #[must_use]
    pub fn bearer(&self) -> Secret {
        Secret::new(format!("Bearer {}", self.value.expose()))
    }
}

/// Parses a `WWW-Authenticate` header value.
///
/// # Errors
/// A message when the scheme is neither `Basic` nor `Bearer`, or a `Bearer` challenge
/// has no realm.
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let params = parse_params(params);
            let get = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.clone())
            };
            let realm = get("realm").ok_or("Bearer challenge without a realm")?;
            Ok(Challenge::Bearer {
                realm,
                service: get("service"),
            })
        }
        other => Err(format!("unsupported auth scheme {other:?}")),
    }
}

/// `key="value", key2=value2` → pairs (quotes removed, `\"` unescaped).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    /// A number of seconds; registries write it as an integer, some as a float.
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
}

/// Tokens last 60 seconds when the endpoint does not say (the distribution spec's
/// default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// The longest a token is trusted, whatever the endpoint says (`expires_in` is the
/// registry's number: a huge one must neither overflow nor keep a token forever).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Parses a token endpoint's JSON answer.
///
/// # Errors
/// A message when the body is not JSON or holds no token (never the body itself: it may
/// hold a secret).
pub fn parse_token(body: &[u8], now: Instant) -> Result<Token, String> {
    let parsed: TokenResponse =
        serde_json::from_slice(body).map_err(|_| "token response is not JSON".to_owned())?;
    let value = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or("token response holds no token")?;
    // Whatever the number, it ends between 1 second and the cap (negative or not a
    // finite number: the default).
    let seconds = parsed
        .expires_in
        .and_then(|n| {
            n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f.min(u64::MAX as f64) as u64)
            })
        })
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    let lifetime = Duration::from_secs(seconds.max(1)).min(MAX_TOKEN_LIFETIME);
    Ok(Token {
        value: Secret::new(value),
        // Checked: an `Instant` far in the future may not be representable.
        expires: now.checked_add(lifetime).unwrap_or(now),
        batch: false,
    })
}

/// At most this many scopes in one token request: a token names every scope it grants,
/// and travels in every request's `Authorization` header, so batches stay small.
pub const MAX_BATCH_SCOPES: usize = 25;
/// At most this many bytes of scopes in one token request (its URL stays short).
pub const MAX_BATCH_BYTES: usize = 2048;

/// Scopes split into token requests of at most [`MAX_BATCH_SCOPES`] scopes and
/// [`MAX_BATCH_BYTES`] bytes each (a longer scope alone).
#[must_use]
pub fn batches(scopes: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, scope) in scopes.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_SCOPES || bytes + scope.len() > MAX_BATCH_BYTES) {
            out.push(&scopes[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += scope.len();
    }
    if start < scopes.len() {
        out.push(&scopes[start..]);
    }
    out
}

/// The scope that reading a repository needs.
#[must_use]
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            }
        );
        let c = parse_challenge(r#"bearer realm="http://127.0.0.1:1/t", service=reg"#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("reg".into())
            }
        );
    }

    #[test]
    fn other_challenges() {
        assert_eq!(parse_challenge(r#"Basic realm="x""#), Ok(Challenge::Basic));
        assert!(parse_challenge("Bearer service=x").is_err());
        assert!(parse_challenge("Negotiate").is_err());
    }

    #[test]
    fn quoted_values_with_escapes_and_commas() {
        let p = parse_params(r#"realm="a,\"b\"", service=s"#);
        assert_eq!(
            p,
            vec![
                ("realm".into(), "a,\"b\"".into()),
                ("service".into(), "s".into())
            ]
        );
    }

    #[test]
    fn tokens() {
        let now = Instant::now();
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value.expose(), "abc");
        assert_eq!(t.expires, now + Duration::from_secs(300));
        let t = parse_token(br#"{"access_token":"xyz"}"#, now).unwrap();
        assert_eq!(t.value.expose(), "xyz");
        assert_eq!(t.expires, now + Duration::from_secs(60));
        // A registry's number is capped, never overflowed.
        let t = parse_token(br#"{"token":"abc","expires_in":18446744073709551615}"#, now).unwrap();
        assert_eq!(t.expires, now + MAX_TOKEN_LIFETIME);
        for odd in ["-1", "300.5", "1e300", "-1e300", "184467440737095516150"] {
            let body = format!(r#"{{"token":"abc","expires_in":{odd}}}"#);
            let t = parse_token(body.as_bytes(), now).unwrap();
            assert!(
                t.expires > now && t.expires <= now + MAX_TOKEN_LIFETIME,
                "{odd}"
            );
        }
        let err = parse_token(br#"{"token":""}"#, now).unwrap_err();
        assert_eq!(err, "token response holds no token");
    }

    #[test]
    fn batches_stay_small() {
        let scopes: Vec<String> = (0..60).map(|i| pull_scope(&format!("r{i}"))).collect();
        let split = batches(&scopes);
        assert_eq!(
            split.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [25, 25, 10]
        );
        assert_eq!(split.concat(), scopes);
        let long: Vec<String> = (0..5)
            .map(|i| pull_scope(&format!("{i}{}", "x".repeat(900))))
            .collect();
        let split = batches(&long);
        assert!(split.iter().all(|b| b.len() <= 2), "{}", split.len());
        assert_eq!(split.concat(), long);
        let huge = vec![pull_scope(&"y".repeat(5000))];
        assert_eq!(batches(&huge), [&huge[..]]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn basic_header_and_redaction() {
        let c = Credential::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        };
        assert_eq!(c.basic_header().unwrap().expose(), "Basic dTpw");
        assert!(!format!("{c:?}").contains('p') || !format!("{c:?}").contains("\"p\""));
        assert!(format!("{c:?}").contains("<redacted>"));
    }
}
