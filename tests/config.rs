//! `repin config check`: diagnostics for bad configs (file, line, column, suggestion),
//! the effective rules for good ones, and the shipped examples.

use std::path::Path;

use crate::support::repin;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `config check` on a fixture; exit code, stdout and stderr in one string.
fn config_check(fixture: &str) -> String {
    let path = format!("tests/fixtures/config/{fixture}.toml");
    let run = repin(root(), &["config", "check", &path]);
    format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

#[test]
fn diagnostics() {
    for fixture in [
        "misspelt-key",
        "misspelt-table",
        "bad-values",
        "bad-branches",
        "forbidden",
        "wrong-type",
        "syntax",
    ] {
        insta::assert_snapshot!(fixture, config_check(fixture));
    }
}

#[test]
fn effective_rules() {
    insta::assert_snapshot!("valid", config_check("valid"));
}

#[test]
fn shipped_examples_are_valid() {
    let run = repin(
        root(),
        &[
            "config",
            "check",
            "config/repo-example.repin.toml",
            "--config",
            "config/repin.toml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The service layers come first.
    let service = run
        .stdout
        .find("config/repin.toml [update]")
        .expect("service layer");
    let repo = run
        .stdout
        .find("config/repo-example.repin.toml [update]")
        .expect("repo layer");
    assert!(service < repo);
}

#[test]
fn a_directory_is_searched_for_its_config() {
    let dir = crate::support::tree(&[
        (".github/repin.toml", b"[update]\npin = true\n"),
        (".repin.toml", b""),
    ]);
    let run = repin(dir.path(), &["config", "check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(".github/repin.toml: valid\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr,
        "warning: several repository configs: .github/repin.toml and .repin.toml; using .github/repin.toml\n"
    );
    let empty = crate::support::tree(&[]);
    let run = repin(empty.path(), &["config", "check"]);
    assert!(
        run.stdout.starts_with("no repository config: defaults\n"),
        "{}",
        run.stdout
    );
    // The defaults name every format read, as the scan reads them.
    assert!(
        run.stdout.contains(
            "formats = dockerfile, compose, github-actions, gitlab-ci, cloudbuild, kustomize, ko, helm-chart, helm-values, kubernetes, extra\n"
        ),
        "{}",
        run.stdout
    );
}
