//! A Docker Hub-style token server: `GET /token?service=…&scope=…` answers a JWT signed
//! RS256 with a key whose certificate the registry trusts (`rootcertbundle`), carrying a
//! libtrust-style `kid` (what distribution 2.8 matches keys by).
//!
//! The key and certificate come from the `openssl` command, and tokens are signed with
//! it too, so the test support carries no crypto code of its own. It serves HTTP/1.1,
//! one request per connection, on a thread; it counts the requests it answers.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

pub const SERVICE: &str = "repin-test-registry";
pub const ISSUER: &str = "repin-test-issuer";
/// The `OAuth2` refresh token (Docker's `identitytoken`) the server accepts.
pub const REFRESH_TOKEN: &str = "repin-refresh-token-0123";

/// A running token server.
pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    /// Token requests answered (any outcome), with their `User-Agent`.
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

struct Config {
    key: PathBuf,
    kid: String,
    /// `user:password` that must be presented as HTTP Basic; `None` allows anonymous.
    credentials: Option<String>,
    /// Grant at most this many of the scopes a request asks for (as a registry that
    /// grants fewer than asked); `None`: all.
    max_scopes: Option<usize>,
    counter: AtomicUsize,
}

impl TokenServer {
    /// Starts a token server that grants at most `max_scopes` of the scopes asked for
    /// (`None`: all); keys are written into `dir`.
    pub fn granting(dir: &Path, credentials: Option<&str>, max_scopes: Option<usize>) -> Self {
        let key = dir.join("token-key.pem");
        let cert = dir.join("token-cert.pem");
        openssl(&["genrsa", "-out", key.to_str().unwrap(), "2048"]);
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
            "-days",
            "2",
            "-subj",
            "/CN=repin-test-token",
        ]);
        let der = openssl(&[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
        ]);
        let config = Arc::new(Config {
            key,
            kid: libtrust_kid(&der),
            credentials: credentials.map(str::to_owned),
            max_scopes,
            counter: AtomicUsize::new(0),
        });
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let (port, stop) = super::serve_loopback(move |stream| {
            if let Some(agent) = serve(stream, &config) {
                log.lock().unwrap().push(agent);
            }
        });
        Self {
            port,
            cert,
            requests,
            stop,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// Token requests whose `User-Agent` starts with `agent`.
    pub fn count(&self, agent: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.starts_with(agent))
            .count()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers one request; returns its `User-Agent`.
fn serve(stream: TcpStream, config: &Config) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut agent = String::new();
    let mut authorization = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "user-agent" => value.trim().clone_into(&mut agent),
                "authorization" => authorization = Some(value.trim().to_owned()),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut scopes = Vec::new();
    let mut refresh = None;
    for pair in query
        .split('&')
        .chain(std::str::from_utf8(&body).unwrap_or("").split('&'))
    {
        if let Some(v) = pair.strip_prefix("scope=") {
            // Repeated `scope` parameters (GET), or one space-separated list (OAuth2).
            scopes.extend(
                decode(v)
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(v) = pair.strip_prefix("refresh_token=") {
            refresh = Some(decode(v));
        }
    }
    let basic_ok = |expected: &str| {
        authorization.as_deref() == Some(format!("Basic {}", STANDARD.encode(expected)).as_str())
    };
    // A refresh token (POST, OAuth2) or Basic credentials, when credentials are required.
    let account = match (&config.credentials, refresh.as_deref()) {
        (_, Some(REFRESH_TOKEN)) => Some("refreshed"),
        (Some(expected), None) if basic_ok(expected) => expected.split(':').next(),
        (None, None) => Some("anonymous"),
        _ => None,
    };
    let response = account.map(|account| token_json(config, account, &scopes));
    let mut stream = stream;
    let _ = match response {
        Some(json) => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        ),
        None => write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
    let _ = stream.flush();
    Some(agent)
}

fn token_json(config: &Config, account: &str, scopes: &[String]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .take(config.max_scopes.unwrap_or(usize::MAX))
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            // Name may hold ':' (a port); the actions are after the last ':'.
            let (name, actions) = match actions.rsplit_once(':') {
                Some((more, acts)) => (format!("{name}:{more}"), acts.to_owned()),
                None => (name.to_owned(), actions.to_owned()),
            };
            Some(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let n = config.counter.fetch_add(1, Ordering::Relaxed);
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": config.kid});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": account, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("repin-{now}-{n}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(&config.key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string()
}

fn sign(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst failed");
    out.stdout
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("openssl is needed by the token-auth tests (scripts/test installs it)");
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

/// libtrust's key ID: SHA-256 of the DER public key, first 240 bits, base32, in
/// colon-separated groups of four.
fn libtrust_kid(der: &[u8]) -> String {
    let hash = Sha256::digest(der);
    let encoded = base32(&hash[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4648 base32 without padding (30 bytes encode to exactly 48 characters).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn base32_matches_rfc4648() {
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    assert_eq!(base32(b"f"), "MY");
}
