//! Rewriting files: splice new text at recorded spans, confirm by re-scanning, write
//! atomically. The one place any file is changed.
//!
//! A file is never re-serialized: bytes outside the replaced spans are copied as they
//! are (quotes, comments, CRLF, BOM, trailing whitespace). Before anything is written the
//! edited text is scanned again and must hold the same references in the same order,
//! each unchanged except the ones edited, which must now read exactly as intended;
//! otherwise the file is left alone. Writes go to a temporary file in the same folder
//! (same permissions), flushed, then renamed over the original.

use std::io::Write as _;
use std::ops::Range;
use std::path::Path;

use crate::scan::{Detected, scan_text};

/// One replacement: the bytes at `span`, which must still read `original`, become
/// `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Range<usize>,
    /// What the scan saw at `span`; a file that no longer has it there is stale.
    pub original: String,
    pub text: String,
}

/// Why a file was not rewritten.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: changed since it was scanned; not rewritten")]
    Stale { path: String },
    #[error("{path}: edits overlap or fall outside the file")]
    BadSpans { path: String },
    #[error("{path}: the edited file does not re-scan as intended ({why}); not rewritten")]
    Verify { path: String, why: String },
    #[error("{path}: is a symbolic link; not rewritten")]
    Symlink { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The reference text with its digest replaced by `digest`, or `@digest` appended when
/// it has none. The tag and everything before the `@` stay as written.
#[must_use]
pub fn with_digest(reference: &str, digest: &str) -> String {
    match reference.rfind('@') {
        Some(at) => format!("{}{digest}", &reference[..=at]),
        None => format!("{reference}@{digest}"),
    }
}

/// Applies edits right to left.
///
/// # Errors
/// [`Error::BadSpans`] when edits overlap or a span is not in the text, and
/// [`Error::Stale`] when a span no longer holds what the scan saw there.
pub fn splice(path: &str, text: &str, edits: &[Edit]) -> Result<String, Error> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.span.start);
    let ok = sorted.windows(2).all(|w| w[0].span.end <= w[1].span.start)
        && sorted.iter().all(|e| text.get(e.span.clone()).is_some());
    if ok && sorted.iter().any(|e| text[e.span.clone()] != *e.original) {
        return Err(Error::Stale {
            path: path.to_owned(),
        });
    }
    if !ok {
        return Err(Error::BadSpans {
            path: path.to_owned(),
        });
    }
    let mut out = text.to_owned();
    for edit in sorted.iter().rev() {
        out.replace_range(edit.span.clone(), &edit.text);
    }
    Ok(out)
}

/// Re-scans `new` and confirms it holds exactly the findings of `old` with the edits
/// applied: same count and order, same formats, platforms and skip reasons, edited spans
/// reading the new text, every other reference unchanged, and spans shifted only by the
/// edits before them.
///
/// # Errors
/// [`Error::Verify`] naming the first difference.
pub fn verify(
    path: &str,
    detected: Detected,
    old: &str,
    new: &str,
    edits: &[Edit],
) -> Result<(), Error> {
    let fail = |why: String| Error::Verify {
        path: path.to_owned(),
        why,
    };
    let (before, _) = scan_text(path, detected, old);
    let (after, _) = scan_text(path, detected, new);
    if before.len() != after.len() {
        return Err(fail(format!(
            "{} references before, {} after",
            before.len(),
            after.len()
        )));
    }
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.span.start);
    for edit in &sorted {
        if !before.iter().any(|f| f.span == edit.span) {
            return Err(fail(format!("no reference at bytes {:?}", edit.span)));
        }
    }
    for (b, a) in before.iter().zip(&after) {
        let shift: isize = sorted
            .iter()
            .filter(|e| e.span.end <= b.span.start)
            .map(|e| e.text.len() as isize - e.span.len() as isize)
            .sum();
        let expected_text = sorted
            .iter()
            .find(|e| e.span == b.span)
            .map_or(b.reference.as_str(), |e| e.text.as_str());
        let expected_start = b.span.start as isize + shift;
        if a.reference != expected_text
            || a.span.start as isize != expected_start
            || a.format != b.format
            || a.platform != b.platform
        {
            return Err(fail(format!(
                "line {}: expected {expected_text:?}, found {:?}",
                b.line, a.reference
            )));
        }
    }
    Ok(())
}

/// Writes `new` over `path` atomically, if the file still holds `old`.
///
/// # Errors
/// [`Error::Stale`] when the file changed since it was read, [`Error::Symlink`] for a
/// link, [`Error::Io`] for the rest. On any error the original file is untouched.
pub fn write_atomic(path: &Path, display: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: display.to_owned(),
        source,
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if meta.file_type().is_symlink() {
        return Err(Error::Symlink {
            path: display.to_owned(),
        });
    }
    if std::fs::read(path).map_err(io)? != old {
        return Err(Error::Stale {
            path: display.to_owned(),
        });
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".repin-")
        .tempfile_in(dir)
        .map_err(io)?;
    temp.write_all(new).map_err(io)?;
    temp.as_file()
        .set_permissions(meta.permissions())
        .map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A unified diff of one file, `a/path` → `b/path`.
#[must_use]
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn with_digest_keeps_the_tag() {
        assert_eq!(
            with_digest(&format!("node:20@{OLD}"), NEW),
            format!("node:20@{NEW}")
        );
        assert_eq!(with_digest("node:20", NEW), format!("node:20@{NEW}"));
        assert_eq!(
            with_digest("localhost:5000/a:1", NEW),
            format!("localhost:5000/a:1@{NEW}")
        );
    }

    fn edit_of(text: &str, reference: &str, digest: &str) -> Edit {
        let start = text.find(reference).unwrap();
        Edit {
            span: start..start + reference.len(),
            original: reference.to_owned(),
            text: with_digest(reference, digest),
        }
    }

    #[test]
    fn splice_and_verify_preserve_everything_else() {
        let text = format!(
            "\u{feff}FROM node:20@{OLD} AS a\r\nFROM \"alpine:3\"  # keep\r\nCOPY --from=busybox:1@{OLD} /a /b\r\n"
        );
        let edits = vec![
            edit_of(&text, &format!("node:20@{OLD}"), NEW),
            edit_of(&text, "alpine:3", NEW),
        ];
        let new = splice("Dockerfile", &text, &edits).unwrap();
        assert_eq!(
            new,
            format!(
                "\u{feff}FROM node:20@{NEW} AS a\r\nFROM \"alpine:3@{NEW}\"  # keep\r\nCOPY --from=busybox:1@{OLD} /a /b\r\n"
            )
        );
        verify("Dockerfile", Detected::Dockerfile, &text, &new, &edits).unwrap();
    }

    #[test]
    fn verify_rejects_an_edit_that_changes_what_is_scanned() {
        let text = "services:\n  a:\n    image: redis:7\n";
        let start = text.find("redis:7").unwrap();
        // A replacement that breaks the YAML value into something else.
        let edits = vec![Edit {
            span: start..start + 7,
            original: "redis:7".into(),
            text: "redis:7\n  b:\n    image: extra:1".into(),
        }];
        let new = splice("compose.yaml", text, &edits).unwrap();
        let err = verify("compose.yaml", Detected::Compose, text, &new, &edits).unwrap_err();
        assert!(
            err.to_string().contains("does not re-scan as intended"),
            "{err}"
        );
    }

    #[test]
    fn overlapping_edits_are_refused() {
        let edits = vec![
            Edit {
                span: 0..4,
                original: "abcd".into(),
                text: "x".into(),
            },
            Edit {
                span: 2..6,
                original: "cdef".into(),
                text: "y".into(),
            },
        ];
        assert!(matches!(
            splice("f", "abcdefgh", &edits),
            Err(Error::BadSpans { .. })
        ));
        let outside = vec![Edit {
            span: 5..50,
            original: String::new(),
            text: "x".into(),
        }];
        assert!(matches!(
            splice("f", "abcdefgh", &outside),
            Err(Error::BadSpans { .. })
        ));
    }

    #[test]
    fn a_span_that_no_longer_holds_the_reference_is_stale() {
        let text = format!("FROM other:1@{OLD}\n");
        let edits = vec![Edit {
            span: 5..5 + 8 + OLD.len(),
            original: format!("node:20@{OLD}"),
            text: format!("node:20@{NEW}"),
        }];
        assert!(matches!(
            splice("Dockerfile", &text, &edits),
            Err(Error::Stale { .. })
        ));
    }

    #[test]
    fn atomic_write_keeps_permissions_and_refuses_stale_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, "FROM a\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, "Dockerfile", b"FROM a\n", b"FROM b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "FROM b\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let err = write_atomic(&path, "Dockerfile", b"FROM a\n", b"FROM c\n").unwrap_err();
        assert!(matches!(err, Error::Stale { .. }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "FROM b\n");
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn symlinks_are_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        std::fs::write(&target, "FROM a\n").unwrap();
        let link = dir.path().join("Dockerfile");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomic(&link, "Dockerfile", b"FROM a\n", b"FROM b\n").unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "FROM a\n");
    }

    #[test]
    fn diff_is_unified() {
        let diff = unified_diff("Dockerfile", "FROM a\nRUN x\n", "FROM b\nRUN x\n");
        assert_eq!(
            diff,
            "--- a/Dockerfile\n+++ b/Dockerfile\n@@ -1,2 +1,2 @@\n-FROM a\n+FROM b\n RUN x\n"
        );
    }
}
