//! GitHub Actions: workflows (`.github/workflows/*.y(a)ml`) and action metadata
//! (`action.yml` / `action.yaml` anywhere).
//!
//! In a workflow, per job: `container` (a string, or a mapping's `image`),
//! `services.<id>.image`, and each step's `uses: docker://<reference>` (the reference
//! after the scheme). A `uses:` naming an action (`actions/checkout@v4`) is not an
//! image. The image inputs of well-known actions are read from one table
//! ([`KNOWN_INPUTS`]): `docker/setup-qemu-action`'s `with.image`,
//! `docker/setup-buildx-action`'s `with.driver-opts` entries `image=<reference>` (a
//! list or lines of one string), `helm/kind-action`'s `with.node_image`. In action
//! metadata: `runs.image: docker://<reference>` (a `Dockerfile` there is built, not
//! pulled). Expressions (`${{ … }}`) are `contains-template`.

use super::format::{self, Format, Spec};
use super::yaml::{ImageValue, Node, NodeId, Yaml};
use super::{Candidate, Extracted};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "github-actions",
    reads,
    accepts: format::any_text,
    extract,
});

/// Workflows (YAML directly under a `.github/workflows/` folder) and action metadata
/// (`action.yml` / `action.yaml`, any case, in any folder).
#[must_use]
pub fn reads(rel: &str) -> bool {
    if !format::is_yaml(rel) {
        return false;
    }
    let name = format::file_name(rel).to_ascii_lowercase();
    let folder = &rel[..rel.len() - format::file_name(rel).len()];
    name == "action.yml"
        || name == "action.yaml"
        || folder == ".github/workflows/"
        || folder.ends_with("/.github/workflows/")
}

/// How a well-known action takes an image: the input, and whether the value is a list
/// of `key=value` options (one of which is `image=`).
#[derive(Debug, Clone, Copy)]
pub struct KnownInput {
    /// The action, without its `@ref` (`docker/setup-qemu-action`).
    pub action: &'static str,
    /// The `with:` input holding the image.
    pub input: &'static str,
    /// The input holds options (`image=…`), one per line or list item, not a bare
    /// reference.
    pub options: bool,
}

/// The image inputs of well-known actions.
pub const KNOWN_INPUTS: [KnownInput; 3] = [
    KnownInput {
        action: "docker/setup-qemu-action",
        input: "image",
        options: false,
    },
    KnownInput {
        action: "docker/setup-buildx-action",
        input: "driver-opts",
        options: true,
    },
    KnownInput {
        action: "helm/kind-action",
        input: "node_image",
        options: false,
    },
];

/// Extracts image references from a workflow or an action's metadata.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    if !text.contains("image") && !text.contains("container") && !text.contains("docker://") {
        return out;
    }
    let yaml = out.parse_yaml(text);
    let mut walk = Walk {
        yaml: &yaml,
        text,
        out: &mut out,
    };
    for &doc in &yaml.docs {
        walk.document(doc);
    }
    out
}

struct Walk<'a> {
    yaml: &'a Yaml,
    text: &'a str,
    out: &'a mut Extracted,
}

impl Walk<'_> {
    fn document(&mut self, doc: NodeId) {
        let yaml = self.yaml;
        if let Some(runs) = yaml.get(doc, "runs") {
            if let Some(image) = yaml.get(runs, "image") {
                self.docker_uri(image);
            }
            for &step in yaml.items(yaml.get(runs, "steps")) {
                self.step(step);
            }
        }
        for &(_, job) in yaml.pairs(yaml.get(doc, "jobs")) {
            if let Some(container) = yaml.get(job, "container") {
                match &yaml.nodes[yaml.resolve(container)] {
                    Node::Map(_) => {
                        if let Some(image) = yaml.get(container, "image") {
                            self.image(image);
                        }
                    }
                    _ => self.image(container),
                }
            }
            for &(_, service) in yaml.pairs(yaml.get(job, "services")) {
                if let Some(image) = yaml.get(service, "image") {
                    self.image(image);
                }
            }
            for &step in yaml.items(yaml.get(job, "steps")) {
                self.step(step);
            }
        }
    }

    fn step(&mut self, step: NodeId) {
        let yaml = self.yaml;
        let Some(uses) = yaml.get(step, "uses") else {
            return;
        };
        let Some(action) = yaml.str(uses) else {
            return;
        };
        if action.starts_with("docker://") {
            self.docker_uri(uses);
            return;
        }
        let name = action.split('@').next().unwrap_or(action);
        let Some(known) = KNOWN_INPUTS
            .iter()
            .find(|k| k.action.eq_ignore_ascii_case(name))
        else {
            return;
        };
        let Some(value) = yaml
            .get(step, "with")
            .and_then(|with| yaml.get(with, known.input))
        else {
            return;
        };
        if !known.options {
            self.image(value);
            return;
        }
        match &yaml.nodes[yaml.resolve(value)] {
            Node::Seq(list) => {
                for &item in list {
                    self.option_image(item);
                }
            }
            _ => self.option_image(value),
        }
    }

    /// A value that is a reference as written.
    fn image(&mut self, value: NodeId) {
        self.out.push_image(self.yaml.image_value(self.text, value));
    }

    /// `docker://<reference>`: the reference after the scheme.
    fn docker_uri(&mut self, value: NodeId) {
        if let ImageValue::At(span) = self.yaml.image_value(self.text, value)
            && let Some(rest) = self.text[span.clone()].strip_prefix("docker://")
            && !rest.is_empty()
        {
            self.out
                .candidates
                .push(Candidate::at(span.end - rest.len()..span.end));
        }
    }

    /// `image=<reference>` among options written in one scalar (lines, or items of a
    /// list); the reference runs to the next comma, blank or end of line.
    fn option_image(&mut self, value: NodeId) {
        let id = self.yaml.resolve(value);
        let Node::Scalar { span, .. } = &self.yaml.nodes[id] else {
            return;
        };
        let region = &self.text[span.clone()];
        if region.starts_with('"') && region.contains('\\') {
            // Escapes (`"image=a:1\nnetwork=host"`): the bytes are not the value.
            let line = super::source::line_of(self.text, span.start);
            self.out
                .notes
                .push((line, super::yaml::UNREADABLE.to_owned()));
            return;
        }
        for (at, _) in region.match_indices("image=") {
            let before = region[..at].chars().next_back();
            if before.is_some_and(|c| {
                !matches!(c, ' ' | '\t' | '\n' | ',' | '"' | '\'' | '|' | '>' | '-')
            }) {
                continue;
            }
            let start = span.start + at + "image=".len();
            let len = self.text[start..span.end]
                .find([',', ' ', '\t', '\n', '\r', '"', '\''])
                .unwrap_or(span.end - start);
            if len > 0 {
                self.out.candidates.push(Candidate::at(start..start + len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FORMAT;
    use crate::scan::testing::{Row, rows};

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn refs(text: &str) -> Vec<Row> {
        rows(FORMAT, text).0
    }

    fn row(reference: &str, line: usize, skip: Option<&'static str>) -> Row {
        (reference.to_owned(), line, skip)
    }

    /// Options written with escapes cannot be edited in place: a warning, not a
    /// finding cut from the escaped bytes.
    #[test]
    fn escaped_driver_opts_are_a_warning() {
        let text = "jobs:\n  x:\n    steps:\n      - uses: docker/setup-buildx-action@v3\n        with:\n          driver-opts: \"image=r.example/esc:1\\nnetwork=host\"\n";
        let (found, warnings) = rows(FORMAT, text);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn reads_workflows_and_action_metadata_by_path() {
        for (path, want) in [
            (".github/workflows/ci.yml", true),
            (".github/workflows/release.YAML", true),
            ("sub/project/.github/workflows/ci.yaml", true),
            (".github/workflows/nested/ci.yml", false),
            (".github/ci.yml", false),
            ("action.yml", true),
            ("tools/setup/action.yaml", true),
            ("Action.YML", true),
            ("actions.yml", false),
            (".github/workflows/README.md", false),
        ] {
            assert_eq!(super::reads(path), want, "{path}");
        }
    }

    #[test]
    fn job_containers_services_and_docker_steps() {
        let text = format!(
            "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    container: node:20@{D}\n    services:\n      db:\n        image: \"postgres:16@{D}\"\n      cache:\n        image: redis:7\n    steps:\n      - uses: actions/checkout@v4\n      - uses: docker://alpine:3.20@{D}\n        with:\n          args: echo hi\n  build:\n    runs-on: ubuntu-latest\n    container:\n      image: ghcr.io/acme/builder:1@{D}\n      options: --cpus 1\n"
        );
        assert_eq!(
            refs(&text),
            [
                row(&format!("node:20@{D}"), 5, None),
                row(&format!("postgres:16@{D}"), 8, None),
                row("redis:7", 10, None),
                row(&format!("alpine:3.20@{D}"), 13, None),
                row(&format!("ghcr.io/acme/builder:1@{D}"), 19, None),
            ]
        );
    }

    #[test]
    fn well_known_action_inputs() {
        let text = format!(
            "jobs:\n  x:\n    steps:\n      - uses: docker/setup-qemu-action@v3\n        with:\n          image: tonistiigi/binfmt:qemu-v8@{D}\n      - uses: docker/setup-buildx-action@v3\n        with:\n          driver-opts: |\n            network=host\n            image=moby/buildkit:v0.13@{D}\n      - uses: docker/setup-buildx-action@v3\n        with:\n          driver-opts: image=moby/buildkit:v0.12,network=host\n      - uses: helm/kind-action@v1\n        with:\n          node_image: kindest/node:v1.30.0@{D}\n      - uses: some/other-action@v1\n        with:\n          image: not/an-input-we-know:1\n"
        );
        assert_eq!(
            refs(&text),
            [
                row(&format!("tonistiigi/binfmt:qemu-v8@{D}"), 6, None),
                row(&format!("moby/buildkit:v0.13@{D}"), 11, None),
                row("moby/buildkit:v0.12", 14, None),
                row(&format!("kindest/node:v1.30.0@{D}"), 17, None),
            ]
        );
    }

    #[test]
    fn expressions_are_templates_and_actions_are_not_images() {
        let text = "jobs:\n  x:\n    container: ${{ matrix.image }}\n    services:\n      db:\n        image: postgres:${{ matrix.pg }}\n    steps:\n      - uses: actions/setup-node@v4\n      - uses: ./local-action\n";
        assert_eq!(
            refs(text),
            [
                row("${{ matrix.image }}", 3, Some("contains-template")),
                row("postgres:${{ matrix.pg }}", 6, Some("contains-template")),
            ]
        );
    }

    #[test]
    fn action_metadata_runs_image() {
        let docker =
            format!("name: x\nruns:\n  using: docker\n  image: docker://ghcr.io/acme/tool:2@{D}\n");
        assert_eq!(
            refs(&docker),
            [row(&format!("ghcr.io/acme/tool:2@{D}"), 4, None)]
        );
        let built = "runs:\n  using: docker\n  image: Dockerfile\n";
        assert!(refs(built).is_empty());
        let composite =
            format!("runs:\n  using: composite\n  steps:\n    - uses: docker://busybox:1@{D}\n");
        assert_eq!(refs(&composite), [row(&format!("busybox:1@{D}"), 4, None)]);
    }
}
