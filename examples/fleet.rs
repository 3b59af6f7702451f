//! Fleet benchmark: `repin run` over many repositories on the project's own test
//! servers — the fake GitHub, git over smart HTTP (`git http-backend`) and a real CNCF
//! distribution registry behind Docker Hub-style token auth — twice: cold (empty state
//! store: every repository cloned, pull requests opened) and idle (nothing changed).
//! Then the registry lookups alone (`repin check` over every repository's files in one
//! tree, with a warm store) as the yardstick for the idle run.
//!
//! For each: wall time, GitHub API calls, clones, bytes git served, peak temporary
//! space (the run's `TMPDIR`, sampled every 20 ms), peak RSS (the process's own
//! `VmHWM`, sampled every 20 ms).
//!
//! `cargo run --release --example fleet -- [REPOS] [LARGE] [MIB]` (default 200
//! repositories, 10 of them large, each large one holding MIB = 39 MiB of
//! incompressible files); `REPIN_FLEET_ARGS` adds `run` flags (`--concurrency 8`);
//! `REPIN_BIN` names the binary (default `target/release/repin`). `scripts/bench-fleet`
//! builds and runs it.

#![allow(clippy::cast_precision_loss)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[allow(dead_code, unused_imports)]
#[path = "../tests/support/mod.rs"]
mod support;

use support::git_http::GitServer;
use support::github::{FakeGitHub, TOKEN};
use support::images::{Flavor, Pusher};
use support::registry::{Auth, Registry};

/// Distinct images the fleet pins (each repository pins three of them).
const IMAGES: usize = 20;

struct Measured {
    wall: Duration,
    api_calls: usize,
    clones: usize,
    git_bytes: usize,
    peak_tmp: u64,
    peak_rss_kib: i64,
    /// repin's own CPU time (user + system).
    cpu: Duration,
    /// CPU time of repin and the test servers (fake GitHub, git) together.
    cpu_all: Duration,
    stdout: String,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wall {:>7.2} s | CPU repin {:>6.2} s, servers {:>6.2} s | API calls {:>5} | clones {:>4} | git bytes {:>7.1} MiB | peak temp {:>7.1} MiB | peak RSS {:>6.1} MiB",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.cpu_all.saturating_sub(self.cpu).as_secs_f64(),
            self.api_calls,
            self.clones,
            self.git_bytes as f64 / 1_048_576.0,
            self.peak_tmp as f64 / 1_048_576.0,
            self.peak_rss_kib as f64 / 1024.0,
        )
    }
}

/// The process's peak resident set (`VmHWM`, KiB); 0 once it is gone.
fn vm_hwm_kib(pid: u64) -> u64 {
    if pid == 0 {
        return 0;
    }
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes under `dir` (files only; a file gone while walking counts nothing).
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// CPU time of this process (the fake GitHub, the git server) and of its waited-for
/// children (`git http-backend`, repin).
fn cpu_used() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given.
        let usage = unsafe {
            libc::getrusage(who, usage.as_mut_ptr());
            usage.assume_init()
        };
        total += seconds(&usage.ru_utime) + seconds(&usage.ru_stime);
    }
    total
}

fn seconds(t: &libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// Runs `command` with its `TMPDIR` at `tmp`, sampling that folder's size, and waits
/// for it with `wait4` to learn its peak RSS.
fn measure(mut command: Command, tmp: &Path, git: &GitServer, fake: &FakeGitHub) -> Measured {
    std::fs::create_dir_all(tmp).unwrap();
    command.env("TMPDIR", tmp);
    let (calls, served) = (fake.calls().len(), git.served().len());
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let hwm = Arc::new(AtomicU64::new(0));
    let pid = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, hwm, pid, tmp) = (
            Arc::clone(&stop),
            Arc::clone(&peak),
            Arc::clone(&hwm),
            Arc::clone(&pid),
            tmp.to_path_buf(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(size_of(&tmp), Ordering::Relaxed);
                hwm.fetch_max(vm_hwm_kib(pid.load(Ordering::Relaxed)), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = tempfile::NamedTempFile::new().unwrap();
    command
        .stdout(out.reopen().unwrap())
        .stderr(std::process::Stdio::null());
    let (started, cpu_before) = (Instant::now(), cpu_used());
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, for its rusage"
    )]
    let child = command.spawn().expect("run repin");
    pid.store(u64::from(child.id()), Ordering::Relaxed);
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 on our own child's pid fills `status` and `usage`.
    let usage = unsafe {
        libc::wait4(
            i32::try_from(child.id()).unwrap(),
            &raw mut status,
            0,
            usage.as_mut_ptr(),
        );
        usage.assume_init()
    };
    let wall = started.elapsed();
    // The registry runs in its own process, not counted here.
    let cpu_all = cpu_used().saturating_sub(cpu_before);
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let served: Vec<_> = git.served().into_iter().skip(served).collect();
    Measured {
        wall,
        api_calls: fake.calls().len() - calls,
        clones: served.iter().filter(|s| s.is_fetch()).count(),
        git_bytes: served.iter().map(|s| s.bytes).sum(),
        peak_tmp: peak.load(Ordering::Relaxed),
        // Not `ru_maxrss`: a child spawned with vfork and exec inherits the parent's
        // high-water mark there. Its own `VmHWM`, sampled while it runs.
        peak_rss_kib: i64::try_from(hwm.load(Ordering::Relaxed)).unwrap_or(0),
        cpu: seconds(&usage.ru_utime) + seconds(&usage.ru_stime),
        cpu_all,
        stdout: std::fs::read_to_string(out.path()).unwrap_or_default(),
    }
}

/// Writes `mib` MiB of incompressible bytes as 1 MiB files under `dir/assets`.
fn large_files(dir: &Path, mib: usize) {
    let assets = dir.join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ dir.as_os_str().len() as u64;
    for i in 0..mib {
        let mut bytes = Vec::with_capacity(1 << 20);
        while bytes.len() < 1 << 20 {
            // xorshift64: fast, and zlib cannot shrink it.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        std::fs::write(assets.join(format!("blob{i:03}.bin")), bytes).unwrap();
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: REPOS LARGE MIB"))
        .collect();
    let repos = args.first().copied().unwrap_or(200);
    let large = args.get(1).copied().unwrap_or(10).min(repos);
    let mib = args.get(2).copied().unwrap_or(39);
    let bin = std::env::var_os("REPIN_BIN")
        .map_or_else(|| PathBuf::from("target/release/repin"), PathBuf::from);
    let bin = std::fs::canonicalize(&bin).expect("build repin first: target/release/repin");

    let setup = Instant::now();
    let reg = Registry::start(Auth::TokenAnonymous);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut pins = Vec::new();
    for i in 0..IMAGES {
        let name = format!("base{i}");
        let old = pusher
            .index(
                &name,
                "1",
                &["linux/amd64", "linux/arm64"],
                Flavor::Oci,
                "a",
            )
            .await;
        pusher
            .index(
                &name,
                "1",
                &["linux/amd64", "linux/arm64"],
                Flavor::Oci,
                "b",
            )
            .await;
        pins.push(format!("{host}/{name}:1@{}", old.digest));
    }
    let git = GitServer::start();
    let fake = FakeGitHub::start().await;
    let all = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for r in 0..repos {
        let name = format!("acme/r{r:03}");
        let (a, b, c) = (
            &pins[r % IMAGES],
            &pins[(r + 7) % IMAGES],
            &pins[(r + 13) % IMAGES],
        );
        let dockerfile =
            format!("FROM {a} AS build\nRUN make\nFROM {b}\nCOPY --from=build /out /\n");
        let compose = format!("services:\n  app:\n    image: {c}\n");
        let files = [
            ("Dockerfile", dockerfile.as_str()),
            ("compose.yaml", compose.as_str()),
            ("README.md", "a service\n"),
        ];
        git.repo(&name, &files);
        for (path, text) in files {
            let file = all.path().join(format!("r{r:03}")).join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        fake.add_repo(&git, &name);
        names.push(name);
    }
    // The large repositories: incompressible files committed on top.
    for name in names.iter().take(large) {
        let work = tempfile::tempdir().unwrap();
        let bare = git.path(name);
        support::git_http::git(work.path(), &["clone", "-q", bare.to_str().unwrap(), "w"]);
        let w = work.path().join("w");
        large_files(&w, mib);
        support::git_http::git(&w, &["add", "-A"]);
        support::git_http::git(&w, &["commit", "-qm", "assets"]);
        support::git_http::git(&w, &["push", "-q", "origin", "main"]);
    }
    eprintln!(
        "setup: {repos} repositories ({large} with {mib} MiB of assets), {IMAGES} images, {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let work = tempfile::tempdir().unwrap();
    let service = work.path().join("service.toml");
    let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    std::fs::write(
        &service,
        format!("[github]\nrepositories = [{}]\n", list.join(", ")),
    )
    .unwrap();
    let state = work.path().join("state.redb");
    // More `run` flags (`--concurrency 8`), from the environment.
    let extra = std::env::var("REPIN_FLEET_ARGS").unwrap_or_default();
    let run = || {
        let mut command = Command::new(&bin);
        command
            .args(["run", "--config"])
            .arg(&service)
            .arg("--state")
            .arg(&state)
            .args(extra.split_whitespace())
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &fake.url)
            .env("XDG_STATE_HOME", work.path());
        command
    };
    let cold = measure(run(), &work.path().join("tmp-cold"), &git, &fake);
    println!("cold  run: {cold}");
    // `REPIN_FLEET_PROFILE=FILE` records the idle run with `perf record -g`.
    let idle_command = match std::env::var_os("REPIN_FLEET_PROFILE") {
        Some(file) => {
            let inner = run();
            let mut perf = Command::new("perf");
            perf.args(["record", "-F", "4000", "-g", "-o"])
                .arg(file)
                .arg("--")
                .arg(inner.get_program())
                .args(inner.get_args())
                .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
            perf
        }
        None => run(),
    };
    let idle = measure(idle_command, &work.path().join("tmp-idle"), &git, &fake);
    println!("idle  run: {idle}");
    for m in [&cold, &idle] {
        let last = m.stdout.lines().last().unwrap_or_default();
        println!("           {last}");
    }
    println!(
        "state store after both runs: {:.1} MiB",
        std::fs::metadata(&state).map_or(0, |m| m.len()) as f64 / 1_048_576.0
    );

    // The yardstick: the same lookups over every repository's files in one tree, with
    // the warm store of a first check.
    let lookups_state = work.path().join("lookups.redb");
    let check = || {
        let mut command = Command::new(&bin);
        command
            .args(["check", "--format", "json", "--state"])
            .arg(&lookups_state)
            .arg(all.path())
            .env("XDG_STATE_HOME", work.path());
        command
    };
    let _ = measure(check(), &work.path().join("tmp-check"), &git, &fake);
    let lookups = measure(check(), &work.path().join("tmp-check"), &git, &fake);
    println!(
        "lookups alone (check of all {} references, warm store): wall {:.2} s, repin CPU {:.2} s",
        repos * 3,
        lookups.wall.as_secs_f64(),
        lookups.cpu.as_secs_f64()
    );
    println!(
        "idle / lookups alone: {:.2}x; idle API calls per repository: {:.2}; idle clones: {}",
        idle.wall.as_secs_f64() / lookups.wall.as_secs_f64(),
        idle.api_calls as f64 / repos as f64,
        idle.clones
    );
    // What each idle step costs against these servers, one at a time.
    let started = Instant::now();
    for name in &names {
        let remote = repin::git::Remote {
            url: git.url(name),
            token: Some(repin::secret::Secret::new(TOKEN)),
        };
        repin::git::remote_head(&remote).expect("ls-remote");
    }
    let ls_remote = started.elapsed();
    let gh =
        repin::forge::github::GitHub::new(&fake.url, &repin::secret::Secret::new(TOKEN)).unwrap();
    let started = Instant::now();
    for name in &names {
        gh.pulls_if_changed(name, None).await.expect("pulls");
    }
    let pulls = started.elapsed();
    println!(
        "one at a time: git ls-remote {:.1} ms, pull list {:.1} ms per repository",
        ls_remote.as_secs_f64() * 1000.0 / repos as f64,
        pulls.as_secs_f64() * 1000.0 / repos as f64
    );
    let requests = reg.requests("repin/");
    println!(
        "registry requests by repin over all runs: {} (token requests: {})",
        requests.len(),
        reg.token.as_ref().map_or(0, |t| t.count("repin/"))
    );
}
