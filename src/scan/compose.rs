//! Compose files: by name (`compose.yaml`, `docker-compose*.yml`, `compose.*.yaml`), or
//! any other YAML whose top level has a `services` mapping with an entry that carries
//! `image` or `build` (`docker-stack.yml`, `compose-dev.yaml`, a `common.yml` others
//! `extends`) and no `apiVersion`/`kind` (never a Kubernetes object):
//! `services.*.image`.
//!
//! Values reached through anchors and merge keys (`<<: *defaults`) are reported once, at
//! the anchor where the text is written; `image` keys inside top-level `x-` extension
//! fields are reported too, since that is where shared service defaults live. Compose
//! interpolates `${VAR}`: when the value is `${VAR:-default}` and the default holds the
//! whole reference, the default's span is reported; anything else built from variables
//! is `contains-variable`. A service that has `build:` names the image it builds with
//! `image:`; that reference is reported as `built-locally`, never looked up.
//!
//! `build.dockerfile_inline` holds a Dockerfile: it is read by the Dockerfile format
//! (every rule of `dockerfile.rs`) and its findings are placed at their exact offsets in
//! the Compose file (`scan/embedded.rs`); a literal block (`|`) or a one-line string
//! written verbatim can be, a folded or escaped one is a note. Compose interpolates
//! the value first: `$$` is a `$` for `BuildKit`, any other `$` starts a Compose
//! variable whose value is not in the file (`contains-variable`).

use std::collections::{HashMap, HashSet};

use super::format::{self, Format, Spec};
use super::vars::whole_variable;
use super::yaml::{self, ImageValue, Node, NodeId, UNREADABLE, Yaml};
use super::{Candidate, Extracted, LineIndex, SkipReason};

/// How many merge-key levels are followed; deeper chains are not real Compose files.
const MAX_MERGE_DEPTH: usize = 16;

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "compose",
    reads: format::is_yaml,
    accepts,
    extract,
});

/// A Compose file by its name, or any other YAML by its content ([`looks_like_compose`]).
#[must_use]
pub fn accepts(rel: &str, text: &str) -> bool {
    named(rel) || looks_like_compose(text)
}

/// Whether YAML text is a Compose file: its top level has a `services` mapping with an
/// entry that carries `image` or `build`, and no `apiVersion` and `kind` (a Kubernetes
/// object is never Compose). Only text with a `services:` line at the left margin is
/// parsed.
#[must_use]
pub fn looks_like_compose(text: &str) -> bool {
    let margin = text
        .lines()
        .any(|l| l.trim_start_matches('\u{feff}').starts_with("services:"));
    if !margin {
        return false;
    }
    let (yaml, _) = yaml::parse(text);
    let Some(&doc) = yaml.docs.first() else {
        return false;
    };
    if yaml.get(doc, "apiVersion").is_some() && yaml.get(doc, "kind").is_some() {
        return false;
    }
    let Some(services) = yaml.get(doc, "services") else {
        return false;
    };
    let Node::Map(entries) = &yaml.nodes[yaml.resolve(services)] else {
        return false;
    };
    // Every key of every service must be one the Compose specification defines (or an
    // `x-` extension): Helm values with `services: {api: {image, tag, port}}` are not
    // Compose, and Compose itself would refuse them.
    let schema = entries.iter().all(|&(_, service)| {
        yaml.pairs(Some(service)).iter().all(|&(key, _)| {
            yaml.str(key)
                .is_some_and(|k| k.starts_with("x-") || k == "<<" || SERVICE_KEYS.contains(&k))
        })
    });
    schema
        && entries.iter().any(|&(_, service)| {
            yaml.get(service, "image").is_some() || yaml.get(service, "build").is_some()
        })
}

/// The keys of a service in the Compose specification (and the legacy file formats'
/// `dockerfile`, `log_driver`, `log_opt`, `net`, `volume_driver`), sorted.
const SERVICE_KEYS: [&str; 98] = [
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "dockerfile",
    "domainname",
    "driver_opts",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "log_driver",
    "log_opt",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "net",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volume_driver",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Compose files by name: YAML named `compose`, `docker-compose*` or `compose.*`
/// (`compose.yaml`, `docker-compose.prod.yml`, `compose.override.yaml`).
#[must_use]
pub fn named(rel: &str) -> bool {
    if !format::is_yaml(rel) {
        return false;
    }
    let lower = format::file_name(rel).to_ascii_lowercase();
    let stem = lower.rsplit_once('.').map_or(lower.as_str(), |(s, _)| s);
    stem == "compose" || stem.starts_with("docker-compose") || stem.starts_with("compose.")
}

/// Extracts image references from a Compose file.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let yaml = out.parse_yaml(text);
    let Some(&root) = yaml.docs.first() else {
        return out;
    };
    // Image nodes in order of first use, and whether every service using one builds it.
    let mut images: Vec<NodeId> = Vec::new();
    let mut built: HashMap<NodeId, bool> = HashMap::new();
    let mut use_image = |id: NodeId, builds: bool| {
        built
            .entry(yaml.resolve(id))
            .and_modify(|all| *all &= builds)
            .or_insert_with(|| {
                images.push(yaml.resolve(id));
                builds
            });
    };
    // Compose file format v1 (no `services:`, no `version:`) lists services at the top.
    let services = yaml.get(root, "services").or_else(|| {
        let legacy = yaml.get(root, "version").is_none();
        legacy.then_some(root)
    });
    if let Some(services) = services
        && let Node::Map(pairs) = &yaml.nodes[yaml.resolve(services)]
    {
        let mut inline = Vec::new();
        let mut seen = HashSet::new();
        for &(key, service) in pairs {
            if yaml.str(key).is_some_and(|k| k.starts_with("x-")) {
                continue;
            }
            let build = service_key(&yaml, service, "build", 0);
            if let Some(image) = service_key(&yaml, service, "image", 0) {
                use_image(image, build.is_some());
            }
            if let Some(dockerfile) = build.and_then(|b| yaml.get(b, "dockerfile_inline")) {
                let dockerfile = yaml.resolve(dockerfile);
                if seen.insert(dockerfile) {
                    inline.push(dockerfile);
                }
            }
        }
        if !inline.is_empty() {
            let lines = LineIndex::new(text);
            for dockerfile in inline {
                inline_dockerfile(&yaml, text, dockerfile, &lines, &mut out);
            }
        }
    }
    if let Node::Map(pairs) = &yaml.nodes[yaml.resolve(root)] {
        // One `seen` for all extension fields: a chain of fields that alias each other
        // is walked once in all (linear), not once per field (quadratic).
        let mut seen = HashSet::new();
        for &(key, value) in pairs {
            if yaml.str(key).is_some_and(|k| k.starts_with("x-")) {
                let mut found = Vec::new();
                extension_images(&yaml, value, &mut found, &mut seen);
                for image in found {
                    use_image(image, false);
                }
            }
        }
    }
    for image in images {
        match yaml.image_value(text, image) {
            ImageValue::At(span) => {
                let mut candidate = interpolated(text, span);
                if built.get(&image) == Some(&true) && candidate.skip.is_none() {
                    candidate.skip = Some(SkipReason::BuiltLocally);
                }
                out.candidates.push(candidate);
            }
            ImageValue::Absent => {}
            ImageValue::Unreadable(line) => out.notes.push((line, UNREADABLE.to_owned())),
        }
    }
    out
}

/// A Dockerfile written in a Compose value, read as a Dockerfile and placed in the file.
fn inline_dockerfile(
    yaml: &Yaml,
    text: &str,
    node: NodeId,
    lines: &LineIndex,
    out: &mut Extracted,
) {
    match yaml.embedded(text, node) {
        Some(embedded) => {
            // Compose interpolates the value before BuildKit reads it.
            let (embedded, opaque) = embedded.interpolated();
            let inner = super::dockerfile::extract_interpolated(&embedded.text, &opaque);
            embedded.place(inner, out, lines);
        }
        None => {
            if let Node::Scalar { span, .. } = &yaml.nodes[node] {
                out.notes.push((
                    lines.line(span.start),
                    "dockerfile_inline uses YAML escapes or line folding; its images cannot be edited in place"
                        .to_owned(),
                ));
            }
        }
    }
}

/// The node for `key` of a service: its own, else the first merged mapping's.
fn service_key(yaml: &Yaml, service: NodeId, key: &str, depth: usize) -> Option<NodeId> {
    if depth > MAX_MERGE_DEPTH {
        return None;
    }
    if let Some(value) = yaml.get(service, key) {
        return Some(value);
    }
    let merged = yaml.get(service, "<<")?;
    match &yaml.nodes[yaml.resolve(merged)] {
        Node::Map(_) => service_key(yaml, merged, key, depth + 1),
        Node::Seq(items) => items
            .iter()
            .find_map(|&item| service_key(yaml, item, key, depth + 1)),
        _ => None,
    }
}

/// Every `image` key with a scalar value under an `x-` extension field.
fn extension_images(yaml: &Yaml, id: NodeId, out: &mut Vec<NodeId>, seen: &mut HashSet<NodeId>) {
    let id = yaml.resolve(id);
    if !seen.insert(id) {
        return;
    }
    match &yaml.nodes[id] {
        Node::Map(pairs) => {
            for &(key, value) in pairs {
                if yaml.str(key) == Some("image")
                    && matches!(yaml.nodes[yaml.resolve(value)], Node::Scalar { .. })
                {
                    out.push(value);
                } else {
                    extension_images(yaml, value, out, seen);
                }
            }
        }
        Node::Seq(items) => {
            for &item in items {
                extension_images(yaml, item, out, seen);
            }
        }
        Node::Scalar { .. } | Node::Alias(_) => {}
    }
}

/// Applies Compose interpolation to a value written at `span`.
fn interpolated(text: &str, span: std::ops::Range<usize>) -> Candidate {
    let value = &text[span.clone()];
    if !value.contains('$') {
        return Candidate::at(span);
    }
    if let Some(var) = whole_variable(value)
        && let Some(default) = var.default
        && !value[default.clone()].contains('$')
        && !default.is_empty()
    {
        return Candidate::at(span.start + default.start..span.start + default.end);
    }
    Candidate {
        span,
        platform: None,
        skip: Some(SkipReason::ContainsVariable),
        composed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::FORMAT;
    use crate::scan::scan_text;
    use crate::scan::testing::{Row, found, rows};

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn refs(text: &str) -> Vec<Row> {
        let (rows, warnings) = rows(FORMAT, text);
        assert!(warnings.is_empty(), "{warnings:?}");
        rows
    }

    /// Compose found by content: any YAML whose top-level `services` entries carry
    /// `image` or `build`, never a Kubernetes object, never by a nested `services`.
    #[test]
    fn compose_found_by_content() {
        use crate::scan::{Detected, Format};
        let settle = |path: &str, text: &str| {
            Detected::from_path(path)
                .and_then(|d| d.settle(path, text))
                .map(Format::name)
        };
        let cases = [
            (
                "docker-stack.yml",
                "version: '3.8'\nservices:\n  web:\n    image: nginx:1\n",
                "compose",
            ),
            (
                "deploy/common.yml",
                "services:\n  app:\n    build: .\n",
                "compose",
            ),
            (
                "compose-dev.yaml",
                "\u{feff}services:\n  db:\n    image: postgres:16\n",
                "compose",
            ),
            ("compose.yaml", "x-common: &c\n  image: a:1\n", "compose"),
            (
                "svc.yaml",
                "apiVersion: v1\nkind: Service\nservices:\n  a:\n    image: x:1\n",
                "kubernetes",
            ),
            ("list.yaml", "services:\n  - image: a:1\n", "kubernetes"),
            (
                "nested.yaml",
                "app:\n  services:\n    web:\n      image: a:1\n",
                "kubernetes",
            ),
            (
                "env.yaml",
                "services:\n  web:\n    environment: {A: 1}\n",
                "kubernetes",
            ),
        ];
        for (path, text, want) in cases {
            assert_eq!(settle(path, text), Some(want), "{path}");
        }
        // Found once, as Compose.
        let text = "services:\n  web:\n    image: nginx:1.27\n";
        let (found, _) = crate::scan::scan_text("stack.yml", super::FORMAT, text);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn styles_of_values() {
        let text = format!(
            "services:\n  a:\n    image: redis:7@{D1}\n  b:\n    image: \"postgres:16\"\n  c:\n    image: 'mysql:8'\n  d: {{image: nginx:1, ports: [80]}}\n  e:\n    image: >-\n      busybox:1\n  f:\n    build: .\n"
        );
        assert_eq!(
            refs(&text),
            vec![
                (format!("redis:7@{D1}"), 3, None),
                ("postgres:16".into(), 5, None),
                ("mysql:8".into(), 7, None),
                ("nginx:1".into(), 8, None),
                ("busybox:1".into(), 11, None),
            ]
        );
    }

    #[test]
    fn anchors_and_merge_keys_report_the_anchor_once() {
        let text = "x-base: &base\n  image: app:1\n  restart: always\nx-img: &img other:2\nservices:\n  a:\n    <<: *base\n  b:\n    <<: [*base]\n    ports: [1]\n  c:\n    image: *img\n  d:\n    <<: *base\n    image: own:3\n";
        assert_eq!(
            refs(text),
            vec![
                ("app:1".into(), 2, None),
                ("other:2".into(), 4, None),
                ("own:3".into(), 15, None),
            ]
        );
    }

    #[test]
    fn interpolation() {
        let text = format!(
            "services:\n  a:\n    image: ${{REDIS_IMAGE:-redis:5.0.0@{D1}}}\n  b:\n    image: ${{IMAGE_NAME}}:${{DEMO_VERSION}}-svc\n  c:\n    image: ${{ONLY}}\n  d:\n    image: \"${{X-nginx:1}}\"\n"
        );
        assert_eq!(
            refs(&text),
            vec![
                (format!("redis:5.0.0@{D1}"), 3, None),
                (
                    "${IMAGE_NAME}:${DEMO_VERSION}-svc".into(),
                    5,
                    Some("contains-variable")
                ),
                ("${ONLY}".into(), 7, Some("contains-variable")),
                ("nginx:1".into(), 9, None),
            ]
        );
    }

    #[test]
    fn images_of_services_that_build_are_built_locally() {
        let text = "x-base: &base\n  image: shared:1\nservices:\n  app:\n    build: .\n    image: acme/app:dev\n  one:\n    <<: *base\n    build: .\n  two:\n    <<: *base\n";
        assert_eq!(
            refs(text),
            vec![
                // `two` pulls the shared image, so it is not only built here.
                ("shared:1".into(), 2, None),
                ("acme/app:dev".into(), 6, Some("built-locally")),
            ]
        );
    }

    #[test]
    fn compose_file_format_v1() {
        let text = "redis:\n  image: redis:alpine\nweb:\n  build: .\n";
        assert_eq!(refs(text), vec![("redis:alpine".into(), 2, None)]);
        // With `version:` and no `services:`, there is nothing to read.
        assert!(refs("version: '3'\nredis:\n  image: redis\n").is_empty());
    }

    #[test]
    fn images_outside_services_are_not_references() {
        let text = "services:\n  a:\n    environment:\n      image: nope:1\n    labels:\n      image: nope:2\nvolumes:\n  image: {}\n";
        assert!(refs(text).is_empty());
    }

    #[test]
    fn syntax_error_is_a_warning() {
        let (found, warnings) = scan_text("compose.yaml", FORMAT, "services:\n  a: [\n");
        assert!(found.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].to_string().starts_with("compose.yaml:"),
            "{}",
            warnings[0]
        );
    }

    /// `build.dockerfile_inline` is a Dockerfile: its references are found by the
    /// Dockerfile rules (stages, `COPY --from`, `ARG`s) at their exact offsets in the
    /// Compose file — a literal block under any chomping, CRLF lines, a one-line string;
    /// one shared through an anchor is read once.
    #[test]
    fn dockerfile_inline_is_a_dockerfile_at_exact_offsets() {
        let cases = [
            (
                format!("services:\n  app:\n    build:\n      context: .\n      dockerfile_inline: |\n        # syntax=docker/dockerfile:1\n        ARG GO=1.22@{D1}\n        FROM golang:$${{GO}} AS build\n\n        FROM alpine:3.20@{D1}\n        COPY --from=build /a /b\n        COPY --from=busybox:1.36 /bin/sh /sh\n    image: acme/app:dev\n"),
                vec![
                    "docker/dockerfile:1".to_owned(),
                    format!("golang:1.22@{D1}"),
                    format!("alpine:3.20@{D1}"),
                    "busybox:1.36".to_owned(),
                    "acme/app:dev".to_owned(),
                ],
            ),
            (
                format!("services:\r\n  a:\r\n    build:\r\n      dockerfile_inline: |-\r\n          FROM node:20@{D1}\r\n          RUN true\r\n"),
                vec![format!("node:20@{D1}")],
            ),
            (
                "services:\n  a:\n    build: {dockerfile_inline: \"FROM redis:7\"}\n".to_owned(),
                vec!["redis:7".to_owned()],
            ),
            (
                "x-b: &b\n  dockerfile_inline: |+\n    FROM debian:12\n\nservices:\n  a:\n    build: *b\n  b:\n    build: *b\n".to_owned(),
                vec!["debian:12".to_owned()],
            ),
        ];
        for (text, want) in cases {
            let (found, warnings) = found(FORMAT, &text);
            assert!(warnings.is_empty(), "{text:?}: {warnings:?}");
            let got: Vec<String> = found.iter().map(|f| f.reference.clone()).collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    /// A folded or escaped `dockerfile_inline` cannot be edited in place: a note.
    #[test]
    fn dockerfile_inline_folded_or_escaped_is_a_note() {
        for text in [
            "services:\n  a:\n    build:\n      dockerfile_inline: >\n        FROM alpine:3\n        RUN true\n",
            "services:\n  a:\n    build:\n      dockerfile_inline: \"FROM alpine:3\\nRUN true\"\n",
        ] {
            let (found, warnings) = found(FORMAT, text);
            assert!(found.is_empty(), "{text:?}: {found:?}");
            assert_eq!(warnings.len(), 1, "{text:?}");
            assert_eq!(warnings[0].line, Some(4), "{text:?}");
        }
    }

    /// Compose is found by content only when every service key is Compose's: Helm
    /// values shaped like services (`image` beside `tag`, `port`) are not Compose.
    #[test]
    fn compose_by_content_only_with_compose_keys() {
        use super::looks_like_compose;
        assert!(!looks_like_compose(
            "replicaCount: 1\nservices:\n  api:\n    image: acme/api\n    tag: \"3.19\"\n    port: 8080\n"
        ));
        assert!(
            looks_like_compose(
                "services:\n  api:\n    image: acme/api:1\n    ports: ['80:80']\n    x-note: a\n    <<: *d\n"
            ) || looks_like_compose(
                "x-d: &d {restart: always}\nservices:\n  api:\n    image: acme/api:1\n    ports: ['80:80']\n    x-note: a\n    <<: *d\n"
            )
        );
    }

    /// Compose fills in its own variables before `BuildKit` reads `dockerfile_inline`:
    /// `${TAG}` is Compose's (its value unknown here: `contains-variable`), `$${TAG}`
    /// is `BuildKit`'s and follows the `ARG`.
    #[test]
    fn dockerfile_inline_is_interpolated_by_compose_first() {
        let text = "services:\n  a:\n    build:\n      dockerfile_inline: |\n        ARG TAG=3\n        FROM alpine:${TAG} AS one\n        FROM alpine:$${TAG} AS two\n";
        let (found, warnings) = found(FORMAT, text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let rows: Vec<(String, Option<&str>)> = found
            .iter()
            .map(|f| {
                (
                    f.reference.clone(),
                    f.skip_reason.map(crate::scan::SkipReason::name),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("alpine:${TAG}".to_owned(), Some("contains-variable")),
                ("alpine:3".to_owned(), None),
            ]
        );
        // The digest would go right after the `FROM` word in the Compose file.
        assert_eq!(found[1].span.start, text.find(" AS two").unwrap());
    }
}
