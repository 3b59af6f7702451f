//! Scanning: find every image reference in a tree, with exact byte spans.
//!
//! A *format* (`dockerfile`, `compose`, `kubernetes`) is a small module with one job:
//! given a file's text, return [`Candidate`]s, byte ranges where an image reference is
//! written. This module turns candidates into [`Found`]s in one place: the reference is
//! always cut from the file at the span (so `file[start..end] == reference` by
//! construction), parsed with [`crate::imageref`], and placed at a line and column.
//! [`walk`] picks the files and runs the formats over them in parallel.

pub mod compose;
pub mod dockerfile;
pub mod kubernetes;
mod source;
mod vars;
pub mod walk;
mod yaml;
mod yaml_lines;

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use crate::imageref::{ImageRef, Platform};

pub use source::LineIndex;

/// Files larger than this are reported and skipped: no real manifest comes close, and
/// reading one into memory should not be a way to exhaust it.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Image references reported per file; past it, a warning. Real files hold a handful (the
/// corpus's largest holds well under a hundred); the cap keeps a hostile file of
/// millions of one-line references from costing gigabytes in findings.
pub const MAX_REFERENCES_PER_FILE: usize = 10_000;

/// The file families repin understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Dockerfile,
    Compose,
    Kubernetes,
}

impl Format {
    /// The name used in output and config (`dockerfile`, `compose`, `kubernetes`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Dockerfile => "dockerfile",
            Self::Compose => "compose",
            Self::Kubernetes => "kubernetes",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a file is scanned, decided from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// A Dockerfile or Containerfile by name.
    Dockerfile,
    /// A Compose file by name.
    Compose,
    /// Some other YAML file: its documents are Kubernetes objects when they carry
    /// `apiVersion` and `kind`, which only the content can tell.
    Yaml,
}

impl Detected {
    /// Picks the scanner for a file name, or `None` for files repin does not read.
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let lower = name.to_ascii_lowercase();
        let yaml = lower.ends_with(".yaml") || lower.ends_with(".yml");
        if yaml {
            let stem = lower.rsplit_once('.').map_or(lower.as_str(), |(s, _)| s);
            let compose = stem == "compose"
                || stem.starts_with("docker-compose")
                || stem.starts_with("compose.");
            return Some(if compose { Self::Compose } else { Self::Yaml });
        }
        const BASES: [&str; 2] = ["dockerfile", "containerfile"];
        let is_dockerfile = BASES.iter().any(|base| {
            lower
                .strip_suffix(base)
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
                || lower.strip_prefix(base).is_some_and(|rest| {
                    rest.starts_with(['.', '-', '_'])
                        && !NOT_DOCKERFILE.iter().any(|ext| rest.ends_with(ext))
                })
        });
        is_dockerfile.then_some(Self::Dockerfile)
    }
}

/// Endings of names that start like a Dockerfile's (`Dockerfile.*`, `Dockerfile-*`,
/// `Dockerfile_*`) but are not one (`Dockerfile.dockerignore` is BuildKit's
/// per-Dockerfile ignore file).
const NOT_DOCKERFILE: [&str; 6] = [".dockerignore", ".md", ".txt", ".json", ".sh", ".orig"];

/// Why a reference is reported but cannot be updated. Serialized in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Built from variables (`${REGISTRY}/app`, `FROM $BASE` with no default).
    ContainsVariable,
    /// A template expression (`{{ .Values.image }}`).
    ContainsTemplate,
    /// Not valid under the reference grammar (a truncated digest, uppercase path).
    InvalidReference,
    /// Pinned by digest with no tag, so there is nothing to look the new digest up by.
    NoTag,
    /// The name a Compose service with `build:` gives the image it builds.
    BuiltLocally,
}

impl SkipReason {
    /// The kebab-case name used in output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ContainsVariable => "contains-variable",
            Self::ContainsTemplate => "contains-template",
            Self::InvalidReference => "invalid-reference",
            Self::NoTag => "no-tag",
            Self::BuiltLocally => "built-locally",
        }
    }
}

/// What a format reports: where a reference is written and what the file says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Byte range of the reference in the file, without surrounding quotes.
    pub span: Range<usize>,
    /// A platform the file fixes for this reference (`FROM --platform=linux/arm64`).
    pub platform: Option<Platform>,
    /// Set when the format already knows the text is not a literal reference.
    pub skip: Option<SkipReason>,
}

impl Candidate {
    fn at(span: Range<usize>) -> Self {
        Self {
            span,
            platform: None,
            skip: None,
        }
    }
}

/// A problem in one file that does not stop the scan. Displays as `path:line: why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    /// 1-based line the problem is on, when there is one.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// A format's result for one file: candidates, plus notes on what it could not read
/// (a 1-based line and a reason).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub candidates: Vec<Candidate>,
    pub notes: Vec<(usize, String)>,
}

/// One image reference found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the scanned root, `/`-separated.
    pub path: String,
    pub format: Format,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column of `span.start`, counted in characters.
    pub column: usize,
    /// Byte range in the file; `file[span] == reference`.
    pub span: Range<usize>,
    /// The reference exactly as written.
    pub reference: String,
    /// The parsed reference, when it is one.
    pub image: Option<ImageRef>,
    pub platform: Option<Platform>,
    /// `None` when the reference can be updated.
    pub skip_reason: Option<SkipReason>,
}

impl Found {
    /// Number of fields [`Found::serialize_fields`] writes.
    pub const FIELDS: usize = 13;

    /// Writes the JSON contract's fields, in the contract's order, into a struct being
    /// serialized (shared with `check`, which adds its own after these).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize_fields<S: serde::ser::SerializeStruct>(
        &self,
        st: &mut S,
    ) -> Result<(), S::Error> {
        let image = self.image.as_ref();
        st.serialize_field("path", &self.path)?;
        st.serialize_field("format", &self.format)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("column", &self.column)?;
        st.serialize_field("start", &self.span.start)?;
        st.serialize_field("end", &self.span.end)?;
        st.serialize_field("reference", &self.reference)?;
        st.serialize_field("registry", &image.map(|i| &i.registry))?;
        st.serialize_field("repository", &image.map(|i| &i.repository))?;
        st.serialize_field("tag", &image.and_then(|i| i.tag.as_ref()))?;
        st.serialize_field("digest", &image.and_then(|i| i.digest.as_ref()))?;
        st.serialize_field("platform", &self.platform.as_ref().map(ToString::to_string))?;
        st.serialize_field("skip_reason", &self.skip_reason.map(SkipReason::name))
    }
}

impl Serialize for Found {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Found", Self::FIELDS)?;
        self.serialize_fields(&mut st)?;
        st.end()
    }
}

/// Scans one file's bytes. `path` is only used for output.
///
/// # Errors
/// A [`Warning`] when the file cannot be read as text at all (binary, not UTF-8,
/// empty). Problems inside a readable file come back in the `Vec<Warning>` beside the
/// findings, so one bad document does not hide the good ones.
pub fn scan_bytes(
    path: &str,
    detected: Detected,
    bytes: &[u8],
) -> Result<(Vec<Found>, Vec<Warning>), Warning> {
    let warn = |line, message: String| Warning {
        path: path.to_owned(),
        line,
        message,
    };
    if bytes.is_empty() {
        return Err(warn(None, "empty file".to_owned()));
    }
    if bytes.contains(&0) {
        return Err(warn(None, "binary file (contains NUL bytes)".to_owned()));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        warn(
            Some(line),
            format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        )
    })?;
    Ok(scan_text(path, detected, text))
}

/// Scans one file's text: runs the format, then cuts, parses and places each candidate.
#[must_use]
pub fn scan_text(path: &str, detected: Detected, text: &str) -> (Vec<Found>, Vec<Warning>) {
    let (format, extracted) = match detected {
        Detected::Dockerfile => (Format::Dockerfile, dockerfile::extract(text)),
        Detected::Compose => (Format::Compose, compose::extract(text)),
        Detected::Yaml => (Format::Kubernetes, kubernetes::extract(text)),
    };
    let lines = if extracted.candidates.is_empty() {
        LineIndex::default()
    } else {
        LineIndex::new(text)
    };
    let mut candidates = extracted.candidates;
    candidates.sort_by_key(|c| (c.span.start, c.span.end));
    // One finding per span. A span reached from places that fix different platforms
    // (one `ARG` default used by `FROM --platform=linux/amd64 $IMG` and by
    // `FROM --platform=linux/arm64 $IMG`) fixes none: the pin's own kind decides.
    candidates.dedup_by(|later, kept| {
        if later.span != kept.span {
            return false;
        }
        if later.platform != kept.platform {
            kept.platform = None;
        }
        true
    });
    let mut notes = extracted.notes;
    if candidates.len() > MAX_REFERENCES_PER_FILE {
        candidates.truncate(MAX_REFERENCES_PER_FILE);
        let line = candidates
            .last()
            .map_or(1, |c| source::line_of(text, c.span.start));
        notes.push((
            line,
            format!(
                "more than {MAX_REFERENCES_PER_FILE} image references; the rest of the file is skipped"
            ),
        ));
    }
    let found: Vec<Found> = candidates
        .into_iter()
        .filter_map(|c| place(path, format, text, &lines, c))
        .collect();
    let warnings = notes
        .into_iter()
        .map(|(line, message)| Warning {
            path: path.to_owned(),
            line: Some(line),
            message,
        })
        .collect();
    (found, warnings)
}

/// Turns a candidate into a finding. The reference text comes from the file at the span,
/// never from a parser's idea of the value.
fn place(
    path: &str,
    format: Format,
    text: &str,
    lines: &LineIndex,
    candidate: Candidate,
) -> Option<Found> {
    let reference = text.get(candidate.span.clone())?;
    if reference.is_empty() {
        return None;
    }
    // Text that is not a literal reference is not parsed; anything else is, so that a
    // reference skipped for another reason (built locally) still shows its parts.
    let textual = match candidate.skip {
        Some(skip @ (SkipReason::ContainsVariable | SkipReason::ContainsTemplate)) => Some(skip),
        _ => skip_for_text(reference),
    };
    let (image, skip) = match textual {
        Some(skip) => (None, Some(skip)),
        None => match ImageRef::parse(reference) {
            Ok(image) => {
                let no_tag = image.digest.is_some() && image.tag.is_none();
                let skip = candidate.skip.or(no_tag.then_some(SkipReason::NoTag));
                (Some(image), skip)
            }
            Err(_) => (None, Some(SkipReason::InvalidReference)),
        },
    };
    let (line, column) = lines.line_column(text, candidate.span.start);
    Some(Found {
        path: path.to_owned(),
        format,
        line,
        column,
        span: candidate.span,
        reference: reference.to_owned(),
        image,
        platform: candidate.platform,
        skip_reason: skip,
    })
}

/// Skip reasons any format shares: template expressions and variables in the text.
fn skip_for_text(reference: &str) -> Option<SkipReason> {
    if reference.contains("{{") {
        Some(SkipReason::ContainsTemplate)
    } else if reference.contains('$') {
        Some(SkipReason::ContainsVariable)
    } else {
        None
    }
}

/// Helpers for the formats' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Detected, Found, Warning, scan_text};

    /// Reference, line and skip reason of a finding.
    pub type Row = (String, usize, Option<&'static str>);

    /// Scans `text`, checking that every finding's span holds its reference.
    pub fn found(detected: Detected, text: &str) -> (Vec<Found>, Vec<Warning>) {
        let (found, warnings) = scan_text("f", detected, text);
        for f in &found {
            assert_eq!(&text[f.span.clone()], f.reference);
        }
        (found, warnings)
    }

    /// [`found`] as rows.
    pub fn rows(detected: Detected, text: &str) -> (Vec<Row>, Vec<Warning>) {
        let (found, warnings) = found(detected, text);
        let rows = found
            .into_iter()
            .map(|f| (f.reference, f.line, f.skip_reason.map(|s| s.name())))
            .collect();
        (rows, warnings)
    }
}

#[cfg(test)]
mod caps {
    use super::*;

    /// Untrusted input stays cheap: a file of a million one-line references yields at
    /// most the cap, with a warning naming it.
    #[test]
    fn untrusted_input_stays_cheap_references_per_file_capped() {
        let text = "FROM a:1\n".repeat(MAX_REFERENCES_PER_FILE + 5);
        let (found, warnings) = scan_text("Dockerfile", Detected::Dockerfile, &text);
        assert_eq!(found.len(), MAX_REFERENCES_PER_FILE);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .message
                .contains("more than 10000 image references")
        );
        let yaml = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}",
            "- image: a\n".repeat(200_000)
        );
        let (found, warnings) = scan_text("k.yaml", Detected::Yaml, &yaml);
        assert_eq!(found.len(), MAX_REFERENCES_PER_FILE);
        assert!(!warnings.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_name() {
        let cases = [
            ("Dockerfile", Some(Detected::Dockerfile)),
            ("Containerfile", Some(Detected::Dockerfile)),
            ("dockerfile", Some(Detected::Dockerfile)),
            ("api.Dockerfile", Some(Detected::Dockerfile)),
            ("api.dockerfile", Some(Detected::Dockerfile)),
            ("Dockerfile.debug", Some(Detected::Dockerfile)),
            ("Dockerfile-pinned-as", Some(Detected::Dockerfile)),
            ("Containerfile_dev", Some(Detected::Dockerfile)),
            ("Dockerfiles", None),
            ("Dockerfile.dockerignore", None),
            ("Dockerfile.md", None),
            ("MyDockerfile", None),
            ("compose.yaml", Some(Detected::Compose)),
            ("compose.yml", Some(Detected::Compose)),
            ("docker-compose.yml", Some(Detected::Compose)),
            ("docker-compose.prod.yaml", Some(Detected::Compose)),
            ("compose.override.yml", Some(Detected::Compose)),
            ("deploy.yaml", Some(Detected::Yaml)),
            ("values.YML", Some(Detected::Yaml)),
            ("composer.yaml", Some(Detected::Yaml)),
            ("README.md", None),
            ("compose.json", None),
        ];
        for (name, want) in cases {
            assert_eq!(Detected::from_path(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn bad_bytes_are_warnings() {
        let w = scan_bytes("a/Dockerfile", Detected::Dockerfile, b"").unwrap_err();
        assert_eq!(w.to_string(), "a/Dockerfile: empty file");
        let w = scan_bytes("x.yaml", Detected::Yaml, b"a: 1\n\0\0").unwrap_err();
        assert_eq!(w.to_string(), "x.yaml: binary file (contains NUL bytes)");
        let w = scan_bytes("x.yaml", Detected::Yaml, b"a: 1\nb: \xff\n").unwrap_err();
        assert_eq!(
            w.to_string(),
            "x.yaml:2: not UTF-8 (invalid byte at offset 8)"
        );
    }

    /// Fragments that steer generated input into the formats' deeper paths.
    const PIECES: [&str; 32] = [
        "FROM ",
        "from ",
        "ARG ",
        "COPY --from=",
        "RUN --mount=type=bind,from=",
        " AS ",
        "${A:-",
        "}",
        "$B",
        "\\\n",
        "`\n",
        "# escape=`\n",
        "# syntax=",
        "<<EOF\n",
        "EOF\n",
        "\n",
        "\r\n",
        "\u{feff}",
        "apiVersion: v1\nkind: Pod\n",
        "image: ",
        "- image: ",
        "services:\n  a:\n    ",
        "<<: *x\n",
        "&x ",
        "*x",
        "---\n",
        "'",
        "\"",
        "{",
        "[",
        "nginx:1@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "é",
    ];

    fn soup() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(&PIECES[..]).prop_map(str::to_owned),
                "\\PC{0,6}",
                " {0,4}"
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics_any_format(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            for detected in [Detected::Dockerfile, Detected::Compose, Detected::Yaml] {
                let _ = scan_bytes("f", detected, &bytes);
            }
        }

        #[test]
        fn spans_hold_references_on_generated_input(text in soup()) {
            for detected in [Detected::Dockerfile, Detected::Compose, Detected::Yaml] {
                let _ = testing::found(detected, &text);
            }
        }
    }

    #[test]
    fn digest_without_tag_is_no_tag() {
        let text = format!("FROM alpine@sha256:{}\n", "a".repeat(64));
        let (found, _) = scan_text("Dockerfile", Detected::Dockerfile, &text);
        assert_eq!(found[0].skip_reason, Some(SkipReason::NoTag));
        assert!(found[0].image.is_some());
    }
}
