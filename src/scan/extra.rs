//! The opt-in scanner for files no format owns (`Makefile`, `*.mk`, shell scripts,
//! `.env`, `docker-bake.hcl`): only in paths the repository config lists under
//! `[scan] extra`, it finds `name[:tag]@sha256:<hex>` tokens — references pinned by
//! digest, written as one token — with exact spans. Nothing is expanded: a token with
//! a variable in it is not one.

use super::format::{Format, Spec};
use super::{Candidate, Extracted};

/// The format's row in the table ([`super::format`]): read by no path on its own; the
/// walk offers it for the paths `[scan] extra` lists, after every other format.
pub const FORMAT: Format = Format::new(&Spec {
    name: "extra",
    reads: |_| false,
    accepts: super::format::any_text,
    extract,
});

/// Characters a reference's name and tag are made of.
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':')
}

/// Extracts every `name[:tag]@sha256:<64 hex>` token.
#[must_use]
pub fn extract(text: &str) -> Extracted {
    let mut out = Extracted::default();
    let bytes = text.as_bytes();
    for (at, marker) in text.match_indices("@sha256:") {
        let hex_start = at + marker.len();
        let hex_end = hex_start + 64;
        let hex = bytes.get(hex_start..hex_end);
        if !hex.is_some_and(|h| h.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))) {
            continue;
        }
        if bytes.get(hex_end).is_some_and(u8::is_ascii_alphanumeric) {
            continue; // a longer run of hex is no sha256 digest
        }
        let mut start = at;
        while start > 0 && name_byte(bytes[start - 1]) {
            start -= 1;
        }
        // A name starts with a letter or digit; one that starts with `/`, `:`, `.` or
        // `-` continues something else (`${REGISTRY}/app:1@…`), as does one right
        // after a variable's `}` or `)`.
        let whole = start < at && bytes[start].is_ascii_alphanumeric();
        let variable = start > 0 && matches!(bytes[start - 1], b'$' | b'{' | b'}' | b')');
        // A URL (`https://host/app:1@…`) or a digest before the `@` (`sha256:…@…`)
        // is no reference.
        let name = &text[start..at];
        let other = name.contains("://") || name.contains("sha256:");
        if whole && !variable && !other {
            out.candidates.push(Candidate::at(start..hex_end));
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
    fn pinned_tokens_anywhere() {
        let text = format!(
            "BASE := golang:1.22@{D}\nrun:\n\tdocker run --rm ghcr.io/acme/tool:v2@{D} make\nIMG=\"localhost:5000/app@{D}\"\nnot: ${{REG}}/app:1@{D}\nshort: alpine@sha256:abc\nvariable \"TAG\" {{ default = \"alpine:3.20@{D}\" }}\nDOCS = https://example.com/app:1@{D}\nSUM := {D}@{D}\n"
        );
        let (found, warnings) = rows(FORMAT, &text);
        assert!(warnings.is_empty());
        let got: Vec<(&str, usize, Option<&str>)> =
            found.iter().map(|(r, l, s)| (r.as_str(), *l, *s)).collect();
        assert_eq!(
            got,
            [
                (format!("golang:1.22@{D}").as_str(), 1, None),
                (format!("ghcr.io/acme/tool:v2@{D}").as_str(), 3, None),
                (
                    format!("localhost:5000/app@{D}").as_str(),
                    4,
                    Some("no-tag")
                ),
                (format!("alpine:3.20@{D}").as_str(), 7, None),
            ]
        );
    }
}
