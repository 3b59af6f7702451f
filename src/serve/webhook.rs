//! GitHub webhooks: the signature check, and what each delivery asks for.
//!
//! [`verify`] runs on the raw body before anything parses it: `X-Hub-Signature-256` must
//! be `sha256=` and the HMAC-SHA256 of the body under the webhook secret, compared in
//! constant time (`hmac`'s `verify_slice`). [`parse`] then reads only the fields repin
//! acts on, from an untrusted payload, into an [`Event`].

use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;

use crate::config::REPO_CONFIG_NAMES;
use crate::forge::pr::Proposed;
use crate::scan::Detected;

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    /// Not `sha256=<64 hex>`.
    #[error("X-Hub-Signature-256 is not sha256= and 64 hex digits")]
    Malformed,
    /// The signature does not match the body.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks a delivery's signature header against its body.
///
/// # Errors
/// [`SignatureError`].
pub fn verify(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .strip_prefix(b"sha256=")
        .filter(|h| h.len() == 64)
        .ok_or(SignatureError::Malformed)?;
    let mut signature = [0u8; 32];
    for (byte, pair) in signature.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16).ok_or(SignatureError::Malformed);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?)
            .map_err(|_| SignatureError::Malformed)?;
    }
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value GitHub would send for `body` (for tests and tools).
///
/// # Panics
/// Never: HMAC takes keys of any length.
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What a delivery asks repin to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// GitHub's `ping`: nothing to do.
    Ping,
    /// Process these repositories (an installation created, repositories added).
    Repositories {
        /// The App installation, if the delivery names one.
        installation: Option<u64>,
        /// The repositories (`owner/name`).
        repos: Vec<String>,
    },
    /// Process every repository of an installation (one unsuspended, or a delivery
    /// that does not list them).
    Installation(u64),
    /// A push to the default branch touched a file repin reads: run it again soon.
    Push {
        /// The App installation, if the delivery names one.
        installation: Option<u64>,
        /// The repository (`owner/name`).
        repo: String,
    },
    /// repin's PR was closed without merging: its digests are declined in `repo`.
    Declined {
        /// The repository (`owner/name`).
        repo: String,
        /// What the closed pull request proposed.
        state: Box<Proposed>,
    },
    /// Nothing to do, and why.
    Ignored(String),
}

/// Reads a verified delivery.
///
/// # Errors
/// The body is not JSON.
pub fn parse(event: &str, body: &[u8]) -> Result<Event, serde_json::Error> {
    let v: Value = serde_json::from_slice(body)?;
    let installation = v["installation"]["id"].as_u64();
    let action = v["action"].as_str().unwrap_or_default();
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["full_name"].as_str().map(str::to_owned))
            .collect()
    };
    let ignored = |why: String| Ok(Event::Ignored(why));
    match (event, action) {
        ("ping", _) => Ok(Event::Ping),
        ("installation", "created" | "new_permissions_accepted" | "unsuspend") => {
            Ok(match (installation, v.get("repositories")) {
                (Some(id), None) => Event::Installation(id),
                (_, listed) => Event::Repositories {
                    installation,
                    repos: listed.map(names).unwrap_or_default(),
                },
            })
        }
        ("installation_repositories", "added") => Ok(Event::Repositories {
            installation,
            repos: names(&v["repositories_added"]),
        }),
        ("push", _) => Ok(push(&v, installation)),
        ("pull_request", "closed") => Ok(closed(&v)),
        (event, action) => ignored(format!("{event} {action}: not acted on")),
    }
}

fn push(v: &Value, installation: Option<u64>) -> Event {
    let Some(repo) = v["repository"]["full_name"].as_str() else {
        return Event::Ignored("push without a repository".into());
    };
    let default = v["repository"]["default_branch"].as_str().unwrap_or("main");
    if v["ref"].as_str() != Some(&format!("refs/heads/{default}")) || v["deleted"] == true {
        return Event::Ignored(format!("{repo}: push not to {default}"));
    }
    let commits = v["commits"].as_array().map_or(&[][..], Vec::as_slice);
    // GitHub lists at most 20 commits (and none for some forced pushes): an incomplete
    // list may hide a change repin cares about.
    let complete = !commits.is_empty() && commits.len() < 20;
    let touched = commits.iter().any(|c| {
        ["added", "modified", "removed"]
            .iter()
            .flat_map(|k| c[k].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .any(is_scanned)
    });
    if complete && !touched {
        return Event::Ignored(format!("{repo}: push touched no file repin reads"));
    }
    Event::Push {
        installation,
        repo: repo.to_owned(),
    }
}

/// Whether a changed path may hold references or rules repin reads.
#[must_use]
pub fn is_scanned(path: &str) -> bool {
    REPO_CONFIG_NAMES.contains(&path) || Detected::from_path(path).is_some()
}

fn closed(v: &Value) -> Event {
    let pull = &v["pull_request"];
    let Some(repo) = v["repository"]["full_name"].as_str() else {
        return Event::Ignored("pull request without a repository".into());
    };
    if pull["merged"] == true {
        return Event::Ignored(format!("{repo}: pull request merged"));
    }
    // Only a bot's PR from a branch of the repository itself can be repin's: anyone
    // can write a state comment into a PR from a fork.
    let same_repo = pull["head"]["repo"]["full_name"].as_str() == Some(repo);
    let by_bot = pull["user"]["type"].as_str() == Some("Bot");
    let state = pull["body"].as_str().and_then(Proposed::parse);
    match state {
        Some(state) if same_repo && by_bot => Event::Declined {
            repo: repo.to_owned(),
            state: Box::new(state),
        },
        _ => Event::Ignored(format!("{repo}: closed pull request is not repin's")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    #[test]
    fn github_documented_example_verifies() {
        // The example from GitHub's "Validating webhook deliveries" page.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(SECRET, b"Hello, World!"), header);
        assert_eq!(
            verify(SECRET, Some(header.as_bytes()), b"Hello, World!"),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        let good = sign(SECRET, b"{}");
        let check = |h: Option<&str>| verify(SECRET, h.map(str::as_bytes), b"{}");
        assert_eq!(check(None), Err(SignatureError::Missing));
        assert_eq!(
            check(Some(&good[..good.len() - 2])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(check(Some(&good[7..])), Err(SignatureError::Malformed));
        assert_eq!(
            check(Some(&good.replace("sha256=", "sha1="))),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some(&format!("{}zz", &good[..69]))),
            Err(SignatureError::Malformed)
        );
        let mut flipped = good.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            check(Some(std::str::from_utf8(&flipped).unwrap())),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another secret", Some(good.as_bytes()), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(good.as_bytes()), b"{} "),
            Err(SignatureError::Mismatch)
        );
    }

    fn push_body(r#ref: &str, files: &[&str], commits: usize) -> Vec<u8> {
        let commit = serde_json::json!({"added": [], "modified": files, "removed": []});
        serde_json::to_vec(&serde_json::json!({
            "ref": r#ref,
            "installation": {"id": 7},
            "repository": {"full_name": "acme/app", "default_branch": "main"},
            "commits": vec![commit; commits],
        }))
        .unwrap()
    }

    #[test]
    fn pushes_to_the_default_branch_touching_scanned_files_run_again() {
        let push = Event::Push {
            installation: Some(7),
            repo: "acme/app".into(),
        };
        for files in [
            &["deploy/app.yaml"][..],
            &["Dockerfile"],
            &["svc/compose.yml"],
            &[".github/repin.toml"],
            &["README.md", "Containerfile.dev"],
        ] {
            assert_eq!(
                parse("push", &push_body("refs/heads/main", files, 1)).unwrap(),
                push,
                "{files:?}"
            );
        }
        assert!(matches!(
            parse("push", &push_body("refs/heads/main", &["src/main.rs"], 1)).unwrap(),
            Event::Ignored(_)
        ));
        assert!(matches!(
            parse("push", &push_body("refs/heads/feature", &["Dockerfile"], 1)).unwrap(),
            Event::Ignored(_)
        ));
        // 20 commits may be a truncated list: run.
        assert_eq!(
            parse("push", &push_body("refs/heads/main", &["src/main.rs"], 20)).unwrap(),
            push
        );
    }

    #[test]
    fn installation_events_name_their_repositories() {
        let body = br#"{"action":"created","installation":{"id":3},
            "repositories":[{"full_name":"acme/a"},{"full_name":"acme/b"}]}"#;
        assert_eq!(
            parse("installation", body).unwrap(),
            Event::Repositories {
                installation: Some(3),
                repos: vec!["acme/a".into(), "acme/b".into()]
            }
        );
        let body = br#"{"action":"added","installation":{"id":3},
            "repositories_added":[{"full_name":"acme/c"}],"repositories_removed":[]}"#;
        assert_eq!(
            parse("installation_repositories", body).unwrap(),
            Event::Repositories {
                installation: Some(3),
                repos: vec!["acme/c".into()]
            }
        );
        assert!(matches!(
            parse("installation", br#"{"action":"deleted"}"#).unwrap(),
            Event::Ignored(_)
        ));
        assert_eq!(
            parse(
                "installation",
                br#"{"action":"unsuspend","installation":{"id":4}}"#
            )
            .unwrap(),
            Event::Installation(4)
        );
        assert!(matches!(
            parse("star", br#"{"action":"created"}"#).unwrap(),
            Event::Ignored(_)
        ));
        assert_eq!(
            parse("ping", br#"{"zen":"Keep it logically awesome."}"#).unwrap(),
            Event::Ping
        );
        assert!(parse("push", b"not json").is_err());
    }
}
