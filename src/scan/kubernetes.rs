//! Kubernetes manifests, found by content: any YAML document whose top level has
//! `apiVersion` and `kind`, in any `*.yaml`/`*.yml` file.
//!
//! A reference is the string value of an `image` key anywhere in the document, outside
//! `metadata`, `status` and `managedFields`. That one rule covers `containers`,
//! `initContainers` and `ephemeralContainers` of every workload kind (and `List` items,
//! `CronJob` `jobTemplate`s), and the CRDs that reuse the key (Tekton steps and sidecars,
//! Argo Workflows templates, Knative services), without a list of kinds to keep up to
//! date. Strings that only look like images are left alone: annotations, env values,
//! `ConfigMap` and Secret data, block-scalar scripts, `imageID`, and `image` keys whose
//! value is a mapping (CRD schemas).

use std::collections::HashSet;

use super::format::{self, Format, Spec};
use super::yaml::{self, Node, NodeId, Yaml};
use super::yaml_lines;
use super::{Candidate, Extracted};

/// Keys whose subtrees never hold images to update.
const SKIPPED_KEYS: [&str; 3] = ["metadata", "status", "managedFields"];
/// Keys of `ConfigMaps` and Secrets that hold opaque data.
const DATA_KEYS: [&str; 3] = ["data", "stringData", "binaryData"];

/// The format's row in the table ([`super::format`]): any YAML file; documents that
/// are not Kubernetes objects yield nothing.
pub const FORMAT: Format = Format::new(&Spec {
    name: "kubernetes",
    reads: format::is_yaml,
    accepts: format::any_text,
    extract,
});

/// Extracts image references from the Kubernetes documents of a YAML file. Documents
/// that are not Kubernetes objects are ignored, so any YAML file may be passed.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let mut yaml = Yaml::default();
    for range in yaml::documents(text) {
        let part = &text[range.clone()];
        if !may_hold_images(part) {
            continue;
        }
        // A syntax error matters only if it may have hidden a Kubernetes object; then
        // the rest of the document is read line by line.
        if let Some(error) = yaml::parse_into(&mut yaml, text, range.clone()) {
            let rest = error.doc_start.clamp(range.start, range.end)..range.end;
            if yaml_lines::api_version(&text[rest.clone()]).is_some_and(is_cluster_api) {
                out.notes.push((
                    error.line,
                    format!(
                        "YAML syntax error: {}; image lines read line by line",
                        error.message
                    ),
                ));
                let spans = yaml_lines::image_values(text, rest);
                out.candidates.extend(spans.into_iter().map(Candidate::at));
            }
        }
    }
    let mut walk = Walk {
        yaml: &yaml,
        text,
        seen: HashSet::new(),
        out: &mut out,
        lines: std::cell::OnceCell::new(),
    };
    for &doc in &yaml.docs {
        if let Some(kind) = kubernetes_kind(&yaml, doc) {
            let opaque_data = matches!(kind, "ConfigMap" | "Secret");
            walk.node(doc, opaque_data);
            walk.krm_function(doc);
            walk.gitops(doc, kind);
        }
    }
    out
}

/// Whether a document needs parsing at all: it must contain an `image`, `…Image`,
/// `imageName` or `bundle` key (the word, then an optional closing quote and blanks,
/// then `:`) or Tekton's `resolver: bundles`, and not be a
/// `CustomResourceDefinition` (whose `image:` keys are schema, never references; read
/// from a top-level `kind:` line). Large CRD bundles are most of the bytes in real
/// manifests, so this is most of the scanner's speed. The price: a key spelt with YAML
/// escapes (`"\x69mage"`) is not seen; no manifest does that.
fn may_hold_images(part: &str) -> bool {
    let crd = part.lines().any(|l| {
        l.strip_prefix("kind:")
            .is_some_and(|k| k.trim() == "CustomResourceDefinition")
    });
    let keyed = |word: &str| format::has_key(part, word);
    let resolver = part.contains("resolver: bundles");
    // Argo CD's Kustomize overrides and Helm values text, Flux's OCI sources.
    let gitops =
        part.contains("kustomize:") || part.contains("values:") || part.contains("OCIRepository");
    !crd && (keyed("image")
        || keyed("Image")
        || keyed("imageName")
        || keyed("bundle")
        || resolver
        || gitops)
}

/// API groups that borrow the Kubernetes shape for tool config whose `image` keys name
/// images the tool *builds* (Skaffold's `build.artifacts[].image`), not images pulled.
const NOT_CLUSTER_APIS: [&str; 1] = ["skaffold/"];

/// The `kind` of a document that is a Kubernetes object.
fn kubernetes_kind(yaml: &Yaml, doc: NodeId) -> Option<&str> {
    let api = yaml.get(doc, "apiVersion").and_then(|v| yaml.str(v))?;
    if !is_cluster_api(api) {
        return None;
    }
    yaml.get(doc, "kind").and_then(|v| yaml.str(v))
}

fn is_cluster_api(api: &str) -> bool {
    !NOT_CLUSTER_APIS.iter().any(|p| api.starts_with(p))
}

struct Walk<'a> {
    yaml: &'a Yaml,
    text: &'a str,
    /// Nodes already walked: an anchored subtree reached through several aliases is
    /// reported once, and alias bombs cost linear time.
    seen: HashSet<NodeId>,
    out: &'a mut Extracted,
    /// The file's line index, built once on first need (values text inside objects).
    lines: std::cell::OnceCell<super::LineIndex>,
}

impl Walk<'_> {
    fn node(&mut self, id: NodeId, opaque_data: bool) {
        let id = self.yaml.resolve(id);
        if !self.seen.insert(id) {
            return;
        }
        match &self.yaml.nodes[id] {
            Node::Map(pairs) => {
                for &(key, value) in pairs {
                    let key = self.yaml.str(key).unwrap_or_default();
                    if SKIPPED_KEYS.contains(&key) || opaque_data && DATA_KEYS.contains(&key) {
                        continue;
                    }
                    match key {
                        "image" => self.image_or_volume(value),
                        "imageName" => self.custom_image(value),
                        k if k.len() > "Image".len() && k.ends_with("Image") => {
                            self.custom_image(value);
                        }
                        "taskRef" | "pipelineRef" => self.bundle(value),
                        _ => {}
                    }
                    self.node(value, false);
                }
            }
            Node::Seq(items) => {
                for &item in items {
                    self.node(item, false);
                }
            }
            Node::Scalar { .. } | Node::Alias(_) => {}
        }
    }

    /// `image:` holding a reference, or (an image volume) a mapping whose `reference`
    /// holds one. Any other mapping (a CRD schema's `image: {type: string}`) is not.
    fn image_or_volume(&mut self, value: NodeId) {
        match &self.yaml.nodes[self.yaml.resolve(value)] {
            Node::Map(_) => {
                if let Some(reference) = self.yaml.get(value, "reference") {
                    self.image(reference);
                }
            }
            _ => self.image(value),
        }
    }

    /// A custom resource's image under another key (`imageName`, `*Image`): only a
    /// string written like a reference ([`super::written_like_reference`]: with a tag
    /// or digest), so `coverImage: cover.png` and a cloud disk image
    /// (`sourceImage: debian-cloud/debian-11`) are not.
    fn custom_image(&mut self, value: NodeId) {
        if self
            .yaml
            .str(value)
            .is_some_and(super::written_like_reference)
        {
            self.image(value);
        }
    }

    /// Tekton: `taskRef.bundle` / `pipelineRef.bundle`, and the bundles resolver's
    /// `params` entry named `bundle`.
    fn bundle(&mut self, reference: NodeId) {
        let yaml = self.yaml;
        if let Some(bundle) = yaml.get(reference, "bundle") {
            self.image(bundle);
        }
        if yaml.get(reference, "resolver").and_then(|r| yaml.str(r)) != Some("bundles") {
            return;
        }
        for &param in yaml.items(yaml.get(reference, "params")) {
            if yaml.get(param, "name").and_then(|n| yaml.str(n)) == Some("bundle")
                && let Some(value) = yaml.get(param, "value")
            {
                self.image(value);
            }
        }
    }

    /// A KRM function config: the `config.kubernetes.io/function` annotation holds YAML
    /// whose `container.image` is a reference; found in the annotation's own text, so
    /// the span is exact in the file.
    fn krm_function(&mut self, doc: NodeId) {
        let yaml = self.yaml;
        let Some(annotation) = yaml
            .get(doc, "metadata")
            .and_then(|m| yaml.get(m, "annotations"))
            .and_then(|a| yaml.get(a, "config.kubernetes.io/function"))
        else {
            return;
        };
        let Node::Scalar { span, .. } = &yaml.nodes[yaml.resolve(annotation)] else {
            return;
        };
        let region = &self.text[span.clone()];
        let mut offset = span.start;
        for line in region.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            let trimmed = body.trim_start();
            if let Some(rest) = trimmed.strip_prefix("image:") {
                let value = rest.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(value);
                if !value.is_empty()
                    && !value.contains(['#', ' '])
                    && let Some(at) = body.rfind(value)
                {
                    let start = offset + at;
                    self.out
                        .candidates
                        .push(Candidate::at(start..start + value.len()));
                }
            }
            offset += line.len();
        }
    }

    /// Argo CD and Flux objects that carry images of their own: an `Application`'s
    /// Kustomize image overrides (`[old=]name:tag@digest` strings) and Helm values
    /// (`valuesObject`, or `values` YAML text), in `spec.source` and each of
    /// `spec.sources`; a `HelmRelease`'s `spec.values`; an `OCIRepository`'s
    /// `spec.url` with `spec.ref.tag` and `spec.ref.digest`.
    fn gitops(&mut self, doc: NodeId, kind: &str) {
        let yaml = self.yaml;
        let api = yaml
            .get(doc, "apiVersion")
            .and_then(|v| yaml.str(v))
            .unwrap_or_default();
        let spec = yaml.get(doc, "spec");
        match (api.split('/').next().unwrap_or_default(), kind) {
            ("argoproj.io", "Application") => {
                let sources = spec.into_iter().flat_map(|spec| {
                    let one = yaml.get(spec, "source");
                    one.into_iter()
                        .chain(yaml.items(yaml.get(spec, "sources")).iter().copied())
                });
                for source in sources.collect::<Vec<_>>() {
                    let kustomize = yaml.get(source, "kustomize");
                    for &image in yaml.items(kustomize.and_then(|k| yaml.get(k, "images"))) {
                        self.override_string(image);
                    }
                    let helm = yaml.get(source, "helm");
                    if let Some(values) = helm.and_then(|h| yaml.get(h, "valuesObject")) {
                        super::helm_values::images_in(yaml, self.text, values, self.out);
                    }
                    if let Some(values) = helm.and_then(|h| yaml.get(h, "values")) {
                        self.values_text(values);
                    }
                }
            }
            ("helm.toolkit.fluxcd.io", "HelmRelease") => {
                if let Some(values) = spec.and_then(|s| yaml.get(s, "values")) {
                    super::helm_values::images_in(yaml, self.text, values, self.out);
                }
            }
            ("source.toolkit.fluxcd.io", "OCIRepository") => {
                if let Some(spec) = spec {
                    self.oci_repository(spec);
                }
            }
            _ => {}
        }
    }

    /// An Argo CD Kustomize override: the reference after `=` (or the whole string).
    fn override_string(&mut self, value: NodeId) {
        if let yaml::ImageValue::At(span) = self.yaml.image_value(self.text, value) {
            let start = self.text[span.clone()]
                .find('=')
                .map_or(span.start, |i| span.start + i + 1);
            if start < span.end {
                self.out.candidates.push(Candidate::at(start..span.end));
            }
        } else {
            self.image(value);
        }
    }

    /// Helm values written as YAML text (`helm.values: |`), spans exact in the file.
    fn values_text(&mut self, values: NodeId) {
        let Some(embedded) = self.yaml.embedded(self.text, values) else {
            return;
        };
        let mut inner = Extracted::default();
        let parsed = inner.parse_yaml(&embedded.text);
        for &doc in &parsed.docs {
            super::helm_values::images_in(&parsed, &embedded.text, doc, &mut inner);
        }
        let lines = self.lines.get_or_init(|| super::LineIndex::new(self.text));
        embedded.place(inner, self.out, lines);
    }

    /// Flux `OCIRepository`: `url: oci://host/repo` with `ref.tag` and `ref.digest`.
    fn oci_repository(&mut self, spec: NodeId) {
        let yaml = self.yaml;
        let text = self.text;
        let span_of = |node: Option<NodeId>| match node.map(|n| yaml.image_value(text, n)) {
            Some(yaml::ImageValue::At(span)) => Some(span),
            _ => None,
        };
        let Some(url) = span_of(yaml.get(spec, "url")) else {
            return;
        };
        let Some(repository) = text[url.clone()]
            .strip_prefix("oci://")
            .map(|r| url.end - r.len()..url.end)
        else {
            return;
        };
        let reference = yaml.get(spec, "ref");
        let tag = span_of(reference.and_then(|r| yaml.get(r, "tag")));
        let digest = span_of(reference.and_then(|r| yaml.get(r, "digest")));
        let mut parts = vec![("repository", repository.clone())];
        let mut composed = text[repository].to_owned();
        if let Some(tag) = &tag {
            parts.push(("tag", tag.clone()));
            composed.push(':');
            composed.push_str(&text[tag.clone()]);
        }
        let slot = match digest {
            Some(digest) => {
                parts.push(("digest", digest.clone()));
                composed.push('@');
                composed.push_str(&text[digest.clone()]);
                super::DigestSlot::replace(digest, false)
            }
            None => super::DigestSlot::none(parts.last().map_or(0, |p| p.1.end)),
        };
        if tag.is_none() && slot.span.is_empty() {
            return; // a semver range or the default branch: nothing pinned to follow
        }
        parts.sort_by_key(|(_, span)| span.start);
        self.out
            .candidates
            .push(Candidate::composed(super::Composed {
                reference: composed,
                parts,
                digest: slot,
            }));
    }

    fn image(&mut self, value: NodeId) {
        self.out.push_image(self.yaml.image_value(self.text, value));
    }
}

#[cfg(test)]
mod tests {
    use super::FORMAT;
    use crate::scan::testing::{Row, found, rows};

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn refs(text: &str) -> Vec<Row> {
        rows(FORMAT, text).0
    }

    fn names(text: &str) -> Vec<String> {
        refs(text).into_iter().map(|r| r.0).collect()
    }

    /// Everything in Kubernetes that holds an image: image volumes, custom resources'
    /// `imageName` and `*Image` keys (only values written like references), Tekton
    /// bundles (both spellings), and KRM function configs inside their annotation.
    #[test]
    fn everything_that_holds_an_image() {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n  - name: data\n    image:\n      reference: ghcr.io/acme/data:1@{D1}\n      pullPolicy: IfNotPresent\n---\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.2@{D1}\n  sidecarImage: busybox:1.36\n  coverImage: cover.png\n  baseImage: Always\n  sourceImage: debian-cloud/debian-11\n  bootImage: projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts\n---\napiVersion: tekton.dev/v1\nkind: PipelineRun\nspec:\n  pipelineRef:\n    bundle: gcr.io/tekton/pipeline:v1@{D1}\n  taskRunSpecs: []\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nspec:\n  taskRef:\n    resolver: bundles\n    params:\n    - name: bundle\n      value: gcr.io/tekton/task:v2@{D1}\n    - name: name\n      value: build\n---\napiVersion: fn.kpt.dev/v1alpha1\nkind: SetLabels\nmetadata:\n  name: labels\n  annotations:\n    config.kubernetes.io/function: |\n      container:\n        image: gcr.io/kpt-fn/set-labels:v0.2@{D1}\n"
        );
        let (found, _) = found(FORMAT, &text);
        let refs: Vec<(&str, usize)> = found
            .iter()
            .map(|f| (f.reference.as_str(), f.line))
            .collect();
        assert_eq!(
            refs,
            [
                (format!("ghcr.io/acme/data:1@{D1}").as_str(), 7),
                (
                    format!("ghcr.io/cloudnative-pg/postgresql:16.2@{D1}").as_str(),
                    13
                ),
                ("busybox:1.36", 14),
                (format!("gcr.io/tekton/pipeline:v1@{D1}").as_str(), 24),
                (format!("gcr.io/tekton/task:v2@{D1}").as_str(), 34),
                (format!("gcr.io/kpt-fn/set-labels:v0.2@{D1}").as_str(), 45),
            ]
        );
    }

    /// The prefilter lets through a document whose only image key is `imageName`.
    #[test]
    fn image_name_alone_is_read() {
        let text = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.2\n";
        assert_eq!(names(text), ["ghcr.io/cloudnative-pg/postgresql:16.2"]);
    }

    #[test]
    fn workload_containers() {
        let text = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    image: not/this:1\nspec:\n  template:\n    metadata:\n      labels: {{image: no}}\n    spec:\n      initContainers:\n      - name: init\n        image: busybox:1.36  # init\n      containers:\n      - image: \"nginx:1.27@{D1}\"\n        name: web\n        env:\n        - name: IMG\n          value: redis:7\n      - name: side\n        image: 'ghcr.io/acme/side:v2'\n"
        );
        assert_eq!(
            refs(&text),
            vec![
                ("busybox:1.36".into(), 14, None),
                (format!("nginx:1.27@{D1}"), 16, None),
                ("ghcr.io/acme/side:v2".into(), 22, None),
            ]
        );
    }

    #[test]
    fn not_kubernetes_without_api_version_and_kind() {
        assert!(names("image: nginx:1\nkind: Foo\n").is_empty());
        // Skaffold names the images it builds with `image:`.
        let skaffold = "apiVersion: skaffold/v3\nkind: Config\nbuild:\n  artifacts:\n  - image: emailservice\n";
        assert!(names(skaffold).is_empty());
        assert!(names("services:\n  a:\n    image: nginx\n").is_empty());
    }

    #[test]
    fn multi_document_cronjob_list_and_crds() {
        let text = "---\napiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - image: alpine:3\n---\n# comment only\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n  spec:\n    ephemeralContainers:\n    - image: debug:1\n  status:\n    containerStatuses:\n    - image: docker.io/library/debug:1\n      imageID: docker-pullable://debug@sha256:00\n---\napiVersion: tekton.dev/v1\nkind: Task\nspec:\n  params:\n  - name: img\n    default: gcr.io/x/y:1\n  steps:\n  - image: gcr.io/tekton/step:1\n    script: |\n      image: not-this\n  sidecars:\n  - image: gcr.io/tekton/side:1\n";
        assert_eq!(
            names(text),
            vec![
                "alpine:3",
                "debug:1",
                "gcr.io/tekton/step:1",
                "gcr.io/tekton/side:1"
            ]
        );
    }

    #[test]
    fn argo_workflow_and_knative_service() {
        let text = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n  - name: a\n    container:\n      image: alpine:3.20\n  - name: b\n    script:\n      image: python:3.12\n      source: |\n        print(1)\n---\napiVersion: serving.knative.dev/v1\nkind: Service\nspec:\n  template:\n    spec:\n      containers:\n      - image: gcr.io/knative-samples/helloworld-go\n";
        assert_eq!(
            names(text),
            vec![
                "alpine:3.20",
                "python:3.12",
                "gcr.io/knative-samples/helloworld-go"
            ]
        );
    }

    #[test]
    fn crd_schema_image_keys_are_not_references() {
        let text = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  versions:\n  - schema:\n      openAPIV3Schema:\n        properties:\n          image:\n            description: image to run\n            type: string\n";
        assert!(names(text).is_empty());
    }

    #[test]
    fn prefilter_keeps_every_way_to_write_the_key() {
        for text in [
            "image: a",
            "- image : a",
            "{\"image\": \"a\"}",
            "'image':\ta",
            "description: the image\nimage: a",
        ] {
            assert!(super::may_hold_images(text), "{text}");
        }
        for text in [
            "description: an image to run",
            "imagePullPolicy: Always",
            "kind: CustomResourceDefinition\nspec:\n  image:\n    type: string",
        ] {
            assert!(!super::may_hold_images(text), "{text}");
        }
    }

    #[test]
    fn configmap_data_is_opaque() {
        let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  image: nginx:1\n";
        assert!(names(text).is_empty());
    }

    #[test]
    fn crlf_bom_and_non_ascii() {
        let text = "\u{feff}apiVersion: v1\r\nkind: Pod\r\nspec:\r\n  containers:\r\n  - name: 한국어\r\n    image: nginx:1 # 주석\r\n";
        let (found, _) = found(FORMAT, text);
        assert_eq!(found[0].reference, "nginx:1");
        assert_eq!((found[0].line, found[0].column), (6, 12));
    }

    #[test]
    fn templates_and_variables_are_skipped() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: \"{{ .Values.image }}\"\n  - image: ${REGISTRY}/app:1\n  - image: ~\n  - image: \"\"\n";
        assert_eq!(
            refs(text),
            vec![
                ("{{ .Values.image }}".into(), 5, Some("contains-template")),
                ("${REGISTRY}/app:1".into(), 6, Some("contains-variable")),
            ]
        );
    }

    #[test]
    fn anchored_image_reported_once_where_written() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: &img nginx:1\n  - image: *img\n";
        assert_eq!(refs(text), vec![("nginx:1".into(), 5, None)]);
    }

    #[test]
    fn escaped_value_is_a_note() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: \"ngin\\x78:1\"\n";
        let out = super::extract(text);
        assert!(out.candidates.is_empty());
        assert_eq!(out.notes[0].0, 5);
    }

    #[test]
    fn syntax_error_keeps_earlier_documents() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: a:1\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: b:1\n  x: [\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: c:1\n";
        let out = super::extract(text);
        // The broken document is read line by line, the one after it parsed.
        assert_eq!(out.candidates.len(), 3);
        assert_eq!(out.notes.len(), 1);
        assert_eq!(out.notes[0].0, 13);
    }

    /// Argo CD and Flux: an `Application`'s Kustomize overrides (after `=`) and Helm
    /// values (`valuesObject`, and `values` text with spans inside it) in `source` and
    /// `sources`; a `HelmRelease`'s values; an `OCIRepository`'s url, tag and digest.
    #[test]
    fn argo_cd_and_flux_objects() {
        let text = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    kustomize:\n      images:\n      - ghcr.io/acme/app:1@{D1}\n      - old=ghcr.io/acme/new:2\n  sources:\n  - helm:\n      valuesObject:\n        image:\n          repository: acme/api\n          tag: '3'\n          digest: {D1}\n  - helm:\n      values: |\n        worker:\n          image: acme/worker:4@{D1}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image:\n      repository: acme/flux\n      tag: '5'\n---\napiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref:\n    tag: '6'\n    digest: {D1}\n---\napiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/other\n  ref:\n    semver: '>=1.0'\n"
        );
        let (found, warnings) = found(FORMAT, &text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(String, usize)> = found
            .iter()
            .map(|f| (f.reference.clone(), f.line))
            .collect();
        assert_eq!(
            got,
            [
                (format!("ghcr.io/acme/app:1@{D1}"), 7),
                ("ghcr.io/acme/new:2".to_owned(), 8),
                (format!("acme/api:3@{D1}"), 15),
                (format!("acme/worker:4@{D1}"), 19),
                ("acme/flux:5".to_owned(), 27),
                (format!("ghcr.io/acme/manifests:6@{D1}"), 35),
            ]
        );
    }
}
