//! Helm values files (`values.yaml`, `values-prod.yaml`, `ci/test-values.yaml`: any
//! YAML whose file name holds `values`): images under any key whose name ends in
//! `image`/`Image`, at any depth.
//!
//! Such a key holds a reference as one string (`image: redis:7@sha256:…`), or a map
//! whose fields make one, as Bitnami-style charts write it:
//!
//! ```yaml
//! image:
//!   registry: docker.io
//!   repository: bitnami/redis   # or `image:` or `name:`
//!   tag: 7.2.4                  # or `version:`; may hold `7.2.4@sha256:…`
//!   digest: sha256:…            # or `sha: <hex>` (bare), or "" to fill with --pin
//! ```
//!
//! A map is a composed finding ([`super::Composed`]): its parts are the fields as
//! written, its digest part the one place `update` rewrites — the `digest` value (in
//! its own style: `sha256:<hex>`, or bare hex as in `sha`), the part after `@` in the
//! tag, or, with `--pin`, the inside of an empty `digest: ""`. A map with no digest
//! field has no place for a digest: `--pin` leaves it (adding `@sha256:…` to a tag
//! would break charts that also use the tag as a label). `{{ … }}` in any field is
//! `contains-template`. A string under a key other than `image` must be written like
//! a reference (a `/`, `:` or `@`), so `coverImage: cover.png` is not one.
//!
//! Decided: any `*values*.y(a)ml` is read, not only files beside a `Chart.yaml`, since
//! values for charts kept elsewhere (helmfile, Argo CD's values files) are written the
//! same way; the image shapes themselves keep it precise, and the corpus measures it.

use std::collections::HashSet;

use super::format::{self, Format, Spec};
use super::image_fields;
use super::yaml::{Node, NodeId, Yaml};
use super::{Candidate, Extracted};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "helm-values",
    reads,
    accepts,
    extract,
});

/// YAML whose file name holds `values` (`values.yaml`, `prod-values.yml`,
/// `values.staging.yaml`), any case.
#[must_use]
pub fn reads(rel: &str) -> bool {
    format::is_yaml(rel)
        && format::file_name(rel)
            .to_ascii_lowercase()
            .contains("values")
}

/// Text with a key ending in `image`/`Image`, or a `repository` key (the word, optional
/// quote, then `:`).
#[must_use]
pub fn accepts(_rel: &str, text: &str) -> bool {
    ["image", "Image", "repository"]
        .iter()
        .any(|word| format::has_key(text, word))
}

/// Extracts the images of a values file.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let yaml = out.parse_yaml(text);
    let mut walk = Walk {
        yaml: &yaml,
        text,
        seen: HashSet::new(),
        out: &mut out,
    };
    for &doc in &yaml.docs {
        walk.node(doc, false);
    }
    out
}

/// The images of Helm values held in another file's node (Argo CD's
/// `helm.valuesObject`, Flux's `HelmRelease.spec.values`), by the rules above.
pub(super) fn images_in(yaml: &Yaml, text: &str, values: NodeId, out: &mut Extracted) {
    Walk {
        yaml,
        text,
        seen: HashSet::new(),
        out,
    }
    .node(values, false);
}

/// Whether a key names an image: `image`, or any name ending in `image`/`Image`.
fn image_key(key: &str) -> bool {
    key.ends_with("image") || key.ends_with("Image")
}

struct Walk<'a> {
    yaml: &'a Yaml,
    text: &'a str,
    /// Nodes already walked (anchors reached through several aliases: once).
    seen: HashSet<NodeId>,
    out: &'a mut Extracted,
}

impl Walk<'_> {
    /// Walks a node; `under_image`: it is inside an image key's value that was no
    /// image itself (`image: {curl: {repository: …}, netcat: {…}}`), where any map with
    /// a repository is an image map.
    fn node(&mut self, id: NodeId, under_image: bool) {
        let id = self.yaml.resolve(id);
        if !self.seen.insert(id) {
            return;
        }
        match &self.yaml.nodes[id] {
            Node::Map(pairs) => {
                for &(key, value) in pairs {
                    let key = self.yaml.str(key).unwrap_or_default();
                    let keyed = image_key(key);
                    let is_map = matches!(self.yaml.nodes[self.yaml.resolve(value)], Node::Map(_));
                    let image = if keyed {
                        self.image(key, value)
                    } else if is_map && (under_image || self.shaped_like_image(value)) {
                        self.image_map(value)
                    } else {
                        false
                    };
                    if image {
                        continue; // an image's own fields hold no other image
                    }
                    self.node(value, keyed || under_image);
                }
            }
            Node::Seq(items) => {
                for &item in items {
                    self.node(item, under_image);
                }
            }
            Node::Scalar { .. } | Node::Alias(_) => {}
        }
    }

    /// The value of an image key: a reference string, or an image map. Whether it was
    /// one.
    fn image(&mut self, key: &str, value: NodeId) -> bool {
        let yaml = self.yaml;
        match &yaml.nodes[yaml.resolve(value)] {
            Node::Map(_) => self.image_map(value),
            Node::Scalar { value: text, .. } => {
                let looks = if key == "image" {
                    crate::imageref::ImageRef::parse(text).is_ok() && !yaml_word(text)
                } else {
                    super::written_like_reference(text)
                };
                if looks || text.contains("{{") {
                    self.out.push_image(yaml.image_value(self.text, value));
                }
                looks
            }
            _ => false,
        }
    }

    /// A map under any key that is written like an image map all the same: a
    /// `repository` beside a `registry`, or beside a digest (`digest`, or a `tag` or
    /// `version` holding `sha256:…`) — as charts write an image under `deployment:` or
    /// `cloudsql:`.
    fn shaped_like_image(&self, map: NodeId) -> bool {
        let yaml = self.yaml;
        let has = |key| yaml.get(map, key).is_some();
        let digest_in = |key| {
            yaml.get(map, key)
                .and_then(|v| yaml.str(v))
                .is_some_and(|v| v.starts_with("sha256:") || v.contains("@sha256:"))
        };
        has("repository")
            && (has("registry") || has("digest") || digest_in("tag") || digest_in("version"))
    }

    /// An image map: `repository` (or `image`, `name`) is required; `registry`, `tag`
    /// (or `version`), `digest` or `sha` complete it. Whether it was one.
    fn image_map(&mut self, map: NodeId) -> bool {
        match image_fields::read(self.yaml, self.text, map, &NAMES, self.out) {
            image_fields::Read::NotImage => false,
            image_fields::Read::Unusable => true,
            image_fields::Read::Image(composed) => {
                self.out.candidates.push(Candidate::composed(composed));
                true
            }
        }
    }
}

/// The fields of a Helm image map.
const NAMES: image_fields::Names = image_fields::Names {
    registry: &["registry"],
    repository: &["repository", "image", "name"],
    tag: &["tag", "version"],
    digest: &["digest"],
    sha: &["sha"],
};

/// YAML words a plain `image:` value may hold that are not references.
fn yaml_word(text: &str) -> bool {
    matches!(
        text,
        "true" | "false" | "True" | "False" | "TRUE" | "FALSE" | "yes" | "no" | "on" | "off"
    ) || text.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::{FORMAT, reads};
    use crate::scan::testing::found;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const HEX: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    /// (reference, skip reason, slot text, part names) of each finding.
    fn rows(text: &str) -> Vec<(String, Option<&'static str>, String, Vec<&'static str>)> {
        let (found, warnings) = found(FORMAT, text);
        assert!(warnings.is_empty(), "{warnings:?}");
        found
            .iter()
            .map(|f| {
                let names = f
                    .fields
                    .iter()
                    .flat_map(|fields| fields.parts.iter().map(|p| p.name))
                    .collect();
                (
                    f.reference.clone(),
                    f.skip_reason.map(crate::scan::SkipReason::name),
                    f.written().to_owned(),
                    names,
                )
            })
            .collect()
    }

    #[test]
    fn reads_values_files() {
        for (path, want) in [
            ("values.yaml", true),
            ("chart/values-prod.yml", true),
            ("chart/ci/test-values.yaml", true),
            ("envs/Values.staging.YAML", true),
            ("chart/Chart.yaml", false),
            ("values.json", false),
        ] {
            assert_eq!(reads(path), want, "{path}");
        }
    }

    /// Every shape of an image map: registry + repository + tag + digest (prefixed),
    /// `image`/`name` for the repository, `version` for the tag, `tag@digest`, a bare
    /// `sha`, a digest as the whole tag, an empty `digest: ""` to fill, and no digest
    /// field (no place for one); strings under `image` and `…Image` keys.
    #[test]
    fn image_maps_and_strings_in_every_shape() {
        let text = format!(
            "image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: 7.2.4-debian-12-r0\n  digest: \"{D1}\"\n  pullPolicy: IfNotPresent\nmetrics:\n  image:\n    image: bitnami/redis-exporter\n    version: '1.58'\n    sha: {HEX}\nsidecars:\n  - name: x\n    proxyImage:\n      name: envoyproxy/envoy\n      tag: v1.29@{D1}\nold:\n  image:\n    repository: acme/old\n    tag: {D1}\nfill:\n  image:\n    repository: acme/fill\n    tag: \"1.0\"\n    digest: \"\"\nnone:\n  image:\n    repository: acme/none\n    tag: 2.0  # no digest field\nplain:\n  image: busybox:1.36@{D1}\n  initImage: alpine:3.20\n  coverImage: cover.png\n  useImage: true\n"
        );
        let rows = rows(&text);
        let want: Vec<(String, Option<&str>, String, Vec<&str>)> = vec![
            (
                format!("docker.io/bitnami/redis:7.2.4-debian-12-r0@{D1}"),
                None,
                D1.into(),
                vec!["registry", "repository", "tag", "digest"],
            ),
            (
                format!("bitnami/redis-exporter:1.58@{D1}"),
                None,
                HEX.into(),
                vec!["repository", "tag", "digest"],
            ),
            (
                format!("envoyproxy/envoy:v1.29@{D1}"),
                None,
                D1.into(),
                vec!["repository", "tag", "digest"],
            ),
            (
                format!("acme/old@{D1}"),
                Some("no-tag"),
                D1.into(),
                vec!["repository", "digest"],
            ),
            (
                "acme/fill:1.0".into(),
                None,
                String::new(),
                vec!["repository", "tag"],
            ),
            (
                "acme/none:2.0".into(),
                None,
                String::new(),
                vec!["repository", "tag"],
            ),
            (
                format!("busybox:1.36@{D1}"),
                None,
                format!("busybox:1.36@{D1}"),
                vec![],
            ),
            ("alpine:3.20".into(), None, "alpine:3.20".into(), vec![]),
        ];
        assert_eq!(rows, want);
    }

    /// Image maps grouped under an image key (`image: {curl: {…}, netcat: {…}}`) are
    /// image maps too.
    #[test]
    fn image_maps_grouped_under_an_image_key() {
        let text = format!(
            "image:\n  curl:\n    registry: docker.io\n    repository: curlimages/curl\n    version: 8.17.0@{D1}\n  netcat:\n    repository: subfuzion/netcat\n    version: {D1}\nother:\n  curl:\n    repository: not/an-image\n"
        );
        let got: Vec<String> = rows(&text).into_iter().map(|r| r.0).collect();
        assert_eq!(
            got,
            [
                format!("docker.io/curlimages/curl:8.17.0@{D1}"),
                format!("subfuzion/netcat@{D1}"),
            ]
        );
    }

    /// Maps written like images under other keys are images: `repository` beside
    /// `registry`, or beside a digest; a `repository` alone (a Git repository's URL, a
    /// chart repository) is not.
    #[test]
    fn image_maps_under_other_keys() {
        let text = format!(
            "deployment:\n  registry: ghcr.io\n  repository: sigstore/scaffolding/server\n  version: {D1}\ncloudsql:\n  repository: cloud-sql-proxy\n  tag: 2.25@{D1}\ngit:\n  repository: https://github.com/acme/x\n  branch: main\n"
        );
        let got: Vec<String> = rows(&text).into_iter().map(|r| r.0).collect();
        assert_eq!(
            got,
            [
                format!("ghcr.io/sigstore/scaffolding/server@{D1}"),
                format!("cloud-sql-proxy:2.25@{D1}"),
            ]
        );
    }

    /// A repository that names its own registry is not prefixed with `registry`.
    #[test]
    fn a_repository_with_its_registry_stands_alone() {
        let text = "image:\n  registry: ghcr.io\n  repository: ghcr.io/acme/app\n  tag: v1\n";
        assert_eq!(rows(text)[0].0, "ghcr.io/acme/app:v1");
        let text = "image:\n  registry: ghcr.io\n  repository: acme/app\n  tag: v1\n";
        assert_eq!(rows(text)[0].0, "ghcr.io/acme/app:v1");
    }

    /// Templates are `contains-template`; maps without a repository, and values that
    /// are not strings, are not images.
    #[test]
    fn templates_and_other_values() {
        let text = "image:\n  repository: \"{{ .Values.global.registry }}/app\"\n  tag: 1.0\nresources:\n  limits: {cpu: 1}\nimage2:\n  pullPolicy: Always\nlistImage: [a, b]\n";
        let rows = rows(text);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].1, Some("contains-template"));
    }
}
