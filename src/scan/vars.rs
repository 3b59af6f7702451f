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
    /// The variable's name.
    pub name: &'a str,
    /// Byte range of the default value within the text, when one is written.
    pub default: Option<Range<usize>>,
}

/// A piece of a text that mixes literal bytes and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Literal bytes: their range in the text.
    Literal(Range<usize>),
    /// A variable expression.
    Var {
        /// Offset of its `$` in the text.
        at: usize,
        /// The variable's name.
        name: &'a str,
        /// Byte range of its literal default (`${NAME:-default}`, `${NAME-default}`)
        /// within the text, when one is written.
        default: Option<Range<usize>>,
        /// Whether the default also replaces an empty value (`:-`), not only an unset
        /// one (`-`).
        or_empty: bool,
    },
}

/// Recognizes a text that is one variable expression and nothing else.
#[must_use]
pub fn whole_variable(text: &str) -> Option<WholeVar<'_>> {
    match segments(text)?.as_slice() {
        [Segment::Var { name, default, .. }] => Some(WholeVar {
            name,
            default: default.clone(),
        }),
        _ => None,
    }
}

/// Splits a text into literal bytes and variable expressions, in order. `None` when it
/// holds anything else: `${NAME:+alt}`, a nested variable in a default, an escape
/// character, a `$` that starts no name, an unclosed `${`.
#[must_use]
pub fn segments(text: &str) -> Option<Vec<Segment<'_>>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut literal = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' | b'`' => return None,
            b'$' => {
                if literal < i {
                    out.push(Segment::Literal(literal..i));
                }
                let (segment, end) = variable(text, i)?;
                out.push(segment);
                i = end;
                literal = end;
            }
            _ => i += 1,
        }
    }
    if literal < bytes.len() {
        out.push(Segment::Literal(literal..bytes.len()));
    }
    Some(out)
}

/// The variable expression starting at `at` (a `$`) and the offset after it.
fn variable(text: &str, at: usize) -> Option<(Segment<'_>, usize)> {
    let rest = &text[at + 1..];
    let Some(inner) = rest.strip_prefix('{') else {
        let len = name_len(rest);
        return (len > 0).then(|| {
            let var = Segment::Var {
                at,
                name: &rest[..len],
                default: None,
                or_empty: false,
            };
            (var, at + 1 + len)
        });
    };
    let close = inner.find('}')?;
    let inner = &inner[..close];
    let name_len = name_len(inner);
    if name_len == 0 {
        return None;
    }
    let name = &inner[..name_len];
    let after = &inner[name_len..];
    let base = at + 2 + name_len;
    let (default, or_empty) = if after.is_empty() {
        (None, false)
    } else if let Some(word) = after.strip_prefix(":-") {
        (Some(base + 2..base + 2 + word.len()), true)
    } else if let Some(word) = after.strip_prefix('-') {
        (Some(base + 1..base + 1 + word.len()), false)
    } else if after.starts_with(":?") || after.starts_with('?') {
        (None, false)
    } else {
        // `:+` (alternate value) and anything else: not a plain variable.
        return None;
    };
    if default
        .as_ref()
        .is_some_and(|d| text[d.clone()].contains('$'))
    {
        return None;
    }
    let var = Segment::Var {
        at,
        name,
        default,
        or_empty,
    };
    Some((var, at + 2 + close + 1))
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

    #[test]
    fn splits_literals_and_variables() {
        let text = "${REG:-docker.io}/library/golang:${GO}-$SUFFIX";
        let got: Vec<String> = segments(text)
            .unwrap()
            .into_iter()
            .map(|s| match s {
                Segment::Literal(r) => format!("lit {}", &text[r]),
                Segment::Var {
                    name,
                    default,
                    or_empty,
                    ..
                } => format!("var {name} {:?} {or_empty}", default.map(|d| &text[d])),
            })
            .collect();
        assert_eq!(
            got,
            [
                "var REG Some(\"docker.io\") true",
                "lit /library/golang:",
                "var GO None false",
                "lit -",
                "var SUFFIX None false",
            ]
        );
    }

    #[test]
    fn refuses_what_it_does_not_follow() {
        for text in [
            "a${B:+x}",
            "a${B",
            "a$",
            "a$-b",
            "a\\$B",
            "${A:-${B}}x",
            "x${}",
        ] {
            assert_eq!(segments(text), None, "{text}");
        }
        assert_eq!(segments("plain"), Some(vec![Segment::Literal(0..5)]));
        assert_eq!(segments(""), Some(vec![]));
    }
}
