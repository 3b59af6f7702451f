//! Test support: run the `repin` binary, temporary trees, fixture paths; and the real
//! components tests talk to: a CNCF distribution registry ([`registry`]), a Docker
//! Hub-style token server ([`token`]), and an image pusher ([`images`]); every process
//! they start stops with its handle ([`process`]).

pub mod git_http;
pub mod github;
pub mod images;
pub mod mock;
pub mod process;
pub mod registry;
pub mod token;
pub mod world;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The fixture tree that exercises every format.
pub fn fixture_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tree")
}

/// The result of one `repin` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `repin` binary with `args` in `dir`.
pub fn repin(dir: &Path, args: &[&str]) -> Run {
    repin_env(dir, args, &[])
}

/// Runs the `repin` binary with `args` in `dir` and extra environment variables. The
/// Docker config is an empty folder unless `DOCKER_CONFIG` is given.
pub fn repin_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let empty = tempfile::tempdir().expect("tempdir");
    // Integration tests know the binary; the fleet example runs a release build.
    let mut command =
        Command::new(option_env!("CARGO_BIN_EXE_repin").unwrap_or("target/release/repin"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env(process::MARKER, "1")
        .env("DOCKER_CONFIG", empty.path())
        // The default state store in a folder of this run's own (tests that keep state
        // across runs name a store with --state or REPIN_STATE).
        .env("XDG_STATE_HOME", empty.path());
    for (k, v) in env {
        command.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run repin");
    Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    }
}

/// `repin scan --format json` of `args`, parsed.
pub fn scan_json(dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let run = repin(dir, &all);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("stdout is a JSON array")
}

/// A temporary directory tree built from (path, contents) pairs.
pub fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }
    dir
}

/// A temporary tree of text files given as owned or borrowed strings.
pub fn text_tree<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> tempfile::TempDir {
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_ref(), t.as_ref().as_bytes()))
        .collect();
    tree(&files)
}

/// The `format` fields of findings, in output order.
pub fn formats(found: &[serde_json::Value]) -> Vec<&str> {
    found
        .iter()
        .map(|f| f["format"].as_str().expect("format"))
        .collect()
}

/// The `reference` fields of findings, in output order.
pub fn references(found: &[serde_json::Value]) -> Vec<&str> {
    found
        .iter()
        .map(|f| f["reference"].as_str().expect("reference"))
        .collect()
}

/// A loopback TCP server for the test support's hand-made HTTP servers: binds a free port
/// and hands each connection (blocking) to `handle` on the accept thread, until the
/// returned flag is set or ten minutes pass, so it never outlives a test run.
pub fn serve_loopback(handle: impl Fn(TcpStream) + Send + 'static) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(600);
        while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    handle(stream);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (port, stop)
}

/// A file's text, in a test tree.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// An RSA key pair made with `openssl`: (private PEM, public PEM path).
pub fn app_key(dir: &Path) -> (String, std::path::PathBuf) {
    let private = dir.join("app.pem");
    let public = dir.join("app.pub.pem");
    let ok = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}");
    };
    ok(&[
        "genrsa",
        "-traditional",
        "-out",
        private.to_str().unwrap(),
        "2048",
    ]);
    ok(&[
        "rsa",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (std::fs::read_to_string(&private).unwrap(), public)
}
