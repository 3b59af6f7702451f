//! The service modes. `repin serve`: webhooks (signatures, sizes, duplicates, each
//! event's work) against the fake GitHub, real git over HTTP and the real registry; the
//! daemon end to end as a process (a signed `installation` delivery opens a PR,
//! `/metrics` shows it, SIGTERM stops it with exit 0). Sharded `repin run`s cover the
//! fleet exactly once.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repin::config::ServeConfig;
use repin::forge::app::App;
use repin::forge::fleet::Fleet;
use repin::forge::run::RunOptions;
use repin::git::Identity;
use repin::secret::Secret;
use repin::serve::webhook::sign;
use repin::serve::{ServeOptions, serve};
use serde_json::json;

use crate::support::world::{APP_ID, World};

const SECRET: &str = "webhook secret for tests";

/// The world with the App installed on `repos` (installation 1).
async fn world(repos: &[&str]) -> World {
    let world = World::new(repos).await;
    world.fake.add_installation(1, "acme", repos);
    world
}

fn options(world: &World, config: ServeConfig, secret: Option<&str>) -> ServeOptions {
    let app = App::new(&world.fake.url, APP_ID, &Secret::new(world.private.clone())).unwrap();
    let work = world.keys.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let store = repin::state::Store::open(&world.keys.path().join("state.redb")).unwrap();
    let lookups = repin::options::Lookups::new(
        &repin::options::RegistryFlags::default(),
        &repin::options::Env::default(),
        None,
    )
    .unwrap();
    ServeOptions {
        config,
        fleet: Fleet::app(app, Vec::new(), None).unwrap(),
        run: RunOptions {
            author: Identity {
                name: "repin-test[bot]".into(),
                email: "repin-test[bot]@users.noreply.github.com".into(),
            },
            max_open: 10,
            dry_run: false,
            service: None,
            store_path: None,
            commit_via_api: false,
            resolver: lookups.resolver().unwrap(),
            store: None,
        },
        lookups,
        store: Some(Arc::new(store)),
        webhook_secret: secret.map(Secret::new),
        work_dir: work,
    }
}

/// A daemon started in this process.
struct Daemon {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), repin::serve::Error>>,
}

impl Daemon {
    async fn start(opts: ServeOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(opts, listener, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("stops within a minute")
            .unwrap()
            .unwrap();
    }
}

/// Posts a delivery; `signature` `None` signs it properly.
async fn deliver(
    addr: SocketAddr,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/webhook"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    let good = sign(SECRET.as_bytes(), body);
    match signature {
        None => request = request.header("X-Hub-Signature-256", good),
        Some("") => {}
        Some(other) => request = request.header("X-Hub-Signature-256", other),
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Polls `done` for up to two minutes.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn installation_created(repos: &[&str]) -> Vec<u8> {
    let list: Vec<_> = repos.iter().map(|r| json!({ "full_name": r })).collect();
    serde_json::to_vec(&json!({
        "action": "created",
        "installation": { "id": 1, "account": { "login": "acme" } },
        "repositories": list,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_verified_before_anything_is_done() {
    let world = world(&["acme/one"]).await;
    let config = ServeConfig {
        max_body: 64 * 1024,
        ..ServeConfig::default()
    };
    let daemon = Daemon::start(options(&world, config, Some(SECRET))).await;
    let body = installation_created(&["acme/one"]);
    let good = sign(SECRET.as_bytes(), &body);
    let wrong = sign(b"not the secret", &body);
    for (signature, why) in [
        ("", "no X-Hub-Signature-256 header"),
        (wrong.as_str(), "does not match the body"),
        (&good[..good.len() - 8], "not sha256= and 64 hex digits"),
        (&good[7..], "not sha256= and 64 hex digits"),
    ] {
        let (status, text) =
            deliver(daemon.addr, "installation", "d-1", &body, Some(signature)).await;
        assert_eq!(status, 401, "{signature:?}: {text}");
        assert!(text.contains(why), "{text}");
    }
    // A body signed for another payload.
    let other = installation_created(&["acme/other"]);
    let (status, _) = deliver(daemon.addr, "installation", "d-2", &other, Some(&good)).await;
    assert_eq!(status, 401);
    // Oversized: refused before the signature is even read.
    let big = vec![b' '; 65 * 1024];
    let (status, _) = deliver(daemon.addr, "installation", "d-3", &big, None).await;
    assert_eq!(status, 413);
    // Nothing reached GitHub, and the refused delivery IDs were not remembered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(world.fake.calls().is_empty(), "{:?}", world.fake.calls());
    let (status, text) = deliver(
        daemon.addr,
        "ping",
        "d-1",
        br#"{"zen":"Design for failure."}"#,
        None,
    )
    .await;
    assert_eq!((status, text.as_str()), (200, "pong\n"));
    let (_, metrics) = get(daemon.addr, "/metrics").await;
    assert!(
        metrics.contains("repin_webhooks_total{event=\"unverified\",outcome=\"rejected\"} 5"),
        "{metrics}"
    );
    daemon.stop().await;

    // Without a secret, webhooks are turned away whatever they carry.
    let daemon = Daemon::start(options(&world, ServeConfig::default(), None)).await;
    let (status, _) = deliver(daemon.addr, "installation", "d-4", &body, None).await;
    assert_eq!(status, 404);
    daemon.stop().await;
    assert!(world.fake.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_drives_the_right_work() {
    let world = world(&["acme/one", "acme/two", "acme/three"]).await;
    let config = ServeConfig {
        debounce: Duration::from_millis(300),
        ..ServeConfig::default()
    };
    let daemon = Daemon::start(options(&world, config, Some(SECRET))).await;
    let (status, text) = deliver(daemon.addr, "ping", "p-1", b"{}", None).await;
    assert_eq!((status, text.as_str()), (200, "pong\n"));

    // installation created: its repositories are processed.
    let body = installation_created(&["acme/one"]);
    let (status, text) = deliver(daemon.addr, "installation", "i-1", &body, None).await;
    assert_eq!(status, 202, "{text}");
    eventually("the PR on acme/one", || world.pulls_in("acme/one") == 1).await;
    let pull = world.fake.pulls()[0].clone();
    assert!(pull.body.contains(&world.new), "{}", pull.body);
    // The API budget of a webhook-driven repository: the installation's token (once),
    // the repository, its pull requests, the new PR.
    let calls: Vec<String> = world
        .fake
        .calls()
        .iter()
        .map(|(m, p)| format!("{m} {}", p.split('?').next().unwrap_or_default()))
        .collect();
    assert_eq!(
        calls,
        [
            "POST /app/installations/1/access_tokens",
            "GET /repos/acme/one",
            "GET /repos/acme/one/pulls",
            "POST /repos/acme/one/pulls",
        ]
    );

    // The same delivery again: acknowledged, not processed.
    let calls = world.fake.calls().len();
    let (status, text) = deliver(daemon.addr, "installation", "i-1", &body, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("seen before"), "{text}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(world.fake.calls().len(), calls, "a duplicate did no work");

    // installation_repositories added.
    let added = serde_json::to_vec(&json!({
        "action": "added",
        "installation": { "id": 1 },
        "repositories_added": [{ "full_name": "acme/two" }],
        "repositories_removed": [],
    }))
    .unwrap();
    let (status, _) = deliver(
        daemon.addr,
        "installation_repositories",
        "r-1",
        &added,
        None,
    )
    .await;
    assert_eq!(status, 202);
    eventually("the PR on acme/two", || world.pulls_in("acme/two") == 1).await;

    // A push that touches no scanned file does nothing; one to the default branch that
    // touches the Dockerfile (twice, debounced into one run) opens the PR.
    let push = |files: &[&str], r#ref: &str| {
        serde_json::to_vec(&json!({
            "ref": r#ref,
            "installation": { "id": 1 },
            "repository": { "full_name": "acme/three", "default_branch": "main" },
            "commits": [{ "added": [], "modified": files, "removed": [] }],
        }))
        .unwrap()
    };
    let (status, text) = deliver(
        daemon.addr,
        "push",
        "s-1",
        &push(&["README.md"], "refs/heads/main"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = deliver(
        daemon.addr,
        "push",
        "s-2",
        &push(&["Dockerfile"], "refs/heads/other"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(world.pulls_in("acme/three"), 0);
    let repo_calls = || {
        world
            .fake
            .calls()
            .iter()
            .filter(|(m, p)| m == "GET" && p == "/repos/acme/three")
            .count()
    };
    assert_eq!(repo_calls(), 0);
    for id in ["s-3", "s-4"] {
        let (status, _) = deliver(
            daemon.addr,
            "push",
            id,
            &push(&["Dockerfile"], "refs/heads/main"),
            None,
        )
        .await;
        assert_eq!(status, 202);
    }
    eventually("the PR on acme/three", || world.pulls_in("acme/three") == 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(repo_calls(), 1, "two pushes, one run");

    // pull_request closed unmerged: the declined digests are recorded.
    let three = world
        .fake
        .pulls()
        .into_iter()
        .find(|p| p.repo == "acme/three")
        .unwrap();
    world.fake.close(three.number);
    let closed = |user_type: &str, head_repo: &str| {
        serde_json::to_vec(&json!({
            "action": "closed",
            "installation": { "id": 1 },
            "repository": { "full_name": "acme/three" },
            "pull_request": {
                "number": three.number,
                "merged": false,
                "body": three.body,
                "user": { "login": "repin-test[bot]", "type": user_type },
                "head": { "ref": three.head, "repo": { "full_name": head_repo } },
            },
        }))
        .unwrap()
    };
    // A copy of the body in someone's PR from a fork is not repin's.
    let (status, text) = deliver(
        daemon.addr,
        "pull_request",
        "c-1",
        &closed("User", "mallory/three"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.contains("not repin's"), "{text}");
    let (status, text) = deliver(
        daemon.addr,
        "pull_request",
        "c-2",
        &closed("Bot", "acme/three"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.contains("declined digests recorded"), "{text}");

    // Unknown events are acknowledged.
    let (status, _) = deliver(daemon.addr, "star", "x-1", br#"{"action":"created"}"#, None).await;
    assert_eq!(status, 200);
    let (_, metrics) = get(daemon.addr, "/metrics").await;
    for line in [
        "repin_pull_requests_total{action=\"opened\"} 3",
        "repin_repositories_processed_total{result=\"ok\"} 3",
        "repin_webhooks_total{event=\"installation\",outcome=\"duplicate\"} 1",
        "repin_webhooks_total{event=\"other\",outcome=\"handled\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // An installation unsuspended (GitHub lists no repositories): all of its
    // repositories run again; each has its PR or declined digests, so nothing is opened.
    let pull_lists = |repo: &str| {
        let route = format!("/repos/{repo}/pulls");
        world
            .fake
            .calls()
            .iter()
            .filter(|(m, p)| m == "GET" && p.starts_with(&route))
            .count()
    };
    let before: Vec<usize> = ["acme/one", "acme/two", "acme/three"]
        .iter()
        .map(|r| pull_lists(r))
        .collect();
    let body = br#"{"action":"unsuspend","installation":{"id":1}}"#;
    let (status, _) = deliver(daemon.addr, "installation", "u-1", body, None).await;
    assert_eq!(status, 202);
    eventually("every repository of the installation", || {
        ["acme/one", "acme/two", "acme/three"]
            .iter()
            .zip(&before)
            .all(|(r, n)| pull_lists(r) > *n)
    })
    .await;
    daemon.stop().await;
    assert_eq!(world.fake.pulls().len(), 3);

    // The record holds across restarts: a run of acme/three after the close proposes
    // nothing, even once the PR has dropped out of GitHub's list and its branch is gone.
    world.fake.forget_pull(three.number);
    crate::support::git_http::git(
        &world.git.path("acme/three"),
        &["update-ref", "-d", &format!("refs/heads/{}", three.head)],
    );
    let config = ServeConfig {
        run_at_start: true,
        ..ServeConfig::default()
    };
    let daemon = Daemon::start(options(&world, config, None)).await;
    eventually("the startup run", || {
        world
            .fake
            .calls()
            .iter()
            .filter(|(m, p)| m == "GET" && p.starts_with("/repos/acme/three/pulls"))
            .count()
            >= 2
    })
    .await;
    let (_, ready) = get(daemon.addr, "/readyz").await;
    assert_eq!(ready, "ready\n");
    daemon.stop().await;
    assert_eq!(
        world.pulls_in("acme/three"),
        0,
        "declined digests not proposed again"
    );
    assert_eq!(world.pulls_in("acme/one"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_end_to_end_as_a_process() {
    let world = world(&["acme/one"]).await;
    let dir = world.keys.path();
    let config = dir.join("repin.toml");
    std::fs::write(
        &config,
        "[serve]\nschedule = \"0 3 * * *\"\nconcurrency = 2\nshutdown_timeout = \"30s\"\n",
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    // Stopped with its process group if the test fails before the daemon stops.
    let mut child = crate::support::process::Server::spawn({
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_repin"));
        command
            .args([
                "serve",
                "--log-format",
                "json",
                "--config",
                config.to_str().unwrap(),
                "--app",
                "--app-id",
                &APP_ID.to_string(),
                "--listen",
                "127.0.0.1:0",
                "--state",
                dir.join("serve-state.redb").to_str().unwrap(),
            ])
            .env_remove("RUST_LOG")
            .env("DOCKER_CONFIG", empty.path())
            .env("REPIN_GITHUB_APP_KEY", &world.private)
            .env("GITHUB_API_URL", &world.fake.url)
            .env("REPIN_WEBHOOK_SECRET", SECRET)
            .stderr(std::process::Stdio::piped());
        command
    })
    .unwrap();
    let stderr = child.child().stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let lines = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("repin serve: listening on ") {
                let _ = addr_tx.send(addr.parse::<SocketAddr>().unwrap());
            }
            let mut log = lines.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no address; stderr:\n{}", log.lock().unwrap()));
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(addr, "/readyz").await.0, 200);

    let body = installation_created(&["acme/one"]);
    let (status, text) = deliver(addr, "installation", "e2e-1", &body, None).await;
    assert_eq!(status, 202, "{text}");
    eventually("the PR", || world.pulls_in("acme/one") == 1).await;
    let pull = &world.fake.pulls()[0];
    let dockerfile = crate::support::git_http::git(
        &world.git.path("acme/one"),
        &["show", &format!("{}:Dockerfile", pull.head)],
    );
    assert_eq!(
        dockerfile,
        format!("FROM {}/app:1@{}\n", world.host, world.new)
    );

    // The PR appears before the run ends; the repository is counted when it does.
    let mut metrics = String::new();
    for _ in 0..600 {
        let (status, text) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        metrics = text;
        if metrics.contains("repin_repositories_processed_total{result=\"ok\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in [
        "repin_pull_requests_total{action=\"opened\"} 1",
        "repin_webhooks_total{event=\"installation\",outcome=\"accepted\"} 1",
        "repin_registry_requests_total{result=\"ok\"}",
        "repin_github_api_calls_total ",
        "repin_github_rate_limit_remaining ",
        "# TYPE repin_repository_duration_seconds histogram",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..300 {
        if let Some(s) = child.child().try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("exits within 30 s of SIGTERM");
    std::thread::sleep(Duration::from_millis(200));
    let log = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    assert!(log.contains("repin serve: stopped"), "{log}");
    // Logs are JSON lines, and the secrets are in none of them.
    let json_line = log
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON log line");
    let parsed: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert!(parsed["level"].is_string(), "{json_line}");
    assert!(!log.contains(SECRET));
    assert!(!log.contains("BEGIN RSA PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sharded_runs_cover_the_fleet_exactly_once() {
    let repos = ["acme/a", "acme/b", "acme/c", "acme/d", "acme/e"];
    let world = world(&repos).await;
    let state = world.keys.path().join("state.redb");
    let shard_run = |flag: Option<&str>, env: &[(&str, &str)]| {
        let mut args = vec!["--state", state.to_str().unwrap()];
        if let Some(flag) = flag {
            args.extend(["--shard", flag]);
        }
        let out = world.run_as_app(&args, env);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let mut covered: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once(": opened").map(|(repo, _)| repo.to_owned()))
            .collect();
        covered.sort();
        covered
    };
    // Shard 0 by flag, shard 1 as pod 1 of a 2-pod Indexed Job.
    let zero = shard_run(Some("0/2"), &[]);
    let one = shard_run(
        None,
        &[("JOB_COMPLETION_INDEX", "1"), ("REPIN_SHARD_COUNT", "2")],
    );
    let mut all: Vec<String> = zero.iter().chain(&one).cloned().collect();
    all.sort();
    assert_eq!(
        all, repos,
        "every repository exactly once: {zero:?} + {one:?}"
    );
    assert!(!zero.is_empty() && !one.is_empty(), "{zero:?} {one:?}");
    for repo in &zero {
        assert_eq!(repin::shard::of(repo, 2), 0);
    }
    // One PR per repository, none twice.
    assert_eq!(world.fake.pulls().len(), repos.len());
    let bad = world.run_as_app(&["--shard", "2/2"], &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("invalid shard \"2/2\""),
        "{}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_abandons_what_outlives_the_deadline() {
    // A registry that accepts connections and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_host = hang.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        hang.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < until {
            if let Ok((stream, _)) = hang.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let world = World::new(&[]).await;
    let dockerfile = format!("FROM {hang_host}/app:1@{}\n", world.new);
    world.git.repo("acme/slow", &[("Dockerfile", &dockerfile)]);
    world.fake.add_repo(&world.git, "acme/slow");
    world.fake.add_installation(1, "acme", &["acme/slow"]);
    let config = ServeConfig {
        run_at_start: true,
        shutdown_timeout: Duration::from_millis(500),
        ..ServeConfig::default()
    };
    let mut opts = options(&world, config, None);
    opts.lookups.client.timeout = Duration::from_secs(2);
    let daemon = Daemon::start(opts).await;
    let saw = |route: &str| {
        world
            .fake
            .calls()
            .iter()
            .any(|(m, p)| m == "GET" && p.starts_with(route))
    };
    eventually("the repository's run", || saw("/repos/acme/slow")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.stop().await;
    // serve returned while the repository was still waiting on the registry: its run
    // was abandoned at the deadline, not waited for.
    assert!(!saw("/repos/acme/slow/pulls"), "{:?}", world.fake.calls());
}

/// Untrusted input stays cheap: a client that declares a huge body, one that never
/// finishes its headers, one that never finishes its body, and a flood of idle
/// connections — none of them holds the daemon: the declared size is refused before
/// reading, slow clients are dropped after the read timeouts, connections past the cap
/// are closed at once, and `/healthz` answers again once the idle ones are gone.
#[tokio::test(flavor = "multi_thread")]
async fn untrusted_input_stays_cheap_hostile_http_clients() {
    use repin::serve::conn::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let world = world(&["acme/one"]).await;
    let daemon = Daemon::start(options(&world, ServeConfig::default(), Some(SECRET))).await;
    let addr = daemon.addr;
    let read_all = |mut s: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    };

    // A huge Content-Length, no body: 413 at once, nothing read.
    let mut huge = tokio::net::TcpStream::connect(addr).await.unwrap();
    huge.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), huge.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Headers that never end, and a body that never ends.
    let mut slow_headers = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_headers
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut slow_body = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"zen\"")
        .await
        .unwrap();
    // A flood of idle connections up to the cap (two are taken above).
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS - 2 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Past the cap: closed at once, without an answer.
    let over = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), read_all(over))
            .await
            .unwrap(),
        ""
    );
    let (headers_out, body_out) = tokio::join!(read_all(slow_headers), read_all(slow_body));
    let waited = started.elapsed();
    assert!(waited >= HEADER_READ_TIMEOUT, "{waited:?}");
    assert!(waited < HEADER_READ_TIMEOUT * 3, "{waited:?}");
    assert!(!headers_out.starts_with("HTTP/1.1 2"), "{headers_out}");
    assert!(body_out.starts_with("HTTP/1.1 408"), "{body_out}");
    // The idle flood has been dropped by now: probes answer again.
    for _ in 0..50 {
        if let Ok(Ok(response)) = tokio::time::timeout(
            Duration::from_secs(2),
            reqwest::get(format!("http://{addr}/healthz")),
        )
        .await
        {
            assert_eq!(response.status(), 200);
            drop(idle);
            daemon.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("/healthz did not answer after the idle connections timed out");
}
