//! Kustomize (`kustomization.yaml`, `kustomization.yml`, `Kustomization`): the
//! `images` overrides, each a reference written across fields — `name` (the image it
//! replaces), `newName` (the image used instead), `newTag` (may hold `tag@digest`) and
//! `digest`:
//!
//! ```yaml
//! images:
//!   - name: nginx
//!     newName: ghcr.io/acme/nginx
//!     newTag: "1.27"
//!     digest: sha256:…
//! ```
//!
//! The reference is `newName` (else `name`) with `newTag` and the digest; a composed
//! finding whose digest part is the `digest` value, the part after `@` in `newTag`, or
//! the inside of an empty `digest: ""` for `--pin`. Without `newTag` the tag comes
//! from the resources, which this file does not say: with a digest that is `no-tag`,
//! without one nothing is reported. An override with neither a digest field nor
//! `tag@digest` has no place for a digest (`--pin` leaves it).

use super::format::{self, Format, Spec};
use super::image_fields;
use super::yaml::{NodeId, Yaml};
use super::{Candidate, Extracted};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "kustomize",
    reads,
    accepts,
    extract,
});

/// `kustomization.yaml`, `kustomization.yml` or `Kustomization` in any folder, and any
/// other YAML whose content says it is one ([`accepts`]).
#[must_use]
pub fn reads(rel: &str) -> bool {
    named(rel) || format::is_yaml(rel)
}

/// Kustomize's own file names.
fn named(rel: &str) -> bool {
    matches!(
        format::file_name(rel),
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// A file by its name, or YAML declaring Kustomize's API (`apiVersion:
/// kustomize.config.k8s.io/…`) with `kind: Kustomization` or `Component` at the left
/// margin.
#[must_use]
pub fn accepts(rel: &str, text: &str) -> bool {
    named(rel)
        || text.contains("kustomize.config.k8s.io/")
            && text
                .lines()
                .any(|l| matches!(l.trim_end(), "kind: Kustomization" | "kind: Component"))
}

/// Extracts the `images` overrides.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let yaml = out.parse_yaml(text);
    for &doc in &yaml.docs {
        for &image in yaml.items(yaml.get(doc, "images")) {
            entry(&yaml, text, image, &mut out);
        }
    }
    out
}

/// One `images` entry.
fn entry(yaml: &Yaml, text: &str, image: NodeId, out: &mut Extracted) {
    let image_fields::Read::Image(composed) = image_fields::read(yaml, text, image, &NAMES, out)
    else {
        return;
    };
    let tagged = composed.parts.iter().any(|(name, _)| *name == "tag");
    if !tagged && composed.digest.span.is_empty() {
        return; // the tag is the resources', and there is no digest: nothing to say
    }
    out.candidates.push(Candidate::composed(composed));
}

/// The fields of a Kustomize `images` entry.
const NAMES: image_fields::Names = image_fields::Names {
    registry: &[],
    repository: &["newName", "name"],
    tag: &["newTag"],
    digest: &["digest"],
    sha: &[],
};

#[cfg(test)]
mod tests {
    use super::{FORMAT, reads};
    use crate::scan::testing::found;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn reads_kustomizations() {
        for (path, want) in [
            ("kustomization.yaml", true),
            ("overlays/prod/kustomization.yml", true),
            ("base/Kustomization", true),
            ("kustomization.json", false),
        ] {
            assert_eq!(reads(path), want, "{path}");
        }
        let declared = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";
        assert!(super::accepts("fixtures/digest.yaml", declared));
        assert!(!super::accepts(
            "my-kustomization.yaml",
            "kind: Kustomization\n"
        ));
    }

    /// Every shape of an override: `newName` + `newTag` + `digest`, `name` alone for
    /// the repository, `newTag: tag@digest`, a digest without a tag (`no-tag`), an empty
    /// `digest: ""` to fill, no digest field (no place for one), and an override with
    /// neither a tag nor a digest (nothing to say).
    #[test]
    fn image_overrides_in_every_shape() {
        let text = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\nimages:\n  - name: nginx\n    newName: ghcr.io/acme/nginx\n    newTag: \"1.27\"\n    digest: {D1}\n  - name: redis\n    newTag: 7.2@{D1}\n  - name: postgres\n    digest: {D1}\n  - name: app\n    newTag: v1\n    digest: \"\"\n  - name: tool\n    newTag: v2\n  - name: renamed\n    newName: acme/renamed\n"
        );
        let (found, warnings) = found(FORMAT, &text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let rows: Vec<(String, Option<&str>, &str)> = found
            .iter()
            .map(|f| {
                (
                    f.reference.clone(),
                    f.skip_reason.map(crate::scan::SkipReason::name),
                    f.written(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (format!("ghcr.io/acme/nginx:1.27@{D1}"), None, D1),
                (format!("redis:7.2@{D1}"), None, D1),
                (format!("postgres@{D1}"), Some("no-tag"), D1),
                ("app:v1".to_owned(), None, ""),
                ("tool:v2".to_owned(), None, ""),
            ]
        );
    }
}
