//! `check` and `update` under a repository config, against a real registry: one image
//! ignored, one held back by `min_age`, two grouped; and an invalid config stopping the
//! run before anything happens.

use repin::state::{Store, seen_key};

use crate::support::images::{Flavor, Pusher};
use crate::support::registry::{Auth, Registry};
use crate::support::{read, repin_env, tree};

#[tokio::test(flavor = "multi_thread")]
async fn ignore_min_age_and_groups_through_check_and_update() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut old = Vec::new();
    let mut new = Vec::new();
    for repo in ["ignored", "young", "ga", "gb"] {
        let (a, b) = pusher.moved(repo, "1").await;
        old.push(a);
        new.push(b);
    }
    let config = format!(
        "[[rule]]\nimages = [\"{host}/ignored\"]\nignore = true\n\n[[rule]]\nimages = [\"{host}/young\"]\nmin_age = \"2d\"\n\n[[rule]]\nimages = [\"{host}/g*\"]\ngroup = \"pair\"\n"
    );
    let dockerfile = |digests: &[&String]| {
        ["ignored", "young", "ga", "gb"].iter().zip(digests).fold(
            String::new(),
            |mut out, (repo, d)| {
                out.push_str(&format!("FROM {host}/{repo}:1@{d}\n"));
                out
            },
        )
    };
    let before = dockerfile(&old.iter().collect::<Vec<_>>());
    let dir = tree(&[
        (".repin.toml", config.as_bytes()),
        ("Dockerfile", before.as_bytes()),
    ]);
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let state_arg = state.to_str().unwrap();

    let out = repin_env(
        dir.path(),
        &["check", "--format", "json", "--state", state_arg],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let checked: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let summary: Vec<(&str, &str)> = checked
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap(),
                c["held"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("skipped", "ignored"),
            ("outdated", "too-young"),
            ("outdated", "-"),
            ("outdated", "-")
        ]
    );
    // The ignored image cost no request.
    assert!(
        reg.requests("repin/")
            .iter()
            .all(|r| !r.path.contains("/ignored/"))
    );

    let out = repin_env(dir.path(), &["check", "--state", state_arg], &[]);
    assert!(out.stdout.contains("held: ignored"), "{}", out.stdout);
    assert!(out.stdout.contains("(held: too-young)"), "{}", out.stdout);

    let out = repin_env(dir.path(), &["update", "--state", state_arg], &[]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "updated Dockerfile: 2 references\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        dockerfile(&[&old[0], &old[1], &new[2], &new[3]])
    );

    // Two days later (as the store remembers it), the young digest may go too.
    {
        let store = Store::open(&state).unwrap();
        let key = seen_key(&host, "young", "1", &new[1]);
        let first = store
            .get(&key)
            .unwrap()
            .expect("first seen was recorded by check");
        store.set(&[key], first - 2 * 86_400).unwrap();
    }
    let out = repin_env(dir.path(), &["update", "--state", state_arg], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        dockerfile(&[&old[0], &new[1], &new[2], &new[3]])
    );

    // Without any state (a lost store), min_age errs on the side of waiting.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join(".repin.toml"), &config).unwrap();
    std::fs::write(fresh.join("Dockerfile"), &before).unwrap();
    let lost = state_dir.path().join("lost.redb");
    let out = repin_env(
        &fresh,
        &[
            "check",
            "--format",
            "json",
            "--state",
            lost.to_str().unwrap(),
        ],
        &[],
    );
    let checked: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(checked[1]["held"], "too-young");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_config_stops_the_run_before_anything_happens() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let (old, _) = pusher.moved("app", "1").await;
    let text = format!("FROM {}/app:1@{old}\n", reg.host);
    let dir = tree(&[
        (
            ".repin.toml",
            b"[update]\nmin_age = \"soon\"\n[[rule]]\nimage = [\"x\"]\n",
        ),
        ("Dockerfile", text.as_bytes()),
    ]);
    let out = repin_env(dir.path(), &["update"], &[]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: .repin.toml:4:1: unknown key `image` (did you mean `images`?)\n"
    );
    assert_eq!(read(dir.path(), "Dockerfile"), text);
    assert!(
        reg.requests("repin/").is_empty(),
        "nothing may be looked up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_config_mirror_keeps_the_original_name_in_files() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let old = pusher
        .index(
            "library/node",
            "20",
            &["linux/amd64", "linux/arm64"],
            Flavor::Oci,
            "a",
        )
        .await;
    let new = pusher
        .index(
            "library/node",
            "20",
            &["linux/amd64", "linux/arm64"],
            Flavor::Oci,
            "b",
        )
        .await;
    let service = format!("[registries.\"docker.io\"]\nmirror = \"{}\"\n", reg.host);
    let dir = tree(&[
        ("repin.service.toml", service.as_bytes()),
        (
            "Dockerfile",
            format!("FROM node:20@{}\n", old.digest).as_bytes(),
        ),
    ]);
    let out = repin_env(
        dir.path(),
        &["update", "--config", "repin.service.toml"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!("FROM node:20@{}\n", new.digest)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_config_credentials_come_from_named_environment_variables() {
    use crate::support::registry::{PASSWORD, USER};
    let reg = Registry::start(Auth::Basic);
    let mut pusher = Pusher::new(&reg);
    let (old, new) = pusher.moved("app", "1").await;
    let service = format!(
        "[registries.\"{}\"]\nusername_env = \"TEST_REG_USER\"\npassword_env = \"TEST_REG_PASS\"\n",
        reg.host
    );
    let text = format!("FROM {}/app:1@{old}\n", reg.host);
    let dir = tree(&[
        ("svc.toml", service.as_bytes()),
        ("Dockerfile", text.as_bytes()),
    ]);
    // A named variable that is not set is an error naming the registry and the variable.
    let out = repin_env(dir.path(), &["check", "--config", "svc.toml"], &[]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: registry {}: environment variable TEST_REG_PASS is not set\n",
            reg.host
        )
    );
    // Set: it works. A wrong value is overridden by REPIN_REGISTRY_<HOST>_PASSWORD.
    let override_var = repin::registry::client::registry_env_var(&reg.host, "PASSWORD");
    let env = [
        ("TEST_REG_USER", USER),
        ("TEST_REG_PASS", "wrong"),
        (override_var.as_str(), PASSWORD),
    ];
    let out = repin_env(dir.path(), &["update", "--config", "svc.toml", "-vv"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read(dir.path(), "Dockerfile"),
        format!("FROM {}/app:1@{new}\n", reg.host)
    );
    assert!(!out.stderr.contains(PASSWORD));
}
