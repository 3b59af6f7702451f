//! A real CNCF distribution registry (Debian's `docker-registry`) on a free loopback
//! port, in one of three setups: open, htpasswd Basic auth, or token auth backed by
//! [`super::token::TokenServer`]. Dropping the handle stops it and everything it started
//! at once ([`super::process::Server`]); it runs under `timeout 600` only as a watchdog
//! for a test process that is killed outright.
//!
//! Its access log (one line per request, with the `User-Agent`) is how tests count the
//! requests repin makes.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::Server;
use super::token::{ISSUER, SERVICE, TokenServer};

pub const USER: &str = "repin";
pub const PASSWORD: &str = "s3cret-pa55";

/// How the registry authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Open,
    Basic,
    /// Token auth; the token server hands out tokens anonymously.
    TokenAnonymous,
    /// Token auth; the token server wants the user's credentials.
    TokenCredentialed,
    /// Token auth, anonymous; the token server grants only the first scope asked for.
    TokenOneScope,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub agent: String,
}

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:<port>`, the registry part of image references.
    pub host: String,
    pub auth: Auth,
    pub token: Option<TokenServer>,
    /// The registry's configuration file: its process's command line names it.
    pub config: PathBuf,
    server: Server,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Registry {
    pub fn start(auth: Auth) -> Self {
        assert!(
            Command::new("docker-registry")
                .arg("--version")
                .output()
                .is_ok(),
            "docker-registry is not installed; run the test suite with scripts/test, which installs it"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut token = None;
        let auth_section = match auth {
            Auth::Open => String::new(),
            Auth::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .expect("htpasswd (apache2-utils) is needed; scripts/test installs it");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: repin-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::TokenAnonymous | Auth::TokenCredentialed | Auth::TokenOneScope => {
                let credentials =
                    (auth == Auth::TokenCredentialed).then(|| format!("{USER}:{PASSWORD}"));
                let server = TokenServer::granting(
                    dir.path(),
                    credentials.as_deref(),
                    (auth == Auth::TokenOneScope).then_some(1),
                );
                let section = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    server.realm(),
                    server.cert.display()
                );
                token = Some(server);
                section
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: repin-test-secret\n{auth_section}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new("timeout");
        command
            .args(["600", "docker-registry", "serve"])
            .arg(&config_path)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null());
        let server = Server::spawn(command).expect("start docker-registry");
        let mut registry = Self {
            host: format!("127.0.0.1:{port}"),
            auth,
            token,
            config: config_path,
            server,
            log,
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    /// Waits until the port accepts connections (no HTTP request, so nothing is logged).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.server.child().try_wait() {
                panic!(
                    "registry exited at start ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "registry did not start:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Requests in the access log whose `User-Agent` starts with `agent`.
    pub fn requests(&self, agent: &str) -> Vec<Logged> {
        // Access log lines are written when a response completes; give the last a moment.
        std::thread::sleep(Duration::from_millis(100));
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(parse_access_line)
            .filter(|l| l.agent.starts_with(agent))
            .collect()
    }

    /// The `DOCKER_CONFIG` folder holding this registry's credentials (`auths`).
    pub fn docker_config(&self) -> tempfile::TempDir {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let json = serde_json::json!({"auths": {self.host.clone(): {"auth": auth}}});
        std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
        dir
    }
}

/// `127.0.0.1 - - [date] "HEAD /v2/x/manifests/1 HTTP/1.1" 200 0 "" "repin/0.1.0"`.
fn parse_access_line(line: &str) -> Option<Logged> {
    if line.starts_with("time=") {
        return None;
    }
    let mut quoted = line.split('"');
    let _ = quoted.next()?;
    let request = quoted.next()?;
    let status = quoted.next()?.split_whitespace().next()?.parse().ok()?;
    let _referer = quoted.next()?;
    let agent = quoted.nth(1)?.to_owned();
    let mut parts = request.split_whitespace();
    Some(Logged {
        method: parts.next()?.to_owned(),
        path: parts.next()?.to_owned(),
        status,
        agent,
    })
}

#[test]
fn parses_access_lines() {
    let l = parse_access_line(
        r#"127.0.0.1 - - [22/Nov/2026:08:49:33 +0000] "HEAD /v2/foo/manifests/1 HTTP/1.1" 404 91 "" "repin/0.1.0""#,
    )
    .unwrap();
    assert_eq!(
        l,
        Logged {
            method: "HEAD".into(),
            path: "/v2/foo/manifests/1".into(),
            status: 404,
            agent: "repin/0.1.0".into()
        }
    );
    assert!(parse_access_line(r#"time="x" level=info msg="y""#).is_none());
}
