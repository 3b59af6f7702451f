//! Helm chart metadata (`Chart.yaml`): the `artifacthub.io/images` annotation, YAML
//! text inside an annotation listing the images the chart runs:
//!
//! ```yaml
//! annotations:
//!   artifacthub.io/images: |
//!     - name: redis
//!       image: docker.io/bitnami/redis:7.2.4@sha256:…
//! ```
//!
//! Each entry's `image` is a reference, its span exact inside the annotation's text
//! (`scan/embedded.rs`): a literal block or a one-line string written verbatim (a
//! flow list); a folded or escaped annotation is a note.

use super::format::{self, Format, Spec};
use super::{Extracted, LineIndex, yaml};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "helm-chart",
    reads,
    accepts: format::any_text,
    extract,
});

/// `Chart.yaml` (or `Chart.yml`), in any folder.
#[must_use]
pub fn reads(rel: &str) -> bool {
    matches!(format::file_name(rel), "Chart.yaml" | "Chart.yml")
}

/// The annotation that lists a chart's images.
const IMAGES: &str = "artifacthub.io/images";

/// Extracts the images the chart's annotation lists.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    if !text.contains(IMAGES) {
        return out;
    }
    let parsed = out.parse_yaml(text);
    // Built once, on first need: one per document would cost quadratic time.
    let lines = std::cell::OnceCell::new();
    for &doc in &parsed.docs {
        let Some(annotation) = parsed
            .get(doc, "annotations")
            .and_then(|a| parsed.get(a, IMAGES))
        else {
            continue;
        };
        let lines = lines.get_or_init(|| LineIndex::new(text));
        match parsed.embedded(text, annotation) {
            Some(embedded) => {
                let inner = images(&embedded.text);
                embedded.place(inner, &mut out, lines);
            }
            None => out.notes.push((
                lines.line(annotation_start(&parsed, annotation)),
                format!("{IMAGES} uses YAML escapes or line folding; its images cannot be edited in place"),
            )),
        }
    }
    out
}

/// The `image` of each entry of the annotation's list.
fn images(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let list = out.parse_yaml(text);
    for &doc in &list.docs {
        for &entry in list.items(Some(doc)) {
            if let Some(image) = list.get(entry, "image") {
                out.push_image(list.image_value(text, image));
            }
        }
    }
    out
}

/// Where the annotation's value starts in the file.
fn annotation_start(parsed: &yaml::Yaml, node: yaml::NodeId) -> usize {
    match &parsed.nodes[parsed.resolve(node)] {
        yaml::Node::Scalar { span, .. } => span.start,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::{FORMAT, reads};
    use crate::scan::testing::found;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// The annotation's images at their exact spans in `Chart.yaml`, in a literal block
    /// (CRLF too) or a one-line flow list; a folded annotation is a note.
    #[test]
    fn artifacthub_images_annotation() {
        assert!(reads("charts/redis/Chart.yaml") && !reads("values.yaml"));
        let text = format!(
            "apiVersion: v2\nname: redis\nversion: 1.0.0\nannotations:\n  category: Database\n  artifacthub.io/images: |\n    - name: redis\n      image: docker.io/bitnami/redis:7.2.4@{D}\n    - name: os-shell\n      image: \"docker.io/bitnami/os-shell:12\"\n"
        );
        let (listed, warnings) = found(FORMAT, &text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(String, usize)> = listed
            .iter()
            .map(|f| (f.reference.clone(), f.line))
            .collect();
        assert_eq!(
            got,
            [
                (format!("docker.io/bitnami/redis:7.2.4@{D}"), 8),
                ("docker.io/bitnami/os-shell:12".to_owned(), 10),
            ]
        );
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(found_count(&crlf), 2);
        let flow = "annotations:\n  artifacthub.io/images: '[{name: a, image: \"alpine:3.20\"}]'\n";
        assert_eq!(
            found_count(flow),
            1,
            "a one-line flow list written verbatim"
        );
        let folded =
            "annotations:\n  artifacthub.io/images: >\n    - name: a\n      image: alpine:3\n";
        let (none, warnings) = found(FORMAT, folded);
        assert!(
            none.is_empty() && warnings.len() == 1,
            "{none:?} {warnings:?}"
        );
    }

    fn found_count(text: &str) -> usize {
        found(FORMAT, text).0.len()
    }
}
