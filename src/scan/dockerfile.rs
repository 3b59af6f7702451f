//! Dockerfiles and Containerfiles: image references in `FROM`, `COPY --from`,
//! `RUN --mount=…,from=`, the `# syntax=` directive, and `ARG` defaults used by `FROM`.
//!
//! The file is read the way `BuildKit` reads it, in one pass: parser directives at the top
//! (`# syntax=`, `# escape=`), then logical lines (physical lines joined at the escape
//! character, comment lines inside a continuation dropped), with heredoc bodies
//! (`RUN <<EOF … EOF`) skipped as data. Each logical line keeps a map from its bytes back
//! to file offsets, so a token's span is exact even when the instruction spans lines.
//!
//! Stage names (`FROM … AS build`) are not images: a later `FROM build`, `COPY
//! --from=build` or `--from=0` refers to a stage.
//!
//! Variables are expanded as `BuildKit` expands them for `FROM`: from the global `ARG`
//! defaults (those before the first `FROM`; a stage's own `ARG`s for `COPY --from` and
//! `RUN --mount`), `ARG` defaults themselves built from earlier `ARG`s, and
//! `${NAME:-default}`. Each byte of the result is traced to where it is written, so:
//! `FROM ${BASE}` with `ARG BASE=image` reports the span inside the `ARG` line; a
//! reference put together from several places (`ARG GO=1.22@sha256:…` with
//! `FROM golang:${GO}`, or `ARG JVM=acme/temurin` with `FROM ${JVM}:21-jre@sha256:…`)
//! is a composed finding whose digest part is where the digest is written, the one
//! place an update rewrites (a digest to add goes after the `FROM` word). A variable
//! with no value, or a digest spread over several places, leaves the text
//! `contains-variable`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::format::{self, Format, Spec};
use super::vars::{Segment, segments};
use super::{Candidate, Composed, DigestSlot, Extracted, SkipReason};
use crate::imageref::Platform;

/// The format's row in the table ([`super::format`]).
pub const FORMAT: Format = Format::new(&Spec {
    name: "dockerfile",
    reads,
    accepts: format::any_text,
    extract,
});

/// Dockerfiles and Containerfiles by file name: `Dockerfile`, `api.Dockerfile`,
/// `Dockerfile.debug`, `Containerfile-dev`, any case; not `Dockerfiles`,
/// `MyDockerfile`, nor `Dockerfile.<ext>` for the endings in [`NOT_DOCKERFILE`].
#[must_use]
pub fn reads(rel: &str) -> bool {
    const BASES: [&str; 2] = ["dockerfile", "containerfile"];
    let lower = format::file_name(rel).to_ascii_lowercase();
    BASES.iter().any(|base| {
        lower
            .strip_suffix(base)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
            || lower.strip_prefix(base).is_some_and(|rest| {
                rest.starts_with(['.', '-', '_'])
                    && !NOT_DOCKERFILE.iter().any(|ext| rest.ends_with(ext))
            })
    })
}

/// Endings of names that start like a Dockerfile's (`Dockerfile.*`, `Dockerfile-*`,
/// `Dockerfile_*`) but are not one (`Dockerfile.dockerignore` is `BuildKit`'s
/// per-Dockerfile ignore file).
pub const NOT_DOCKERFILE: [&str; 6] = [".dockerignore", ".md", ".txt", ".json", ".sh", ".orig"];

/// Extracts image references from a Dockerfile's text.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    extract_interpolated(text, &HashSet::new())
}

/// [`extract`] for a Dockerfile some other tool fills in first (Compose's
/// `dockerfile_inline`): a variable whose `$` is at one of the `opaque` offsets is
/// that tool's, its value unknown here.
#[must_use]
pub(super) fn extract_interpolated(text: &str, opaque: &HashSet<usize>) -> Extracted {
    let mut parser = Parser::new(text, opaque);
    parser.run();
    parser.out
}

/// A logical line: its text with continuations removed, and each byte's file offset.
struct Logical {
    text: String,
    offsets: Vec<usize>,
    /// File offset of the first byte of the line's first physical line.
    start: usize,
}

impl Logical {
    /// The file span of `range` of the logical text, if those bytes are contiguous in the
    /// file (a token split by a line continuation is not).
    fn file_span(&self, range: Range<usize>) -> Option<Range<usize>> {
        if range.is_empty() {
            return None;
        }
        let start = self.offsets[range.start];
        let end = self.offsets[range.end - 1] + 1;
        (end - start == range.len()).then_some(start..end)
    }
}

/// A whitespace-separated word of a logical line, with quotes understood.
#[derive(Debug, Clone)]
struct Word {
    /// Range in the logical text, quotes included.
    range: Range<usize>,
}

/// A run of an expanded value's bytes, written contiguously in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    /// The bytes' span in the file.
    span: Range<usize>,
    /// Where they are written, as the finding's part names say: `from` (the
    /// instruction's own text), `default` (a `${NAME:-default}` there), `arg` (an `ARG`
    /// line's default).
    name: &'static str,
}

/// Why a value cannot be traced to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    /// A variable with no value in the file (not declared, no default, or one of
    /// `BuildKit`'s [`AUTOMATIC_ARGS`]), an expansion this reader does not follow, or a
    /// value grown past [`MAX_PIECES`] or [`MAX_EXPANDED`].
    Variable,
    /// Bytes split by a line continuation, on the logical line starting at this offset.
    Split(usize),
}

/// A value with its variables expanded.
#[derive(Debug, Clone, Default)]
struct Value {
    /// The pieces it is made of, in order.
    pieces: Vec<Piece>,
    /// Why it cannot be known, if it cannot (then `pieces` is what could be read).
    unknown: Option<Unknown>,
    /// Every `ARG` default span it reads, each once: what a use of the value touches.
    touched: Vec<Range<usize>>,
    /// More `ARG` spans were read than [`MAX_TOUCHED`]: what it touches is not known.
    overflow: bool,
}

impl Value {
    fn unknown(&mut self, why: Unknown) {
        self.unknown.get_or_insert(why);
    }

    fn touch(&mut self, span: &Range<usize>) {
        if !self.touched.contains(span) {
            if self.touched.len() == MAX_TOUCHED {
                self.overflow = true;
            } else {
                self.touched.push(span.clone());
            }
        }
    }

    /// Appends what another value is made of (an `ARG` a variable names).
    fn extend(&mut self, other: &Self) {
        self.pieces.extend(other.pieces.iter().cloned());
        if let Some(why) = other.unknown {
            self.unknown(why);
        }
        for span in &other.touched {
            self.touch(span);
        }
        self.overflow |= other.overflow;
    }
}

/// Most pieces one expanded value may have; `ARG`s built from `ARG`s could otherwise
/// double at every line.
const MAX_PIECES: usize = 32;

/// Most bytes one expanded value may have (a reference is far shorter).
const MAX_EXPANDED: usize = 4096;

/// Most `ARG` default spans one value records as read; past it, digests written in
/// `ARG` lines are not updated (no one could say which uses agree).
const MAX_TOUCHED: usize = 64;

/// `ARG`s `BuildKit` sets for every build from the platforms it builds for and on:
/// their values are never the file's, whatever default it writes.
const AUTOMATIC_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// What the uses of one `ARG` default span resolve to: one reference for all, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Uses {
    /// Every use so far makes this reference (or names this stage).
    One(String),
    /// Uses disagree, or one cannot be resolved: no digest written there is right for
    /// all of them.
    Conflict,
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next physical line.
    pos: usize,
    escape: u8,
    /// `ARG`s declared before the first `FROM`, with their defaults expanded (`None`:
    /// declared without one); only these reach `FROM` lines. A stage's own `ARG`s
    /// reach no image (`BuildKit` expands no variable in `COPY --from` or a mount's
    /// `from`).
    global_args: HashMap<String, Option<Value>>,
    /// Per `ARG` default span, what the `FROM`s that read it resolve to.
    uses: HashMap<(usize, usize), Uses>,
    /// Candidates whose digest is written in an `ARG` default: (index in
    /// `out.candidates`, that default's span).
    in_args: Vec<(usize, Range<usize>)>,
    /// Some use read more `ARG` spans than recorded: digests in `ARG` lines are not
    /// updated.
    untracked: bool,
    /// Offsets of `$`s another tool expands first ([`extract_interpolated`]).
    opaque: &'a HashSet<usize>,
    /// Stage names seen so far, lowercased (`BuildKit` compares them case-insensitively):
    /// a set, so a file with many stages costs linear time, not quadratic.
    stages: HashSet<String>,
    in_stage: bool,
    out: Extracted,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, opaque: &'a HashSet<usize>) -> Self {
        Self {
            text,
            pos: if text.starts_with('\u{feff}') { 3 } else { 0 },
            escape: b'\\',
            global_args: HashMap::new(),
            uses: HashMap::new(),
            in_args: Vec::new(),
            untracked: false,
            opaque,
            stages: HashSet::new(),
            in_stage: false,
            out: Extracted::default(),
        }
    }

    fn line_number(&self, offset: usize) -> usize {
        super::source::line_of(self.text, offset)
    }

    /// The next physical line: (start offset, content without the line break).
    fn next_physical(&mut self) -> Option<(usize, &'a str)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    }

    fn run(&mut self) {
        self.directives();
        while let Some(logical) = self.next_logical() {
            self.instruction(&logical);
        }
        self.drop_shared_digests();
    }

    /// Drops each finding whose digest is written in an `ARG` default that another use
    /// resolves differently (another image, or a text that cannot be resolved): no one
    /// digest there is right for every `FROM` that reads it.
    fn drop_shared_digests(&mut self) {
        let mut dropped = Vec::new();
        for (index, span) in &self.in_args {
            let conflict = self.untracked
                || !matches!(self.uses.get(&(span.start, span.end)), Some(Uses::One(_)));
            if conflict {
                dropped.push(*index);
            }
        }
        if dropped.is_empty() {
            return;
        }
        let mut noted = HashSet::new();
        for &index in dropped.iter().rev() {
            let candidate = self.out.candidates.remove(index);
            if !noted.insert((candidate.span.start, candidate.span.end)) {
                continue;
            }
            let line = self.line_number(candidate.span.start);
            self.out.notes.push((
                line,
                "the digest here is read by FROMs that make different references (or one that cannot be resolved); no one digest is right for all, so it is not updated"
                    .to_owned(),
            ));
        }
    }

    /// Parser directives: `# key=value` lines at the very top. The first line that is not
    /// one ends them.
    fn directives(&mut self) {
        loop {
            let save = self.pos;
            let Some((start, line)) = self.next_physical() else {
                return;
            };
            let Some((key, value_range)) = directive(line) else {
                self.pos = save;
                return;
            };
            let value = &line[value_range.clone()];
            match key.to_ascii_lowercase().as_str() {
                "syntax" if !value.is_empty() => self.out.candidates.push(Candidate::at(
                    start + value_range.start..start + value_range.end,
                )),
                "escape" => match value {
                    "`" => self.escape = b'`',
                    "\\" => self.escape = b'\\',
                    _ => {
                        let line = self.line_number(start);
                        self.out
                            .notes
                            .push((line, format!("invalid escape directive {value:?}")));
                    }
                },
                "syntax" | "check" => {}
                // An unknown directive is a comment, and a comment ends the directives.
                _ => return,
            }
        }
    }

    /// Whether a physical line ends with the escape character (then spaces/tabs), and if
    /// so the length of the content before it.
    fn continued(&self, line: &str) -> Option<usize> {
        let trimmed = line.trim_end_matches([' ', '\t']);
        trimmed
            .as_bytes()
            .last()
            .is_some_and(|b| *b == self.escape)
            .then(|| trimmed.len() - 1)
    }

    fn next_logical(&mut self) -> Option<Logical> {
        // Skip blank lines and comments between instructions.
        let (start, first) = loop {
            let (start, line) = self.next_physical()?;
            let trimmed = line.trim_start();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                break (start, line);
            }
        };
        let mut logical = Logical {
            text: String::new(),
            offsets: Vec::new(),
            start,
        };
        let mut piece = (start, first);
        loop {
            let (offset, line) = piece;
            let cont = self.continued(line);
            let content = &line[..cont.unwrap_or(line.len())];
            logical.text.push_str(content);
            logical.offsets.extend(offset..offset + content.len());
            if cont.is_none() {
                break;
            }
            // Within a continuation, comment lines and blank lines are dropped.
            let next = loop {
                match self.next_physical() {
                    None => break None,
                    Some((o, l)) => {
                        let t = l.trim_start();
                        if !t.is_empty() && !t.starts_with('#') {
                            break Some((o, l));
                        }
                    }
                }
            };
            match next {
                Some(p) => piece = p,
                None => break,
            }
        }
        Some(logical)
    }

    fn instruction(&mut self, line: &Logical) {
        let words = words(&line.text);
        let Some(first) = words.first() else {
            return;
        };
        let keyword = line.text[first.range.clone()].to_ascii_uppercase();
        let args = &words[1..];
        match keyword.as_str() {
            "FROM" => self.from(line, args),
            "ARG" => self.arg(line, args),
            "COPY" => {
                self.flags(line, args, |key, _| key == "from");
                self.heredocs(line, args);
            }
            "ADD" => self.heredocs(line, args),
            "RUN" => {
                self.mounts(line, args);
                self.heredocs(line, args);
            }
            _ => {}
        }
    }

    fn from(&mut self, line: &Logical, args: &[Word]) {
        self.in_stage = true;
        let mut platform = None;
        let mut image = None;
        let mut rest = args.iter();
        for word in rest.by_ref() {
            let text = &line.text[word.range.clone()];
            if let Some(value) = text.strip_prefix("--platform=") {
                platform = unquote(value).parse::<Platform>().ok();
            } else if !text.starts_with("--") {
                image = Some(word);
                break;
            }
        }
        let alias = match (rest.next(), rest.next()) {
            (Some(kw), Some(name)) if line.text[kw.range.clone()].eq_ignore_ascii_case("as") => {
                Some(line.text[name.range.clone()].to_ascii_lowercase())
            }
            _ => None,
        };
        if let Some(word) = image {
            self.image_word(line, word.range.clone(), platform, true);
        }
        if let Some(alias) = alias {
            self.stages.insert(alias);
        }
    }

    /// Reports the image written in `range` of the logical line (quotes allowed), unless
    /// it names a stage or `scratch`. `from_line` limits variables to global `ARG`s.
    fn image_word(
        &mut self,
        line: &Logical,
        range: Range<usize>,
        platform: Option<Platform>,
        from_line: bool,
    ) {
        let single_quoted = line.text[range.clone()].starts_with('\'');
        let range = unquoted_range(&line.text, range);
        let text = &line.text[range.clone()];
        if text.is_empty() || self.is_stage(text) || text.eq_ignore_ascii_case("scratch") {
            return;
        }
        if !from_line && text.bytes().all(|b| b.is_ascii_digit()) {
            return; // `--from=0`: a stage by index
        }
        if text.contains('$') {
            // Single quotes keep `$` literal, and `BuildKit` expands no variable in
            // `COPY --from` or a mount's `from`: such text is no reference to follow.
            if single_quoted || !from_line {
                self.push(line, range, platform, Some(SkipReason::ContainsVariable));
            } else {
                self.variable_image(line, range, platform);
            }
            return;
        }
        self.push(line, range, platform, None);
    }

    /// A `FROM` word with variables: expanded and traced to where its bytes are
    /// written. One `ARG` default holding a digest, or a `${BASE:-default}`, is a plain
    /// finding there; otherwise a composed finding whose digest part is where the
    /// digest is written, or after the word when there is none (never inside an `ARG`
    /// another `FROM` may read).
    fn variable_image(&mut self, line: &Logical, range: Range<usize>, platform: Option<Platform>) {
        let skip = Some(SkipReason::ContainsVariable);
        let value = self.expand(line, range.clone(), "from");
        let text: String = value
            .pieces
            .iter()
            .map(|p| &self.text[p.span.clone()])
            .collect();
        let known = value.unknown.is_none() && !text.is_empty();
        self.untracked |= value.overflow;
        for span in &value.touched {
            let key = (span.start, span.end);
            let next = match (self.uses.get(&key), known) {
                (None, true) => Uses::One(text.clone()),
                (Some(Uses::One(k)), true) if *k == text => continue,
                _ => Uses::Conflict,
            };
            self.uses.insert(key, next);
        }
        match value.unknown {
            Some(Unknown::Split(at)) => {
                self.out
                    .notes
                    .push((self.line_number(at), SPLIT.to_owned()));
                return;
            }
            Some(Unknown::Variable) => return self.push(line, range, platform, skip),
            None => {}
        }
        if text.is_empty() {
            return self.push(line, range, platform, skip);
        }
        if self.is_stage(&text) || text.eq_ignore_ascii_case("scratch") {
            // `ARG BASE=builder` then `FROM $BASE`: a stage, not an image.
            return;
        }
        let pieces = &value.pieces;
        let end = line.offsets[range.end - 1] + 1;
        if let [one] = pieces.as_slice()
            && (one.name != "arg" || text.contains('@'))
        {
            if one.name == "arg" {
                self.in_args
                    .push((self.out.candidates.len(), one.span.clone()));
            }
            self.out.candidates.push(Candidate {
                span: one.span.clone(),
                platform,
                skip: None,
                composed: None,
            });
            return;
        }
        match self.compose(text, pieces, end) {
            Some(composed) => {
                let slot = composed.digest.span.clone();
                let holder = pieces.iter().find(|p| {
                    p.name == "arg" && p.span.start <= slot.start && slot.end <= p.span.end
                });
                if let Some(holder) = holder.filter(|_| !slot.is_empty()) {
                    self.in_args
                        .push((self.out.candidates.len(), holder.span.clone()));
                }
                let mut candidate = Candidate::composed(composed);
                candidate.platform = platform;
                self.out.candidates.push(candidate);
            }
            None => self.push(line, range, platform, skip),
        }
    }

    /// A reference made of several pieces: its parts, and its digest's slot — the
    /// digest's bytes when one piece holds them all (or holds the hex after a piece
    /// ending in `sha256:`, written back bare), else `None`; without a digest, the
    /// offset `end` after the instruction's word, where `@digest` goes.
    fn compose(&self, reference: String, pieces: &[Piece], end: usize) -> Option<Composed> {
        // Each piece's first byte in the reference.
        let starts: Vec<usize> = pieces
            .iter()
            .scan(0, |at, p| {
                let start = *at;
                *at += p.span.len();
                Some(start)
            })
            .collect();
        // The file span of `range` of the reference, when one piece holds all of it.
        let within = |range: Range<usize>| {
            pieces.iter().zip(&starts).find_map(|(p, &start)| {
                (start <= range.start && range.end <= start + p.span.len())
                    .then(|| p.span.start + range.start - start..p.span.start + range.end - start)
            })
        };
        let digest = match reference.find('@') {
            None => DigestSlot::after(end),
            Some(at) => {
                let digest = at + 1..reference.len();
                let hex = reference[digest.clone()]
                    .find(':')
                    .map(|colon| digest.start + colon + 1..digest.end);
                if let Some(span) = within(digest) {
                    DigestSlot::replace(span, false)
                } else {
                    let hex = hex.filter(|hex| starts.contains(&hex.start))?;
                    DigestSlot::replace(within(hex)?, true)
                }
            }
        };
        let slot = digest.span.clone();
        let mut parts = Vec::new();
        for piece in pieces {
            let span = &piece.span;
            if slot.is_empty() || slot.end <= span.start || span.end <= slot.start {
                parts.push((piece.name, span.clone()));
                continue;
            }
            // The piece holding the digest: the digest is a part of its own, without
            // the `@` before it.
            let mut before = span.start..slot.start;
            if self.text[before.clone()].ends_with('@') {
                before.end -= 1;
            }
            if !before.is_empty() {
                parts.push((piece.name, before));
            }
            parts.push(("digest", slot.clone()));
            if slot.end < span.end {
                parts.push((piece.name, slot.end..span.end));
            }
        }
        Some(Composed {
            reference,
            parts,
            digest,
        })
    }

    /// Expands the variables in `range` of the logical line, naming its own bytes
    /// `name`, with the global `ARG`s: as far as it can, noting why not.
    fn expand(&self, line: &Logical, range: Range<usize>, name: &'static str) -> Value {
        let text = &line.text[range.clone()];
        let mut value = Value::default();
        let Some(segments) = segments(text) else {
            value.unknown(Unknown::Variable);
            return value;
        };
        let piece = |value: &mut Value, r: Range<usize>, name| match line
            .file_span(range.start + r.start..range.start + r.end)
        {
            Some(span) => {
                if name == "arg" {
                    value.touch(&span);
                }
                value.pieces.push(Piece { span, name });
            }
            None => value.unknown(Unknown::Split(line.start)),
        };
        for segment in segments {
            match segment {
                Segment::Literal(r) => piece(&mut value, r, name),
                Segment::Var {
                    at,
                    name: var,
                    default,
                    or_empty,
                } => {
                    let dollar = line.offsets[range.start + at];
                    if AUTOMATIC_ARGS.contains(&var) || self.opaque.contains(&dollar) {
                        value.unknown(Unknown::Variable);
                        continue;
                    }
                    let arg = self.global_args.get(var).and_then(Option::as_ref);
                    let empty = arg.is_some_and(|a| a.unknown.is_none() && a.pieces.is_empty());
                    match (arg, default) {
                        (Some(arg), _) if !(or_empty && empty) => value.extend(arg),
                        (_, Some(d)) if d.is_empty() => {}
                        (_, Some(d)) => piece(&mut value, d, "default"),
                        (_, None) => value.unknown(Unknown::Variable),
                    }
                }
            }
            let len: usize = value.pieces.iter().map(|p| p.span.len()).sum();
            if value.pieces.len() > MAX_PIECES || len > MAX_EXPANDED {
                value.pieces.truncate(MAX_PIECES);
                value.unknown(Unknown::Variable);
            }
        }
        value
    }

    fn push(
        &mut self,
        line: &Logical,
        range: Range<usize>,
        platform: Option<Platform>,
        skip: Option<SkipReason>,
    ) {
        if let Some(span) = line.file_span(range) {
            self.out.candidates.push(Candidate {
                span,
                platform,
                skip,
                composed: None,
            });
        } else {
            let n = self.line_number(line.start);
            self.out.notes.push((n, SPLIT.to_owned()));
        }
    }

    fn is_stage(&self, name: &str) -> bool {
        self.stages.contains(&name.to_ascii_lowercase())
    }

    /// `ARG NAME[=default] …` before the first `FROM`: remember defaults, expanded with
    /// the `ARG`s before them. A bare `ARG NAME` keeps a default given earlier, as
    /// `BuildKit` does.
    fn arg(&mut self, line: &Logical, args: &[Word]) {
        if self.in_stage {
            return;
        }
        for word in args {
            let text = &line.text[word.range.clone()];
            let Some((name, _)) = text.split_once('=') else {
                self.global_args.entry(text.to_owned()).or_insert(None);
                continue;
            };
            let value_start = word.range.start + name.len() + 1;
            let range = unquoted_range(&line.text, value_start..word.range.end);
            // Single quotes keep `$` literal; such a value is no reference.
            let literal = line.text[value_start..].starts_with('\'');
            let value = if literal && line.text[range.clone()].contains('$') {
                let mut value = Value::default();
                value.unknown(Unknown::Variable);
                value
            } else {
                self.expand(line, range, "arg")
            };
            self.global_args.insert(name.to_owned(), Some(value));
        }
    }

    /// Leading `--key=value` flags of an instruction; reports the value of the flag that
    /// `wanted` picks as an image (stage names excepted).
    fn flags(&mut self, line: &Logical, args: &[Word], wanted: impl Fn(&str, &str) -> bool) {
        for word in args {
            let text = &line.text[word.range.clone()];
            let Some(flag) = text.strip_prefix("--") else {
                break;
            };
            if let Some((key, value)) = flag.split_once('=')
                && wanted(key, value)
            {
                let start = word.range.start + 2 + key.len() + 1;
                self.image_word(line, start..word.range.end, None, false);
            }
        }
    }

    /// `RUN --mount=type=…,from=IMAGE,…`: the `from` of each mount.
    fn mounts(&mut self, line: &Logical, args: &[Word]) {
        for word in args {
            let text = &line.text[word.range.clone()];
            let Some(flag) = text.strip_prefix("--") else {
                break;
            };
            if !flag.starts_with("mount=") {
                continue;
            }
            let spec_start = word.range.start + "--mount=".len();
            let spec_range = unquoted_range(&line.text, spec_start..word.range.end);
            let mut offset = spec_range.start;
            for field in line.text[spec_range.clone()].split(',') {
                if let Some(value) = field.strip_prefix("from=") {
                    let start = offset + "from=".len();
                    self.image_word(line, start..start + value.len(), None, false);
                }
                offset += field.len() + 1;
            }
        }
    }

    /// Skips the bodies of heredocs opened on this line (`<<EOF`, `<<-EOF`, `<<"EOF"`),
    /// in order, so their contents are never read as instructions.
    fn heredocs(&mut self, line: &Logical, args: &[Word]) {
        for word in args {
            let text = &line.text[word.range.clone()];
            let Some((strip_tabs, name)) = heredoc_marker(text) else {
                continue;
            };
            loop {
                let Some((_, body)) = self.next_physical() else {
                    return;
                };
                let body = if strip_tabs {
                    body.trim_start_matches('\t')
                } else {
                    body
                };
                if body == name {
                    break;
                }
            }
        }
    }
}

/// Why a reference split by a line continuation is not a finding.
const SPLIT: &str = "image reference is split by a line continuation; it cannot be edited in place";

/// `# key=value` → key and the value's byte range in the line (trimmed). Leading
/// whitespace is allowed, as `BuildKit` allows it.
fn directive(line: &str) -> Option<(&str, Range<usize>)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let lead = value.len() - value.trim_start().len();
    let start = line.len() - value.len() + lead;
    let end = start + value.trim().len();
    Some((key, start..end))
}

/// A heredoc opener word: `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, `3<<EOF`.
fn heredoc_marker(word: &str) -> Option<(bool, &str)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.contains('<') {
        return None;
    }
    let name = unquote(rest);
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    ok.then_some((strip_tabs, name))
}

/// Splits a logical line into words at unquoted whitespace.
fn words(text: &str) -> Vec<Word> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let mut quote = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b.is_ascii_whitespace() => break,
                _ => {}
            }
            i += 1;
        }
        out.push(Word { range: start..i });
    }
    out
}

/// The range inside matching surrounding quotes, or the range itself.
fn unquoted_range(text: &str, range: Range<usize>) -> Range<usize> {
    let s = &text[range.clone()];
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        range.start + 1..range.end - 1
    } else {
        range
    }
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::testing::found;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// (reference, line, platform, skip) for each finding in `text`.
    fn scan(text: &str) -> Vec<(String, usize, Option<String>, Option<&'static str>)> {
        found(FORMAT, text)
            .0
            .into_iter()
            .map(|f| {
                (
                    f.reference,
                    f.line,
                    f.platform.map(|p| p.to_string()),
                    f.skip_reason.map(SkipReason::name),
                )
            })
            .collect()
    }

    fn refs(text: &str) -> Vec<String> {
        scan(text).into_iter().map(|f| f.0).collect()
    }

    #[test]
    fn from_with_platform_and_alias() {
        let text = format!(
            "FROM --platform=linux/arm64/v8 node:20@{D1} AS build\nfrom build\nFrOM scratch\n"
        );
        assert_eq!(
            scan(&text),
            vec![(
                format!("node:20@{D1}"),
                1,
                Some("linux/arm64/v8".into()),
                None
            )]
        );
    }

    #[test]
    fn stage_names_are_case_insensitive() {
        let text = "FROm golang:1.22 aS Base\nFrOM base As build\nFROM alpine:3\nCOPY --from=BASE /a /b\nCOPY --from=1 /a /b\n";
        assert_eq!(refs(text), vec!["golang:1.22", "alpine:3"]);
    }

    #[test]
    fn variable_platform_is_not_a_platform() {
        let text = format!("FROM --platform=$BUILDPLATFORM golang:1.22@{D1}\n");
        assert_eq!(scan(&text)[0].2, None);
    }

    #[test]
    fn continuation_lines() {
        let text = "FROM \\\n\tnginx:1.19 \\\n# a comment\n\n  AS web\nFROM web\n";
        assert_eq!(scan(text), vec![("nginx:1.19".into(), 2, None, None)]);
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let text = "# escape=`\nFROM `\n  mcr.microsoft.com/windows/servercore:ltsc2022\nRUN dir C:\\\nFROM alpine\n";
        assert_eq!(
            refs(text),
            vec!["mcr.microsoft.com/windows/servercore:ltsc2022", "alpine"]
        );
    }

    #[test]
    fn an_unknown_directive_ends_the_directives() {
        let text = "# unknown=value\n# escape=`\nFROM a\nRUN dir C:\\\nFROM b\n";
        // `escape` was a comment, so `\` still continues the RUN line into `FROM b`.
        assert_eq!(refs(text), vec!["a"]);
    }

    #[test]
    fn directives_may_be_indented_and_any_case() {
        let text = "#  syntax=docker/dockerfile:1\n # EsCaPe=`\n ARG `\n\t# c\n   A=alpine:3\nFROM `\n${A} as s1\n";
        assert_eq!(scan(text)[0].0, "docker/dockerfile:1");
        // No digest: it would go after the FROM word (line 7), not into the ARG.
        assert_eq!(scan(text)[1], ("alpine:3".into(), 7, None, None));
    }

    #[test]
    fn stage_arg_does_not_reach_a_later_from() {
        // BuildKit: only ARGs before the first FROM are visible to FROM lines.
        let text = "ARG A=alpine:3\nFROM $A AS one\nARG B=debian:12\nFROM $B\n";
        assert_eq!(
            scan(text)[1],
            ("$B".into(), 4, None, Some("contains-variable"))
        );
    }

    #[test]
    fn backslash_is_not_a_continuation_under_backtick_escape() {
        // With the default escape, `C:\` would swallow the next FROM.
        let text = "# escape=`\nFROM a\nRUN dir C:\\\nFROM b\n";
        assert_eq!(refs(text), vec!["a", "b"]);
    }

    #[test]
    fn syntax_directive() {
        let text = format!("# syntax=docker/dockerfile:1.7@{D1}\n# escape=\\\nFROM alpine\n");
        let found = scan(&text);
        assert_eq!(found[0].0, format!("docker/dockerfile:1.7@{D1}"));
        assert_eq!(found[0].1, 1);
        // A directive after the first instruction is a comment.
        let text = "FROM alpine\n# syntax=docker/dockerfile:1\n";
        assert_eq!(refs(text), vec!["alpine"]);
    }

    #[test]
    fn arg_defaults_used_by_from() {
        let text = format!(
            "ARG BASE=alpine:3.20@{D1}\nARG TAG=1.22\nARG NOVAL\nFROM ${{BASE}}\nFROM $BASE AS two\nFROM golang:${{TAG}}\nFROM ${{NOVAL}}\n"
        );
        let found = scan(&text);
        assert_eq!(found.len(), 3, "{found:?}");
        // The ARG default, once, on line 1.
        assert_eq!(found[0], (format!("alpine:3.20@{D1}"), 1, None, None));
        // Composed from the FROM line and an ARG: a digest would go after the word.
        assert_eq!(found[1], ("golang:1.22".into(), 6, None, None));
        assert_eq!(
            found[2],
            ("${NOVAL}".into(), 7, None, Some("contains-variable"))
        );
    }

    #[test]
    fn quoted_arg_default_and_quoted_from() {
        let text = "ARG IMG=\"gcr.io/distroless/static:nonroot\"\nFROM $IMG\nFROM \"gcr.io/distroless/base\"\n";
        assert_eq!(
            refs(text),
            vec!["gcr.io/distroless/static:nonroot", "gcr.io/distroless/base"]
        );
    }

    /// Pins keep their kind: one `ARG` default used by stages of different platforms
    /// fixes no platform (the pin's own kind decides); used by stages of one platform,
    /// it fixes that one.
    #[test]
    fn pins_keep_their_kind_arg_shared_by_platforms() {
        let text = format!(
            "ARG IMG=app:1@{D1}\nFROM --platform=linux/amd64 $IMG AS a\nFROM --platform=linux/arm64 $IMG AS b\n"
        );
        assert_eq!(scan(&text), vec![(format!("app:1@{D1}"), 1, None, None)]);
        let text = format!(
            "ARG IMG=app:1@{D1}\nFROM --platform=linux/arm64 $IMG AS a\nFROM --platform=linux/arm64 ${{IMG}} AS b\n"
        );
        assert_eq!(
            scan(&text),
            vec![(format!("app:1@{D1}"), 1, Some("linux/arm64".into()), None)]
        );
        let text =
            format!("ARG IMG=app:1@{D1}\nFROM --platform=linux/arm64 $IMG AS a\nFROM $IMG AS b\n");
        assert_eq!(scan(&text), vec![(format!("app:1@{D1}"), 1, None, None)]);
    }

    #[test]
    fn arg_inside_a_stage_does_not_reach_from() {
        let text = "FROM alpine AS a\nARG BASE=debian:12\nFROM ${BASE}\n";
        assert_eq!(
            scan(text)[1],
            ("${BASE}".into(), 3, None, Some("contains-variable"))
        );
    }

    #[test]
    fn arg_naming_a_stage_is_a_stage() {
        let text = "FROM alpine AS builder\nARG X=builder\nFROM alpine\n";
        assert_eq!(refs(text), vec!["alpine", "alpine"]);
        let text = "ARG B=builder\nFROM alpine AS builder\nFROM $B\n";
        assert_eq!(refs(text), vec!["alpine"]);
    }

    #[test]
    fn default_inside_the_from_variable() {
        let text = "FROM ${BASE:-debian:12-slim}\n";
        assert_eq!(refs(text), vec!["debian:12-slim"]);
    }

    #[test]
    fn copy_from_and_run_mount_from() {
        let text = format!(
            "FROM alpine AS b\nCOPY --chown=1 --from=ghcr.io/astral-sh/uv:0.5@{D1} /uv /bin/\nCOPY --from=b /x /y\nRUN --mount=type=cache,target=/c --mount=type=bind,from=busybox:1.36,source=/bin,target=/b true\nADD --from=x a b\n"
        );
        assert_eq!(
            refs(&text),
            vec![
                "alpine".to_owned(),
                format!("ghcr.io/astral-sh/uv:0.5@{D1}"),
                "busybox:1.36".into(),
            ]
        );
    }

    #[test]
    fn heredoc_bodies_are_data() {
        let text = "FROM alpine\nRUN <<EOF\nFROM notanimage\nEOF\nCOPY <<-\"A\" <<'B' /dst\n\tFROM no1\n\tA\nFROM no2\nB\nFROM debian\nRUN echo $((1<<2))\nFROM ubuntu\n";
        assert_eq!(refs(text), vec!["alpine", "debian", "ubuntu"]);
    }

    #[test]
    fn crlf_and_bom() {
        let text = "\u{feff}FROM alpine:3\r\nFROM \\\r\n  debian:12\r\n";
        let found = scan(text);
        assert_eq!(found[0].0, "alpine:3");
        assert_eq!(found[1], ("debian:12".into(), 3, None, None));
    }

    #[test]
    fn invalid_digests_are_reported_as_invalid() {
        let text = "FROM a@sha256:abcdef\nFROM b:1@sha256:${HASH}\nFROM C:1\n";
        let skips: Vec<_> = scan(text).into_iter().map(|f| f.3).collect();
        assert_eq!(
            skips,
            vec![
                Some("invalid-reference"),
                Some("contains-variable"),
                Some("invalid-reference")
            ]
        );
    }

    #[test]
    fn split_reference_is_a_note_not_a_wrong_span() {
        let text = "FROM ngi\\\nnx:1\n";
        let out = extract(text);
        assert!(out.candidates.is_empty());
        assert_eq!(out.notes.len(), 1);
        assert_eq!(out.notes[0].0, 1);
    }

    #[test]
    fn unterminated_heredoc_ends_the_file_quietly() {
        assert_eq!(refs("FROM a\nRUN <<EOF\nFROM b\n"), vec!["a"]);
    }

    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    /// A composed finding: its reference, (name, text) of each part, its slot's text.
    type Parts = (String, Vec<(&'static str, String)>, String);

    /// Each composed finding in `text`.
    fn parts(text: &str) -> Vec<Parts> {
        found(FORMAT, text)
            .0
            .into_iter()
            .filter_map(|f| {
                let fields = f.fields.as_ref()?;
                let parts = fields
                    .parts
                    .iter()
                    .map(|p| (p.name, p.text.clone()))
                    .collect();
                Some((f.reference.clone(), parts, f.written().to_owned()))
            })
            .collect()
    }

    /// The first shape: the digest is written in an `ARG` the `FROM` uses for
    /// its tag; the registry comes from another `ARG`.
    #[test]
    fn composed_from_several_args_digest_in_the_arg_line() {
        let text = format!(
            "ARG REGISTRY=registry.example\nARG GO_VER=1.21-alpine@{D1}\nFROM ${{REGISTRY}}/library/golang:${{GO_VER}} AS build\n"
        );
        let (found, warnings) = found(FORMAT, &text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(
            f.reference,
            format!("registry.example/library/golang:1.21-alpine@{D1}")
        );
        assert_eq!(f.line, 2, "reported where the digest is written");
        assert_eq!(f.skip_reason, None);
        assert_eq!(&text[f.span.clone()], D1);
        assert_eq!(
            parts(&text)[0].1,
            vec![
                ("arg", "registry.example".to_owned()),
                ("from", "/library/golang:".to_owned()),
                ("arg", "1.21-alpine".to_owned()),
                ("digest", D1.to_owned()),
            ]
        );
    }

    /// The second shape: the name from an `ARG`, tag and digest in the `FROM`.
    #[test]
    fn composed_from_several_args_digest_in_the_from_line() {
        let text = format!(
            "ARG JVM=acme/temurin\nARG JAVA_VERSION=21\nFROM ${{JVM}}:${{JAVA_VERSION}}-jre@{D1}\n"
        );
        let rows = parts(&text);
        assert_eq!(rows.len(), 1);
        let (reference, parts, written) = &rows[0];
        assert_eq!(reference, &format!("acme/temurin:21-jre@{D1}"));
        assert_eq!(written, D1);
        assert_eq!(
            parts,
            &vec![
                ("arg", "acme/temurin".to_owned()),
                ("from", ":".to_owned()),
                ("arg", "21".to_owned()),
                ("from", "-jre".to_owned()),
                ("digest", D1.to_owned()),
            ]
        );
        assert_eq!(scan(&text)[0].1, 3);
    }

    /// More shapes of the kind: `ARG`s built from `ARG`s, `${NAME:-default}` beside
    /// literal text, a digest from its own `ARG`, bare hex after a literal `sha256:`,
    /// no digest yet (the slot after the word), a stage's `ARG`s for `COPY --from`.
    #[test]
    fn composed_from_several_args_more_shapes() {
        let hex1 = &D1[7..];
        let cases: Vec<(String, String, &str)> = vec![
            (
                format!("ARG R=ghcr.io\nARG BASE=${{R}}/acme/base:1@{D1}\nFROM ${{BASE}}\n"),
                format!("ghcr.io/acme/base:1@{D1}"),
                D1,
            ),
            (
                format!("FROM ${{REG:-docker.io}}/library/alpine:3.20@{D1}\n"),
                format!("docker.io/library/alpine:3.20@{D1}"),
                D1,
            ),
            (
                format!("ARG DIGEST={D1}\nFROM alpine:3.20@${{DIGEST}}\n"),
                format!("alpine:3.20@{D1}"),
                D1,
            ),
            (
                format!("ARG HEX={hex1}\nFROM alpine:3.20@sha256:$HEX\n"),
                format!("alpine:3.20@{D1}"),
                hex1,
            ),
            (
                "ARG V=3.20\nFROM alpine:$V\n".to_owned(),
                "alpine:3.20".to_owned(),
                "",
            ),
        ];
        for (text, reference, slot) in cases {
            let (found, warnings) = found(FORMAT, &text);
            assert!(warnings.is_empty(), "{text}: {warnings:?}");
            let f = found
                .iter()
                .find(|f| f.image.is_some())
                .unwrap_or_else(|| panic!("{text}: {found:?}"));
            assert_eq!(f.reference, reference, "{text}");
            assert_eq!(f.skip_reason, None, "{text}");
            assert_eq!(f.written(), slot, "{text}");
        }
    }

    /// `skip_reason` only where a name part or the digest cannot be determined: a
    /// variable without a value, a digest spread over two places, an expansion not
    /// followed.
    #[test]
    fn composed_from_several_args_undetermined_is_contains_variable() {
        let hex = &D1[7..];
        let cases = [
            "ARG REGISTRY\nFROM ${REGISTRY}/alpine:3\n".to_owned(),
            "FROM ${UNDECLARED}/alpine:3\n".to_owned(),
            format!(
                "ARG A={}\nARG B={}\nFROM alpine:3@sha256:${{A}}${{B}}\n",
                &hex[..10],
                &hex[10..]
            ),
            "ARG R=x\nFROM ${R:+y}/alpine:3\n".to_owned(),
            "ARG R='$X'\nFROM ${R}/alpine:3\n".to_owned(),
        ];
        for text in cases {
            let rows = scan(&text);
            assert_eq!(rows.len(), 1, "{text}: {rows:?}");
            assert_eq!(rows[0].3, Some("contains-variable"), "{text}: {rows:?}");
        }
    }

    /// One digest written for references to different images (an `ARG DIGEST` used
    /// by two `FROM`s of different names) is not a finding: no one digest is right
    /// for both. Used by two `FROM`s of the same image, it is one finding.
    #[test]
    fn one_digest_for_different_images_is_not_updated() {
        let text = format!(
            "ARG DIGEST={D1}\nFROM alpine:3@${{DIGEST}} AS a\nFROM debian:12@${{DIGEST}}\n"
        );
        let (shared, warnings) = found(FORMAT, &text);
        assert!(shared.is_empty(), "{shared:?}");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, Some(1));
        let text =
            format!("ARG DIGEST={D2}\nFROM alpine:3@${{DIGEST}} AS a\nFROM alpine:3@$DIGEST\n");
        let (same, warnings) = found(FORMAT, &text);
        assert_eq!((same.len(), warnings.len()), (1, 0), "{same:?}");
    }

    /// `ARG`s built from `ARG`s cannot grow without bound: each doubling the last
    /// would reach 2^40 bytes; the value stops at a cap and is `contains-variable`.
    #[test]
    fn composed_from_several_args_growth_is_bounded() {
        let mut text = "ARG A0=ab\n".to_owned();
        for i in 1..=40 {
            text.push_str(&format!("ARG A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
        }
        text.push_str("FROM alpine:${A40}\n");
        let rows = scan(&text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].3, Some("contains-variable"));
    }

    /// A digest written in an `ARG` is a finding only when every `FROM` that reads
    /// the `ARG` makes the same reference: one that cannot be resolved (an `ARG`
    /// without a value), or one of another image (plain or composed), blocks it — the
    /// digest would be wrong for that `FROM`.
    #[test]
    fn digest_in_an_arg_is_updated_only_when_every_from_agrees() {
        let blocked = [
            format!(
                "ARG R=r.example\nARG TAG=3@{D1}\nARG MIRROR\nFROM ${{R}}/alpine:${{TAG}} AS a\nFROM ${{MIRROR}}/base:${{TAG}}\n"
            ),
            format!("ARG A=golang:1@{D1}\nFROM ${{A}}\nFROM r.example/${{A}}\n"),
            format!(
                "ARG BASE=python:3.12@{D1}\nARG VARIANT\nFROM $BASE AS app\nFROM ${{BASE}}${{VARIANT}} AS other\n"
            ),
        ];
        for text in blocked {
            let (found, warnings) = found(FORMAT, &text);
            assert!(
                found
                    .iter()
                    .all(|f| f.image.is_none() || f.line != 2 && f.line != 1),
                "{text}: {found:?}"
            );
            assert!(
                warnings
                    .iter()
                    .any(|w| w.message.contains("no one digest is right for all")),
                "{text}: {warnings:?}"
            );
        }
        let agreed =
            format!("ARG BASE=python:3.12@{D1}\nFROM $BASE AS app\nFROM ${{BASE}} AS other\n");
        let (found, warnings) = found(FORMAT, &agreed);
        assert_eq!((found.len(), warnings.len()), (1, 0), "{found:?}");
    }

    /// Without a digest, a reference read from an `ARG` gets one after each `FROM`
    /// word, never inside the `ARG` another `FROM` may read differently.
    #[test]
    fn digest_in_an_arg_pin_goes_after_the_from_word() {
        let text = "ARG BASE=python:3.12\nFROM $BASE AS app\nFROM ${BASE}-slim AS other\n";
        let (found, _) = found(FORMAT, text);
        let rows: Vec<(String, usize, usize)> = found
            .iter()
            .map(|f| (f.reference.clone(), f.line, f.span.start))
            .collect();
        assert_eq!(
            rows,
            [
                ("python:3.12".to_owned(), 2, text.find(" AS app").unwrap()),
                (
                    "python:3.12-slim".to_owned(),
                    3,
                    text.find(" AS other").unwrap()
                ),
            ]
        );
    }

    /// What `BuildKit` decides, repin does not guess: its automatic platform `ARG`s
    /// have no value in the file (a default beside them is not used by a real build);
    /// variables in `COPY --from` and a mount's `from`, and inside single quotes, are
    /// not expanded. All are `contains-variable`. A bare `ARG` keeps the default given
    /// earlier.
    #[test]
    fn variables_only_as_buildkit_expands_them() {
        for text in [
            "FROM alpine:3-${TARGETARCH:-amd64}\n",
            "ARG ARCH=${TARGETARCH:-amd64}\nFROM alpine:3-${ARCH}\n",
            "FROM --platform=$BUILDPLATFORM golang:${BUILDOS}\n",
            "FROM alpine AS a\nARG U=ghcr.io/astral-sh/uv\nCOPY --from=${U}:0.5 /uv /bin/\n",
            "ARG U=busybox:1\nFROM alpine\nRUN --mount=type=bind,from=$U,target=/b true\n",
            "ARG R=ghcr.io\nFROM '${R}/acme/app:1'\n",
        ] {
            let rows = scan(text);
            let last = rows.last().unwrap();
            assert_eq!(last.3, Some("contains-variable"), "{text}: {rows:?}");
        }
        let text = "ARG TAG=3.20\nARG TAG\nFROM alpine:${TAG:-3.19}\n";
        assert_eq!(scan(text)[0].0, "alpine:3.20");
    }
}
