//! `repin scan`: the JSON contract, the walk, bad input, exit codes.

use std::path::Path;

use crate::support::{fixture_tree, references, repin, scan_json, tree};

/// The whole JSON output for the fixture tree, reviewed and pinned.
#[test]
fn fixture_tree_json() {
    let run = repin(&fixture_tree(), &["scan", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("fixture_tree_json", run.stdout);
}

#[test]
fn fixture_tree_text_and_warnings() {
    let run = repin(&fixture_tree(), &["scan"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("fixture_tree_text", run.stdout);
    insta::assert_snapshot!("fixture_tree_warnings", run.stderr);
}

/// The contract every later stage relies on: `file[start..end] == reference`, and
/// `line`/`column` point at `start`.
#[test]
fn every_span_holds_its_reference() {
    let root = fixture_tree();
    let found = scan_json(&root, &[]);
    assert!(
        found.len() > 15,
        "fixture tree lost findings: {}",
        found.len()
    );
    for f in &found {
        let path = f["path"].as_str().unwrap();
        let bytes = std::fs::read(root.join(path)).unwrap();
        let (start, end) = (
            f["start"].as_u64().unwrap() as usize,
            f["end"].as_u64().unwrap() as usize,
        );
        // A reference written as one string is at its span; a composed one's span is
        // its digest part, and each part is at its own span.
        let at_span = match f["parts"].as_array() {
            None => f["reference"].as_str().unwrap(),
            Some(parts) => {
                for part in parts {
                    let (s, e) = (
                        part["start"].as_u64().unwrap(),
                        part["end"].as_u64().unwrap(),
                    );
                    assert_eq!(
                        &bytes[s as usize..e as usize],
                        part["text"].as_str().unwrap().as_bytes()
                    );
                }
                parts
                    .iter()
                    .find(|p| p["start"] == f["start"] && p["end"] == f["end"])
                    .map_or("", |p| p["text"].as_str().unwrap())
            }
        };
        assert_eq!(&bytes[start..end], at_span.as_bytes(), "{path}");
        let text = std::str::from_utf8(&bytes).unwrap();
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line = 1 + text[..start].matches('\n').count();
        let column = 1 + text[line_start..start]
            .trim_start_matches('\u{feff}')
            .chars()
            .count();
        assert_eq!(f["line"].as_u64().unwrap() as usize, line, "{path}");
        assert_eq!(f["column"].as_u64().unwrap() as usize, column, "{path}");
    }
}

#[test]
fn gitignore_is_honoured_without_a_git_repository() {
    let dir = tree(&[
        (".gitignore", b"ignored/\n*.tmp.yaml\n"),
        ("ignored/Dockerfile", b"FROM should-not-appear:1\n"),
        (
            "x.tmp.yaml",
            b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nor-this:1\n",
        ),
        ("kept/Dockerfile", b"FROM kept:1\n"),
    ]);
    assert!(!dir.path().join(".git").exists());
    assert_eq!(references(&scan_json(dir.path(), &[])), vec!["kept:1"]);
}

#[test]
fn fixture_tree_ignored_file_is_present_but_not_scanned() {
    // The fixture's own `.gitignore` hides `ignored/`; the file is committed (forced) so
    // that the snapshot proves it is skipped.
    assert!(fixture_tree().join("ignored/Dockerfile").exists());
    let found = scan_json(&fixture_tree(), &[]);
    assert!(!references(&found).contains(&"should-not-appear:1"));
}

#[test]
fn hidden_folders_are_scanned_but_dot_git_is_not() {
    let dir = tree(&[
        (
            ".github/compose.yaml",
            b"services:\n  a:\n    image: hidden:1\n",
        ),
        (".git/Dockerfile", b"FROM in-git:1\n"),
        ("sub/.git/Dockerfile", b"FROM in-submodule-git:1\n"),
    ]);
    let found = scan_json(dir.path(), &[]);
    assert_eq!(references(&found), vec!["hidden:1"]);
    assert_eq!(found[0]["path"], ".github/compose.yaml");
}

#[cfg(unix)]
#[test]
fn symlinks_are_never_followed() {
    let outside = tree(&[("Dockerfile", b"FROM outside:1\n")]);
    let dir = tree(&[("Dockerfile", b"FROM inside:1\n")]);
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("Dockerfile"),
        dir.path().join("linked.Dockerfile"),
    )
    .unwrap();
    let found = scan_json(dir.path(), &[]);
    assert_eq!(references(&found), vec!["inside:1"]);
}

#[test]
fn paths_name_their_root_when_there_are_several_and_files_may_be_named() {
    let dir = tree(&[
        ("a/Dockerfile", b"FROM one:1\n"),
        (
            "b/deploy/pod.yml",
            b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: two:2\n",
        ),
        ("c/odd-name", b"FROM three:3\n"),
    ]);
    let found = scan_json(dir.path(), &["a", "b", "c/odd-name"]);
    let paths: Vec<&str> = found.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        vec!["a/Dockerfile", "b/deploy/pod.yml", "c/odd-name"]
    );
    assert_eq!(references(&found), vec!["one:1", "two:2", "three:3"]);
    // One root: paths are relative to it.
    let found = scan_json(dir.path(), &["./b/"]);
    assert_eq!(found[0]["path"], "deploy/pod.yml");
}

#[test]
fn missing_path_is_exit_2_with_one_line() {
    let run = repin(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["scan", "no/such/dir"],
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: no/such/dir: no such file or directory"
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn bad_files_warn_and_the_scan_goes_on() {
    let big = vec![b'#'; 16 * 1024 * 1024 + 1];
    let dir = tree(&[
        ("huge.yaml", &big),
        ("broken/compose.yaml", b"services:\n  a: [\n"),
        ("ok/Dockerfile", b"FROM fine:1\n"),
    ]);
    let run = repin(dir.path(), &["scan", "--format", "json"]);
    assert_eq!(run.code, 0);
    let found: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(references(&found), vec!["fine:1"]);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(
        lines[0].starts_with("warning: broken/compose.yaml:3: YAML syntax error"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("warning: huge.yaml: file too large"),
        "{}",
        lines[1]
    );
}

#[test]
fn empty_tree_prints_an_empty_array() {
    let dir = tree(&[("README.md", b"# nothing\n")]);
    assert!(scan_json(dir.path(), &[]).is_empty());
    let run = repin(dir.path(), &["scan"]);
    assert_eq!(run.stdout, "no image references found\n");
}

/// Files only under their own names: a file whose name is not UTF-8 is not read (a
/// lossy name would be shown, matched and committed as another file's, and two such
/// names could become one).
#[test]
fn files_only_under_their_own_names_non_utf8_names_are_not_read() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = tree(&[("Dockerfile", b"FROM alpine:3\n")]);
    for name in [&b"Dockerfile.\xff"[..], &b"Dockerfile.\xfe"[..]] {
        let path = dir.path().join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(path, "FROM busybox:1\n").unwrap();
    }
    let found = scan_json(dir.path(), &[]);
    let paths: Vec<&str> = found.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["Dockerfile"]);
    let update = repin(dir.path(), &["update", "--dry-run", "--pin"]);
    assert!(!update.stderr.contains("overlap"), "{}", update.stderr);
}

/// Roots that overlap (`. sub`) reach a file twice under one path: it is reported once.
#[test]
fn overlapping_roots_report_each_reference_once() {
    let dir = tree(&[("sub/x.Dockerfile", b"FROM alpine:3\n")]);
    let found = scan_json(dir.path(), &[".", "sub"]);
    let paths: Vec<&str> = found.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["sub/x.Dockerfile"]);
}

/// An environment fallback that is set but empty (an Action input left unset) counts
/// as unset, as the options table says — clap does not refuse it.
#[test]
fn empty_environment_fallbacks_count_as_unset() {
    let dir = tree(&[("Dockerfile", b"FROM alpine:3\n")]);
    let empty = [("REPIN_CONFIG", "")];
    let config = crate::support::repin_env(dir.path(), &["config", "check"], &empty);
    assert_eq!(config.code, 0, "{}", config.stderr);
    let scan = crate::support::repin_env(dir.path(), &["check", "--config", ""], &[]);
    assert!(
        !scan.stderr.contains("a value is required"),
        "{}",
        scan.stderr
    );
    let run = crate::support::repin_env(
        dir.path(),
        &["run", "--repo", "a/b"],
        &[
            ("REPIN_CONFIG", ""),
            ("GITHUB_APP_ID", ""),
            ("REPIN_GITHUB_APP_KEY_FILE", ""),
            ("GITHUB_API_URL", ""),
        ],
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "error: environment variable GITHUB_TOKEN is not set",
        "clap and the options got past every empty variable"
    );
    let app = crate::support::repin_env(
        dir.path(),
        &["run", "--app"],
        &[("GITHUB_APP_ID", ""), ("REPIN_GITHUB_APP_KEY", "pem")],
    );
    assert_eq!(app.code, 2);
    assert!(
        app.stderr.contains("--app needs --app-id"),
        "{}",
        app.stderr
    );
}

/// GitLab CI's `include: local:` files are read as GitLab CI, whatever their names,
/// following their own includes (globs, a leading `/`), each once even in a cycle; a
/// link among them is never followed, and remote includes are not files here.
#[test]
fn gitlab_local_includes_are_read_as_gitlab_ci() {
    let dir = tree(&[
        (
            ".gitlab-ci.yml",
            b"include:\n  - local: /ci/*.yml\n  - remote: https://example.com/x.yml\nimage: ruby:3.3\n",
        ),
        (
            "ci/a.yml",
            b"include: ci/nested/**/*.yml\na:\n  image: alpine:3.20\n",
        ),
        (
            "ci/nested/deep/b.yml",
            b"include: ['/.gitlab-ci.yml', ci/a.yml]\nb:\n  services: [postgres:16]\n",
        ),
        ("other/c.yml", b"c:\n  image: not-included:1\n"),
        ("outside.yml", b"d:\n  image: through-a-link:1\n"),
    ]);
    std::os::unix::fs::symlink(
        dir.path().join("outside.yml"),
        dir.path().join("ci/link.yml"),
    )
    .unwrap();
    let found = scan_json(dir.path(), &[]);
    let rows: Vec<(String, String, String)> = found
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["format"].as_str().unwrap().to_owned(),
                f["reference"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |p: &str, r: &str| (p.to_owned(), "gitlab-ci".to_owned(), r.to_owned());
    assert_eq!(
        rows,
        [
            row(".gitlab-ci.yml", "ruby:3.3"),
            row("ci/a.yml", "alpine:3.20"),
            row("ci/nested/deep/b.yml", "postgres:16"),
        ]
    );
}

/// Includes cannot make a scan read without bound: past 150 files pulled in (GitLab's
/// own limit), the rest are warnings, not findings.
#[test]
fn gitlab_local_includes_are_bounded() {
    let mut files: Vec<(String, Vec<u8>)> = vec![(
        ".gitlab-ci.yml".to_owned(),
        b"include: 'ci/*.yml'\n".to_vec(),
    )];
    for i in 0..160 {
        files.push((
            format!("ci/{i:03}.yml"),
            format!("j{i}:\n  image: alpine:3.{i}\n").into_bytes(),
        ));
    }
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_slice()))
        .collect();
    let dir = tree(&files);
    let found = scan_json(dir.path(), &[]);
    let read = found.iter().filter(|f| f["format"] == "gitlab-ci").count();
    assert_eq!(read, 150);
    let run = repin(dir.path(), &["scan"]);
    let refused = run
        .stderr
        .matches("more than 150 files pulled in by includes; not read")
        .count();
    assert_eq!(refused, 10, "{}", run.stderr);
}

/// Include paths in GitLab's own grammar: `**` crosses folders (`configs/**.yml`), `?`
/// and `[…]` mean themselves; an included file another format found references in
/// keeps that format (a Kubernetes manifest, a Cloud Build file).
#[test]
fn gitlab_local_includes_use_gitlab_globs_and_keep_other_formats() {
    let dir = tree(&[
        (
            ".gitlab-ci.yml",
            b"include:\n  - local: configs/**.yml\n  - local: 'lit/a?.yml'\n  - local: k/*.yaml\n",
        ),
        ("configs/a.yml", b"a:\n  image: one:1\n"),
        ("configs/sub/b.yml", b"b:\n  image: two:2\n"),
        ("lit/ab.yml", b"c:\n  image: not-matched:3\n"),
        ("lit/a?.yml", b"d:\n  image: matched:4\n"),
        (
            "k/pod.yaml",
            b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: kube:5\n",
        ),
        ("k/cloudbuild.yaml", b"steps:\n- name: builder:6\n"),
    ]);
    let found = scan_json(dir.path(), &[]);
    let rows: Vec<(&str, &str)> = found
        .iter()
        .map(|f| {
            (
                f["reference"].as_str().unwrap(),
                f["format"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("one:1", "gitlab-ci"),
            ("two:2", "gitlab-ci"),
            ("builder:6", "cloudbuild"),
            ("kube:5", "kubernetes"),
            ("matched:4", "gitlab-ci"),
        ]
    );
}
