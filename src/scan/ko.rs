//! ko's configuration (`.ko.yaml`, `.ko.yml`): `defaultBaseImage` and each
//! `baseImageOverrides` value, references written as one string. ko pins by digest
//! without a tag often (`cgr.dev/chainguard/static@sha256:…`): those are `no-tag`
//! unless a tag to follow is given.

use super::Extracted;
use super::format::{self, Format, Spec};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "ko",
    reads,
    accepts: format::any_text,
    extract,
});

/// `.ko.yaml` or `.ko.yml`, in any folder.
#[must_use]
pub fn reads(rel: &str) -> bool {
    matches!(format::file_name(rel), ".ko.yaml" | ".ko.yml")
}

/// Extracts the base images.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let yaml = out.parse_yaml(text);
    for &doc in &yaml.docs {
        if let Some(base) = yaml.get(doc, "defaultBaseImage") {
            out.push_image(yaml.image_value(text, base));
        }
        for &(_, image) in yaml.pairs(yaml.get(doc, "baseImageOverrides")) {
            out.push_image(yaml.image_value(text, image));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{FORMAT, reads};
    use crate::scan::testing::rows;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn base_images() {
        assert!(reads(".ko.yaml") && reads("cmd/.ko.yml") && !reads("ko.yaml"));
        let text = format!(
            "defaultBaseImage: cgr.dev/chainguard/static@{D}\nbaseImageOverrides:\n  github.com/acme/app/cmd/a: gcr.io/distroless/base:nonroot@{D}\n  github.com/acme/app/cmd/b: \"alpine:3.20\"\nbuilds: []\n"
        );
        let (found, warnings) = rows(FORMAT, &text);
        assert!(warnings.is_empty());
        let got: Vec<(&str, usize, Option<&str>)> =
            found.iter().map(|(r, l, s)| (r.as_str(), *l, *s)).collect();
        assert_eq!(
            got,
            [
                (
                    format!("cgr.dev/chainguard/static@{D}").as_str(),
                    1,
                    Some("no-tag")
                ),
                (
                    format!("gcr.io/distroless/base:nonroot@{D}").as_str(),
                    3,
                    None
                ),
                ("alpine:3.20", 4, None),
            ]
        );
    }
}
