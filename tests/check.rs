//! `check`, `update` and `digest` against a real registry (CNCF distribution), in each
//! auth setup, with request budgets counted from the registry's own access log.

use std::path::Path;

use crate::support::images::{Flavor, PushedIndex, Pusher};
use crate::support::registry::{Auth, PASSWORD, Registry};
use crate::support::token::REFRESH_TOKEN;
use crate::support::{Run, formats, read, repin_env, text_tree, tree};

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

fn run(dir: &Path, args: &[&str], config: Option<&Path>) -> Run {
    let config = config.map(|p| p.to_str().unwrap().to_owned());
    let env: Vec<(&str, &str)> = config
        .iter()
        .map(|c| ("DOCKER_CONFIG", c.as_str()))
        .collect();
    repin_env(dir, args, &env)
}

fn check_json(dir: &Path, config: Option<&Path>) -> (i32, Vec<serde_json::Value>) {
    let out = run(dir, &["check", "--format", "json"], config);
    let parsed = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {:?}", out.stdout, out.stderr));
    (out.code, parsed)
}

/// Pushes `repo:tag` twice (markers a, b): the old index and the one the tag now has.
async fn moved_index(
    pusher: &mut Pusher<'_>,
    repo: &str,
    tag: &str,
    flavor: Flavor,
) -> (PushedIndex, PushedIndex) {
    let old = pusher.index(repo, tag, &PLATFORMS, flavor, "a").await;
    let new = pusher.index(repo, tag, &PLATFORMS, flavor, "b").await;
    assert_ne!(old.digest, new.digest);
    (old, new)
}

#[tokio::test(flavor = "multi_thread")]
async fn index_pin_outdated_is_updated_then_current() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let dir = tree(&[(
        "Dockerfile",
        format!(
            "# a comment\r\nFROM \"{host}/app:1@{}\" AS base  # pinned\r\n",
            old.digest
        )
        .as_bytes(),
    )]);

    // The scan contract's fields, in order, then check's own.
    let raw = run(dir.path(), &["check", "--format", "json"], None).stdout;
    let keys: Vec<&str> = raw
        .lines()
        .take_while(|l| !l.starts_with("  },"))
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "path",
            "format",
            "line",
            "column",
            "start",
            "end",
            "reference",
            "registry",
            "repository",
            "tag",
            "digest",
            "platform",
            "skip_reason",
            "status",
            "new_digest",
            "error",
            "held"
        ]
    );
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    let app = checked.iter().find(|c| c["repository"] == "app").unwrap();
    assert_eq!(app["status"], "outdated");
    assert_eq!(app["new_digest"], new.digest.as_str());
    assert_eq!(app["error"], serde_json::Value::Null);

    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "updated Dockerfile: 1 reference\n");
    // Only the digest changed: quotes, comment, CRLF and the other line are as they were.
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!(
            "# a comment\r\nFROM \"{host}/app:1@{}\" AS base  # pinned\r\n",
            new.digest
        )
    );
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 0);
    assert_eq!(checked[0]["status"], "current");
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_pins_stay_on_their_platform() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (oci_old, oci_new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let (list_old, list_new) = moved_index(&mut pusher, "lib", "2", Flavor::Docker).await;
    let host = &reg.host;
    let dockerfile = format!(
        "FROM {host}/app:1@{}\nFROM --platform=linux/arm64 {host}/app:1@{} AS arm\n",
        oci_old.child("linux/amd64"),
        oci_old.child("linux/arm64"),
    );
    let compose = format!(
        "services:\n  lib:\n    image: {host}/lib:2@{}\n  idx:\n    image: '{host}/lib:2@{}'\n",
        list_old.child("linux/arm/v7"),
        list_old.digest,
    );
    let dir = tree(&[
        ("Dockerfile", dockerfile.as_bytes()),
        ("compose.yaml", compose.as_bytes()),
    ]);

    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // GETs only where a platform pin needs them: each moved index once, and the old
    // manifest and config of a platform pin the file gives no `--platform` for.
    let requests = reg.requests("repin/");
    let gets = |part: &str| {
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains(part))
            .count()
    };
    assert_eq!(gets("/manifests/"), 4, "{requests:?}");
    assert_eq!(gets("/blobs/"), 2, "{requests:?}");
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!(
            "FROM {host}/app:1@{}\nFROM --platform=linux/arm64 {host}/app:1@{} AS arm\n",
            oci_new.child("linux/amd64"),
            oci_new.child("linux/arm64"),
        )
    );
    assert_eq!(
        read(dir.path(), "compose.yaml"),
        format!(
            "services:\n  lib:\n    image: {host}/lib:2@{}\n  idx:\n    image: '{host}/lib:2@{}'\n",
            list_new.child("linux/arm/v7"),
            list_new.digest,
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn current_pins_change_nothing() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let index = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let single = pusher
        .single("tool", "v3", "linux/amd64", Flavor::Docker, "a")
        .await;
    let host = &reg.host;
    let text = format!(
        "FROM {host}/app:1@{}\nFROM {host}/app:1@{}\nFROM {host}/tool:v3@{single}\n",
        index.digest,
        index.child("linux/arm64")
    );
    let dir = tree(&[("Dockerfile", text.as_bytes())]);
    let modified = std::fs::metadata(dir.path().join("Dockerfile"))
        .unwrap()
        .modified()
        .unwrap();
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 0, "{checked:?}");
    assert!(
        checked.iter().all(|c| c["status"] == "current"),
        "{checked:?}"
    );
    let out = run(dir.path(), &["check"], None);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("LOCATION"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("Dockerfile:3:6  {host}/tool:v3@{single}  current")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("\n3 current, 0 outdated, 0 unpinned, 0 skipped, 0 errors\n"),
        "{}",
        out.stdout
    );
    let out = run(dir.path(), &["update"], None);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "nothing to update\n"),
        "{}",
        out.stderr
    );
    assert_eq!(read(dir.path(), "Dockerfile"), text);
    let after = std::fs::metadata(dir.path().join("Dockerfile"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_tag_is_reported_and_the_file_left_alone() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old_index, moved) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let gone = pusher
        .single("gone", "1", "linux/amd64", Flavor::Oci, "a")
        .await;
    pusher.delete("gone", &gone).await;
    let host = &reg.host;
    // (A pin of a digest the registry does not know is an error of its own: see
    // trust::pins_keep_their_kind_old_manifest_deleted.)
    let old = old_index.digest;
    let text = format!("FROM {host}/gone:1@{gone}\nFROM {host}/app:1@{old}\n");
    let dir = tree(&[("Dockerfile", text.as_bytes())]);

    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 2);
    assert_eq!(checked[0]["status"], "error");
    assert_eq!(checked[0]["error"], format!("{host}: gone:1 not found"));
    // The other image is still checked.
    assert_eq!(checked[1]["status"], "outdated");

    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("gone:1 not found"), "{}", out.stderr);
    // The failing reference stays; the other one is still updated.
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!(
            "FROM {host}/gone:1@{gone}\nFROM {host}/app:1@{}\n",
            moved.digest
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_no_longer_offered_is_reported() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let old = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    pusher
        .index("app", "1", &["linux/amd64"], Flavor::Oci, "b")
        .await;
    let text = format!("FROM {}/app:1@{}\n", reg.host, old.child("linux/arm/v7"));
    let dir = tree(&[("Dockerfile", text.as_bytes())]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 2);
    assert_eq!(
        checked[0]["error"],
        format!("{}: app:1 does not offer platform linux/arm/v7", reg.host)
    );
    assert_eq!(read(dir.path(), "Dockerfile"), text);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_a_diff_and_pin_adds_digests() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let index = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let host = &reg.host;
    let text =
        format!("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: {host}/app:1\n");
    let dir = tree(&[("pod.yaml", text.as_bytes())]);
    // Without --pin, a tag-only reference is reported, not changed.
    let out = run(dir.path(), &["update"], None);
    assert_eq!((out.code, out.stdout.as_str()), (0, "nothing to update\n"));
    let out = run(dir.path(), &["update", "--pin", "--dry-run"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "--- a/pod.yaml\n+++ b/pod.yaml\n@@ -2,4 +2,4 @@\n kind: Pod\n spec:\n   containers:\n-  - image: {host}/app:1\n+  - image: {host}/app:1@{}\n",
            index.digest
        )
    );
    assert_eq!(read(dir.path(), "pod.yaml"), text);
    let out = run(dir.path(), &["update", "--pin", "--format", "json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"path": "pod.yaml", "references": 1, "diff": null, "error": null}])
    );
    assert_eq!(
        read(dir.path(), "pod.yaml"),
        text.replace("app:1\n", &format!("app:1@{}\n", index.digest))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_command() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let index = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let here = Path::new(".");
    let image = format!("{}/app:1", reg.host);
    let out = run(here, &["digest", &image], None);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, index.digest.as_str()),
        "{}",
        out.stderr
    );
    let out = run(
        here,
        &["digest", &image, "--platform", "linux/arm/v7"],
        None,
    );
    assert_eq!(out.stdout.trim(), index.child("linux/arm/v7"));
    let out = run(here, &["digest", &image, "--full-ref"], None);
    assert_eq!(out.stdout.trim(), format!("{image}@{}", index.digest));
    // A manifest asked for by digest: the digest itself, or its platform's child.
    let by_digest = format!("{}/app@{}", reg.host, index.digest);
    let out = run(here, &["digest", &by_digest], None);
    assert_eq!(out.stdout.trim(), index.digest.as_str(), "{}", out.stderr);
    let out = run(
        here,
        &["digest", &by_digest, "--platform", "linux/arm/v7"],
        None,
    );
    assert_eq!(
        out.stdout.trim(),
        index.child("linux/arm/v7"),
        "{}",
        out.stderr
    );
    let out = run(here, &["digest", &format!("{}/app:nope", reg.host)], None);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        format!("error: {}: app:nope not found", reg.host)
    );
    let out = run(here, &["digest", "Not/Valid"], None);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("repository names must be lowercase"),
        "{}",
        out.stderr
    );
}

/// Every auth setup resolves, with credentials from Docker's config where needed.
#[tokio::test(flavor = "multi_thread")]
async fn auth_setups_resolve() {
    for auth in [Auth::Basic, Auth::TokenAnonymous, Auth::TokenCredentialed] {
        let reg = Registry::start(auth);
        let mut pusher = Pusher::new(&reg);
        let (old, new) = moved_index(&mut pusher, "team/app", "1", Flavor::Oci).await;
        let text = format!(
            "FROM {}/team/app:1@{}\n",
            reg.host,
            old.child("linux/amd64")
        );
        let dir = tree(&[("Dockerfile", text.as_bytes())]);
        let config = reg.docker_config();
        let out = run(dir.path(), &["update", "-vv"], Some(config.path()));
        assert_eq!(out.code, 0, "{auth:?}: {}", out.stderr);
        assert_eq!(
            read(dir.path(), "Dockerfile"),
            format!(
                "FROM {}/team/app:1@{}\n",
                reg.host,
                new.child("linux/amd64")
            ),
            "{auth:?}"
        );
        // Secrets never reach the logs, even at trace level.
        assert!(
            !out.stderr.contains(PASSWORD),
            "{auth:?} leaked the password"
        );
        assert!(
            !out.stderr.contains("Basic "),
            "{auth:?} leaked a Basic header"
        );
        assert!(!out.stderr.contains("eyJ"), "{auth:?} leaked a token");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_are_an_auth_error_naming_the_registry() {
    for auth in [Auth::Basic, Auth::TokenCredentialed] {
        let reg = Registry::start(auth);
        let mut pusher = Pusher::new(&reg);
        let index = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
        let text = format!("FROM {}/app:1@{}\n", reg.host, index.digest);
        let dir = tree(&[("Dockerfile", text.as_bytes())]);
        let (code, checked) = check_json(dir.path(), None);
        assert_eq!(code, 2, "{auth:?}");
        let error = checked[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{}: access denied (HTTP 401)", reg.host)),
            "{auth:?}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_token_is_used_as_an_oauth2_refresh_token() {
    let reg = Registry::start(Auth::TokenCredentialed);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let config = tempfile::tempdir().unwrap();
    let json = serde_json::json!({"auths": {reg.host.clone(): {"identitytoken": REFRESH_TOKEN}}});
    std::fs::write(config.path().join("config.json"), json.to_string()).unwrap();
    let text = format!("FROM {}/app:1@{}\n", reg.host, old.digest);
    let dir = tree(&[("Dockerfile", text.as_bytes())]);
    let out = run(dir.path(), &["update", "-vv"], Some(config.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!("FROM {}/app:1@{}\n", reg.host, new.digest)
    );
    assert!(
        !out.stderr.contains(REFRESH_TOKEN),
        "the identity token was logged"
    );
    // A wrong refresh token is an auth error, not a silent anonymous fallback.
    let json = serde_json::json!({"auths": {reg.host.clone(): {"identitytoken": "wrong"}}});
    std::fs::write(config.path().join("config.json"), json.to_string()).unwrap();
    let (code, checked) = check_json(dir.path(), Some(config.path()));
    assert_eq!(code, 2);
    assert_eq!(
        checked[0]["error"],
        format!(
            "{}: access denied (HTTP 401); check the credentials for this registry",
            reg.host
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_helper_supplies_credentials() {
    let reg = Registry::start(Auth::Basic);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Docker).await;
    let helpers = tempfile::tempdir().unwrap();
    let script = helpers.path().join("docker-credential-repintest");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{}\" ] || exit 1\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"repin\",\"Secret\":\"{PASSWORD}\"}}'\n",
            reg.host
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap()
    );
    // The registry's own helper, and the store helper for every registry.
    let configs = [
        serde_json::json!({"credHelpers": {reg.host.clone(): "repintest"}}),
        serde_json::json!({"credsStore": "repintest"}),
    ];
    for json in configs {
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("config.json"), json.to_string()).unwrap();
        let text = format!("FROM {}/app:1@{}\n", reg.host, old.digest);
        let dir = tree(&[("Dockerfile", text.as_bytes())]);
        let config_dir = config.path().to_str().unwrap();
        let out = repin_env(
            dir.path(),
            &["update"],
            &[("DOCKER_CONFIG", config_dir), ("PATH", &path)],
        );
        assert_eq!(out.code, 0, "{json}: {}", out.stderr);
        assert_eq!(
            read(dir.path(), "Dockerfile"),
            format!("FROM {}/app:1@{}\n", reg.host, new.digest),
            "{json}"
        );
    }
}

/// The budget: N unique tags across R repositories, nothing to update, referenced many
/// times over: at most N manifest requests + R token requests + 1 challenge.
#[tokio::test(flavor = "multi_thread")]
async fn request_budget_from_the_registry_log() {
    let reg = Registry::start(Auth::TokenCredentialed);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut lines = Vec::new();
    let repos = ["alpha", "beta", "team/gamma"];
    for repo in repos {
        for tag in ["1", "2"] {
            let index = pusher
                .index(repo, tag, &PLATFORMS[..2], Flavor::Oci, tag)
                .await;
            lines.push(format!("FROM {host}/{repo}:{tag}@{}", index.digest));
        }
    }
    let dockerfile = lines.join("\n") + "\n";
    let compose: String = std::iter::once("services:\n".to_owned())
        .chain(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("  s{i}:\n    image: {}\n", l.trim_start_matches("FROM "))),
        )
        .collect();
    let dir = tree(&[
        ("Dockerfile", dockerfile.as_bytes()),
        ("a/Dockerfile", dockerfile.as_bytes()),
        ("b/compose.yaml", compose.as_bytes()),
        ("c/compose.yaml", compose.as_bytes()),
    ]);
    let config = reg.docker_config();
    let (code, checked) = check_json(dir.path(), Some(config.path()));
    assert_eq!(code, 0, "{checked:?}");
    assert_eq!(checked.len(), 24);

    let requests = reg.requests("repin/");
    let manifests = requests
        .iter()
        .filter(|r| r.path.contains("/manifests/"))
        .count();
    let challenges = requests.iter().filter(|r| r.path == "/v2/").count();
    let tokens = reg.token.as_ref().unwrap().count("repin/");
    assert_eq!(manifests, 6, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.method == "HEAD" || r.path == "/v2/"),
        "{requests:?}"
    );
    // One token for the three repositories (repeated `scope`).
    assert_eq!(tokens, 1);
    assert_eq!(challenges, 1);
}

/// (manifest HEADs, manifest GETs, blob GETs, challenges, tokens) repin made so far.
fn spent(reg: &Registry) -> [usize; 5] {
    let requests = reg.requests("repin/");
    let count = |method: &str, part: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    };
    [
        count("HEAD", "/manifests/"),
        count("GET", "/manifests/"),
        count("GET", "/blobs/"),
        requests.iter().filter(|r| r.path == "/v2/").count(),
        reg.token.as_ref().map_or(0, |t| t.count("repin/")),
    ]
}

/// The registry token bench: 20 images, each pinned 10 times (200 references) to the
/// index its tag had before it moved, behind token auth like Docker Hub's. A cold check
/// costs one HEAD per tag, one HEAD per old pin (is it an index?), one challenge and
/// one token for all 20 repositories: 42 requests. A second check with the same state
/// store knows the old pins' kinds: 22. Every new digest is right both times.
#[tokio::test(flavor = "multi_thread")]
async fn registry_token_bench_cold_and_warm() {
    let reg = Registry::start(Auth::TokenAnonymous);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut new_digests = std::collections::HashMap::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..20 {
        let repo = format!("team{}/image{i}", i % 3);
        let (old, new) = moved_index(&mut pusher, &repo, "1", Flavor::Oci).await;
        let pin = format!("{host}/{repo}:1@{}", old.digest);
        new_digests.insert(format!("{host}/{repo}:1"), new.digest);
        for copy in 0..10 {
            files.push((format!("svc{copy}/{i}/Dockerfile"), format!("FROM {pin}\n")));
        }
    }
    let dir = text_tree(&files);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("state.redb");
    let check = || {
        let out = repin_env(
            dir.path(),
            &["check", "--format", "json"],
            &[("REPIN_STATE", store.to_str().unwrap())],
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        let checked: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(checked.len(), 200);
        for c in &checked {
            let image = c["reference"].as_str().unwrap().split('@').next().unwrap();
            assert_eq!(c["status"], "outdated", "{c}");
            assert_eq!(c["new_digest"], new_digests[image], "{c}");
        }
    };
    check();
    let cold = spent(&reg);
    assert_eq!(
        cold,
        [40, 0, 0, 1, 1],
        "cold: HEADs, GETs, blobs, challenges, tokens"
    );
    assert!(cold.iter().sum::<usize>() <= 42);
    check();
    let warm: Vec<usize> = spent(&reg).iter().zip(cold).map(|(a, b)| a - b).collect();
    assert_eq!(
        warm,
        [20, 0, 0, 1, 1],
        "warm: only the tags, the challenge, one token"
    );
    assert!(warm.iter().sum::<usize>() <= 22);
}

/// Platform pins keep their facts too: the old pin's platform (from its config) and the
/// new index's children are learned once; a second run costs only the tags' HEADs.
#[tokio::test(flavor = "multi_thread")]
async fn platform_pin_facts_are_kept_across_runs() {
    let reg = Registry::start(Auth::TokenAnonymous);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..3 {
        let (old, new) = moved_index(&mut pusher, &format!("p{i}"), "1", Flavor::Docker).await;
        text.push_str(&format!(
            "FROM {host}/p{i}:1@{}\n",
            old.child("linux/arm64")
        ));
        expected.push(new.child("linux/arm64").to_owned());
    }
    let dir = tree(&[("Dockerfile", text.as_bytes())]);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("state.redb");
    let check = || {
        let out = repin_env(
            dir.path(),
            &["check", "--format", "json"],
            &[("REPIN_STATE", store.to_str().unwrap())],
        );
        let checked: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        let got: Vec<&str> = checked
            .iter()
            .map(|c| c["new_digest"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected, "{}", out.stderr);
    };
    check();
    let cold = spent(&reg);
    assert!(cold[1] > 0 && cold[2] > 0, "{cold:?}");
    check();
    let warm: Vec<usize> = spent(&reg).iter().zip(cold).map(|(a, b)| a - b).collect();
    assert_eq!(
        warm,
        [3, 0, 0, 1, 1],
        "warm: the tags' HEADs, challenge, token"
    );
}

/// A registry that grants fewer scopes than a token was asked for: the batched token
/// is refused for the others, each of which gets its own token; the answers are right,
/// and later tokens are asked one scope at a time.
#[tokio::test(flavor = "multi_thread")]
async fn batched_tokens_fall_back_per_repository() {
    let reg = Registry::start(Auth::TokenOneScope);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..4 {
        let (old, new) = moved_index(&mut pusher, &format!("f{i}"), "1", Flavor::Oci).await;
        text.push_str(&format!("FROM {host}/f{i}:1@{}\n", old.digest));
        expected.push(new.digest);
    }
    let dir = tree(&[("Dockerfile", text.as_bytes())]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    let got: Vec<&str> = checked
        .iter()
        .map(|c| c["new_digest"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    let [_, _, _, challenges, tokens] = spent(&reg);
    assert_eq!(challenges, 1);
    // The batch, then one for each of the three repositories it did not cover.
    assert_eq!(tokens, 4);
}

/// GitHub Actions against the real registry: a workflow's job container, service,
/// `docker://` step and buildx driver image, and an action's `runs.image`, each pinned
/// to the old index; after the tag moves, `update` changes the digest bytes only.
#[tokio::test(flavor = "multi_thread")]
async fn github_actions_pins_are_updated_in_place() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let pin = format!("{host}/app:1@{}", old.digest);
    let workflow = |pin: &str| {
        format!(
            "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    container: {pin}   # the build image\n    services:\n      db:\n        image: \"{pin}\"\n    steps:\n      - uses: actions/checkout@v4\n      - uses: docker://{pin}\n      - uses: docker/setup-buildx-action@v3\n        with:\n          driver-opts: |\n            network=host\n            image={pin}\n      - run: echo ${{{{ matrix.x }}}}\n"
        )
    };
    let action = |pin: &str| format!("runs:\n  using: docker\n  image: 'docker://{pin}'\n");
    let dir = tree(&[
        (".github/workflows/ci.yml", workflow(&pin).as_bytes()),
        ("tools/action.yml", action(&pin).as_bytes()),
    ]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(checked.len(), 5, "{checked:?}");
    assert!(checked.iter().all(|c| c["format"] == "github-actions"));
    assert!(
        checked.iter().all(|c| c["status"] == "outdated"),
        "{checked:?}"
    );

    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let moved = format!("{host}/app:1@{}", new.digest);
    assert_eq!(
        read(dir.path(), ".github/workflows/ci.yml"),
        workflow(&moved)
    );
    assert_eq!(read(dir.path(), "tools/action.yml"), action(&moved));
    let (code, _) = check_json(dir.path(), None);
    assert_eq!(code, 0);
}

/// GitLab CI (with a file it includes), Cloud Build and a Compose file found by its
/// content (with a Dockerfile inline), against the real registry: each pin follows the
/// moved tag, and only digest bytes change.
#[tokio::test(flavor = "multi_thread")]
async fn gitlab_cloudbuild_and_compose_by_content_are_updated_in_place() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let gitlab = |pin: &str| {
        format!(
            "include:\n  - local: ci/jobs.yml\nimage: {pin}\nservices:\n  - name: \"{pin}\"\n    alias: db\nbuild:\n  image: $CI_REGISTRY_IMAGE:latest\n  script: [make]\n"
        )
    };
    let included = |pin: &str| format!("test:\n  image: {pin}\n  script: [make test]\n");
    let cloudbuild = |pin: &str| {
        format!("steps:\n- name: '{pin}'\n  args: [version]\nimages: ['{host}/app:2']\n")
    };
    let stack = |pin: &str| {
        let digest = pin.split_once('@').unwrap().1;
        format!(
            "version: '3.8'\nservices:\n  web:\n    image: {pin}  # pinned\n  builder:\n    build:\n      dockerfile_inline: |\n        ARG REG={host}\n        FROM $${{REG}}/app:1@{digest} AS base\n        FROM {pin}\n"
        )
    };
    let files = |pin: &str| {
        [
            (".gitlab-ci.yml", gitlab(pin)),
            ("ci/jobs.yml", included(pin)),
            ("ci/cloudbuild.yaml", cloudbuild(pin)),
            ("deploy/docker-stack.yml", stack(pin)),
        ]
    };
    let pin = format!("{host}/app:1@{}", old.digest);
    let before = files(&pin);
    let dir = text_tree(&before);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(
        formats(&checked),
        [
            "gitlab-ci",
            "gitlab-ci",
            "gitlab-ci",
            "cloudbuild",
            "gitlab-ci",
            "compose",
            "compose",
            "compose"
        ]
    );
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for (path, text) in files(&format!("{host}/app:1@{}", new.digest)) {
        assert_eq!(read(dir.path(), path), text, "{path}");
    }
}

/// Kubernetes beyond containers, against the real registry: an image volume, a custom
/// resource's `imageName`, a Tekton bundle and a KRM function's annotation each follow
/// the moved tag, and only digest bytes change.
#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_image_volumes_custom_resources_bundles_and_functions_update() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let manifests = |pin: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n  - name: data\n    image:\n      reference: {pin}\n---\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec:\n  imageName: \"{pin}\"\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nspec:\n  taskRef:\n    resolver: bundles\n    params:\n    - name: bundle\n      value: {pin}\n---\napiVersion: fn.kpt.dev/v1alpha1\nkind: SetLabels\nmetadata:\n  annotations:\n    config.kubernetes.io/function: |\n      container:\n        image: {pin}\n"
        )
    };
    let pin = format!("{host}/app:1@{}", old.digest);
    let dir = tree(&[("deploy/all.yaml", manifests(&pin).as_bytes())]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(checked.len(), 4, "{checked:?}");
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "deploy/all.yaml"),
        manifests(&format!("{host}/app:1@{}", new.digest))
    );
}

/// Dockerfile `FROM`s composed from several `ARG`s, against the real registry: the
/// lookup uses the composed reference, `check` reports each digest where it is written
/// (the `ARG` line, the `FROM` line) with its parts, and `update` changes only those
/// digest bytes.
#[tokio::test(flavor = "multi_thread")]
async fn dockerfile_froms_composed_from_args_update_where_the_digest_is_written() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (app_old, app_new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let (tool_old, tool_new) = moved_index(&mut pusher, "acme/tool", "2", Flavor::Oci).await;
    let host = &reg.host;
    let dockerfile = |app: &str, tool: &str| {
        format!(
            "ARG REGISTRY={host}\nARG APP_VER=1@{app}\nARG TOOL={host}/acme/tool\nFROM ${{REGISTRY}}/app:${{APP_VER}} AS build\nRUN echo \"$APP_VER\"\nFROM ${{TOOL}}:2@{tool}\nCOPY --from=build /a /b\n"
        )
    };
    let before = dockerfile(&app_old.digest, &tool_old.digest);
    let dir = tree(&[("Dockerfile", before.as_bytes())]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(checked.len(), 2, "{checked:?}");
    assert_eq!(
        checked[0]["reference"],
        format!("{host}/app:1@{}", app_old.digest)
    );
    assert_eq!(checked[0]["line"], 2);
    assert_eq!(
        checked[1]["reference"],
        format!("{host}/acme/tool:2@{}", tool_old.digest)
    );
    assert_eq!(checked[1]["line"], 6);
    for c in &checked {
        let (start, end) = (c["start"].as_u64().unwrap(), c["end"].as_u64().unwrap());
        assert_eq!(&before[start as usize..end as usize], c["digest"]);
        let parts = c["parts"].as_array().unwrap();
        let digest = parts.iter().find(|p| p["name"] == "digest").unwrap();
        assert_eq!((&digest["start"], &digest["end"]), (&c["start"], &c["end"]));
    }
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        dockerfile(&app_new.digest, &tool_new.digest)
    );
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 0, "{checked:?}");
}

/// A pin without a tag follows the tag a comment names (`# repin: tag=…`, ratchet's
/// `# ratchet:image:tag`), against the real registry: `check` says which tag it
/// followed and from where, `update` rewrites only the digest and keeps the comment.
#[tokio::test(flavor = "multi_thread")]
async fn pins_without_a_tag_follow_the_hinted_tag() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let compose = |d: &str| {
        format!(
            "services:\n  a:\n    image: {host}/app@{d}  # repin: tag=1\n  b:\n    image: {host}/app@{d} # ratchet:{host}/app:1\n  c:\n    image: {host}/app@{d}\n"
        )
    };
    let dir = tree(&[("compose.yaml", compose(&old.digest).as_bytes())]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    let follows: Vec<(&serde_json::Value, &serde_json::Value)> = checked
        .iter()
        .map(|c| (&c["follow"], &c["status"]))
        .collect();
    assert_eq!(
        follows,
        [
            (
                &serde_json::json!({"tag": "1", "from": "comment"}),
                &serde_json::json!("outdated")
            ),
            (
                &serde_json::json!({"tag": "1", "from": "ratchet"}),
                &serde_json::json!("outdated")
            ),
            (&serde_json::Value::Null, &serde_json::json!("skipped")),
        ]
    );
    let text = run(dir.path(), &["check"], None);
    assert!(
        text.stdout.contains("follows tag 1 (comment)"),
        "{}",
        text.stdout
    );
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let updated = read(dir.path(), "compose.yaml");
    let expected = compose(&new.digest).replacen(
        &format!("image: {host}/app@{}\n", new.digest),
        &format!("image: {host}/app@{}\n", old.digest),
        1,
    );
    assert_eq!(updated, expected);
}

/// A rule's `follow_tag` gives pins without a tag a tag to follow (a comment's wins),
/// against the real registry; `update` rewrites only the digest.
#[tokio::test(flavor = "multi_thread")]
async fn pins_without_a_tag_follow_the_rule_tag() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let config = format!("[[rule]]\nimages = [\"{host}/app\"]\nfollow_tag = \"1\"\n");
    let compose = |d: &str| format!("services:\n  a:\n    image: {host}/app@{d}\n");
    let dir = tree(&[
        ("compose.yaml", compose(&old.digest).as_bytes()),
        (".repin.toml", config.as_bytes()),
    ]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(
        checked[0]["follow"],
        serde_json::json!({"tag": "1", "from": "rule"})
    );
    assert_eq!(checked[0]["status"], "outdated");
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(dir.path(), "compose.yaml"), compose(&new.digest));
}

/// References split across fields and the new single-string formats, against the real
/// registry: a Helm image map (prefixed digest, bare `sha`, `tag@digest`), a Kustomize
/// override, ko's base image, a chart's `artifacthub.io/images` annotation, an Argo CD
/// `Application`'s override, a Flux `HelmRelease`'s values and a Flux `OCIRepository`
/// each follow the moved tag; only digest bytes change, in each digest's own style.
#[tokio::test(flavor = "multi_thread")]
async fn helm_kustomize_ko_and_chart_annotations_update_only_digests() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let files = |d: &str| {
        let hex = &d[7..];
        [
            (
                "chart/values.yaml",
                format!(
                    "image:\n  registry: {host}\n  repository: app\n  tag: \"1\"\n  digest: \"{d}\"  # kept\nsidecar:\n  image:\n    repository: {host}/app\n    version: '1'\n    sha: {hex}\nproxyImage:\n  name: {host}/app\n  tag: 1@{d}\n"
                ),
            ),
            (
                "chart/Chart.yaml",
                format!(
                    "apiVersion: v2\nname: app\nversion: 1.0.0\nannotations:\n  artifacthub.io/images: |\n    - name: app\n      image: {host}/app:1@{d}\n"
                ),
            ),
            (
                "overlays/prod/kustomization.yaml",
                format!(
                    "images:\n  - name: app\n    newName: {host}/app\n    newTag: \"1\"\n    digest: {d}\n"
                ),
            ),
            (".ko.yaml", format!("defaultBaseImage: {host}/app:1@{d}\n")),
            (
                "argo/app.yaml",
                format!(
                    "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    kustomize:\n      images:\n      - app={host}/app:1@{d}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image:\n      repository: {host}/app\n      tag: '1'\n      digest: {d}\n---\napiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository\nspec:\n  url: oci://{host}/app\n  ref:\n    tag: '1'\n    digest: {d}\n"
                ),
            ),
        ]
    };
    let before = files(&old.digest);
    let dir = text_tree(&before);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(
        formats(&checked),
        [
            "ko",
            "kubernetes",
            "kubernetes",
            "kubernetes",
            "helm-chart",
            "helm-values",
            "helm-values",
            "helm-values",
            "kustomize"
        ]
    );
    assert!(
        checked.iter().all(|c| c["status"] == "outdated"),
        "{checked:?}"
    );
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for (path, text) in files(&new.digest) {
        assert_eq!(read(dir.path(), path), text, "{path}");
    }
}

/// The opt-in scanner reads only the paths `[scan] extra` lists, finds pinned tokens
/// there with exact spans, and `update` rewrites only their digests (real registry); a
/// file it does not list is not read.
#[tokio::test(flavor = "multi_thread")]
async fn extra_paths_are_scanned_only_when_listed() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let config = "[scan]\nextra = [{ paths = [\"Makefile\", \"scripts/*.sh\"] }]\n";
    let make = |d: &str| format!("IMG ?= {host}/app:1@{d}\nrun:\n\tdocker run $(IMG)\n");
    let script = |d: &str| format!("#!/bin/sh\nexec docker run {host}/app:1@{d} \"$@\"\n");
    let dir = tree(&[
        (".repin.toml", config.as_bytes()),
        ("Makefile", make(&old.digest).as_bytes()),
        ("scripts/run.sh", script(&old.digest).as_bytes()),
        ("other.mk", make(&old.digest).as_bytes()),
    ]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    let paths: Vec<(&str, &str)> = checked
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["format"].as_str().unwrap()))
        .collect();
    assert_eq!(paths, [("Makefile", "extra"), ("scripts/run.sh", "extra")]);
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(dir.path(), "Makefile"), make(&new.digest));
    assert_eq!(read(dir.path(), "scripts/run.sh"), script(&new.digest));
    assert_eq!(read(dir.path(), "other.mk"), make(&old.digest));
}

/// `[scan.read_as]` makes a format read paths its own names do not cover: Helm values
/// kept as `envs/prod.yaml` are read as Helm values and updated (real registry).
#[tokio::test(flavor = "multi_thread")]
async fn read_as_adds_paths_to_a_format() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = moved_index(&mut pusher, "app", "1", Flavor::Oci).await;
    let host = &reg.host;
    let config = "[scan.read_as]\n\"helm-values\" = [\"envs/*.yaml\"]\n";
    let values = |d: &str| {
        format!("app:\n  image:\n    repository: {host}/app\n    tag: '1'\n    digest: {d}\n")
    };
    let dir = tree(&[
        (".repin.toml", config.as_bytes()),
        ("envs/prod.yaml", values(&old.digest).as_bytes()),
    ]);
    let (code, checked) = check_json(dir.path(), None);
    assert_eq!(code, 1, "{checked:?}");
    assert_eq!(checked.len(), 1, "{checked:?}");
    assert_eq!(checked[0]["format"], "helm-values");
    let out = run(dir.path(), &["update"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(dir.path(), "envs/prod.yaml"), values(&new.digest));
    let bad = tree(&[(
        ".repin.toml",
        b"[scan.read_as]\n\"helm-valus\" = [\"x.yaml\"]\n",
    )]);
    let out = run(bad.path(), &["check"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown format \"helm-valus\"") && out.stderr.contains("helm-values"),
        "{}",
        out.stderr
    );
}
