//! GitLab CI (`.gitlab-ci.yml`): `image` (a string, or a mapping's `name`) and
//! `services` (strings, or mappings' `name`) at the top level, in `default`, and in
//! every job (any other top-level mapping, hidden `.templates` included; `variables`
//! is not a job). `$VAR`s are `contains-variable`. Files pulled in with
//! `include: local:` are not followed yet.

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
}
