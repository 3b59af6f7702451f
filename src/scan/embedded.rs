//! Text written inside another file's value (a Dockerfile in Compose's
//! `build.dockerfile_inline`): the inner text, where each of its bytes sits in the file,
//! and the inner format's findings moved to file offsets.
//!
//! A format reads the inner text as if it were a file of its own; [`Embedded::place`]
//! then maps every span (a reference's, each part's, a digest's slot) back to the
//! outer file. A span whose bytes are not contiguous there (it would cross the
//! indentation of a YAML block) is not a finding but a note, so spans stay exact and
//! `update` still rewrites only the bytes it means to.

use std::collections::HashSet;
use std::ops::Range;

use super::{Candidate, Extracted, LineIndex};

/// Inner text and the file offset of each of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// The inner text.
    pub text: String,
    /// `offsets[i]` is the file offset of `text`'s byte `i`; one more entry, for the
    /// end of the text, says where an insertion at the very end goes.
    pub offsets: Vec<usize>,
}

impl Embedded {
    /// The inner text written verbatim at `range` of the file.
    #[must_use]
    pub fn verbatim(file: &str, range: Range<usize>) -> Option<Self> {
        Some(Self {
            text: file.get(range.clone())?.to_owned(),
            offsets: (range.start..=range.end).collect(),
        })
    }

    /// The inner text as another tool passes it on after its own interpolation
    /// (Compose's: `$$` is a `$`, any other `$` starts the tool's variable), and the
    /// offsets of the `$`s whose variables are that tool's.
    #[must_use]
    pub fn interpolated(&self) -> (Self, HashSet<usize>) {
        let bytes = self.text.as_bytes();
        let mut text = String::with_capacity(self.text.len());
        let mut offsets = Vec::with_capacity(self.offsets.len());
        let mut opaque = HashSet::new();
        let mut i = 0;
        while i < bytes.len() {
            let next = self.text[i..].chars().next().map_or(1, char::len_utf8);
            if bytes[i] == b'$' {
                if bytes.get(i + 1) == Some(&b'$') {
                    text.push('$');
                    offsets.push(self.offsets[i]);
                    i += 2;
                    continue;
                }
                opaque.insert(text.len());
            }
            text.push_str(&self.text[i..i + next]);
            offsets.extend(&self.offsets[i..i + next]);
            i += next;
        }
        offsets.push(self.offsets[bytes.len()]);
        (Self { text, offsets }, opaque)
    }

    /// The file span of `range` of the inner text, when its bytes are contiguous in the
    /// file; an empty range maps to an empty span at its offset.
    #[must_use]
    pub fn span(&self, range: &Range<usize>) -> Option<Range<usize>> {
        if range.is_empty() {
            let at = *self.offsets.get(range.start)?;
            return Some(at..at);
        }
        let start = *self.offsets.get(range.start)?;
        let end = *self.offsets.get(range.end - 1)? + 1;
        (end - start == range.len()).then_some(start..end)
    }

    /// Moves what a format found in the inner text to the file: candidates to file
    /// spans (notes for any that cannot be), notes to lines of the file (`lines`
    /// indexes it).
    pub fn place(&self, inner: Extracted, out: &mut Extracted, lines: &LineIndex) {
        let file_line = |at: usize| lines.line(self.offsets.get(at).copied().unwrap_or(0));
        for candidate in inner.candidates {
            let at = candidate.span.start;
            match self.candidate(candidate) {
                Some(placed) => out.candidates.push(placed),
                None => out.notes.push((
                    file_line(at),
                    "image reference is split across lines of the value; it cannot be edited in place"
                        .to_owned(),
                )),
            }
        }
        if !inner.notes.is_empty() {
            let inner_lines = LineIndex::new(&self.text);
            for (line, note) in inner.notes {
                out.notes
                    .push((file_line(inner_lines.start(line).unwrap_or(0)), note));
            }
        }
        out.pulls_in.extend(inner.pulls_in);
    }

    /// A candidate with every span moved to the file.
    fn candidate(&self, mut candidate: Candidate) -> Option<Candidate> {
        candidate.span = self.span(&candidate.span)?;
        if let Some(composed) = &mut candidate.composed {
            composed.digest.span = self.span(&composed.digest.span)?;
            for (_, span) in &mut composed.parts {
                *span = self.span(span)?;
            }
        }
        Some(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_only_when_contiguous() {
        // Inner "ab\ncd" written as "  ab\n  cd" from file offset 10.
        let e = Embedded {
            text: "ab\ncd".to_owned(),
            offsets: vec![12, 13, 14, 17, 18, 19],
        };
        assert_eq!(e.span(&(0..2)), Some(12..14));
        assert_eq!(e.span(&(3..5)), Some(17..19));
        assert_eq!(e.span(&(1..4)), None, "crosses the indentation");
        assert_eq!(e.span(&(5..5)), Some(19..19), "insertion at the end");
        assert_eq!(e.span(&(0..9)), None);
    }
}
