//! A reference written across the fields of one YAML mapping (Helm's
//! `registry`/`repository`/`tag`/`digest`, Kustomize's `newName`/`newTag`/`digest`):
//! which field names each format uses, and the composed finding they make.
//!
//! Every field must be a scalar written verbatim (else a note: it cannot be edited in
//! place). The digest's slot is, in order of preference: a `digest`-like field (bare
//! hex when written without `sha256:`), a `sha`-like field (bare hex), the part after
//! `@` in the tag, a tag that is itself a digest, the inside of an empty `""` digest
//! field (filled by `--pin`), or none at all ([`DigestSlot::none`]).

use std::ops::Range;

use super::yaml::{Node, NodeId, UNREADABLE, Yaml};
use super::{Composed, DigestSlot, Extracted, source};

/// The field names a format reads, each list in order of preference.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    /// The registry, put before the repository unless the repository names its own.
    pub registry: &'static [&'static str],
    /// The repository (required).
    pub repository: &'static [&'static str],
    /// The tag; may hold `tag@digest`, or be the digest itself.
    pub tag: &'static [&'static str],
    /// The digest as `sha256:<hex>` (or bare hex).
    pub digest: &'static [&'static str],
    /// The digest as bare hex.
    pub sha: &'static [&'static str],
}

/// A field as written.
#[derive(Debug, Clone)]
enum Field {
    /// Written verbatim at this span.
    At(Range<usize>),
    /// An empty quoted value: an insertion point between the quotes.
    Empty(usize),
    /// Written with escapes or folding: cannot be edited in place (its line).
    Unreadable(usize),
}

/// What a mapping's fields make.
#[derive(Debug)]
pub enum Read {
    /// No repository field: not an image.
    NotImage,
    /// An image that cannot be a finding: a field cannot be edited in place (a note
    /// says so), or the repository is empty.
    Unusable,
    /// The composed reference.
    Image(Composed),
}

/// The composed reference of the mapping `map`.
#[must_use]
pub fn read(yaml: &Yaml, text: &str, map: NodeId, names: &Names, out: &mut Extracted) -> Read {
    let field = |names: &[&str]| field(yaml, text, map, names);
    let Some(repository) = field(names.repository) else {
        return Read::NotImage;
    };
    let (registry, tag) = (field(names.registry), field(names.tag));
    let (digest, sha) = (field(names.digest), field(names.sha));
    let unreadable = [&registry, &Some(repository.clone()), &tag, &digest, &sha]
        .into_iter()
        .flatten()
        .find_map(|f| match f {
            Field::Unreadable(line) => Some(*line),
            _ => None,
        });
    if let Some(line) = unreadable {
        out.notes.push((line, UNREADABLE.to_owned()));
        return Read::Unusable;
    }
    let at = |f: Option<Field>| match f {
        Some(Field::At(span)) => Some(span),
        _ => None,
    };
    let (Some(repository), registry, tag) = (at(Some(repository)), at(registry), at(tag)) else {
        return Read::Unusable;
    };
    Read::Image(compose(text, registry, repository, tag, digest, sha))
}

/// Puts the fields together (see the module doc).
fn compose(
    text: &str,
    registry: Option<Range<usize>>,
    repository: Range<usize>,
    tag: Option<Range<usize>>,
    digest: Option<Field>,
    sha: Option<Field>,
) -> Composed {
    let mut parts: Vec<(&'static str, Range<usize>)> = Vec::new();
    let mut reference = String::new();
    // A repository that already names its registry (`ghcr.io/acme/app`) is used as it
    // is, as charts do; the `registry` field is not put before it.
    let written = &text[repository.clone()];
    let first = written.split('/').next().unwrap_or_default();
    let hosted = written.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    if let Some(registry) = registry.filter(|_| !hosted) {
        parts.push(("registry", registry.clone()));
        reference.push_str(&text[registry]);
        reference.push('/');
    }
    parts.push(("repository", repository.clone()));
    reference.push_str(written);
    let mut slot = None;
    if let Some(tag) = tag {
        let written = &text[tag.clone()];
        if written.starts_with("sha256:") {
            slot = Some(DigestSlot::replace(tag.clone(), false));
        } else if let Some(at) = written.find('@') {
            parts.push(("tag", tag.start..tag.start + at));
            reference.push(':');
            reference.push_str(&written[..at]);
            slot = Some(DigestSlot::replace(tag.start + at + 1..tag.end, false));
        } else {
            parts.push(("tag", tag.clone()));
            reference.push(':');
            reference.push_str(written);
        }
    }
    for (field, bare_name) in [(digest, false), (sha, true)] {
        match field {
            Some(Field::At(span)) => {
                let bare = bare_name || !text[span.clone()].starts_with("sha256:");
                slot = Some(DigestSlot::replace(span, bare));
            }
            Some(Field::Empty(at)) if slot.is_none() => {
                slot = Some(DigestSlot::fill(at, bare_name));
            }
            _ => {}
        }
    }
    let digest = slot.unwrap_or_else(|| DigestSlot::none(parts.last().map_or(0, |p| p.1.end)));
    if !digest.span.is_empty() {
        reference.push('@');
        if digest.bare {
            reference.push_str("sha256:");
        }
        reference.push_str(&text[digest.span.clone()]);
        parts.push(("digest", digest.span.clone()));
    }
    parts.sort_by_key(|(_, span)| span.start);
    Composed {
        reference,
        parts,
        digest,
    }
}

/// The first of `names` the map holds with a scalar value.
fn field(yaml: &Yaml, text: &str, map: NodeId, names: &[&str]) -> Option<Field> {
    let id = names.iter().find_map(|name| yaml.get(map, name))?;
    let id = yaml.resolve(id);
    let Node::Scalar { value, span, .. } = &yaml.nodes[id] else {
        return None;
    };
    if value.is_empty() {
        // `""` or `''`: the place between the quotes can be filled; a plain empty value
        // (null) has no place.
        let written = &text[span.clone()];
        return (written == "\"\"" || written == "''").then(|| Field::Empty(span.start + 1));
    }
    Some(match yaml.scalar_text(text, id) {
        Some(range) => Field::At(range),
        None => Field::Unreadable(source::line_of(text, span.start)),
    })
}
