//! A positioned YAML tree, built from `libyaml-safer` events and shared by the YAML
//! formats.
//!
//! Nodes live in one arena; anchors and aliases are kept as links (an alias is a node
//! pointing at its anchored node), so a walker can follow `*ref` and `<<: *ref` to the
//! text where the value is written, and report it once. Spans are byte offsets into the
//! file.
//!
//! Why `libyaml-safer`: it is a safe Rust port of libyaml, the parser behind go-yaml,
//! which is what `docker compose` and `kubectl` use. Real Compose files that those tools
//! accept (a flow sequence whose `]` sits at the key's indentation, say) are rejected
//! by the stricter YAML 1.2 parsers (`saphyr`, `yaml-rust2`); repin must read what the
//! user's own tools read. Why not `serde_yaml`-style deserialization: it drops
//! positions, and a typed model of every Kubernetes kind is not needed to find `image:`.
//!
//! Multi-document files are split at document markers (`---`/`...` at the start of a
//! line; YAML forbids those lines inside any scalar), so each document is parsed on its
//! own: callers can skip documents that cannot matter, and a syntax error in one
//! document does not hide the next.

use std::collections::HashMap;
use std::ops::Range;

use libyaml_safer::{EventData, Parser, ScalarStyle};

use super::source::line_of;

/// Index of a node in [`Yaml::nodes`].
pub type NodeId = usize;

/// Deepest nesting accepted; deeper input is reported as an error.
const MAX_DEPTH: usize = 256;
/// Nodes kept per file. Each costs tens of bytes plus its text; a hostile file of a
/// million one-line items would otherwise cost hundreds of megabytes. Real Compose files
/// and manifests hold a few thousand at most.
const MAX_NODES: usize = 300_000;

#[derive(Debug)]
pub enum Node {
    Scalar {
        value: String,
        style: ScalarStyle,
        /// Byte range of the whole node as the parser reports it (anchor, tag, quotes and
        /// block header included).
        span: Range<usize>,
    },
    /// Key/value pairs in document order.
    Map(Vec<(NodeId, NodeId)>),
    Seq(Vec<NodeId>),
    /// `*name`: the anchored node.
    Alias(NodeId),
}

/// Parsed documents, possibly from several parts of one file.
#[derive(Debug, Default)]
pub struct Yaml {
    pub nodes: Vec<Node>,
    /// Root node of each complete document.
    pub docs: Vec<NodeId>,
}

/// A YAML syntax error: the 1-based line and the parser's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
    /// Byte offset where the document holding the error starts.
    pub doc_start: usize,
}

enum Frame {
    Map {
        anchor: Option<String>,
        items: Vec<NodeId>,
    },
    Seq {
        anchor: Option<String>,
        items: Vec<NodeId>,
    },
}

/// Byte ranges of the documents of a file, split at lines starting with `---` or `...`.
/// A file with `%` directives is one range (a directive belongs to the next document).
#[must_use]
pub fn documents(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b'%') || text.contains("\n%") {
        return std::iter::once(0..text.len()).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let line_starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
    for line in line_starts {
        let rest = &bytes[line..];
        let marker = (rest.starts_with(b"---") || rest.starts_with(b"..."))
            && rest
                .get(3)
                .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        if marker && line > start {
            out.push(start..line);
            start = line;
        }
    }
    if start < bytes.len() {
        out.push(start..bytes.len());
    }
    out
}

/// Parses `text[range]` (one or more documents) and appends its documents to `yaml`.
/// On a syntax error the documents completed before it are kept and the error returned.
///
/// `libyaml-safer` can panic on some malformed input (a `"\` at the very end of the
/// input, found by this project's property tests). Two guards keep that from taking the
/// scan down: the parser always sees input that ends in a line break (a copy is made in
/// the rare case the file does not), and any other panic inside the parser is caught and
/// reported as a syntax error of that document. Nodes are only ever appended, so a caught
/// panic leaves `yaml` consistent.
pub fn parse_into(yaml: &mut Yaml, text: &str, range: Range<usize>) -> Option<SyntaxError> {
    let nodes = yaml.nodes.len();
    let docs = yaml.docs.len();
    let outcome = panic_guard::catch(|| parse_events(yaml, text, range.clone()));
    outcome.unwrap_or_else(|| {
        yaml.nodes.truncate(nodes);
        yaml.docs.truncate(docs);
        Some(SyntaxError {
            line: line_of(text, range.start),
            message: "the YAML parser failed on this document".to_owned(),
            doc_start: range.start,
        })
    })
}

fn parse_events(yaml: &mut Yaml, text: &str, range: Range<usize>) -> Option<SyntaxError> {
    let part = &text[range.clone()];
    let padded;
    let input_text = if part.ends_with('\n') {
        part
    } else {
        // Appending at the end moves no offset.
        padded = format!("{part}\n");
        &padded
    };
    // libyaml does not count a byte order mark in its offsets.
    let base = range.start + if part.starts_with('\u{feff}') { 3 } else { 0 };
    let mut doc_start = range.start;
    let error = |line: u64, message: String, doc_start: usize| SyntaxError {
        line: line_of(text, range.start) + usize::try_from(line).unwrap_or(0),
        message,
        doc_start,
    };
    let mut input = input_text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut anchors: HashMap<String, NodeId> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<NodeId> = None;
    loop {
        let event = match parser.parse() {
            Ok(event) => event,
            Err(e) => {
                let line = e.problem_mark().map_or(0, |m| m.line);
                let message = match e.context() {
                    Some(context) => format!("{}, {context}", e.problem()),
                    None => e.problem().to_owned(),
                };
                return Some(error(line, message, doc_start));
            }
        };
        let at = |index: u64| base + usize::try_from(index).unwrap_or(usize::MAX - base);
        let node = match event.data {
            EventData::StreamEnd => return None,
            EventData::Scalar {
                anchor,
                value,
                style,
                ..
            } => {
                let span = at(event.start_mark.index)..at(event.end_mark.index);
                Some((Node::Scalar { value, style, span }, anchor))
            }
            EventData::Alias { anchor } => {
                if let Some(&target) = anchors.get(&anchor) {
                    Some((Node::Alias(target), None))
                } else {
                    let message = format!("alias *{anchor} to an unknown anchor");
                    return Some(error(event.start_mark.line, message, doc_start));
                }
            }
            EventData::MappingStart { anchor, .. } => {
                let frame = Frame::Map {
                    anchor,
                    items: Vec::new(),
                };
                if let Err(message) = push_frame(&mut stack, frame) {
                    return Some(error(event.start_mark.line, message, doc_start));
                }
                None
            }
            EventData::SequenceStart { anchor, .. } => {
                let frame = Frame::Seq {
                    anchor,
                    items: Vec::new(),
                };
                if let Err(message) = push_frame(&mut stack, frame) {
                    return Some(error(event.start_mark.line, message, doc_start));
                }
                None
            }
            EventData::MappingEnd | EventData::SequenceEnd => match stack.pop() {
                Some(Frame::Map { anchor, items }) => {
                    let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
                    Some((Node::Map(pairs), anchor))
                }
                Some(Frame::Seq { anchor, items }) => Some((Node::Seq(items), anchor)),
                None => None,
            },
            EventData::DocumentStart { .. } => {
                doc_start = at(event.start_mark.index).min(text.len());
                None
            }
            EventData::DocumentEnd { .. } => {
                if let Some(root) = root.take() {
                    yaml.docs.push(root);
                }
                anchors.clear();
                None
            }
            EventData::StreamStart { .. } => None,
        };
        if let Some((node, anchor)) = node {
            if yaml.nodes.len() >= MAX_NODES {
                let message = format!("more than {MAX_NODES} YAML nodes; the rest is not read");
                return Some(error(event.start_mark.line, message, doc_start));
            }
            let id = yaml.nodes.len();
            yaml.nodes.push(node);
            if let Some(anchor) = anchor {
                anchors.insert(anchor, id);
            }
            match stack.last_mut() {
                Some(Frame::Map { items, .. } | Frame::Seq { items, .. }) => items.push(id),
                None => root = Some(id),
            }
        }
    }
}

fn push_frame(stack: &mut Vec<Frame>, frame: Frame) -> Result<(), String> {
    if stack.len() >= MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
    }
    stack.push(frame);
    Ok(())
}

/// Catching panics from the YAML parser without the default hook printing them.
mod panic_guard {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;

    thread_local! {
        static GUARDED: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f`; `None` if it panicked. The panic is silent on this thread meanwhile; every
    /// other panic still reaches the previous hook.
    pub fn catch<T>(f: impl FnOnce() -> T) -> Option<T> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                if !GUARDED.with(Cell::get) {
                    previous(info);
                }
            }));
        });
        GUARDED.with(|g| g.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        GUARDED.with(|g| g.set(false));
        result.ok()
    }
}

/// Parses a whole file as one stream.
#[must_use]
pub fn parse(text: &str) -> (Yaml, Option<SyntaxError>) {
    let mut yaml = Yaml::default();
    let error = parse_into(&mut yaml, text, 0..text.len());
    (yaml, error)
}

impl Yaml {
    /// Follows aliases to the node that holds the value.
    #[must_use]
    pub fn resolve(&self, mut id: NodeId) -> NodeId {
        // Aliases point at nodes created earlier, so this ends; the bound is belt and
        // braces.
        for _ in 0..self.nodes.len() {
            match self.nodes[id] {
                Node::Alias(target) => id = target,
                _ => break,
            }
        }
        id
    }

    /// The value of a plain or quoted scalar node (aliases followed).
    #[must_use]
    pub fn str(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[self.resolve(id)] {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The items of a sequence node (aliases followed); none for no node or any other
    /// kind.
    #[must_use]
    pub fn items(&self, node: Option<NodeId>) -> &[NodeId] {
        match node.map(|n| &self.nodes[self.resolve(n)]) {
            Some(Node::Seq(list)) => list,
            _ => &[],
        }
    }

    /// The (key, value) pairs of a mapping node (aliases followed); none for no node or
    /// any other kind.
    #[must_use]
    pub fn pairs(&self, node: Option<NodeId>) -> &[(NodeId, NodeId)] {
        match node.map(|n| &self.nodes[self.resolve(n)]) {
            Some(Node::Map(list)) => list,
            _ => &[],
        }
    }

    /// The value for `key` in a mapping node, if the node is a mapping and has the key.
    #[must_use]
    pub fn get(&self, map: NodeId, key: &str) -> Option<NodeId> {
        match &self.nodes[self.resolve(map)] {
            Node::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| self.str(*k) == Some(key))
                .map(|(_, v)| *v),
            _ => None,
        }
    }

    /// Where a scalar's value is written in `text`, when the source holds it verbatim
    /// (no escapes, no line folding): the byte range of the value, quotes excluded.
    #[must_use]
    pub fn scalar_text(&self, text: &str, id: NodeId) -> Option<Range<usize>> {
        let Node::Scalar { value, style, span } = &self.nodes[id] else {
            return None;
        };
        let region = text.get(span.clone())?;
        let value = match style {
            ScalarStyle::Literal | ScalarStyle::Folded => value.trim_end_matches('\n'),
            _ => value.as_str(),
        };
        if value.is_empty() || value.contains('\n') {
            return None;
        }
        let at = span.start + region.rfind(value)?;
        let range = at..at + value.len();
        let bytes = text.as_bytes();
        let quoted_by =
            |q: u8| at > 0 && bytes.get(at - 1) == Some(&q) && bytes.get(range.end) == Some(&q);
        let exact = match style {
            ScalarStyle::Plain => text[span.clone()].ends_with(value),
            ScalarStyle::SingleQuoted => quoted_by(b'\''),
            ScalarStyle::DoubleQuoted => quoted_by(b'"'),
            _ => true,
        };
        exact.then_some(range)
    }
}

impl Yaml {
    /// The text of a scalar that holds a file of its own (a Dockerfile in Compose's
    /// `dockerfile_inline`), with each byte's place in `text`: a literal block (`|`,
    /// `|-`, `|+`; its indentation removed, line breaks kept) or a one-line scalar
    /// written verbatim. `None` for other styles (folding, escapes) or when the lines
    /// rebuilt from the file are not exactly the parser's value.
    #[must_use]
    pub fn embedded(&self, text: &str, id: NodeId) -> Option<super::embedded::Embedded> {
        let id = self.resolve(id);
        let Node::Scalar { value, style, span } = &self.nodes[id] else {
            return None;
        };
        if *style != ScalarStyle::Literal {
            return super::embedded::Embedded::verbatim(text, self.scalar_text(text, id)?);
        }
        let region = text.get(span.clone())?;
        // The header line (`|-`, a comment) ends at the first line break.
        let body_start = span.start + region.find('\n')? + 1;
        let body = &text[body_start..span.end];
        let indent = body
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches(' ').len())?;
        let mut inner = String::new();
        let mut offsets = Vec::new();
        let mut at = body_start;
        for line in body.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            if content.trim().is_empty() {
                // A blank line inside the block: only its break is content.
            } else if content.len() > indent
                && content.as_bytes()[..indent].iter().all(|&b| b == b' ')
            {
                inner.push_str(&content[indent..]);
                offsets.extend(at + indent..at + content.len());
            } else {
                break; // less indented: the block has ended
            }
            if line.ends_with('\n') {
                inner.push('\n');
                offsets.push(at + content.len());
            }
            at += line.len();
        }
        let kept = value.trim_end_matches('\n');
        if !inner.starts_with(kept) || !inner[kept.len()..].bytes().all(|b| b == b'\n') {
            return None;
        }
        let end = kept.len() + usize::from(inner.len() > kept.len());
        inner.truncate(end);
        offsets.truncate(end);
        let after = offsets.last().map_or(body_start, |o| o + 1);
        offsets.push(after);
        Some(super::embedded::Embedded {
            text: inner,
            offsets,
        })
    }
}

/// What a YAML format makes of a scalar that should hold an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageValue {
    /// The value is written verbatim at this byte range.
    At(Range<usize>),
    /// Not a reference at all: null, empty, or not a scalar.
    Absent,
    /// A string the file writes in a form that cannot be edited in place (escapes, line
    /// folding); the 1-based line it starts on.
    Unreadable(usize),
}

impl Yaml {
    /// Classifies the (alias-resolved) node under an `image` key.
    #[must_use]
    pub fn image_value(&self, text: &str, id: NodeId) -> ImageValue {
        let id = self.resolve(id);
        let Node::Scalar { value, style, span } = &self.nodes[id] else {
            return ImageValue::Absent;
        };
        let null = matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL");
        if null && *style == ScalarStyle::Plain || value.trim().is_empty() {
            return ImageValue::Absent;
        }
        match self.scalar_text(text, id) {
            Some(range) => ImageValue::At(range),
            None => ImageValue::Unreadable(line_of(text, span.start)),
        }
    }
}

/// The note for an image value that cannot be edited in place.
pub const UNREADABLE: &str =
    "image value uses YAML escapes or line folding; it cannot be edited in place";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_maps_and_aliases() {
        let text = "a: &x \"é v\"\nb: *x\nc: [1, {d: e}]\n";
        let (yaml, err) = parse(text);
        assert!(err.is_none());
        let root = yaml.docs[0];
        let b = yaml.get(root, "b").unwrap();
        assert_eq!(yaml.str(b), Some("é v"));
        let a = yaml.get(root, "a").unwrap();
        assert_eq!(&text[yaml.scalar_text(text, a).unwrap()], "é v");
    }

    #[test]
    fn scalar_text_for_each_style() {
        let text = "p: plain  # c\ns: 'single'\nd: \"double\"\ne: \"esc\\x41\"\nf: >-\n  folded\nm: multi\n  line\nq: 'it''s'\n";
        let (yaml, _) = parse(text);
        let root = yaml.docs[0];
        let at = |k| {
            yaml.scalar_text(text, yaml.get(root, k).unwrap())
                .map(|r| &text[r])
        };
        assert_eq!(at("p"), Some("plain"));
        assert_eq!(at("s"), Some("single"));
        assert_eq!(at("d"), Some("double"));
        assert_eq!(at("e"), None);
        assert_eq!(at("f"), Some("folded"));
        assert_eq!(at("m"), None);
        assert_eq!(at("q"), None);
    }

    #[test]
    fn anchor_name_is_not_the_value() {
        let text = "a: &nginx nginx\n";
        let (yaml, _) = parse(text);
        let a = yaml.get(yaml.docs[0], "a").unwrap();
        assert_eq!(yaml.scalar_text(text, a), Some(10..15));
    }

    #[test]
    fn keeps_documents_before_an_error() {
        let text = "a: 1\n---\nb: [\n";
        let (yaml, err) = parse(text);
        assert_eq!(yaml.docs.len(), 1);
        assert!(err.is_some());
    }

    #[test]
    fn splits_documents_at_markers() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: |\n  ---x\n...\n---";
        let docs: Vec<&str> = documents(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            docs,
            [
                "a: 1\n",
                "---\nb: 2\n",
                "--- # c\nc: |\n  ---x\n",
                "...\n",
                "---"
            ]
        );
        assert_eq!(documents("%YAML 1.2\n---\na: 1\n---\nb: 2\n").len(), 1);
    }

    #[test]
    fn offsets_of_a_later_part_and_after_a_bom() {
        let text = "\u{feff}a: é\n---\nb: ü\n";
        let mut yaml = Yaml::default();
        for range in documents(text) {
            assert!(parse_into(&mut yaml, text, range).is_none());
        }
        let a = yaml.get(yaml.docs[0], "a").unwrap();
        let b = yaml.get(yaml.docs[1], "b").unwrap();
        assert_eq!(&text[yaml.scalar_text(text, a).unwrap()], "é");
        assert_eq!(&text[yaml.scalar_text(text, b).unwrap()], "ü");
    }

    #[test]
    fn accepts_what_go_yaml_accepts() {
        // docker compose reads this; strict YAML 1.2 parsers reject the `]` indentation.
        let text = "services:\n  a:\n    command: [\n      \"x\",\n    ]\n    image: nginx\n";
        let (yaml, err) = parse(text);
        assert!(err.is_none(), "{err:?}");
        let a = yaml
            .get(yaml.get(yaml.docs[0], "services").unwrap(), "a")
            .unwrap();
        assert_eq!(yaml.str(yaml.get(a, "image").unwrap()), Some("nginx"));
    }

    #[test]
    fn regression_backslash_at_end_of_input_is_an_error_not_a_panic() {
        for text in ["\"\\", "a: \"\\", "- \"x\\"] {
            let (_, err) = parse(text);
            assert!(err.is_some(), "{text:?}");
        }
    }

    #[test]
    fn a_panic_in_the_parser_becomes_an_error() {
        assert_eq!(panic_guard::catch(|| 1), Some(1));
        assert_eq!(panic_guard::catch(|| -> i32 { panic!("boom") }), None);
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = "- ".repeat(10_000) + "x\n";
        let (_, err) = parse(&text);
        let err = err.unwrap();
        assert!(err.message.contains("nesting"), "{err:?}");
    }
}
