//! A line-by-line reading of YAML that does not parse, for Kubernetes documents only:
//! Helm templates (`image: {{ .Values.image }}` lines between `{{- if }}` lines) and
//! hand-edited manifests with a slip in them.
//!
//! It finds `key: value` lines whose key is `image`, and tracks just enough structure to
//! honour the same rules as the parsed walk: block scalars (`script: |`) and the
//! `metadata`/`status`/`managedFields` subtrees are skipped by indentation. Values in
//! flow collections, anchors, aliases and multi-line scalars are not read; the parse
//! error is reported as a warning either way.

use std::ops::Range;

/// Keys whose subtrees never hold images to update (as in the parsed walk).
const SKIPPED_KEYS: [&str; 3] = ["metadata", "status", "managedFields"];

/// The value of the first top-level `apiVersion:` line of a document's text, when it also
/// has a top-level `kind:` line (what a Kubernetes object looks like).
#[must_use]
pub fn api_version(part: &str) -> Option<&str> {
    part.lines().any(|l| l.starts_with("kind:")).then_some(())?;
    part.lines()
        .find_map(|l| l.strip_prefix("apiVersion:"))
        .map(|v| v.trim().trim_matches(['"', '\'']))
}

/// Byte ranges (in `text`) of the values of `image:` lines within `range`.
#[must_use]
pub fn image_values(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    // Lines indented deeper than this belong to a skipped block.
    let mut skip_deeper_than: Option<usize> = None;
    let mut offset = range.start;
    for raw in text[range].split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let rest = &line[indent..];
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with("{{") {
            continue;
        }
        if let Some(depth) = skip_deeper_than {
            if indent > depth {
                continue;
            }
            skip_deeper_than = None;
        }
        // Sequence item dashes: `- - key: value`.
        let mut col = indent;
        let mut body = rest;
        while let Some(after) = body
            .strip_prefix("- ")
            .or_else(|| (body == "-").then_some(""))
        {
            let trimmed = after.trim_start_matches(' ');
            col += body.len() - trimmed.len();
            body = trimmed;
        }
        if is_block_header(body) {
            skip_deeper_than = Some(col.saturating_sub(2));
            continue;
        }
        let Some((key, value_at)) = key_value(body) else {
            continue;
        };
        let value = &body[value_at..];
        if is_block_header(value) || SKIPPED_KEYS.contains(&key) && value_is_empty(value) {
            skip_deeper_than = Some(col);
            continue;
        }
        if key == "image"
            && let Some(r) = scalar(value)
        {
            let base = line_start + col + value_at;
            out.push(base + r.start..base + r.end);
        }
    }
    out
}

/// `key: rest` → the key and the offset of the value in `body`.
fn key_value(body: &str) -> Option<(&str, usize)> {
    let colon = body.find(':')?;
    let key = &body[..colon];
    let after = &body[colon + 1..];
    if key.is_empty() || key.contains([' ', '\t', '"', '\'', '{', '[']) {
        return None;
    }
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let value_at = colon + 1 + (after.len() - after.trim_start_matches([' ', '\t']).len());
    Some((key, value_at))
}

fn value_is_empty(value: &str) -> bool {
    value.is_empty() || value.starts_with('#')
}

/// `|`, `>-`, `|2+` … followed by nothing or a comment.
fn is_block_header(value: &str) -> bool {
    let Some(rest) = value.strip_prefix(['|', '>']) else {
        return false;
    };
    let rest = rest.trim_start_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with('#')
}

/// The range of a one-line plain or quoted scalar at the start of `value`, without
/// quotes or a trailing comment.
fn scalar(value: &str) -> Option<Range<usize>> {
    let first = *value.as_bytes().first()?;
    match first {
        b'"' | b'\'' => {
            let close = value[1..].find(first as char)? + 1;
            let inner = &value[1..close];
            (!inner.is_empty() && !inner.contains('\\')).then_some(1..close)
        }
        b'|' | b'>' | b'&' | b'*' | b'!' | b'[' | b'#' => None,
        b'{' if !value.starts_with("{{") => None,
        _ => {
            let end = value
                .match_indices('#')
                .find(|(i, _)| value.as_bytes()[i - 1].is_ascii_whitespace())
                .map_or(value.len(), |(i, _)| i);
            let len = value[..end].trim_end().len();
            (len > 0).then_some(0..len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<&str> {
        image_values(text, 0..text.len())
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn helm_template() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  annotations:\n    image: not-this\nspec:\n  template:\n    spec:\n      {{- with .Values.x }}\n      containers:\n      - name: a\n        image: {{ .Values.image }}\n      - image: \"redis:7@sha256:ab\"  # pinned\n        args:\n        - |\n          image: not-this-either\n      - name: c\n        script: >-\n          image: nor-this\n        image: busybox:1 # c\n";
        assert_eq!(
            values(text),
            vec!["{{ .Values.image }}", "redis:7@sha256:ab", "busybox:1"]
        );
    }

    #[test]
    fn broken_indentation_still_reads_images() {
        let text = "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      - name: cosign\n        image: cgr.dev/chainguard/cosign:latest@sha256:a8\n";
        assert_eq!(
            values(text),
            vec!["cgr.dev/chainguard/cosign:latest@sha256:a8"]
        );
    }

    #[test]
    fn unreadable_values_are_left() {
        let text = "image: &a x\nimage: *a\nimage: [x]\nimage: {a: b}\nimage: \"esc\\\"\"\nimage:\nimage: ''\nimage:x\n";
        assert!(values(text).is_empty(), "{:?}", values(text));
    }

    #[test]
    fn offsets_within_a_later_range() {
        let text = "x: 1\n---\n- image: 'a:1'\n";
        let got = image_values(text, 5..text.len());
        assert_eq!(&text[got[0].clone()], "a:1");
    }

    #[test]
    fn detects_kubernetes_by_top_level_keys() {
        assert_eq!(api_version("apiVersion: \"v1\"\nkind: Pod\n"), Some("v1"));
        assert_eq!(api_version("  apiVersion: v1\nkind: Pod\n"), None);
        assert_eq!(api_version("apiVersion: v1\n"), None);
    }
}
