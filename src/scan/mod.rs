//! Scanning: find every image reference in a tree, with exact byte spans.
//!
//! A *format* (`dockerfile`, `compose`, `kubernetes`) is a small module with one job:
//! given a file's text, return [`Candidate`]s, byte ranges where an image reference is
//! written. The format table ([`FORMATS`]) lists them with the files each reads. This module turns candidates into [`Found`]s in one place: the reference is
//! always cut from the file at the span (so `file[start..end] == reference` by
//! construction), parsed with [`crate::imageref`], and placed at a line and column.
//! [`walk`] picks the files and runs the formats over them in parallel.
//!
//! A reference written across several fields (`repository`, `tag`, `digest` keys) is
//! reported as one candidate with its parts ([`Composed`]): each part's text is cut
//! from the file at its span, the reference is the one they make together, and the
//! candidate's span is the digest's slot ([`DigestSlot`]: replace the digest's bytes,
//! or insert one at an offset), the only bytes [`crate::edit`] rewrites for it.
//!
//! # Adding a format
//!
//! 1. Write `src/scan/<name>.rs` with a `//!` doc saying what it reads, and:
//!    - `pub fn extract(text: &str) -> Extracted`: a [`Candidate`] per reference (the
//!      span of the reference as written, without quotes; [`Candidate::composed`] for
//!      one written across several fields), and a note `(1-based line, why)` for what
//!      cannot be read. YAML formats build on `yaml.rs` (positioned nodes, anchors,
//!      the size caps); `vars.rs` decides what `${VAR}` text means. Spans must fall
//!      on the file's bytes; text is never re-serialized.
//!    - `pub const FORMAT: Format = Format::new(&Spec { name, reads, accepts, extract })`:
//!      `reads` is a predicate over the path relative to the root (`/`-separated;
//!      [`format::file_name`] and [`format::is_yaml`] help), `accepts` a content sniff
//!      over the path and text for files the path alone does not settle
//!      ([`format::any_text`] otherwise).
//! 2. Add `pub mod <name>;` here and `<name>::FORMAT` to [`FORMATS`], before
//!    any more general format that would also read its files (formats are tried in
//!    order; the first whose path predicate and sniff accept a file reads it).
//!
//! That is all: the walk, `[scan] formats` in the repository config (names and
//! suggestions), the webhook's "does this push touch a scanned file", `update`'s
//! rewrite and verification, and the property tests that feed every format hostile
//! text all come from the table. Add unit tests of the shapes the format reads (spans
//! checked by `testing::found`), a fixture under `tests/fixtures/tree` for the
//! snapshot, and its entry in the README's "What each format reads".

pub mod cloudbuild;
pub mod compose;
pub mod dockerfile;
mod embedded;
pub mod extra;
pub mod format;
pub mod github_actions;
pub mod gitlab_ci;
pub mod helm_chart;
pub mod helm_values;
mod image_fields;
pub mod ko;
pub mod kubernetes;
pub mod kustomize;
mod source;
mod vars;
pub mod walk;
mod yaml;
mod yaml_lines;

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::imageref::{DEFAULT_TAG, ImageRef, Platform};

pub use format::{Detected, Format};
pub use source::LineIndex;

/// The format table: every format repin reads, in the order they are tried (the
/// specific before the general: a file is read by the first whose path predicate and
/// sniff accept it). See [`mod@format`] and "Adding a format" above.
pub const FORMATS: &[Format] = &[
    dockerfile::FORMAT,
    compose::FORMAT,
    github_actions::FORMAT,
    gitlab_ci::FORMAT,
    cloudbuild::FORMAT,
    kustomize::FORMAT,
    ko::FORMAT,
    helm_chart::FORMAT,
    helm_values::FORMAT,
    kubernetes::FORMAT,
    extra::FORMAT,
];

/// Files larger than this are reported and skipped: no real manifest comes close, and
/// reading one into memory should not be a way to exhaust it.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Image references reported per file; past it, a warning. Real files hold a handful (the
/// corpus's largest holds well under a hundred); the cap keeps a hostile file of
/// millions of one-line references from costing gigabytes in findings.
pub const MAX_REFERENCES_PER_FILE: usize = 10_000;

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
    /// Byte range of the reference in the file, without surrounding quotes; for a
    /// reference written across several fields, its digest's slot (`composed.digest`).
    pub span: Range<usize>,
    /// A platform the file fixes for this reference (`FROM --platform=linux/arm64`).
    pub platform: Option<Platform>,
    /// Set when the format already knows the text is not a literal reference.
    pub skip: Option<SkipReason>,
    /// Set for a reference written across several fields.
    pub composed: Option<Composed>,
}

impl Candidate {
    fn at(span: Range<usize>) -> Self {
        Self {
            span,
            platform: None,
            skip: None,
            composed: None,
        }
    }

    /// A reference written across several fields: the span is the digest's slot.
    #[must_use]
    pub fn composed(composed: Composed) -> Self {
        Self {
            span: composed.digest.span.clone(),
            platform: None,
            skip: None,
            composed: Some(composed),
        }
    }
}

/// A reference written across several fields (`repository`, `tag` and `digest` keys,
/// as Helm values and Kustomize write them), as a format reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The reference the fields make together
    /// (`docker.io/bitnami/redis:7.2@sha256:<hex>`), as the format composes it.
    pub reference: String,
    /// Each field's name and byte range in the file; the digest's field, when it is
    /// written, among them with the slot's span.
    pub parts: Vec<(&'static str, Range<usize>)>,
    /// Where the digest is written or goes.
    pub digest: DigestSlot,
}

/// Where the digest of a reference written across several fields goes: the one place
/// [`crate::edit`] rewrites for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSlot {
    /// The digest's bytes in the file; empty when none is written yet and the digest
    /// is inserted at `span.start`.
    pub span: Range<usize>,
    /// Written before an inserted digest; empty to replace one. `@` means the slot is
    /// right after the whole reference as composed, so a reference without a tag
    /// gets `:latest@` there (see [`crate::edit::Edit::pin`]).
    pub lead: &'static str,
    /// Written as bare hex (a `sha: <hex>` field), not `sha256:<hex>`.
    pub bare: bool,
    /// Whether a digest may be inserted at an empty span. `false` for a reference
    /// with no place for one (a Helm image map without a `digest` field): `--pin`
    /// leaves it as it is.
    pub insertable: bool,
}

impl DigestSlot {
    /// A digest written at `span` (bare hex when `bare`), replaced in place.
    #[must_use]
    pub fn replace(span: Range<usize>, bare: bool) -> Self {
        Self {
            span,
            lead: "",
            bare,
            insertable: true,
        }
    }

    /// An empty field at `at` that a digest fills (bare hex when `bare`).
    #[must_use]
    pub fn fill(at: usize, bare: bool) -> Self {
        Self {
            span: at..at,
            lead: "",
            bare,
            insertable: true,
        }
    }

    /// A digest inserted at `at`, after the whole reference, with `@`.
    #[must_use]
    pub fn after(at: usize) -> Self {
        Self {
            span: at..at,
            lead: "@",
            bare: false,
            insertable: true,
        }
    }

    /// No place for a digest (`at`: where the reference's fields end, for its line).
    #[must_use]
    pub fn none(at: usize) -> Self {
        Self {
            span: at..at,
            lead: "",
            bare: false,
            insertable: false,
        }
    }
}

/// Whether a string under a key that is not plainly `image` is written like a
/// reference: no whitespace, and either it parses as one with a tag or a digest
/// (`cover.png`, a cloud disk image `debian-cloud/debian-11` or
/// `projects/p/global/images/family/f` are not), or it is a template or variable
/// holding a `/`, `:` or `@` (then it is reported as such).
#[must_use]
pub fn written_like_reference(text: &str) -> bool {
    if text.contains(char::is_whitespace) {
        return false;
    }
    if text.contains("{{") || text.contains('$') {
        return text.contains(['/', ':', '@']);
    }
    crate::imageref::ImageRef::parse(text).is_ok_and(|r| r.tag.is_some() || r.digest.is_some())
}

/// One field of a reference written across several, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// What the field holds, in the format's words: `registry`, `repository`, `tag`,
    /// `digest`, ….
    pub name: &'static str,
    /// Byte offsets in the file; `file[start..end] == text`.
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
    /// The field's text as written.
    pub text: String,
}

/// How a reference written across several fields is found: its parts and its digest's
/// slot (the finding's `span`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The fields, in file order.
    pub parts: Vec<Part>,
    /// Where the digest is, or goes.
    pub digest: DigestSlot,
}

/// A problem in one file that does not stop the scan. Displays as `path:line: why`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Warning {
    /// The file, relative to the scanned root.
    pub path: String,
    /// 1-based line the problem is on, when there is one.
    pub line: Option<usize>,
    /// What went wrong.
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
    /// The references found.
    pub candidates: Vec<Candidate>,
    /// What could not be read: a 1-based line and why.
    pub notes: Vec<(usize, String)>,
    /// Local files this file pulls in (GitLab CI's `include: local:`): paths relative
    /// to the scanned root, `/`-separated, with `*` (within a folder) and `**` globs.
    /// The walk reads those no format claims by their own path with this file's format.
    pub pulls_in: Vec<String>,
}

impl Extracted {
    /// Records what a YAML format made of an image value: a candidate where it is
    /// written verbatim, a note where it cannot be edited in place, nothing when absent.
    pub fn push_image(&mut self, value: yaml::ImageValue) {
        match value {
            yaml::ImageValue::At(span) => self.candidates.push(Candidate::at(span)),
            yaml::ImageValue::Unreadable(line) => {
                self.notes.push((line, yaml::UNREADABLE.to_owned()));
            }
            yaml::ImageValue::Absent => {}
        }
    }

    /// Parses a whole YAML file, noting its syntax error (if any) at its line.
    fn parse_yaml(&mut self, text: &str) -> yaml::Yaml {
        let (parsed, error) = yaml::parse(text);
        if let Some(error) = error {
            self.notes
                .push((error.line, format!("YAML syntax error: {}", error.message)));
        }
        parsed
    }
}

/// One image reference found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the scanned root, `/`-separated.
    pub path: String,
    /// The format that read the file.
    pub format: Format,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column of `span.start`, counted in characters.
    pub column: usize,
    /// Byte range in the file; `file[span] == reference` for a reference written as
    /// one string. For one written across several fields, the digest's slot.
    pub span: Range<usize>,
    /// The reference exactly as written; for one written across several fields, the
    /// reference they make together.
    pub reference: String,
    /// The parsed reference, when it is one.
    pub image: Option<ImageRef>,
    /// The platform the file fixes for it (`FROM --platform=…`), if any.
    pub platform: Option<Platform>,
    /// `None` when the reference can be updated.
    pub skip_reason: Option<SkipReason>,
    /// Set for a reference written across several fields.
    pub fields: Option<Fields>,
    /// For a pin without a tag: the tag it follows, and where that was said.
    pub follow: Option<Follow>,
}

/// The tag a pin without one follows, and where it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Follow {
    /// The tag looked up for the new digest.
    pub tag: String,
    /// Where it was given: `comment` (`# repin: tag=…`), `ratchet` (the
    /// `# ratchet:image:tag` another pinning tool leaves), or `rule` (`follow_tag` in
    /// the config).
    pub from: &'static str,
}

impl Found {
    /// Number of fields [`Found::serialize_fields`] writes (at most).
    pub const FIELDS: usize = 15;

    /// The tag the reference is looked up by: the one written, else the one it
    /// follows, else `latest`. `None` when it is not a parsed reference.
    #[must_use]
    pub fn lookup_tag(&self) -> Option<&str> {
        let image = self.image.as_ref()?;
        let followed = self.follow.as_ref().map(|f| f.tag.as_str());
        Some(image.tag.as_deref().or(followed).unwrap_or(DEFAULT_TAG))
    }

    /// The text at [`Found::span`]: the reference, or for one written across several
    /// fields its digest part's text (empty when the digest is still to be inserted).
    #[must_use]
    pub fn written(&self) -> &str {
        match &self.fields {
            None => &self.reference,
            Some(fields) => fields
                .parts
                .iter()
                .find(|p| p.start == self.span.start && p.end == self.span.end)
                .map_or("", |p| p.text.as_str()),
        }
    }

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
        st.serialize_field("skip_reason", &self.skip_reason.map(SkipReason::name))?;
        match &self.fields {
            Some(fields) => st.serialize_field("parts", &fields.parts)?,
            None => st.skip_field("parts")?,
        }
        match &self.follow {
            Some(follow) => st.serialize_field("follow", follow),
            None => st.skip_field("follow"),
        }
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

/// One file's scan: the format that read it (`None`: none did), its findings and its
/// warnings.
#[derive(Debug, Default)]
pub struct FileScan {
    /// The format that read the file.
    pub format: Option<Format>,
    /// Its findings.
    pub found: Vec<Found>,
    /// Its warnings.
    pub warnings: Vec<Warning>,
    /// The local files it pulls in ([`Extracted::pulls_in`]).
    pub pulls_in: Vec<String>,
}

/// Scans one file's bytes with the first format the path admits that accepts the text
/// ([`Detected::settle`]); that format, or `None` when none reads the file, comes back
/// with the findings. `path` is only used for output.
///
/// # Errors
/// A [`Warning`] when the file cannot be read as text at all (binary, not UTF-8,
/// empty). Problems inside a readable file come back in the `Vec<Warning>` beside the
/// findings, so one bad document does not hide the good ones.
pub fn scan_bytes(path: &str, detected: Detected, bytes: &[u8]) -> Result<FileScan, Warning> {
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
    Ok(match detected.settle(path, text) {
        Some(format) => {
            let mut extracted = format.extract(text);
            let pulls_in = std::mem::take(&mut extracted.pulls_in);
            let (found, warnings) = place_all(path, format, text, extracted);
            FileScan {
                format: Some(format),
                found,
                warnings,
                pulls_in,
            }
        }
        None => FileScan::default(),
    })
}

/// Scans one file's text: runs the format, then cuts, parses and places each candidate.
#[must_use]
pub fn scan_text(path: &str, format: Format, text: &str) -> (Vec<Found>, Vec<Warning>) {
    place_all(path, format, text, format.extract(text))
}

/// Turns a format's candidates for one file into findings, and its notes into warnings.
fn place_all(
    path: &str,
    format: Format,
    text: &str,
    extracted: Extracted,
) -> (Vec<Found>, Vec<Warning>) {
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
    let mut notes = extracted.notes;
    // A span that composed references of different images share (one `ARG DIGEST`
    // used by `FROM a:1@${DIGEST}` and `FROM b:1@${DIGEST}`) holds no one digest
    // that is right for all of them: it is not a finding.
    let mut shared = Vec::new();
    candidates.dedup_by(|later, kept| {
        if later.span != kept.span {
            return false;
        }
        if later.platform != kept.platform {
            kept.platform = None;
        }
        let reference = |c: &Candidate| c.composed.as_ref().map(|c| c.reference.clone());
        if reference(later) != reference(kept) {
            shared.push((kept.span.start, kept.span.end));
        }
        true
    });
    shared.dedup();
    if !shared.is_empty() {
        let set: std::collections::HashSet<_> = shared.iter().copied().collect();
        candidates.retain(|c| !set.contains(&(c.span.start, c.span.end)));
        notes.extend(shared.iter().map(|&(start, _)| {
            (
                lines.line_column(text, start).0,
                "one digest is written for references to different images; it cannot be updated for each"
                    .to_owned(),
            )
        }));
    }
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
    let (reference, fields) = match &candidate.composed {
        None => (text.get(candidate.span.clone())?, None),
        Some(composed) => (
            composed.reference.as_str(),
            Some(fields_of(text, composed)?),
        ),
    };
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
    // A pin without a tag follows the tag a comment names.
    let follow = (skip == Some(SkipReason::NoTag))
        .then(|| hint(text, lines, &candidate.span, image.as_ref()))
        .flatten();
    let skip = if follow.is_some() { None } else { skip };
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
        fields,
        follow,
    })
}

/// The tag a comment names for the reference at `span`: a comment right after it on its
/// line — only blanks and a closing quote between, so `#` inside a string, or a comment
/// after other references on the line, is not one — or a comment alone on the line
/// above (where a Dockerfile, whose comments are whole lines, writes it).
/// `# repin: tag=3.20`, or the hint `ratchet` leaves, `# ratchet:alpine:3.20`, which
/// counts only when it names this reference's image.
fn hint(
    text: &str,
    lines: &LineIndex,
    span: &Range<usize>,
    image: Option<&ImageRef>,
) -> Option<Follow> {
    let image = image?;
    let line = lines.line(span.start);
    let end = lines.start(line + 1).unwrap_or(text.len()).max(span.end);
    let after = text.get(span.end..end)?;
    if let Some(i) = after.find('#') {
        let between = &after[..i];
        let quote_closed = between.trim().is_empty() || matches!(between.trim(), "\"" | "'");
        if quote_closed && between.ends_with([' ', '\t']) {
            return parse_hint(&after[i..], image);
        }
        return None;
    }
    let above = lines.start(line.checked_sub(1)?)?;
    let previous = text.get(above..lines.start(line)?)?.trim();
    previous
        .starts_with('#')
        .then(|| parse_hint(previous, image))
        .flatten()
}

/// A hint comment (`# repin: tag=…`, `# ratchet:image:tag` for this `image`), starting
/// at its `#`.
fn parse_hint(comment: &str, image: &ImageRef) -> Option<Follow> {
    let body = comment.strip_prefix('#')?.trim_start();
    if let Some(rest) = body.strip_prefix("repin:") {
        let tag = rest
            .trim_start()
            .strip_prefix("tag=")?
            .split_whitespace()
            .next()?;
        crate::imageref::check_tag(tag).ok()?;
        return Some(Follow {
            tag: tag.to_owned(),
            from: "comment",
        });
    }
    let pinned = body.strip_prefix("ratchet:")?.split_whitespace().next()?;
    let named = ImageRef::parse(pinned).ok()?;
    // A hint for another image is not this reference's.
    (named.name() == image.name()).then_some(())?;
    Some(Follow {
        tag: named.tag?,
        from: "ratchet",
    })
}

/// The parts of a composed reference, each cut from the file at its span; `None` when a
/// span is not in the file, or the slot is neither empty nor one of the parts.
fn fields_of(text: &str, composed: &Composed) -> Option<Fields> {
    let parts = composed
        .parts
        .iter()
        .map(|(name, span)| {
            Some(Part {
                name,
                start: span.start,
                end: span.end,
                text: text.get(span.clone())?.to_owned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let slot = &composed.digest;
    let placed = slot.span.is_empty() && text.is_char_boundary(slot.span.start)
        || parts
            .iter()
            .any(|p| p.start == slot.span.start && p.end == slot.span.end);
    placed.then(|| Fields {
        parts,
        digest: slot.clone(),
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
    use super::{Format, Found, Warning, scan_text};

    /// Reference, line and skip reason of a finding.
    pub type Row = (String, usize, Option<&'static str>);

    /// Scans `text`, checking that every finding's span holds its reference.
    pub fn found(format: Format, text: &str) -> (Vec<Found>, Vec<Warning>) {
        let (found, warnings) = scan_text("f", format, text);
        for f in &found {
            assert_eq!(&text[f.span.clone()], f.written());
            for part in f.fields.iter().flat_map(|fields| &fields.parts) {
                assert_eq!(&text[part.start..part.end], part.text);
            }
        }
        (found, warnings)
    }

    /// A format for tests of references written across several fields: lines
    /// `repository: X`, `tag: Y` (which may hold `Y@digest`) and an optional
    /// `digest: D` (`sha256:<hex>`, bare hex, or empty), composed as `X:Y@D`. Without
    /// a digest, one goes after the tag, with `@`.
    pub const FIELDS: Format = Format::new(&super::format::Spec {
        name: "fields-test",
        reads: |_| true,
        accepts: super::format::any_text,
        extract: fields,
    });

    fn fields(text: &str) -> super::Extracted {
        use super::{Candidate, Composed, DigestSlot};
        let value = |key: &str| {
            let at = text.find(&format!("{key}: "))? + key.len() + 2;
            let end = text[at..].find('\n').map_or(text.len(), |e| at + e);
            Some(at..end)
        };
        let mut out = super::Extracted::default();
        let (Some(repo), Some(tag)) = (value("repository"), value("tag")) else {
            return out;
        };
        let mut parts = vec![("repository", repo.clone())];
        let (tag_span, digest) = match (text[tag.clone()].find('@'), value("digest")) {
            (Some(at), _) => {
                let digest = tag.start + at + 1..tag.end;
                parts.push(("digest", digest.clone()));
                (
                    tag.start..tag.start + at,
                    DigestSlot::replace(digest, false),
                )
            }
            (None, Some(d)) => {
                let bare = !d.is_empty() && !text[d.clone()].starts_with("sha256:");
                if !d.is_empty() {
                    parts.push(("digest", d.clone()));
                }
                let slot = if d.is_empty() {
                    DigestSlot::fill(d.start, bare)
                } else {
                    DigestSlot::replace(d, bare)
                };
                (tag.clone(), slot)
            }
            (None, None) => (tag.clone(), DigestSlot::after(tag.end)),
        };
        parts.insert(1, ("tag", tag_span.clone()));
        let digest_text = &text[digest.span.clone()];
        let reference = match (digest_text.is_empty(), digest.bare) {
            (true, _) => format!("{}:{}", &text[repo], &text[tag_span]),
            (false, true) => format!("{}:{}@sha256:{digest_text}", &text[repo], &text[tag_span]),
            (false, false) => format!("{}:{}@{digest_text}", &text[repo], &text[tag_span]),
        };
        out.candidates.push(Candidate::composed(Composed {
            reference,
            parts,
            digest,
        }));
        out
    }

    /// [`found`] as rows.
    pub fn rows(format: Format, text: &str) -> (Vec<Row>, Vec<Warning>) {
        let (found, warnings) = found(format, text);
        let rows = found
            .into_iter()
            .map(|f| {
                (
                    f.reference,
                    f.line,
                    f.skip_reason.map(super::SkipReason::name),
                )
            })
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
        let (found, warnings) = scan_text("Dockerfile", dockerfile::FORMAT, &text);
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
        let (found, warnings) = scan_text("k.yaml", kubernetes::FORMAT, &yaml);
        assert_eq!(found.len(), MAX_REFERENCES_PER_FILE);
        assert!(!warnings.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// A pin without a tag follows the tag a comment names — `# repin: tag=…` on its
    /// line or alone on the line above, or ratchet's `# ratchet:image:tag` — and is
    /// then updatable; without a hint, or with a malformed one, it stays `no-tag`; a
    /// reference with its own tag ignores hints.
    #[test]
    fn pins_without_a_tag_follow_a_hinted_tag() {
        let follow = |format: Format, text: &str| {
            let (found, _) = scan_text("f", format, text);
            let f = &found[0];
            (
                f.follow.as_ref().map(|f| (f.tag.clone(), f.from)),
                f.skip_reason.map(SkipReason::name),
                f.lookup_tag().map(str::to_owned),
            )
        };
        let compose = compose::FORMAT;
        let yes = |tag: &str, from| (Some((tag.to_owned(), from)), None, Some(tag.to_owned()));
        assert_eq!(
            follow(
                compose,
                &format!("services:\n  a:\n    image: alpine@{D}  # repin: tag=3.20\n")
            ),
            yes("3.20", "comment")
        );
        assert_eq!(
            follow(
                compose,
                &format!("services:\n  a:\n    image: \"alpine@{D}\" # ratchet:alpine:3.20\n")
            ),
            yes("3.20", "ratchet")
        );
        assert_eq!(
            follow(
                dockerfile::FORMAT,
                &format!("# repin: tag=1.22-alpine\nFROM golang@{D} AS b\n")
            ),
            yes("1.22-alpine", "comment")
        );
        assert_eq!(
            follow(
                ko::FORMAT,
                &format!(
                    "defaultBaseImage: localhost:5000/base@{D} # ratchet:localhost:5000/base:v2\n"
                )
            ),
            yes("v2", "ratchet")
        );
        for text in [
            format!("services:\n  a:\n    image: alpine@{D}\n"),
            format!("services:\n  a:\n    image: alpine@{D}  # repin: tag=-bad\n"),
            format!("services:\n  a:\n    image: alpine@{D}  # repin: 3.20\n"),
        ] {
            assert_eq!(
                follow(compose, &text),
                (None, Some("no-tag"), Some("latest".to_owned())),
                "{text}"
            );
        }
        // Not this reference's comment: a `#` inside a string, a comment after other
        // references on the line, ratchet's hint for another image.
        for text in [
            format!("app: {{image: \"alpine@{D}\", note: \"pin with # repin: tag=2.0\"}}\n"),
            format!("services:\n  a:\n    image: alpine@{D} # ratchet:acme/other:2.0\n"),
        ] {
            let format = if text.starts_with("app") {
                helm_values::FORMAT
            } else {
                compose
            };
            assert_eq!(follow(format, &text).0, None, "{text}");
        }
        let two = format!(
            "images: [{{name: a, digest: \"{D}\"}}, {{name: b, digest: \"{D}\"}}] # repin: tag=2.0\n"
        );
        let (found, _) = scan_text("kustomization.yaml", kustomize::FORMAT, &two);
        assert!(found.iter().all(|f| f.follow.is_none()), "{found:?}");
        let tagged = format!("services:\n  a:\n    image: alpine:3.19@{D}  # repin: tag=3.20\n");
        assert_eq!(
            follow(compose, &tagged),
            (None, None, Some("3.19".to_owned()))
        );
        let (found, _) = scan_text(
            "f",
            compose,
            &format!("services:\n  a:\n    image: alpine@{D}  # repin: tag=3.20\n"),
        );
        let json = serde_json::to_value(&found[0]).unwrap();
        assert_eq!(
            json["follow"],
            serde_json::json!({"tag": "3.20", "from": "comment"})
        );
    }

    #[test]
    fn bad_bytes_are_warnings() {
        let w = scan_bytes("a/Dockerfile", Detected::only(dockerfile::FORMAT), b"").unwrap_err();
        assert_eq!(w.to_string(), "a/Dockerfile: empty file");
        let w =
            scan_bytes("x.yaml", Detected::only(kubernetes::FORMAT), b"a: 1\n\0\0").unwrap_err();
        assert_eq!(w.to_string(), "x.yaml: binary file (contains NUL bytes)");
        let w = scan_bytes(
            "x.yaml",
            Detected::only(kubernetes::FORMAT),
            b"a: 1\nb: \xff\n",
        )
        .unwrap_err();
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
            for format in FORMATS {
                let _ = scan_bytes("f", Detected::only(*format), &bytes);
            }
        }

        #[test]
        fn spans_hold_references_on_generated_input(text in soup()) {
            for format in FORMATS {
                let _ = testing::found(*format, &text);
            }
        }
    }

    #[test]
    fn digest_without_tag_is_no_tag() {
        let text = format!("FROM alpine@sha256:{}\n", "a".repeat(64));
        let (found, _) = scan_text("Dockerfile", dockerfile::FORMAT, &text);
        assert_eq!(found[0].skip_reason, Some(SkipReason::NoTag));
        assert!(found[0].image.is_some());
    }
}
