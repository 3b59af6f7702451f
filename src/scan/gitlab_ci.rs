//! GitLab CI (`.gitlab-ci.yml`): `image` (a string, or a mapping's `name`) and
//! `services` (strings, or mappings' `name`) at the top level, in `default`, and in
//! every job (any other top-level mapping, hidden `.templates` included; `variables`
//! is not a job). `$VAR`s are `contains-variable`.
//!
//! Local files the pipeline pulls in (`include: local: ci/build.yml`, a plain
//! `include: ci/*.yml` string or list entry; paths from the repository root, `*` and
//! `**` globs) are named in [`Extracted::pulls_in`], and the walk reads them as GitLab
//! CI too, following their own includes. Remote, project, template and component
//! includes live elsewhere; paths built from `$VARIABLES` cannot be followed.

use super::Extracted;
use super::format::{self, Format, Spec};
use super::yaml::{Node, NodeId, Yaml};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "gitlab-ci",
    reads,
    accepts: format::any_text,
    extract,
});

/// `.gitlab-ci.yml` (or `.yaml`) in any folder.
#[must_use]
pub fn reads(rel: &str) -> bool {
    let name = format::file_name(rel).to_ascii_lowercase();
    name == ".gitlab-ci.yml" || name == ".gitlab-ci.yaml"
}

/// Top-level keys that are not jobs and hold no images.
const NOT_JOBS: [&str; 5] = ["variables", "stages", "include", "workflow", "spec"];

/// Extracts the images and services of the pipeline, its defaults and its jobs.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let yaml = out.parse_yaml(text);
    for &doc in &yaml.docs {
        includes(&yaml, yaml.get(doc, "include"), &mut out);
        // The top level itself is the old place for `image` and `services`.
        holder(&yaml, text, doc, &mut out);
        for &(key, value) in yaml.pairs(Some(doc)) {
            let key = yaml.str(key).unwrap_or_default();
            if NOT_JOBS.contains(&key) || key == "image" || key == "services" {
                continue;
            }
            if matches!(yaml.nodes[yaml.resolve(value)], Node::Map(_)) {
                holder(&yaml, text, value, &mut out);
            }
        }
    }
    out
}

/// `image` and `services` of one mapping (the top level, `default`, or a job).
fn holder(yaml: &Yaml, text: &str, map: NodeId, out: &mut Extracted) {
    if let Some(image) = yaml.get(map, "image") {
        named(yaml, text, image, out);
    }
    for &service in yaml.items(yaml.get(map, "services")) {
        named(yaml, text, service, out);
    }
}

/// The local files named by `include`: a string, a list of strings and mappings, or a
/// mapping; a mapping's `local`.
fn includes(yaml: &Yaml, include: Option<NodeId>, out: &mut Extracted) {
    let Some(include) = include else { return };
    let entries = match &yaml.nodes[yaml.resolve(include)] {
        Node::Seq(_) => yaml.items(Some(include)).to_vec(),
        _ => vec![include],
    };
    for entry in entries {
        let path = match &yaml.nodes[yaml.resolve(entry)] {
            Node::Map(_) => yaml.get(entry, "local").and_then(|l| yaml.str(l)),
            _ => yaml.str(entry),
        };
        if let Some(path) = path.and_then(local_path) {
            out.pulls_in.push(path.to_owned());
        }
    }
}

/// A local include's path from the repository root, when it can be followed: a YAML
/// file's (GitLab includes no other), not a URL, no `$VARIABLE`, no `..`, and no
/// longer than [`MAX_INCLUDE_PATH`].
fn local_path(path: &str) -> Option<&str> {
    let path = path.trim().trim_start_matches('/');
    let followable = path.len() <= MAX_INCLUDE_PATH
        && format::is_yaml(path)
        && !path.contains("://")
        && !path.contains('$')
        && !path.split('/').any(|c| c == "..");
    followable.then_some(path)
}

/// Longest include path followed, in bytes: far past any real path.
const MAX_INCLUDE_PATH: usize = 1024;

/// A reference written as a string, or as a mapping's `name`.
fn named(yaml: &Yaml, text: &str, node: NodeId, out: &mut Extracted) {
    let node = match &yaml.nodes[yaml.resolve(node)] {
        Node::Map(_) => match yaml.get(node, "name") {
            Some(name) => name,
            None => return,
        },
        _ => node,
    };
    out.push_image(yaml.image_value(text, node));
}

#[cfg(test)]
mod tests {
    use super::FORMAT;
    use crate::scan::testing::{Row, rows};

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn row(reference: &str, line: usize, skip: Option<&'static str>) -> Row {
        (reference.to_owned(), line, skip)
    }

    #[test]
    fn reads_gitlab_ci_files() {
        for (path, want) in [
            (".gitlab-ci.yml", true),
            ("sub/.gitlab-ci.yaml", true),
            ("gitlab-ci.yml", false),
            (".gitlab/ci/build.yml", false),
        ] {
            assert_eq!(super::reads(path), want, "{path}");
        }
    }

    #[test]
    fn images_and_services_everywhere_they_are_written() {
        let text = format!(
            "image: ruby:3.3@{D}\nservices:\n  - postgres:16\nvariables:\n  image: not-an-image\ndefault:\n  image:\n    name: node:20@{D}\n    entrypoint: ['']\n  services:\n    - name: redis:7@{D}\n      alias: cache\nstages: [test]\n.template:\n  image: golang:1.22\ntest:\n  stage: test\n  image: $CI_REGISTRY_IMAGE/builder:latest\n  services:\n    - docker:24-dind@{D}\n  script:\n    - echo image: not/this:1\n"
        );
        let (found, _) = rows(FORMAT, &text);
        assert_eq!(
            found,
            [
                row(&format!("ruby:3.3@{D}"), 1, None),
                row("postgres:16", 3, None),
                row(&format!("node:20@{D}"), 8, None),
                row(&format!("redis:7@{D}"), 11, None),
                row("golang:1.22", 15, None),
                row(
                    "$CI_REGISTRY_IMAGE/builder:latest",
                    18,
                    Some("contains-variable")
                ),
                row(&format!("docker:24-dind@{D}"), 20, None),
            ]
        );
    }

    /// The local files a pipeline pulls in: strings, lists, `local:` mappings, a
    /// leading `/` dropped; remote, project, template, component and `$VARIABLE`
    /// includes, and paths climbing out with `..`, are not local files to follow.
    #[test]
    fn local_includes_are_pulled_in() {
        let text = "include:\n  - local: /ci/build.yml\n  - 'ci/jobs/*.yml'\n  - remote: https://example.com/x.yml\n  - https://example.com/y.yml\n  - project: group/other\n    file: /z.yml\n  - template: Auto-DevOps.gitlab-ci.yml\n  - component: gitlab.com/a/b@1\n  - local: $CI_DIR/x.yml\n  - local: ../outside.yml\njob:\n  image: alpine:3\n";
        let out = super::extract(text);
        assert_eq!(out.pulls_in, ["ci/build.yml", "ci/jobs/*.yml"]);
        assert_eq!(super::extract("include: '/a.yml'\n").pulls_in, ["a.yml"]);
        assert_eq!(
            super::extract("include:\n  local: b.yml\n").pulls_in,
            ["b.yml"]
        );
    }
}
