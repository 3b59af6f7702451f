//! Google Cloud Build configs (`cloudbuild.y(a)ml`, `cloudbuild*.y(a)ml`): each step's
//! `name`, the builder image the step runs (`gcr.io/cloud-builders/docker@sha256:…`).
//! The top-level `images:` list names images the build *pushes*, so it is not read.
//! Substitutions (`$PROJECT_ID`, `${_TAG}`) are `contains-variable`.

use super::Extracted;
use super::format::{self, Format, Spec};

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "cloudbuild",
    reads,
    accepts: format::any_text,
    extract,
});

/// YAML whose file name starts with `cloudbuild` (any case).
#[must_use]
pub fn reads(rel: &str) -> bool {
    format::is_yaml(rel)
        && format::file_name(rel)
            .to_ascii_lowercase()
            .starts_with("cloudbuild")
}

/// Extracts each step's builder image.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let yaml = out.parse_yaml(text);
    for &doc in &yaml.docs {
        for &step in yaml.items(yaml.get(doc, "steps")) {
            let Some(name) = yaml.get(step, "name") else {
                continue;
            };
            out.push_image(yaml.image_value(text, name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::FORMAT;
    use crate::scan::testing::rows;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn reads_cloudbuild_files() {
        for (path, want) in [
            ("cloudbuild.yaml", true),
            ("ci/cloudbuild-release.yml", true),
            ("CloudBuild.YAML", true),
            ("build.yaml", false),
            ("cloudbuild.json", false),
        ] {
            assert_eq!(super::reads(path), want, "{path}");
        }
    }

    #[test]
    fn steps_names_are_images_and_pushed_images_are_not() {
        let text = format!(
            "steps:\n- name: gcr.io/cloud-builders/docker@{D}\n  args: [build, -t, gcr.io/$PROJECT_ID/app, .]\n- name: 'gcr.io/cloud-builders/gcloud:latest'\n- name: ${{_BUILDER}}\n  entrypoint: bash\nimages:\n- gcr.io/$PROJECT_ID/app\n"
        );
        let (found, _) = rows(FORMAT, &text);
        assert_eq!(
            found,
            [
                (
                    format!("gcr.io/cloud-builders/docker@{D}"),
                    2,
                    Some("no-tag")
                ),
                ("gcr.io/cloud-builders/gcloud:latest".to_owned(), 4, None),
                ("${_BUILDER}".to_owned(), 5, Some("contains-variable")),
            ]
        );
    }
}
