//! Variable expressions shared by Dockerfile and Compose: `$NAME`, `${NAME}`,
//! `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`.
//!
//! Only one question is asked of them: is this text *exactly one* variable, and if so,
//! what is its name and where is its literal default? A reference in a default is
//! where an edit must go; anything else built from variables is skipped.

use std::ops::Range;

/// A text that is exactly one variable expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeVar<'a> {
    pub name: &'a str,
    /// Byte range of the default value within the text, when one is written.
    pub default: Option<Range<usize>>,
}

/// Recognizes a text that is one variable expression and nothing else.
#[must_use]
pub fn whole_variable(text: &str) -> Option<WholeVar<'_>> {
    let rest = text.strip_prefix('$')?;
    if let Some(inner) = rest.strip_prefix('{') {
        let close = inner.find('}')?;
        if close + 3 != text.len() {
            return None;
        }
        let inner = &inner[..close];
        let name_len = name_len(inner);
        if name_len == 0 {
            return None;
        }
        let name = &inner[..name_len];
        let after = &inner[name_len..];
        let base = 2 + name_len;
        let default = if after.is_empty() {
            None
        } else if let Some(word) = after.strip_prefix(":-") {
            Some(base + 2..base + 2 + word.len())
        } else if let Some(word) = after.strip_prefix('-') {
            Some(base + 1..base + 1 + word.len())
        } else if after.starts_with(":?") || after.starts_with('?') {
            None
        } else {
            // `:+` (alternate value) and anything else: not a plain variable.
            return None;
        };
        Some(WholeVar { name, default })
    } else {
        let len = name_len(rest);
        (len > 0 && len == rest.len()).then_some(WholeVar {
            name: rest,
            default: None,
        })
    }
}

fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return 0;
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Name and default of a recognized variable.
    type Expected = Option<(&'static str, Option<&'static str>)>;

    #[test]
    fn recognizes_whole_variables() {
        let cases: [(&str, Expected); 12] = [
            ("$BASE", Some(("BASE", None))),
            ("${BASE}", Some(("BASE", None))),
            (
                "${IMG:-redis:7@sha256:ab}",
                Some(("IMG", Some("redis:7@sha256:ab"))),
            ),
            ("${IMG-redis}", Some(("IMG", Some("redis")))),
            ("${IMG:?set IMG}", Some(("IMG", None))),
            ("${IMG:+x}", None),
            ("${IMG}-slim", None),
            ("$IMG:1", None),
            ("${1X}", None),
            ("${}", None),
            ("nginx", None),
            ("${A:-${B}}", None),
        ];
        for (text, want) in cases {
            let got = whole_variable(text).map(|v| (v.name, v.default.map(|r| &text[r])));
            assert_eq!(got, want, "{text}");
        }
    }
}
