//! The format table's rows and how a file finds its format. The table itself,
//! [`super::FORMATS`], lists every format repin reads, in the order they are tried.
//!
//! Each format module declares one [`Spec`]: its name (used in output and in the
//! repository config's `[scan] formats`), which files it reads (a predicate over the
//! path relative to the scanned root, `/`-separated, so `.github/workflows/*.yml` can be
//! told apart from other YAML), a content sniff for files whose path alone does not
//! settle it, and its extractor (text in, [`Extracted`] out). A file is read by the
//! first format in table order whose path predicate and sniff both accept it: put the
//! specific formats (by name or folder) before the general ones (any YAML).
//!
//! Everything else comes from the table: the walk's choice of files
//! ([`super::walk`]), the config's format names and its suggestions for a misspelt
//! one, the webhook's test for a push that touches a scanned file, and the property
//! tests that feed every format hostile text.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::{Extracted, FORMATS};

/// One row of the table.
#[derive(Debug)]
pub struct Spec {
    /// The format's name in output and config: lowercase, unique in the table.
    pub name: &'static str,
    /// Whether the format reads a file at this path: relative to the scanned root,
    /// `/`-separated (a root given as a file: its file name).
    pub reads: fn(&str) -> bool,
    /// Whether the format reads a file with this path and text, among those its path
    /// admits ([`any_text`] for formats a path settles).
    pub accepts: fn(&str, &str) -> bool,
    /// The format's extractor: candidates and notes for one file's text.
    pub extract: fn(&str) -> Extracted,
}

/// A format of the table. Compared, hashed and ordered by its place in the table;
/// shown and serialized by name.
#[derive(Clone, Copy)]
pub struct Format(&'static Spec);

impl Format {
    /// A table row's format (for the format modules' `FORMAT` constants).
    #[must_use]
    pub const fn new(spec: &'static Spec) -> Self {
        Self(spec)
    }

    /// The name used in output and config (`dockerfile`, `compose`, `kubernetes`).
    #[must_use]
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The format of this name, if the table has one.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        FORMATS.iter().copied().find(|f| f.name() == name)
    }

    /// Every format's name, in table order.
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        FORMATS.iter().map(|f| f.name()).collect()
    }

    /// Whether the format's path predicate admits `rel`.
    #[must_use]
    pub fn reads(self, rel: &str) -> bool {
        (self.0.reads)(rel)
    }

    /// Whether the format's sniff accepts the file at `rel` holding `text`.
    #[must_use]
    pub fn accepts(self, rel: &str, text: &str) -> bool {
        (self.0.accepts)(rel, text)
    }

    /// Runs the format's extractor.
    #[must_use]
    pub fn extract(self, text: &str) -> Extracted {
        (self.0.extract)(text)
    }

    fn position(self) -> usize {
        FORMATS
            .iter()
            .position(|f| f.name() == self.name())
            .unwrap_or(usize::MAX)
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Format {}

impl Hash for Format {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialOrd for Format {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Format {
    fn cmp(&self, other: &Self) -> Ordering {
        self.position()
            .cmp(&other.position())
            .then_with(|| self.name().cmp(other.name()))
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The formats whose path predicate admits a file, before its content is read: a set
/// over [`super::FORMATS`], settled by [`Detected::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    formats: u64,
    /// Chosen, not detected: no sniff applies.
    forced: bool,
}

impl Detected {
    /// The formats that may read the file at `rel` (relative to the scanned root,
    /// `/`-separated); `None` when none does.
    #[must_use]
    pub fn from_path(rel: &str) -> Option<Self> {
        let bits = FORMATS
            .iter()
            .enumerate()
            .filter(|(_, f)| f.reads(rel))
            .fold(0u64, |bits, (i, _)| bits | 1 << i);
        (bits != 0).then_some(Self {
            formats: bits,
            forced: false,
        })
    }

    /// Exactly this format, whatever the path and content (a file named on the command
    /// line that no format's path admits is read as a Dockerfile).
    #[must_use]
    pub fn only(format: Format) -> Self {
        Self {
            formats: 1 << format.position(),
            forced: true,
        }
    }

    /// These formats and `format` too (the walk offers the opt-in scanner for paths
    /// the config lists).
    #[must_use]
    pub fn with(self, format: Format) -> Self {
        Self {
            formats: self.formats | 1 << format.position(),
            forced: self.forced,
        }
    }

    /// Exactly `format`, as a fallback for a path no format admits.
    #[must_use]
    pub fn fallback(format: Format) -> Self {
        Self {
            formats: 1 << format.position(),
            forced: false,
        }
    }

    /// The first format, in table order, that the path admits and whose sniff accepts
    /// the file at `rel` holding `text`; `None` when no format reads this file.
    #[must_use]
    pub fn settle(self, rel: &str, text: &str) -> Option<Format> {
        FORMATS
            .iter()
            .enumerate()
            .find(|(i, f)| self.formats & (1 << i) != 0 && (self.forced || f.accepts(rel, text)))
            .map(|(_, f)| *f)
    }
}

/// The file name of a `/`-separated path.
#[must_use]
pub fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Whether `text` has `word` as (the end of) a YAML key: the word, an optional closing
/// quote and blanks, then `:`. A cheap sniff before parsing; a key spelt with YAML
/// escapes is not seen.
#[must_use]
pub fn has_key(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, word)| {
        let rest = text[at + word.len()..].trim_start_matches(['"', '\'']);
        rest.trim_start_matches([' ', '\t']).starts_with(':')
    })
}

/// Whether the path names a YAML file (`.yaml` or `.yml`, any case).
#[must_use]
pub fn is_yaml(rel: &str) -> bool {
    let lower = file_name(rel).to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// A sniff for formats whose path settles them.
#[must_use]
pub fn any_text(_rel: &str, _text: &str) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_well_formed() {
        assert!(FORMATS.len() <= 64, "Detected is a 64-bit set");
        let names = Format::names();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
            assert_eq!(name.to_ascii_lowercase(), *name);
            assert_eq!(Format::named(name).map(Format::name), Some(*name));
        }
        assert_eq!(Format::named("helm"), None);
    }

    /// Which format reads which path: the table decides, in order.
    #[test]
    fn detects_by_path() {
        let cases = [
            ("Dockerfile", Some("dockerfile")),
            ("Containerfile", Some("dockerfile")),
            ("dockerfile", Some("dockerfile")),
            ("api.Dockerfile", Some("dockerfile")),
            ("api.dockerfile", Some("dockerfile")),
            ("Dockerfile.debug", Some("dockerfile")),
            ("Dockerfile-pinned-as", Some("dockerfile")),
            ("Containerfile_dev", Some("dockerfile")),
            ("build/Dockerfile", Some("dockerfile")),
            ("Dockerfiles", None),
            ("Dockerfile.dockerignore", None),
            ("Dockerfile.md", None),
            ("MyDockerfile", None),
            ("compose.yaml", Some("compose")),
            ("compose.yml", Some("compose")),
            ("docker-compose.yml", Some("compose")),
            ("docker-compose.prod.yaml", Some("compose")),
            ("compose.override.yml", Some("compose")),
            ("deploy/compose.yaml", Some("compose")),
            ("deploy.yaml", Some("kubernetes")),
            ("values.YML", Some("kubernetes")),
            ("composer.yaml", Some("kubernetes")),
            ("compose/app.yaml", Some("kubernetes")),
            (".github/workflows/ci.yml", Some("github-actions")),
            (".github/workflows/compose.yml", Some("compose")),
            ("tools/action.yaml", Some("github-actions")),
            (".github/dependabot.yml", Some("kubernetes")),
            (".gitlab-ci.yml", Some("gitlab-ci")),
            ("ci/cloudbuild-release.yaml", Some("cloudbuild")),
            ("README.md", None),
            ("compose.json", None),
        ];
        for (path, want) in cases {
            let got = Detected::from_path(path).and_then(|d| d.settle(path, "a: 1\n"));
            assert_eq!(got.map(Format::name), want, "{path}");
        }
    }

    #[test]
    fn only_settles_to_its_format() {
        for format in FORMATS {
            assert_eq!(Detected::only(*format).settle("f", ""), Some(*format));
        }
    }
}
