//! What a change set looks like as a pull request: branch name, commit message, title,
//! and a body a reviewer can act on — with the machine-readable state hidden in it, so
//! the bot stays stateless across runs and machines.
//!
//! The state is one HTML comment, `<!-- repin-state: {json} -->`, holding the change
//! set's id and every reference with its old and new digest. A later run reads it back
//! to tell "already proposed" from "newer digest" and "closed without merging: not this
//! digest".

use serde::{Deserialize, Serialize};

use crate::config::Effective;
use crate::imageref::{Digest, ImageRef};
use crate::model::Record;

/// Opens the hidden state comment.
const STATE_OPEN: &str = "<!-- repin-state: ";
/// Closes it.
const STATE_CLOSE: &str = " -->";
/// Branch prefix when the rules set none.
pub const DEFAULT_BRANCH_PREFIX: &str = "repin/";

/// One reference in a change set, as recorded in the PR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefState {
    /// The file, relative to the repository root.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// Normalized `registry/repository`.
    pub image: String,
    /// The tag looked up (`None`: `latest`).
    pub tag: Option<String>,
    /// `None` for a reference being pinned for the first time.
    pub old: Option<Digest>,
    /// The proposed digest.
    pub new: Digest,
    /// The platform the file fixes (`linux/arm64`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// The state a PR carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposed {
    /// Format version.
    pub v: u32,
    /// The change set's id (group, or image).
    pub set: String,
    /// Every reference the change set updates.
    pub refs: Vec<RefState>,
    /// The commit repin pushed to the branch: a branch elsewhere is someone else's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Proposed {
    /// The state of a change set's members.
    #[must_use]
    pub fn of(id: &str, members: &[&Record]) -> Self {
        let refs = members
            .iter()
            .filter_map(|c| {
                let image = c.found.image.as_ref()?;
                Some(RefState {
                    path: c.found.path.clone(),
                    line: c.found.line,
                    image: image.name().to_string(),
                    tag: image.tag.clone(),
                    old: image.digest.clone(),
                    new: c.new_digest()?.clone(),
                    platform: c.found.platform.as_ref().map(ToString::to_string),
                })
            })
            .collect();
        Self {
            v: 1,
            set: id.to_owned(),
            refs,
            commit: None,
        }
    }

    /// The new digests, sorted: two states propose the same thing when these agree.
    #[must_use]
    pub fn proposal(&self) -> Vec<(&str, Option<&str>, &Digest)> {
        let mut out: Vec<_> = self
            .refs
            .iter()
            .map(|r| (r.image.as_str(), r.tag.as_deref(), &r.new))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The hidden comment carrying this state.
    #[must_use]
    pub fn comment(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        // `--` cannot appear in an HTML comment; JSON of digests and paths has none in
        // practice, but a path could: escape it.
        format!(
            "{STATE_OPEN}{}{STATE_CLOSE}",
            json.replace("--", "-\\u002d")
        )
    }

    /// Reads the state back from a PR body; `None` when the body has none (not repin's,
    /// or edited beyond recognition).
    #[must_use]
    pub fn parse(body: &str) -> Option<Self> {
        let start = body.find(STATE_OPEN)? + STATE_OPEN.len();
        let end = start + body[start..].find(STATE_CLOSE)?;
        serde_json::from_str(&body[start..end]).ok()
    }
}

/// `sha256:0123456789ab…` → `0123456789ab` (12 hex characters, as registries show).
#[must_use]
pub fn short(digest: &Digest) -> &str {
    digest.short(12)
}

/// A branch-safe slug: lowercase letters, digits, `.`, `_` and `-`; never `..`, never
/// ending in `.lock`, never empty — so it is always a valid last component of a git
/// branch name.
#[must_use]
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_ascii_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            c
        } else {
            '-'
        };
        if !(matches!(c, '-' | '.') && out.ends_with(c)) {
            out.push(c);
        }
    }
    let mut out = out.trim_matches(['-', '.']).to_owned();
    if out.ends_with(".lock") {
        out.truncate(out.len() - ".lock".len());
        out.push_str("-lock");
    }
    if out.is_empty() {
        out.push_str("set");
    }
    out
}

/// The branch for a change set.
#[must_use]
pub fn branch(id: &str, settings: &Effective) -> String {
    let prefix = settings
        .pr
        .branch_prefix
        .as_deref()
        .unwrap_or(DEFAULT_BRANCH_PREFIX);
    format!("{prefix}{}", slug(id))
}

/// A person's name for an image: `node` for Docker Hub's library, else the full name.
fn familiar(image: &str) -> String {
    ImageRef::parse(image).map_or_else(|_| image.to_owned(), |i| i.familiar())
}

/// `node:20` (image and tag as a person writes them).
fn label(r: &RefState) -> String {
    let image = familiar(&r.image);
    match &r.tag {
        Some(tag) => format!("{image}:{tag}"),
        None => image,
    }
}

/// The commit message (and default title): `Update node:20 digest to 1a2b3c4` for one
/// image and tag, `Update <group> digests` otherwise.
#[must_use]
pub fn commit_message(state: &Proposed, settings: &Effective) -> String {
    let distinct = state.proposal();
    let subject = match distinct.as_slice() {
        [(_, _, new)] => format!(
            "Update {} digest to {}",
            label(&state.refs[0]),
            new.short(7)
        ),
        _ => format!(
            "Update {} digests",
            settings
                .group
                .as_deref()
                .map_or_else(|| familiar(&state.set), str::to_owned)
        ),
    };
    let mut lines = vec![subject, String::new()];
    for r in &state.refs {
        lines.push(format!(
            "- {}:{} {}: {} -> {}",
            r.path,
            r.line,
            label(r),
            r.old.as_ref().map_or("(unpinned)", short),
            short(&r.new)
        ));
    }
    lines.join("\n") + "\n"
}

/// The PR title: the rules' template (`{group}`, `{image}`, `{tag}`, `{digest}`), else the
/// commit subject.
#[must_use]
pub fn title(state: &Proposed, settings: &Effective) -> String {
    let message = commit_message(state, settings);
    let subject = message.lines().next().unwrap_or_default().to_owned();
    let Some(template) = &settings.pr.title else {
        return subject;
    };
    let first = &state.refs[0];
    template
        .replace("{group}", settings.group.as_deref().unwrap_or(&state.set))
        .replace("{image}", &familiar(&first.image))
        .replace(
            "{tag}",
            first.tag.as_deref().unwrap_or(crate::imageref::DEFAULT_TAG),
        )
        .replace("{digest}", short(&first.new))
}

/// What the registry says about images, by digest (for the body; best effort).
pub type Facts = std::collections::BTreeMap<Digest, crate::registry::manifest::ImageFacts>;

/// For each distinct new digest: when it was built, its source, and what changed since
/// the old digest's revision (a compare link for GitHub sources).
fn images_section(state: &Proposed, facts: &Facts) -> String {
    let mut out = String::new();
    let mut seen = Vec::new();
    for r in &state.refs {
        if seen.contains(&&r.new) {
            continue;
        }
        seen.push(&r.new);
        let Some(new) = facts.get(&r.new) else {
            continue;
        };
        let mut parts = Vec::new();
        if let Some(created) = &new.created {
            parts.push(format!("built {created}"));
        }
        if let Some(source) = &new.source {
            parts.push(format!("source: {source}"));
            let old_revision = r
                .old
                .as_ref()
                .and_then(|o| facts.get(o))
                .and_then(|f| f.revision.as_ref());
            if let (Some(old), Some(new_rev)) = (old_revision, &new.revision)
                && source.starts_with("https://github.com/")
                && old != new_rev
            {
                parts.push(format!(
                    "changes: {}/compare/{old}...{new_rev}",
                    source.trim_end_matches(".git")
                ));
            }
        }
        if !parts.is_empty() {
            out.push_str(&format!(
                "- `{}` → `{}`: {}\n",
                label(r),
                short(&r.new),
                parts.join(" · ")
            ));
        }
    }
    if out.is_empty() {
        out
    } else {
        format!("**Images**\n\n{out}\n")
    }
}

/// The PR body: a table per reference, what is known about the new images, full digests
/// in a `<details>`, and the state.
#[must_use]
pub fn body(state: &Proposed, facts: &Facts) -> String {
    let mut out = String::from("This pull request updates pinned container image digests.\n\n");
    out.push_str("| File | Image | Tag | Digest | Platform |\n| --- | --- | --- | --- | --- |\n");
    for r in &state.refs {
        let old = r
            .old
            .as_ref()
            .map_or_else(|| "(tag only)".to_owned(), |d| format!("`{}`", short(d)));
        out.push_str(&format!(
            "| `{}:{}` | `{}` | `{}` | {old} → `{}` | {} |\n",
            r.path,
            r.line,
            familiar(&r.image),
            r.tag.as_deref().unwrap_or(crate::imageref::DEFAULT_TAG),
            short(&r.new),
            r.platform.as_deref().unwrap_or("all (index)"),
        ));
    }
    out.push('\n');
    out.push_str(&images_section(state, facts));
    out.push_str("<details>\n<summary>Full digests</summary>\n\n");
    for r in &state.refs {
        out.push_str(&format!(
            "- `{}:{}`: `{}` → `{}`\n",
            r.path,
            r.line,
            r.old
                .as_ref()
                .map_or_else(|| "(tag only)".to_owned(), ToString::to_string),
            r.new
        ));
    }
    out.push_str("\n</details>\n\nA tag can be re-pushed, a digest cannot: review the new image before merging. Close this pull request to skip these digests; repin proposes the next ones.\n\n");
    out.push_str(&state.comment());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RepoConfig, Rules, parse_repo};
    use crate::model::Lookup;
    use crate::scan::{dockerfile, scan_text};

    const OLD: &str = "sha256:1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f7788";
    const NEW: &str = "sha256:9f8e7d6c5b4a9f8e7d6c5b4a9f8e7d6c5b4a9f8e7d6c5b4a9f8e7d6c5b4a1122";

    fn checked(text: &str) -> Vec<Record> {
        let (found, _) = scan_text("Dockerfile", dockerfile::FORMAT, text);
        found
            .into_iter()
            .map(|f| {
                let mut r = Record::new(f, effective(""));
                r.lookup = Lookup::Outdated(NEW.parse().unwrap());
                r
            })
            .collect()
    }

    fn effective(config: &str) -> Effective {
        let repo: RepoConfig = parse_repo(".repin.toml", config).unwrap();
        Rules::new(None, &repo).settings_for("Dockerfile", None)
    }

    #[test]
    fn one_image_one_tag() {
        let c = checked(&format!(
            "FROM node:20@{OLD}\nFROM --platform=linux/arm64 node:20@{OLD}\n"
        ));
        let members: Vec<&Record> = c.iter().collect();
        let state = Proposed::of("docker.io/library/node", &members);
        let settings = effective("");
        assert_eq!(
            branch(&state.set, &settings),
            "repin/docker.io-library-node"
        );
        assert_eq!(title(&state, &settings), "Update node:20 digest to 9f8e7d6");
        insta::assert_snapshot!("commit_message_single", commit_message(&state, &settings));
        insta::assert_snapshot!("body_single", body(&state, &Facts::new()));
        assert_eq!(Proposed::parse(&body(&state, &Facts::new())), Some(state));
    }

    #[test]
    fn image_facts_and_compare_links() {
        use crate::registry::manifest::ImageFacts;
        let c = checked(&format!("FROM node:20@{OLD}\n"));
        let members: Vec<&Record> = c.iter().collect();
        let state = Proposed::of("docker.io/library/node", &members);
        let mut facts = Facts::new();
        facts.insert(
            NEW.parse().unwrap(),
            ImageFacts {
                created: Some("2026-11-20T10:00:00Z".into()),
                source: Some("https://github.com/nodejs/docker-node".into()),
                revision: Some("bbb222".into()),
            },
        );
        facts.insert(
            OLD.parse().unwrap(),
            ImageFacts {
                revision: Some("aaa111".into()),
                ..ImageFacts::default()
            },
        );
        let body = body(&state, &facts);
        assert!(body.contains("- `node:20` → `9f8e7d6c5b4a`: built 2026-11-20T10:00:00Z · source: https://github.com/nodejs/docker-node · changes: https://github.com/nodejs/docker-node/compare/aaa111...bbb222\n"), "{body}");
    }

    #[test]
    fn a_group_and_a_title_template() {
        let c = checked(&format!(
            "FROM node:20@{OLD}\nFROM ghcr.io/acme/app:v1@{OLD}\n"
        ));
        let members: Vec<&Record> = c.iter().collect();
        let state = Proposed::of("runtimes", &members);
        let settings = effective(
            "[update]\ngroup = \"runtimes\"\nbranch_prefix = \"deps/\"\ntitle = \"chore: {group} images ({digest})\"\n",
        );
        assert_eq!(branch(&state.set, &settings), "deps/runtimes");
        assert_eq!(
            title(&state, &settings),
            "chore: runtimes images (9f8e7d6c5b4a)"
        );
        assert!(commit_message(&state, &settings).starts_with("Update runtimes digests\n"));
    }

    #[test]
    fn state_survives_hostile_paths_and_missing_state_is_none() {
        let state = Proposed {
            v: 1,
            set: "x".into(),
            refs: vec![RefState {
                path: "a--> <!--b/Dockerfile".into(),
                line: 1,
                image: "docker.io/library/x".into(),
                tag: None,
                old: None,
                new: NEW.parse().unwrap(),
                platform: None,
            }],
            commit: Some("0123abc".into()),
        };
        let body = format!("text\n{}\nmore", state.comment());
        assert_eq!(Proposed::parse(&body), Some(state));
        assert_eq!(Proposed::parse("a human's PR"), None);
        assert_eq!(Proposed::parse("<!-- repin-state: {broken -->"), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("docker.io/library/node"), "docker.io-library-node");
        assert_eq!(slug("My Group!!"), "my-group");
        assert_eq!(slug("127.0.0.1:5000/app"), "127.0.0.1-5000-app");
        // Always a valid branch component, whatever the group is called.
        assert_eq!(slug("a..b"), "a.b");
        assert_eq!(slug("x.lock"), "x-lock");
        assert_eq!(slug("!!!"), "set");
        for group in ["a..b", "x.lock", "!!!", ".hidden", "a/../b", "@{u}", "HEAD"] {
            let name = format!("repin/{}", slug(group));
            assert!(crate::git::branch_name_is_valid(&name), "{name}");
        }
    }
}
