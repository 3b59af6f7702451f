//! Config diagnostics: one line each, naming the file, line and column, with a
//! suggestion for a misspelt key (… did you mean `schedule`?).

use std::fmt;
use std::ops::Range;

use crate::scan::LineIndex;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as shown.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, and how to fix it.
    pub message: String,
    /// The key that was probably meant.
    pub suggestion: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file.
pub struct Diagnostics<'a> {
    file: &'a str,
    text: &'a str,
    lines: LineIndex,
    /// The diagnostics so far.
    pub list: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    /// Collects diagnostics for `text`, read from `file` (as shown).
    #[must_use]
    pub fn new(file: &'a str, text: &'a str) -> Self {
        Self {
            file,
            text,
            lines: LineIndex::new(text),
            list: Vec::new(),
        }
    }

    /// The diagnostics in file order.
    #[must_use]
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.column));
        self.list
    }

    /// Records a problem at a byte span (`None`: the start of the file).
    pub fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.error_with(span, message, None);
    }

    /// Adds an error at `span` (bytes), with a suggestion (`did you mean …?`).
    pub fn error_with(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        suggestion: Option<String>,
    ) {
        let start = span.map_or(0, |s| s.start.min(self.text.len()));
        // Spans are on character boundaries; guard anyway.
        let start = (0..=start)
            .rev()
            .find(|&i| self.text.is_char_boundary(i))
            .unwrap_or(0);
        let (line, column) = self.lines.line_column(self.text, start);
        self.list.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
            suggestion,
        });
    }

    /// Records a `toml` parse or type error; an unknown key gets a suggestion from the
    /// keys serde says were expected.
    pub fn toml(&mut self, error: &toml::de::Error) {
        let message = error.message().trim().to_owned();
        match unknown_field(&message) {
            Some((field, expected)) => {
                let suggestion = closest(field, &expected);
                self.error_with(error.span(), format!("unknown key `{field}`"), suggestion);
            }
            None => self.error_with(error.span(), message, None),
        }
    }
}

/// From serde's "unknown field `x`, expected one of `a`, `b`": the field and the keys.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((field, expected))
}

/// The closest candidate to `word`, if it is close enough to be a typo.
#[must_use]
pub fn closest(word: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("shedule", &["schedule", "group"]),
            Some("schedule".into())
        );
        assert_eq!(
            closest("min-age", &["min_age", "pin"]),
            Some("min_age".into())
        );
        assert_eq!(closest("zzz", &["schedule", "group"]), None);
    }

    #[test]
    fn unknown_field_messages() {
        let (field, expected) =
            unknown_field("unknown field `labls`, expected one of `labels`, `draft`").unwrap();
        assert_eq!(field, "labls");
        assert_eq!(expected, vec!["labels", "draft"]);
        let (_, expected) = unknown_field("unknown field `x`, expected `include`").unwrap();
        assert_eq!(expected, vec!["include"]);
    }
}
