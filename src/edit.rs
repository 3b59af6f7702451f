//! Rewriting files: splice new text at recorded spans, confirm by re-scanning, write
//! atomically. The one place any file is changed.
//!
//! A file is never re-serialized: bytes outside the replaced spans are copied as they
//! are (quotes, comments, CRLF, BOM, trailing whitespace). Before anything is written the
//! edited text is scanned again and must hold the same findings in the same order —
//! reference text, parsed image, platform, format and skip reason — each unchanged
//! except the ones edited, which must now read exactly as intended *and* parse as a
//! valid, updatable reference pinned to the intended digest; otherwise the file is left
//! alone, byte for byte. Writes go to an anonymous temporary file in the same folder
//! (same owner, group and permissions), flushed, then renamed over the original; the
//! folder is reached from the root without following links ([`crate::rooted`]), so a
//! folder swapped for a link while repin works cannot send the write outside the root.

use std::io::Write as _;
use std::ops::Range;
use std::path::Path;

use crate::imageref::{DEFAULT_TAG, Digest, ImageRef};
use crate::rooted;
use crate::scan::{Format, Found, scan_text};

/// One replacement: the bytes at `span`, which must still read `original`, become
/// `text`, which must re-scan as `intended`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Byte range in the file.
    pub span: Range<usize>,
    /// What the scan saw at `span`; a file that no longer has it there is stale.
    pub original: String,
    /// The new bytes.
    pub text: String,
    /// Bytes of `text` before the finding's new span: the lead of a digest inserted
    /// into a reference written across several fields (`@`), else 0.
    pub lead: usize,
    /// The reference the new text must parse to: the old one with the new digest (and
    /// the tag that was looked up, when the old one had none).
    pub intended: ImageRef,
}

impl Edit {
    /// The edit that pins `found` to `digest`: the digest after the `@` replaced, or
    /// `@digest` appended — with `:latest` before it when the reference names no tag,
    /// so the pin keeps the tag it was looked up by (a pin without a tag could never be
    /// updated again). For a reference written across several fields, only its
    /// digest's slot changes: the digest replaced, or inserted with its lead, as
    /// `sha256:<hex>` or bare hex as the slot says; such a reference needs a tag.
    /// `None` for a finding that is not a parsed reference.
    #[must_use]
    pub fn pin(found: &Found, digest: &Digest) -> Option<Self> {
        let image = found.image.as_ref()?;
        let mut intended = image.clone();
        intended.digest = Some(digest.clone());
        if let Some(fields) = &found.fields {
            let slot = &fields.digest;
            if slot.span.is_empty() && !slot.insertable {
                return None;
            }
            let value = if slot.bare {
                digest.hex().to_owned()
            } else {
                digest.to_string()
            };
            let mut lead = if slot.span.is_empty() {
                slot.lead.to_owned()
            } else {
                String::new()
            };
            if image.tag.is_none() && slot.span.is_empty() {
                // A digest inserted right after the whole reference (`@` lead) can
                // bring the tag it was looked up by; one that fills a field of its own
                // cannot. (A digest replaced in place needs no tag: the pin follows a
                // tag given elsewhere.)
                if lead != "@" {
                    return None;
                }
                lead = format!(":{DEFAULT_TAG}@");
                intended.tag = Some(DEFAULT_TAG.to_owned());
            }
            return Some(Self {
                span: found.span.clone(),
                original: found.written().to_owned(),
                text: format!("{lead}{value}"),
                lead: lead.len(),
                intended,
            });
        }
        let text = match (found.reference.rfind('@'), &image.tag) {
            (Some(at), _) => format!("{}{digest}", &found.reference[..=at]),
            (None, Some(_)) => format!("{}@{digest}", found.reference),
            (None, None) => {
                intended.tag = Some(DEFAULT_TAG.to_owned());
                format!("{}:{DEFAULT_TAG}@{digest}", found.reference)
            }
        };
        Some(Self {
            span: found.span.clone(),
            original: found.reference.clone(),
            text,
            lead: 0,
            intended,
        })
    }
}

/// Why a file was not rewritten.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: changed since it was scanned; not rewritten")]
    /// The file changed since it was scanned.
    Stale {
        /// The file, relative to the root.
        path: String,
    },
    #[error("{path}: edits overlap or fall outside the file")]
    /// Edits overlap or fall outside the file.
    BadSpans {
        /// The file, relative to the root.
        path: String,
    },
    #[error("{path}: the edited file does not re-scan as intended ({why}); not rewritten")]
    /// The edited text does not re-scan as intended.
    Verify {
        /// The file, relative to the root.
        path: String,
        /// What differs, or what is wrong.
        why: String,
    },
    #[error("{path}: is a symbolic link, or lies under one; not rewritten")]
    /// The file, or a folder on its way, is a symbolic link.
    Symlink {
        /// The file, relative to the root.
        path: String,
    },
    /// The written file could not be given the original's owner.
    #[error("{path}: cannot keep its owner {uid}:{gid} ({source}); not rewritten")]
    Owner {
        /// The file, relative to the root.
        path: String,
        /// The original's owner.
        uid: u32,
        /// The original's group.
        gid: u32,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {why}; not rewritten")]
    /// The file cannot be rewritten (not a regular file, outside the root).
    Refused {
        /// The file, relative to the root.
        path: String,
        /// What differs, or what is wrong.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, relative to the root.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Why a file under the root could not be opened, as a reason not to rewrite it.
    #[must_use]
    pub fn from_rooted(path: &str, e: rooted::Error) -> Self {
        let path = path.to_owned();
        match e {
            rooted::Error::Link => Self::Symlink { path },
            rooted::Error::Io(source) => Self::Io { path, source },
            other => Self::Refused {
                path,
                why: other.to_string(),
            },
        }
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
/// applied: same count and order; every finding's format and platform unchanged; spans
/// shifted only by the edits before them; an unedited finding identical (text, parsed
/// image, skip reason); an edited one reading the new text, updatable (no skip reason)
/// and parsing to exactly the intended reference.
///
/// # Errors
/// [`Error::Verify`] naming the first difference.
pub fn verify(
    path: &str,
    format: Format,
    old: &str,
    new: &str,
    edits: &[Edit],
) -> Result<(), Error> {
    let fail = |why: String| Error::Verify {
        path: path.to_owned(),
        why,
    };
    let (before, _) = scan_text(path, format, old);
    let (after, _) = scan_text(path, format, new);
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
        let edit = sorted.iter().find(|e| e.span == b.span);
        let shift: isize = sorted
            .iter()
            .filter(|e| e.span.end <= b.span.start && e.span != b.span)
            .map(|e| e.text.len() as isize - e.span.len() as isize)
            .sum();
        let expected_text = edit.map_or(b.written(), |e| e.text.get(e.lead..).unwrap_or(""));
        let expected_start = b.span.start as isize + shift + edit.map_or(0, |e| e.lead as isize);
        if a.written() != expected_text
            || a.span.start as isize != expected_start
            || a.format != b.format
            || a.platform != b.platform
        {
            return Err(fail(format!(
                "line {}: expected {expected_text:?}, found {:?}",
                b.line, a.reference
            )));
        }
        let (expected_image, expected_skip) = match edit {
            // A pin without a tag that follows a rule's tag reads `no-tag` to the scan,
            // which knows no rules: it stays so.
            Some(e) => (
                Some(&e.intended),
                b.skip_reason
                    .filter(|s| *s == crate::scan::SkipReason::NoTag),
            ),
            None => (b.image.as_ref(), b.skip_reason),
        };
        if a.image.as_ref() != expected_image || a.skip_reason != expected_skip {
            return Err(fail(format!(
                "line {}: {:?} does not parse as the intended reference{}",
                b.line,
                a.reference,
                a.skip_reason
                    .map(|r| format!(" ({})", r.name()))
                    .unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Writes `new` over the file `within` the folder `root` atomically, if it still holds
/// `old`. Owner, group and mode are kept. Returns a warning when the file had other hard
/// links (the rename gives this path a new file; the other links keep the old content).
///
/// # Errors
/// [`Error::Stale`] when the file changed since it was read, [`Error::Symlink`] for a
/// link (the file or a folder on the way), [`Error::Owner`] when its owner cannot be
/// kept, [`Error::Io`] for the rest. On any error the original file is untouched.
pub fn write_atomic(
    root: &cap_std::fs::Dir,
    within: &Path,
    display: &str,
    old: &[u8],
    new: &[u8],
) -> Result<Option<String>, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let io = |source| Error::Io {
        path: display.to_owned(),
        source,
    };
    let mut opened =
        rooted::open(root, within, u64::MAX).map_err(|e| Error::from_rooted(display, e))?;
    let mut current = Vec::new();
    std::io::Read::read_to_end(&mut opened.file, &mut current).map_err(io)?;
    if current != old {
        return Err(Error::Stale {
            path: display.to_owned(),
        });
    }
    let mut temp = cap_tempfile::TempFile::new(&opened.dir).map_err(io)?;
    temp.write_all(new).map_err(io)?;
    let written = temp.as_file().try_clone().map_err(io)?.into_std();
    let (uid, gid) = (opened.meta.uid(), opened.meta.gid());
    let made = written.metadata().map_err(io)?;
    if (made.uid(), made.gid()) != (uid, gid) {
        std::os::unix::fs::fchown(&written, Some(uid), Some(gid)).map_err(|source| {
            Error::Owner {
                path: display.to_owned(),
                uid,
                gid,
                source,
            }
        })?;
    }
    // After chown, which may clear set-id bits.
    written
        .set_permissions(opened.meta.permissions())
        .map_err(io)?;
    written.sync_all().map_err(io)?;
    temp.replace(&opened.name).map_err(io)?;
    let links = opened.meta.nlink();
    Ok((links > 1).then(|| {
        format!(
            "{display}: had {links} hard links; this path now holds the new content, the other links keep the old"
        )
    }))
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

    fn found(text: &str, reference: &str) -> Found {
        let (found, _) = scan_text("Dockerfile", crate::scan::dockerfile::FORMAT, text);
        found
            .into_iter()
            .find(|f| f.reference == reference)
            .unwrap_or_else(|| panic!("{reference} in {text}"))
    }

    fn digest(s: &str) -> Digest {
        s.parse().unwrap()
    }

    #[test]
    fn pin_keeps_the_tag_and_writes_the_one_looked_up() {
        let text = |r: &str| format!("FROM {r}\n");
        for (reference, expected) in [
            (format!("node:20@{OLD}"), format!("node:20@{NEW}")),
            ("node:20".to_owned(), format!("node:20@{NEW}")),
            (
                "localhost:5000/a:1".to_owned(),
                format!("localhost:5000/a:1@{NEW}"),
            ),
            // No tag: the one looked up is written, so the pin stays updatable.
            ("acme/tool".to_owned(), format!("acme/tool:latest@{NEW}")),
            (
                "localhost:5000/tool".to_owned(),
                format!("localhost:5000/tool:latest@{NEW}"),
            ),
        ] {
            let f = found(&text(&reference), &reference);
            let edit = Edit::pin(&f, &digest(NEW)).unwrap();
            assert_eq!(edit.text, expected);
            assert_eq!(edit.intended, ImageRef::parse(&expected).unwrap());
        }
    }

    fn edit_of(text: &str, reference: &str, digest_text: &str) -> Edit {
        Edit::pin(&found(text, reference), &digest(digest_text)).unwrap()
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
        verify(
            "Dockerfile",
            crate::scan::dockerfile::FORMAT,
            &text,
            &new,
            &edits,
        )
        .unwrap();
    }

    /// A reference written across several fields is rewritten in its digest's slot
    /// only, in the slot's style (replaced, bare hex, inserted after the tag), and the
    /// re-scan must compose exactly the intended reference.
    #[test]
    fn composed_references_rewrite_only_the_digest_slot() {
        use crate::scan::testing::FIELDS;
        let hex = |d: &str| d.trim_start_matches("sha256:").to_owned();
        let cases = [
            (
                format!("repository: bitnami/redis\ntag: 7.2\ndigest: {OLD}\n"),
                format!("repository: bitnami/redis\ntag: 7.2\ndigest: {NEW}\n"),
            ),
            (
                format!(
                    "repository: bitnami/redis\ntag: 7.2\ndigest: {}\n",
                    hex(OLD)
                ),
                format!(
                    "repository: bitnami/redis\ntag: 7.2\ndigest: {}\n",
                    hex(NEW)
                ),
            ),
            (
                format!("repository: bitnami/redis\ntag: 7.2@{OLD}\n"),
                format!("repository: bitnami/redis\ntag: 7.2@{NEW}\n"),
            ),
            (
                "repository: bitnami/redis\ntag: 7.2\n".to_owned(),
                format!("repository: bitnami/redis\ntag: 7.2@{NEW}\n"),
            ),
            (
                "repository: bitnami/redis\ntag: 7.2\ndigest: \n".to_owned(),
                format!("repository: bitnami/redis\ntag: 7.2\ndigest: {NEW}\n"),
            ),
        ];
        for (text, want) in cases {
            let (found, _) = crate::scan::testing::found(FIELDS, &text);
            assert_eq!(found.len(), 1, "{text}");
            let edit = Edit::pin(&found[0], &digest(NEW)).unwrap();
            let new = splice("values.yaml", &text, std::slice::from_ref(&edit)).unwrap();
            assert_eq!(new, want);
            verify(
                "values.yaml",
                FIELDS,
                &text,
                &new,
                std::slice::from_ref(&edit),
            )
            .unwrap();
            let (after, _) = crate::scan::testing::found(FIELDS, &new);
            assert_eq!(
                after[0].reference,
                format!("bitnami/redis:7.2@{NEW}"),
                "{new}"
            );
            // The wrong digest bytes in the slot are refused.
            let wrong = Edit {
                text: format!("{}{}", &edit.text[..edit.lead], hex(OLD)),
                ..edit.clone()
            };
            let bad = splice("values.yaml", &text, std::slice::from_ref(&wrong)).unwrap();
            assert!(
                verify("values.yaml", FIELDS, &text, &bad, &[wrong]).is_err(),
                "{bad}"
            );
        }
    }

    /// The JSON contract for a composed reference: `reference` is the composed one,
    /// `start`/`end` the digest part's span, and each part's text is the file's bytes
    /// at its span.
    /// Dockerfile `FROM`s composed from `ARG`s: the digest is rewritten where it is
    /// written (the `ARG` line or the `FROM` line, prefixed or bare hex), or added after
    /// the `FROM` word (with the tag looked up, when none is written); every other byte
    /// stays, and the result re-scans as the intended reference.
    #[test]
    fn composed_dockerfile_froms_rewrite_only_the_digest() {
        let hex = |d: &str| d[7..].to_owned();
        let cases = [
            (
                format!(
                    "ARG R=registry.example\nARG GO=1.21-alpine@{OLD}\nFROM ${{R}}/library/golang:${{GO}} AS b\nRUN echo $GO\n"
                ),
                format!(
                    "ARG R=registry.example\nARG GO=1.21-alpine@{NEW}\nFROM ${{R}}/library/golang:${{GO}} AS b\nRUN echo $GO\n"
                ),
            ),
            (
                format!("ARG JVM=acme/temurin\nFROM ${{JVM}}:21-jre@{OLD}\n"),
                format!("ARG JVM=acme/temurin\nFROM ${{JVM}}:21-jre@{NEW}\n"),
            ),
            (
                format!("ARG HEX=\"{}\"\nFROM alpine:3@sha256:${{HEX}}\n", hex(OLD)),
                format!("ARG HEX=\"{}\"\nFROM alpine:3@sha256:${{HEX}}\n", hex(NEW)),
            ),
            (
                "ARG V=3.20\nFROM alpine:${V} AS x\n".to_owned(),
                format!("ARG V=3.20\nFROM alpine:${{V}}@{NEW} AS x\n"),
            ),
            (
                "ARG REG=ghcr.io\nFROM ${REG}/acme/tool\n".to_owned(),
                format!("ARG REG=ghcr.io\nFROM ${{REG}}/acme/tool:latest@{NEW}\n"),
            ),
        ];
        let format = crate::scan::dockerfile::FORMAT;
        for (text, expected) in cases {
            let (found, _) = scan_text("Dockerfile", format, &text);
            let f = found.iter().find(|f| f.image.is_some()).unwrap();
            let edit = Edit::pin(f, &digest(NEW)).unwrap_or_else(|| panic!("{text}"));
            let new = splice("Dockerfile", &text, std::slice::from_ref(&edit)).unwrap();
            assert_eq!(new, expected);
            verify("Dockerfile", format, &text, &new, &[edit]).unwrap();
        }
    }

    /// Helm image maps: the digest rewritten in its own style (quoted prefixed, bare
    /// `sha`, after `@` in the tag), an empty `digest: ""` filled, and a map with no
    /// digest field left alone by `--pin`; comments and quotes stay.
    #[test]
    fn helm_values_rewrite_only_the_digest_in_its_style() {
        let hex = |d: &str| d[7..].to_owned();
        let format = crate::scan::helm_values::FORMAT;
        let cases = [
            (
                format!(
                    "image:\n  registry: docker.io\n  repository: bitnami/redis # r\n  tag: 7.2\n  digest: \"{OLD}\"  # pinned\n"
                ),
                Some(format!(
                    "image:\n  registry: docker.io\n  repository: bitnami/redis # r\n  tag: 7.2\n  digest: \"{NEW}\"  # pinned\n"
                )),
            ),
            (
                format!(
                    "image:\n  image: acme/x\n  version: '1'\n  sha: {}\n",
                    hex(OLD)
                ),
                Some(format!(
                    "image:\n  image: acme/x\n  version: '1'\n  sha: {}\n",
                    hex(NEW)
                )),
            ),
            (
                format!("image:\n  repository: acme/x\n  tag: 1@{OLD}\n"),
                Some(format!("image:\n  repository: acme/x\n  tag: 1@{NEW}\n")),
            ),
            (
                "image:\n  repository: acme/x\n  tag: \"1\"\n  digest: ''\n".to_owned(),
                Some(format!(
                    "image:\n  repository: acme/x\n  tag: \"1\"\n  digest: '{NEW}'\n"
                )),
            ),
            (
                "image:\n  repository: acme/x\n  tag: \"1\"\n".to_owned(),
                None,
            ),
        ];
        for (text, expected) in cases {
            let (found, _) = scan_text("values.yaml", format, &text);
            assert_eq!(found.len(), 1, "{text}");
            let edit = Edit::pin(&found[0], &digest(NEW));
            let Some(expected) = expected else {
                assert_eq!(edit, None, "{text}");
                continue;
            };
            let edit = edit.unwrap_or_else(|| panic!("{text}"));
            let new = splice("values.yaml", &text, std::slice::from_ref(&edit)).unwrap();
            assert_eq!(new, expected);
            verify("values.yaml", format, &text, &new, &[edit]).unwrap();
        }
    }

    #[test]
    fn composed_references_serialize_their_parts() {
        use crate::scan::testing::FIELDS;
        let text = format!("repository: bitnami/redis\ntag: 7.2\ndigest: {OLD}\n");
        let (found, _) = crate::scan::testing::found(FIELDS, &text);
        let json = serde_json::to_value(&found[0]).unwrap();
        assert_eq!(json["reference"], format!("bitnami/redis:7.2@{OLD}"));
        let (start, end) = (
            json["start"].as_u64().unwrap() as usize,
            json["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(&text[start..end], OLD);
        let parts = json["parts"].as_array().unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["repository", "tag", "digest"]);
        for part in parts {
            let (s, e) = (
                part["start"].as_u64().unwrap() as usize,
                part["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(text[s..e], *part["text"].as_str().unwrap());
        }
        // A reference written as one string has no `parts`.
        let (single, _) = scan_text("Dockerfile", crate::scan::dockerfile::FORMAT, "FROM a:1\n");
        assert!(
            serde_json::to_value(&single[0])
                .unwrap()
                .get("parts")
                .is_none()
        );
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
            lead: 0,
            intended: ImageRef::parse(&format!("redis:7@{NEW}")).unwrap(),
        }];
        let new = splice("compose.yaml", text, &edits).unwrap();
        let err = verify(
            "compose.yaml",
            crate::scan::compose::FORMAT,
            text,
            &new,
            &edits,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not re-scan as intended"),
            "{err}"
        );
    }

    /// Digests are checked data: an edit whose text does not re-scan as a valid pin of
    /// the intended digest is refused, whatever the text is.
    #[test]
    fn digests_are_checked_data_edits_that_do_not_pin_the_intended_digest_are_refused() {
        let text = format!("FROM node:20@{OLD}\nFROM alpine:3\n");
        let good = edit_of(&text, &format!("node:20@{OLD}"), NEW);
        for bad_text in [
            "node:20@sha256:deadbeef".to_owned(),
            format!("node:20@{}", NEW.to_uppercase()),
            format!("node:20@{OLD}"),
            format!("node:21@{NEW}"),
            format!("node:20@{NEW} AS x"),
            format!("node:20@{NEW}\nFROM other:1"),
            format!("$BASE@{NEW}"),
        ] {
            let edit = Edit {
                text: bad_text.clone(),
                ..good.clone()
            };
            let new = splice("Dockerfile", &text, std::slice::from_ref(&edit)).unwrap();
            let err = verify(
                "Dockerfile",
                crate::scan::dockerfile::FORMAT,
                &text,
                &new,
                &[edit],
            );
            assert!(
                matches!(err, Err(Error::Verify { .. })),
                "{bad_text:?} was accepted"
            );
        }
        let new = splice("Dockerfile", &text, std::slice::from_ref(&good)).unwrap();
        verify(
            "Dockerfile",
            crate::scan::dockerfile::FORMAT,
            &text,
            &new,
            &[good],
        )
        .unwrap();
    }

    #[test]
    fn overlapping_edits_are_refused() {
        let any = ImageRef::parse("x").unwrap();
        let edits = vec![
            Edit {
                span: 0..4,
                original: "abcd".into(),
                text: "x".into(),
                lead: 0,
                intended: any.clone(),
            },
            Edit {
                span: 2..6,
                original: "cdef".into(),
                text: "y".into(),
                lead: 0,
                intended: any.clone(),
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
            lead: 0,
            intended: any,
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
            lead: 0,
            intended: ImageRef::parse(&format!("node:20@{NEW}")).unwrap(),
        }];
        assert!(matches!(
            splice("Dockerfile", &text, &edits),
            Err(Error::Stale { .. })
        ));
    }

    fn write(dir: &Path, within: &str, old: &[u8], new: &[u8]) -> Result<Option<String>, Error> {
        let root = rooted::open_root(dir).unwrap();
        write_atomic(&root, Path::new(within), within, old, new)
    }

    #[test]
    fn atomic_write_keeps_permissions_and_refuses_stale_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, "FROM a\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            write(dir.path(), "Dockerfile", b"FROM a\n", b"FROM b\n").unwrap(),
            None
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "FROM b\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let err = write(dir.path(), "Dockerfile", b"FROM a\n", b"FROM c\n").unwrap_err();
        assert!(matches!(err, Error::Stale { .. }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "FROM b\n");
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Files: only the bytes repin means to change — a file that is a link, or lies
    /// under a folder that is a link, is not written through.
    #[test]
    fn files_only_the_intended_bytes_no_write_through_links() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("Dockerfile"), "FROM a\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        std::fs::write(&target, "FROM a\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("Dockerfile")).unwrap();
        let err = write(dir.path(), "Dockerfile", b"FROM a\n", b"FROM b\n").unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "FROM a\n");
        // A folder swapped for a link to outside the root.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("app")).unwrap();
        let err = write(dir.path(), "app/Dockerfile", b"FROM a\n", b"FROM b\n").unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(outside.path().join("Dockerfile")).unwrap(),
            "FROM a\n"
        );
    }

    /// Owner and group are kept: run as root (as CI runs), a file owned by 1234:2345
    /// stays 1234:2345 (a plain rename would make it 0:0).
    #[test]
    fn files_only_the_intended_bytes_owner_and_group_kept() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, "FROM a\n").unwrap();
        let root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
        let (uid, gid) = if root {
            std::os::unix::fs::chown(&path, Some(1234), Some(2345)).unwrap();
            (1234, 2345)
        } else {
            let m = std::fs::metadata(&path).unwrap();
            (m.uid(), m.gid())
        };
        write(dir.path(), "Dockerfile", b"FROM a\n", b"FROM b\n").unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "FROM b\n");
    }

    /// Hard links: the path gets the new content and the caller gets a warning naming
    /// what happened to the other links.
    #[test]
    fn files_only_the_intended_bytes_hard_links_warned() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM a\n").unwrap();
        std::fs::hard_link(dir.path().join("Dockerfile"), dir.path().join("copy")).unwrap();
        let warning = write(dir.path(), "Dockerfile", b"FROM a\n", b"FROM b\n")
            .unwrap()
            .unwrap();
        assert!(warning.contains("had 2 hard links"), "{warning}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("copy")).unwrap(),
            "FROM a\n"
        );
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
