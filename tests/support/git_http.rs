//! git over smart HTTP for tests: `git http-backend` (CGI) behind a tiny HTTP/1.1 server
//! on a loopback port, serving bare repositories from a temporary folder. Pushes and
//! fetches need `Authorization: Basic` with the user `x-access-token` and [`TOKEN`] (or
//! an installation token of the fake GitHub), as GitHub's tokens do; anything else gets a
//! 401 challenge.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;

pub const TOKEN: &str = "ghs_test_installation_token";

/// A running git server.
pub struct GitServer {
    pub port: u16,
    pub root: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    /// Every request answered: method, path, bytes of the answer's body.
    log: Arc<std::sync::Mutex<Vec<Served>>>,
}

/// One request the git server answered.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub path: String,
    pub bytes: usize,
    /// The request ended a pack negotiation (`done`): the pack was sent.
    pub done: bool,
}

impl Served {
    /// The last request of a clone or fetch: the one the pack answers (a shallow clone
    /// negotiates in two requests, a `git ls-remote` makes none).
    pub fn is_fetch(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/git-upload-pack") && self.done
    }
}

impl GitServer {
    pub fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let backend = backend_path();
        let project_root = root.path().to_path_buf();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let logged = Arc::clone(&log);
        // A thread per connection, so one slow git request does not hold up the next.
        let (port, stop) = super::serve_loopback(move |stream| {
            let (root, backend, log) = (project_root.clone(), backend.clone(), logged.clone());
            std::thread::spawn(move || {
                if let Some(served) = serve(stream, &root, &backend) {
                    log.lock().unwrap().push(served);
                }
            });
        });
        Self {
            port,
            root,
            stop,
            log,
        }
    }

    /// Every request answered so far.
    pub fn served(&self) -> Vec<Served> {
        self.log.lock().unwrap().clone()
    }

    /// Clones and fetches so far (of any repository).
    pub fn fetches(&self) -> usize {
        self.served().iter().filter(|s| s.is_fetch()).count()
    }

    /// Creates `owner/name.git` with a `main` branch holding `files`; returns its URL.
    pub fn repo(&self, full_name: &str, files: &[(&str, &str)]) -> String {
        let work = tempfile::tempdir().unwrap();
        git(work.path(), &["init", "-q", "-b", "main"]);
        for (path, content) in files {
            let path = work.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        git(work.path(), &["add", "-A"]);
        git(work.path(), &["commit", "-q", "-m", "initial"]);
        let bare = self.root.path().join(format!("{full_name}.git"));
        std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
        git(
            work.path(),
            &["clone", "-q", "--bare", ".", bare.to_str().unwrap()],
        );
        self.url(full_name)
    }

    /// Makes `full_name` refuse, as GitHub does for a GitHub App without the
    /// `workflows` permission, any push whose commit changes `.github/workflows/`
    /// (compared with `main`), with GitHub's words.
    pub fn refuse_workflow_pushes(&self, full_name: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let hook = self.path(full_name).join("hooks/pre-receive");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(
            &hook,
            "#!/bin/sh
while read old new ref; do
  [ \"$new\" = 0000000000000000000000000000000000000000 ] && continue
  changed=$(git diff --name-only refs/heads/main \"$new\" -- .github/workflows/ | head -n 1)
  if [ -n \"$changed\" ]; then
    echo \"refusing to allow a GitHub App to create or update workflow \\`$changed\\` without \\`workflows\\` permission\" >&2
    exit 1
  fi
done
exit 0
",
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn url(&self, full_name: &str) -> String {
        format!("http://127.0.0.1:{}/{full_name}.git", self.port)
    }

    /// The bare repository's folder, for inspecting it with the git CLI.
    pub fn path(&self, full_name: &str) -> PathBuf {
        self.root.path().join(format!("{full_name}.git"))
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs the git CLI (for test setup and inspection); returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Human")
        .env("GIT_AUTHOR_EMAIL", "human@example.com")
        .env("GIT_COMMITTER_NAME", "Human")
        .env("GIT_COMMITTER_EMAIL", "human@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn backend_path() -> PathBuf {
    let exec = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git");
    PathBuf::from(String::from_utf8(exec.stdout).unwrap().trim()).join("git-http-backend")
}

fn serve(stream: TcpStream, root: &Path, backend: &Path) -> Option<Served> {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)
    } else {
        let mut body = vec![
            0;
            header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0)
        ];
        let _ = reader.read_exact(&mut body);
        body
    };
    let mut stream = stream;
    // The fixed token, or any App installation token the fake GitHub hands out.
    let given = header("authorization")
        .and_then(|v| v.strip_prefix("Basic ").map(str::to_owned))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let token_ok = given
        .strip_prefix("x-access-token:")
        .is_some_and(|t| t == TOKEN || t.starts_with("ghs_installation_"));
    if !token_ok {
        let _ = write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let done = body.windows(9).any(|w| w == b"0009done\n");
    let mut command = Command::new(backend);
    command
        .env_clear()
        .env(super::process::MARKER, "1")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(protocol) = header("git-protocol") {
        command.env("HTTP_GIT_PROTOCOL", protocol);
    }
    let mut child = command.spawn().expect("git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output().unwrap();
    let _ = writer.join();
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            output
                .stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        });
    let (head, content) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&output.stdout[..i]).into_owned(),
            &output.stdout[i + n..],
        ),
        None => (String::new(), &output.stdout[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut out_headers = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => v.trim().clone_into(&mut status),
            Some(_) => {
                out_headers.push_str(h.trim_end());
                out_headers.push_str("\r\n");
            }
            None => {}
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{out_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    let _ = stream.write_all(content);
    let _ = stream.flush();
    Some(Served {
        done,
        method,
        path: path.to_owned(),
        bytes: content.len(),
    })
}

fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).is_err() {
            break;
        }
        let size =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            let mut end = String::new();
            let _ = reader.read_line(&mut end);
            break;
        }
        let mut chunk = vec![0; size];
        if reader.read_exact(&mut chunk).is_err() {
            break;
        }
        body.extend_from_slice(&chunk);
        let mut crlf = [0; 2];
        let _ = reader.read_exact(&mut crlf);
    }
    body
}
