//! Trust: never a wrong pin. Each test is named after the kind of fault it guards
//! against; a registry that lies is a wiremock server (a real registry will not send a
//! malformed digest), driven through the `repin` binary or the library's job.

use std::path::Path;

use repin::imageref::Digest;
use repin::registry::manifest::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::mock::{
    credentialed_client, head_with_digest, manifest_requests, open_registry as lying_registry,
};
use crate::support::{read, repin, tree};

const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// Runs `repin` off the async runtime's worker (it blocks until the binary exits).
async fn repin_blocking(dir: &Path, args: &[&str]) -> crate::support::Run {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        repin(&dir, &args)
    })
    .await
    .unwrap()
}

/// A registry where tag `app:1` now points at `index` (served under `tag_digest`, as the
/// header says), and the old pin [`OLD`] is a platform manifest; the index is fetched
/// by `tag_digest`, answered with or without a `Docker-Content-Digest` header.
async fn tag_moved_to_index(
    server: &MockServer,
    tag_digest: &str,
    index: String,
    header_on_get: bool,
) {
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(head_with_digest(tag_digest, OCI_INDEX))
        .mount(server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(format!("/v2/app/manifests/{OLD}")))
        .respond_with(head_with_digest(OLD, OCI_MANIFEST))
        .mount(server)
        .await;
    let mut get = ResponseTemplate::new(200).insert_header("Content-Type", OCI_INDEX);
    if header_on_get {
        get = get.insert_header("Docker-Content-Digest", tag_digest);
    }
    Mock::given(method("GET"))
        .and(path(format!("/v2/app/manifests/{tag_digest}")))
        .respond_with(get.set_body_bytes(index.into_bytes()))
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_are_checked_data_head_header() {
    let (server, host) = lying_registry().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(head_with_digest("sha256:deadbeef", DOCKER_MANIFEST))
        .mount(&server)
        .await;
    let dockerfile = format!("FROM {host}/app:1@{OLD}\nFROM {host}/app:1\n");
    let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);

    let update = repin_blocking(dir.path(), &["update", "--pin"]).await;
    assert_eq!(update.code, 2, "{}", update.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        dockerfile,
        "the file is untouched"
    );
    assert!(
        update.stderr.contains(&host)
            && update.stderr.contains("\"sha256:deadbeef\"")
            && update.stderr.contains("not a digest"),
        "{}",
        update.stderr
    );

    let check = repin_blocking(dir.path(), &["check", "--format", "json"]).await;
    assert_eq!(check.code, 2);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(rows.len(), 2, "one object per finding");
    for row in &rows {
        assert_eq!(row["status"], "error", "{row}");
        assert_eq!(row["new_digest"], serde_json::Value::Null);
    }

    for args in [
        vec!["digest", &format!("{host}/app:1")[..]],
        vec!["digest", &format!("{host}/app:1")[..], "--full-ref"],
    ] {
        let digest = repin_blocking(dir.path(), &args).await;
        assert_eq!(digest.code, 2, "{args:?}: {}", digest.stdout);
        assert!(digest.stdout.is_empty(), "{}", digest.stdout);
        assert!(digest.stderr.contains("not a digest"), "{}", digest.stderr);
    }
}

/// A manifest asked for by digest must come back as that digest: a registry that
/// answers with another is an error, and nothing is printed.
#[tokio::test(flavor = "multi_thread")]
async fn digests_are_checked_data_digest_asked_for_comes_back_as_itself() {
    let (server, host) = lying_registry().await;
    let other = format!("sha256:{}", "b".repeat(64));
    Mock::given(method("HEAD"))
        .and(path(format!("/v2/app/manifests/{OLD}")))
        .respond_with(head_with_digest(&other, DOCKER_MANIFEST))
        .mount(&server)
        .await;
    let dir = tree(&[]);
    let image = format!("{host}/app@{OLD}");
    let digest = repin_blocking(dir.path(), &["digest", &image]).await;
    assert_eq!(digest.code, 2, "{}", digest.stdout);
    assert!(digest.stdout.is_empty(), "{}", digest.stdout);
    assert!(
        digest.stderr.contains(&host) && digest.stderr.contains(&other[..20]),
        "{}",
        digest.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_are_checked_data_index_child() {
    let (server, host) = lying_registry().await;
    // The tag now points at an index whose arm64 child is not a digest.
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:ZZZ","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
    );
    let index_digest = Digest::sha256_of(index.as_bytes()).to_string();
    tag_moved_to_index(&server, &index_digest, index, true).await;
    let dockerfile = format!("FROM --platform=linux/arm64 {host}/app:1@{OLD}\n");
    let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);
    let update = repin_blocking(dir.path(), &["update"]).await;
    assert_eq!(update.code, 2, "{}", update.stderr);
    assert_eq!(read(dir.path(), "Dockerfile"), dockerfile);
    assert!(
        update
            .stderr
            .contains("descriptor digest \"sha256:ZZZ\" is not a digest"),
        "{}",
        update.stderr
    );
    let digest = repin_blocking(
        dir.path(),
        &[
            "digest",
            &format!("{host}/app:1"),
            "--platform",
            "linux/arm64",
        ],
    )
    .await;
    assert_eq!(digest.code, 2);
    assert!(digest.stdout.is_empty());
}

/// Header values a lying registry might send: near-misses of a digest and noise.
fn header_values() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        "[ -~]{0,90}",
        "sha256:[0-9a-fA-FzZ]{60,68}",
        "(sha256|sha512|sha384|md5|SHA256):[0-9a-f]{0,130}",
        "sha256:[0-9a-f]{64}[ -~]{0,3}",
        "[ -~]{0,3}sha256:[0-9a-f]{64}",
        "sha256:[0-9a-f]{64}",
        "sha512:[0-9a-f]{128}",
    ]
}

/// No string a registry can send, other than a valid digest, ever reaches a file: for
/// any `Docker-Content-Digest`, `update` either leaves the file byte-identical or writes
/// exactly that value, and then only when it is a valid digest.
#[test]
fn digests_are_checked_data_property_nothing_but_a_digest_reaches_a_file() {
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&header_values(), |value| {
            runtime.block_on(async {
                let (server, host) = lying_registry().await;
                Mock::given(method("HEAD"))
                    .and(path("/v2/app/manifests/1"))
                    .respond_with(head_with_digest(&value, DOCKER_MANIFEST))
                    .mount(&server)
                    .await;
                let original = format!("FROM {host}/app:1@{OLD}\n");
                let dir = tree(&[("Dockerfile", original.as_bytes())]);
                let resolver = repin::options::Lookups::new(
                    &repin::options::RegistryFlags::default(),
                    &repin::options::Env::default(),
                    None,
                )
                .unwrap()
                .resolver()
                .unwrap();
                let opts = repin::job::JobOptions {
                    store_path: Some(dir.path().join("state.redb")),
                    ..repin::job::JobOptions::new(vec![dir.path().to_path_buf()], resolver)
                };
                let outcome = repin::job::check_tree(&opts, &|| {}).await.unwrap();
                let plan = repin::update::plan(&outcome.records, &outcome.change_sets);
                let _ = repin::update::apply(&plan, &outcome.report.sources, false);
                let now = read(dir.path(), "Dockerfile");
                let trimmed = value.trim_matches([' ', '\t']);
                let valid = trimmed.parse::<Digest>().is_ok();
                if now != original {
                    assert!(valid, "{value:?} reached the file: {now:?}");
                    assert_eq!(now, format!("FROM {host}/app:1@{trimmed}\n"));
                } else if valid && trimmed != OLD {
                    panic!("a valid digest {value:?} was not written");
                }
            });
            Ok(())
        })
        .unwrap();
}

/// A platform pin whose old manifest the registry collected cannot say which platform it
/// was: that is an error (the pin stays), never the index digest — unless the file fixes
/// the platform, which then picks the new manifest.
#[tokio::test(flavor = "multi_thread")]
async fn pins_keep_their_kind_old_manifest_deleted() {
    use crate::support::images::{Flavor, Pusher};
    use crate::support::registry::{Auth, Registry};
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let platforms = ["linux/amd64", "linux/arm64"];
    let old = pusher.index("app", "1", &platforms, Flavor::Oci, "a").await;
    let new = pusher.index("app", "1", &platforms, Flavor::Oci, "b").await;
    let gone = old.child("linux/arm64");
    pusher.delete("app", gone).await;
    let host = &reg.host;
    let dockerfile = format!(
        "FROM {host}/app:1@{gone} AS guess\nFROM --platform=linux/arm64 {host}/app:1@{gone} AS fixed\n"
    );
    let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);
    let out = repin_blocking(dir.path(), &["update"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is gone from the registry") && out.stderr.contains("Dockerfile:1"),
        "{}",
        out.stderr
    );
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!(
            "FROM {host}/app:1@{gone} AS guess\nFROM --platform=linux/arm64 {host}/app:1@{} AS fixed\n",
            new.child("linux/arm64")
        )
    );
    assert!(!read(dir.path(), "Dockerfile").contains(&new.digest));
}

/// `update --pin` of a reference without a tag writes the tag it looked up, so the pin
/// stays updatable (a bare `name@digest` would be `no-tag` forever), in every format.
#[tokio::test(flavor = "multi_thread")]
async fn pins_keep_their_tag_pin_without_a_tag_writes_latest() {
    use crate::support::images::{Flavor, Pusher};
    use crate::support::registry::{Auth, Registry};
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let digest = pusher
        .single("tool", "latest", "linux/amd64", Flavor::Oci, "a")
        .await;
    let host = &reg.host;
    let dir = tree(&[
        ("Dockerfile", format!("FROM {host}/tool\n").as_bytes()),
        (
            "compose.yaml",
            format!("services:\n  t:\n    image: \"{host}/tool\"\n").as_bytes(),
        ),
        (
            "deploy.yaml",
            format!("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: t\n      image: {host}/tool\n").as_bytes(),
        ),
    ]);
    let out = repin_blocking(dir.path(), &["update", "--pin"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pinned = format!("{host}/tool:latest@{digest}");
    assert_eq!(read(dir.path(), "Dockerfile"), format!("FROM {pinned}\n"));
    assert_eq!(
        read(dir.path(), "compose.yaml"),
        format!("services:\n  t:\n    image: \"{pinned}\"\n")
    );
    assert!(read(dir.path(), "deploy.yaml").ends_with(&format!("image: {pinned}\n")));
    let check = repin_blocking(dir.path(), &["check", "--format", "json"]).await;
    assert_eq!(check.code, 0, "{}", check.stdout);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "current"), "{rows:?}");
}

/// One record per reference: a token endpoint's absurd `expires_in` neither kills a
/// lookup nor shifts the next reference's rules (`min_age` on the second image holds).
#[tokio::test(flavor = "multi_thread")]
async fn one_record_per_reference_huge_token_lifetime() {
    let server = MockServer::start().await;
    let host = server.address().to_string();
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="http://{host}/token",service="lying""#).as_str(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"token":"t0k3n","expires_in":18446744073709551615}"#),
        )
        .mount(&server)
        .await;
    let new = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    for (repo, c) in [("a", 'a'), ("b", 'b')] {
        Mock::given(method("HEAD"))
            .and(path(format!("/v2/{repo}/manifests/1")))
            .respond_with(head_with_digest(&new(c), DOCKER_MANIFEST))
            .mount(&server)
            .await;
    }
    let dockerfile = format!("FROM {host}/a:1@{OLD}\nFROM {host}/b:1@{OLD}\n");
    let config = format!("[[rule]]\nimages = [\"{host}/b\"]\nmin_age = \"30d\"\n");
    let dir = tree(&[
        ("Dockerfile", dockerfile.as_bytes()),
        (".repin.toml", config.as_bytes()),
    ]);
    let state = dir.path().join("state.redb");
    let state = state.to_str().unwrap().to_owned();
    let root = dir.path().to_path_buf();
    let run = move |args: &'static [&'static str]| {
        let (root, state) = (root.clone(), state.clone());
        tokio::task::spawn_blocking(move || {
            crate::support::repin_env(&root, args, &[("REPIN_STATE", &state)])
        })
    };
    let update = run(&["update"]).await.unwrap();
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!("FROM {host}/a:1@{}\nFROM {host}/b:1@{OLD}\n", new('a'))
    );
    let check = run(&["check", "--format", "json"]).await.unwrap();
    assert_eq!(check.code, 0, "{}", check.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "current");
    assert_eq!(rows[1]["status"], "outdated");
    assert_eq!(rows[1]["held"], "too-young");
    assert_eq!(rows[1]["new_digest"], new('b'));
}

/// `REPIN_REGISTRY_<HOST>_USERNAME` / `_PASSWORD` work on their own, without a service
/// config naming the registry (real registry, htpasswd Basic auth); one without the
/// other is a clear error that names the variables, not their values.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_only_where_they_belong_env_vars_on_their_own() {
    use crate::support::images::{Flavor, Pusher};
    use crate::support::registry::{Auth, PASSWORD, Registry, USER};
    let reg = Registry::start(Auth::Basic);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = pusher.moved("app", "1").await;
    let _ = Flavor::Oci;
    let host = reg.host.clone();
    let dockerfile = format!("FROM {host}/app:1@{old}\n");
    let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);
    let var = |what: &str| repin::registry::client::registry_env_var(&host, what);
    let (user_var, pass_var) = (var("USERNAME"), var("PASSWORD"));
    let root = dir.path().to_path_buf();
    let run = move |env: Vec<(String, String)>| {
        let root = root.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            crate::support::repin_env(&root, &["update"], &env)
        })
    };
    let half = run(vec![(user_var.clone(), USER.to_owned())])
        .await
        .unwrap();
    assert_eq!(half.code, 2);
    assert!(half.stderr.contains(&pass_var), "{}", half.stderr);
    assert!(!half.stderr.contains(PASSWORD));
    let both = run(vec![
        (user_var, USER.to_owned()),
        (pass_var, PASSWORD.to_owned()),
    ])
    .await
    .unwrap();
    assert_eq!(both.code, 0, "{}", both.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!("FROM {host}/app:1@{new}\n")
    );
}

/// A token realm or a redirect that would carry a request to plain HTTP on a host that
/// may not use it is refused before anything is sent there.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_only_where_they_belong_realm_and_redirect_downgrades() {
    use repin::registry::client::{Client, Credentials, Options};
    // A realm on a plain-HTTP host that is not loopback (never contacted: the address
    // is reserved for documentation).
    let server = MockServer::start().await;
    let host = server.address().to_string();
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            r#"Bearer realm="http://192.0.2.1/token",service="x""#,
        ))
        .mount(&server)
        .await;
    let client = credentialed_client(&host);
    let err = client.head_manifest(&host, "app", "1").await.unwrap_err();
    assert!(
        matches!(err, repin::registry::Error::Insecure { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("192.0.2.1"), "{err}");

    // A redirect from the registry to plain HTTP elsewhere.
    let server = MockServer::start().await;
    let host = server.address().to_string();
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", "http://192.0.2.1/v2/app/manifests/1"),
        )
        .mount(&server)
        .await;
    let client = Client::new(Options::default(), Credentials::Anonymous).unwrap();
    let err = client.head_manifest(&host, "app", "1").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("refused a redirect to plain HTTP (192.0.2.1)"),
        "{err}"
    );
    // The same redirect within loopback is followed.
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/2"))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "Location",
            format!("http://{host}/v2/app/manifests/1-real").as_str(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1-real"))
        .respond_with(head_with_digest(OLD, DOCKER_MANIFEST))
        .mount(&server)
        .await;
    let head = client.head_manifest(&host, "app", "2").await.unwrap();
    assert_eq!(head.digest.to_string(), OLD);
}

/// A registry that answers plain HTTP where HTTPS is expected: one clear line naming the
/// flag, at once (no retries). `0.0.0.0` reaches the loopback server without being a
/// loopback name, so repin speaks HTTPS to it.
#[tokio::test(flavor = "multi_thread")]
async fn registry_errors_say_what_happened_plain_http_answer() {
    let (server, _) = lying_registry().await;
    let host = format!("0.0.0.0:{}", server.address().port());
    let dir = tree(&[(
        "Dockerfile",
        format!("FROM {host}/app:1@{OLD}\n").as_bytes(),
    )]);
    let out = repin_blocking(dir.path(), &["check", "--format", "json"]).await;
    assert_eq!(out.code, 2);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rows[0]["error"],
        format!(
            "{host}: answered plain HTTP where HTTPS was expected; if this registry serves plain HTTP, allow it with --insecure-registry {host} (or insecure = true in the service config)"
        )
    );
    // Nothing reached the server as plain HTTP requests it could answer.
    assert!(server.received_requests().await.unwrap().is_empty());
    // With the flag, the same registry is used over plain HTTP.
    let out = repin_blocking(
        dir.path(),
        &["check", "--format", "json", "--insecure-registry", &host],
    )
    .await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        rows[0]["error"].as_str().unwrap().contains("not found"),
        "{rows:?}"
    );
}

/// repin writes only its own branches: a config whose prefix and group spell the default
/// branch, on a repository whose default branch tip is a (rebase-merged) repin commit —
/// the case where the lease check alone would have let the push through.
#[tokio::test(flavor = "multi_thread")]
async fn writes_only_own_branches_config_naming_the_default_branch() {
    use crate::support::git_http::{GitServer, git};
    use crate::support::github::{FakeGitHub, TOKEN};
    use crate::support::images::Pusher;
    use crate::support::registry::{Auth, Registry};
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, _new) = pusher.moved("app", "1").await;
    let host = reg.host.clone();
    let git_server = GitServer::start();
    git_server.repo(
        "acme/web",
        &[
            ("Dockerfile", &format!("FROM {host}/app:1@{old}\n")),
            (
                ".repin.toml",
                "[update]\nbranch_prefix = \"mai\"\ngroup = \"n\"\n",
            ),
        ],
    );
    // A repin commit rebase-merged onto main: main's tip is authored by repin's identity.
    let bare = git_server.path("acme/web");
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("c");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::write(clone.join("README.md"), "merged\n").unwrap();
    git(&clone, &["add", "README.md"]);
    git(
        &clone,
        &[
            "-c",
            "user.name=repin[bot]",
            "-c",
            "user.email=repin[bot]@users.noreply.github.com",
            "commit",
            "-q",
            "-m",
            "Update something",
        ],
    );
    git(&clone, &["push", "-q", "origin", "main"]);
    let tip = git(&bare, &["rev-parse", "main"]);
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/web");
    let state = work.path().join("state.redb");
    let (url, state) = (fake.url.clone(), state.to_str().unwrap().to_owned());
    let out = tokio::task::spawn_blocking(move || {
        crate::support::repin_env(
            std::path::Path::new("."),
            &["run", "--repo", "acme/web", "--state", &state],
            &[("GITHUB_TOKEN", TOKEN), ("GITHUB_API_URL", url.as_str())],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("refusing to write branch \"main\": it is the default branch"),
        "{}",
        out.stderr
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), tip, "main did not move");
    assert!(fake.pulls().is_empty());
    assert_eq!(fake.writes(), 0);
}

/// A registry whose `app:1` moved to the returned digest, answering after two seconds.
async fn slow_registry() -> (MockServer, String, String) {
    let (server, host) = lying_registry().await;
    let new = format!("sha256:{}", "b".repeat(64));
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(
            head_with_digest(&new, DOCKER_MANIFEST).set_delay(std::time::Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    (server, host, new)
}

/// Runs `repin update [root]` in `cwd`, and `during` while its lookups wait on a
/// [`slow_registry`]; returns the finished process's output.
async fn update_while(
    cwd: &Path,
    root: Option<&Path>,
    docker_config: &Path,
    during: impl FnOnce(),
) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_repin"));
    command.arg("update").args(root).current_dir(cwd);
    let child = command
        .env(crate::support::process::MARKER, "1")
        .env("DOCKER_CONFIG", docker_config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    during();
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

/// Files: a folder swapped for a link to outside the root while the lookups run does
/// not lead the write outside the root.
#[tokio::test(flavor = "multi_thread")]
async fn files_only_the_intended_bytes_folder_swapped_during_lookup() {
    let (_server, host, _new) = slow_registry().await;
    let dockerfile = format!("FROM {host}/app:1@{OLD}\n");
    let dir = tree(&[("app/Dockerfile", dockerfile.as_bytes())]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("Dockerfile"), &dockerfile).unwrap();
    let out = update_while(dir.path(), None, outside.path(), || {
        std::fs::rename(dir.path().join("app"), dir.path().join("app-moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("app")).unwrap();
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("app/Dockerfile"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("Dockerfile")).unwrap(),
        dockerfile,
        "nothing outside the root changed"
    );
    assert_eq!(read(dir.path(), "app-moved/Dockerfile"), dockerfile);
}

/// A schedule holds in the bot too: `run` records each proposal (per repository and
/// change set), so a newer digest right after a PR was opened waits for the next tick
/// instead of updating the PR at once.
#[tokio::test(flavor = "multi_thread")]
async fn schedules_hold_in_the_bot_proposal_recorded_per_repository() {
    use crate::support::git_http::GitServer;
    use crate::support::github::{FakeGitHub, TOKEN};
    use crate::support::images::{Flavor, Pusher};
    use crate::support::registry::{Auth, Registry};
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, first) = pusher.moved("app", "1").await;
    let host = reg.host.clone();
    let git_server = GitServer::start();
    let config = "[update]\nschedule = \"0 3 * * *\"\n";
    for repo in ["acme/web", "acme/api"] {
        git_server.repo(
            repo,
            &[
                ("Dockerfile", &format!("FROM {host}/app:1@{old}\n")),
                (".repin.toml", config),
            ],
        );
    }
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/web");
    fake.add_repo(&git_server, "acme/api");
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state.redb");
    // Both repositories first saw the change pending two days ago: a tick has passed.
    {
        let store = repin::state::Store::open(&state).unwrap();
        let two_days_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 2 * 86_400;
        let keys: Vec<String> = ["acme/web", "acme/api"]
            .iter()
            .map(|r| repin::state::anchor_key(r, &format!("{host}/app")))
            .collect();
        store.set(&keys, two_days_ago).unwrap();
    }
    let (url, state) = (fake.url.clone(), state.to_str().unwrap().to_owned());
    let run = move |repo: &'static str| {
        let (url, state) = (url.clone(), state.clone());
        tokio::task::spawn_blocking(move || {
            crate::support::repin_env(
                std::path::Path::new("."),
                &["run", "--repo", repo, "--state", &state],
                &[("GITHUB_TOKEN", TOKEN), ("GITHUB_API_URL", url.as_str())],
            )
        })
    };
    let out = run("acme/web").await.unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake.pulls().len(), 1);
    let writes = fake.writes();
    // The tag moves again at once: the PR waits for the next tick.
    let _third = pusher
        .single("app", "1", "linux/amd64", Flavor::Oci, "c")
        .await;
    let out = run("acme/web").await.unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake.writes(), writes, "the PR was not touched");
    let branch = &fake.pulls()[0].head;
    let on_branch = crate::support::git_http::git(
        &git_server.path("acme/web"),
        &["show", &format!("{branch}:Dockerfile")],
    );
    assert_eq!(on_branch, format!("FROM {host}/app:1@{first}\n"));
    // The other repository's own anchor is untouched by acme/web's proposal: its
    // change is proposed.
    let out = run("acme/api").await.unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake.pulls().len(), 2);
}

/// A registry that never sends `Docker-Content-Digest`: each manifest is read once —
/// the tag's index is not fetched again to pick the platform's child, and after the
/// first `HEAD` the registry is read with `GET` alone.
#[tokio::test(flavor = "multi_thread")]
async fn registry_requests_once_without_digest_headers() {
    let (server, host) = lying_registry().await;
    let old_manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[],"annotations":{"m":"old"}}"#;
    let old = Digest::sha256_of(old_manifest).to_string();
    let new = format!("sha256:{}", "b".repeat(64));
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{new}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
    );
    let get = |bytes: Vec<u8>, media_type: &str| {
        ResponseTemplate::new(200)
            .insert_header("Content-Type", media_type)
            .set_body_bytes(bytes)
    };
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(200).insert_header("Content-Type", OCI_INDEX))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(get(index.clone().into_bytes(), OCI_INDEX))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/app/manifests/{old}")))
        .respond_with(get(old_manifest.to_vec(), OCI_MANIFEST))
        .mount(&server)
        .await;
    let dockerfile = format!("FROM --platform=linux/arm64 {host}/app:1@{old}\n");
    let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);
    let out = repin_blocking(dir.path(), &["update"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!("FROM --platform=linux/arm64 {host}/app:1@{new}\n")
    );
    assert_eq!(
        manifest_requests(&server).await,
        [
            "HEAD /v2/app/manifests/1".to_owned(),
            "GET /v2/app/manifests/1".to_owned(),
            format!("GET /v2/app/manifests/{old}"),
        ]
    );
}

/// `--deadline` bounds the command: a registry that answers too slowly makes errors at
/// its references when the deadline comes, not a command that hangs.
#[tokio::test(flavor = "multi_thread")]
async fn deadline_bounds_the_command() {
    let (server, host) = lying_registry().await;
    Mock::given(method("HEAD"))
        .respond_with(
            head_with_digest(OLD, DOCKER_MANIFEST).set_delay(std::time::Duration::from_secs(20)),
        )
        .mount(&server)
        .await;
    let dir = tree(&[(
        "Dockerfile",
        format!("FROM {host}/a:1@{OLD}\nFROM {host}/b:1@{OLD}\n").as_bytes(),
    )]);
    let started = std::time::Instant::now();
    let out = repin_blocking(
        dir.path(),
        &["check", "--format", "json", "--deadline", "1"],
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(6));
    assert_eq!(out.code, 2);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(
            row["error"]
                .as_str()
                .unwrap()
                .contains("deadline (--deadline) passed"),
            "{row}"
        );
    }
}

/// Credentials never cross hosts on a redirect: the registry's `Authorization` is not
/// sent to the host it redirects to (both plain-HTTP loopback, so the redirect is
/// followed).
#[tokio::test(flavor = "multi_thread")]
async fn credentials_only_where_they_belong_not_across_a_redirect() {
    let registry = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let host = registry.address().to_string();
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="r""#),
        )
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "Location",
            format!("http://{}/blob/1", elsewhere.address()).as_str(),
        ))
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(head_with_digest(OLD, DOCKER_MANIFEST))
        .mount(&elsewhere)
        .await;
    let client = credentialed_client(&host);
    let head = client.head_manifest(&host, "app", "1").await.unwrap();
    assert_eq!(head.digest.to_string(), OLD);
    let sent = registry.received_requests().await.unwrap();
    assert!(
        sent.iter()
            .any(|r| r.method.as_str() == "HEAD" && r.headers.contains_key("authorization")),
        "the registry itself got the credentials"
    );
    let redirected = elsewhere.received_requests().await.unwrap();
    assert_eq!(redirected.len(), 1);
    assert!(!redirected[0].headers.contains_key("authorization"));
}

/// Pins keep their kind when a registry sends no `Content-Type` (or a generic one):
/// the manifest's own bytes say whether it is an index, so a platform pin takes the
/// platform's new manifest, never the index digest.
#[tokio::test(flavor = "multi_thread")]
async fn pins_keep_their_kind_without_content_type() {
    for content_type in [
        None,
        Some("application/json"),
        Some("application/octet-stream"),
    ] {
        let (server, host) = lying_registry().await;
        let old_manifest = br#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;
        let old = Digest::sha256_of(old_manifest).to_string();
        let new_arm = format!("sha256:{}", "b".repeat(64));
        let new_amd = format!("sha256:{}", "c".repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{new_amd}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},{{"digest":"{new_arm}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        let index_digest = Digest::sha256_of(index.as_bytes()).to_string();
        let answer = |digest: &str, body: Option<Vec<u8>>| {
            let mut r = ResponseTemplate::new(200).insert_header("Docker-Content-Digest", digest);
            if let Some(ct) = content_type {
                r = r.insert_header("Content-Type", ct);
            }
            match body {
                Some(b) => r.set_body_bytes(b),
                None => r,
            }
        };
        for (reference, digest, body) in [
            (
                "1".to_owned(),
                index_digest.clone(),
                index.clone().into_bytes(),
            ),
            (
                index_digest.clone(),
                index_digest.clone(),
                index.clone().into_bytes(),
            ),
            (old.clone(), old.clone(), old_manifest.to_vec()),
        ] {
            let at = format!("/v2/app/manifests/{reference}");
            Mock::given(method("HEAD"))
                .and(path(at.clone()))
                .respond_with(answer(&digest, None))
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path(at))
                .respond_with(answer(&digest, Some(body)))
                .mount(&server)
                .await;
        }
        let dockerfile = format!("FROM --platform=linux/arm64 {host}/app:1@{old}\n");
        let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);
        let out = repin_blocking(dir.path(), &["update"]).await;
        assert_eq!(out.code, 0, "{content_type:?}: {}", out.stderr);
        assert_eq!(
            read(dir.path(), "Dockerfile"),
            format!("FROM --platform=linux/arm64 {host}/app:1@{new_arm}\n"),
            "{content_type:?}"
        );
        let digest = repin_blocking(
            dir.path(),
            &[
                "digest",
                &format!("{host}/app:1"),
                "--platform",
                "linux/amd64",
            ],
        )
        .await;
        assert_eq!(
            digest.stdout.trim(),
            new_amd,
            "{content_type:?}: {}",
            digest.stderr
        );
    }
}

/// Digests are checked data under every algorithm: a manifest fetched by a SHA-512
/// digest whose bytes do not hash to it is an error, never a pin.
#[tokio::test(flavor = "multi_thread")]
async fn digests_are_checked_data_sha512_verified() {
    let (server, host) = lying_registry().await;
    let claimed = format!("sha512:{}", "ab".repeat(64));
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
        "b".repeat(64)
    );
    tag_moved_to_index(&server, &claimed, index, false).await;
    let dockerfile = format!("FROM --platform=linux/arm64 {host}/app:1@{OLD}\n");
    let dir = tree(&[("Dockerfile", dockerfile.as_bytes())]);
    let out = repin_blocking(dir.path(), &["update"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("digest mismatch"), "{}", out.stderr);
    assert_eq!(read(dir.path(), "Dockerfile"), dockerfile);
}

/// Files: the root itself swapped for a link to elsewhere while lookups run: the write
/// goes to the file that was scanned (reached from the root opened before the walk),
/// never to the link's target.
#[tokio::test(flavor = "multi_thread")]
async fn files_only_the_intended_bytes_root_swapped_during_lookup() {
    let (_server, host, new) = slow_registry().await;
    let dockerfile = format!("FROM {host}/app:1@{OLD}\n");
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("repo");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/Dockerfile"), &dockerfile).unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("sub/Dockerfile"), &dockerfile).unwrap();
    let out = update_while(base.path(), Some(&root), base.path(), || {
        std::fs::rename(&root, base.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, &root).unwrap();
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        std::fs::read_to_string(outside.join("sub/Dockerfile")).unwrap(),
        dockerfile,
        "nothing outside the scanned tree changed: {stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(base.path().join("moved/sub/Dockerfile")).unwrap(),
        format!("FROM {host}/app:1@{new}\n"),
        "the scanned file got the edit"
    );
}

/// Registry errors say what happened: a refused connection names the cause, and a
/// registry given up on is named once.
#[tokio::test(flavor = "multi_thread")]
async fn registry_errors_say_what_happened_refused_connection() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let dir = tree(&[(
        "Dockerfile",
        format!("FROM {host}/a:1@{OLD}\nFROM {host}/b:1@{OLD}\n").as_bytes(),
    )]);
    let out = repin_blocking(dir.path(), &["check", "--format", "json", "--timeout", "1"]).await;
    assert_eq!(out.code, 2);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let errors: Vec<&str> = rows.iter().map(|r| r["error"].as_str().unwrap()).collect();
    assert!(
        errors.iter().all(|e| e.contains("onnection refused")),
        "{errors:?}"
    );
    assert!(
        errors.iter().all(|e| e.matches(&host).count() == 1),
        "{errors:?}"
    );
}
