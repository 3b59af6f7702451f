//! git through `git2` (libgit2): shallow clone, commit on top of a known parent, push with
//! a lease, and read a remote branch's tip — everything `run` needs, nothing more.
//!
//! A push never overwrites what repin did not expect: the lease (the branch is absent,
//! or at a given commit) is checked in libgit2's push negotiation, against the remote's
//! own advertisement, right before the update is sent. Credentials go in through the
//! credential callback (GitHub's `x-access-token` user with the token as password) and
//! never into URLs, logs or errors.

use std::path::Path;

use git2::{Cred, FetchOptions, PushOptions, RemoteCallbacks};

/// A commit's (or tree's) id, and a local repository: libgit2's types, named here so
/// that no other module needs `git2`.
pub use git2::{Oid, Repository};

use crate::secret::Secret;

/// A remote repository and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `https://…`, `http://…` or `file://…`; never carries credentials.
    pub url: String,
    /// The token for HTTPS (GitHub's `x-access-token` user), if any.
    pub token: Option<Secret>,
}

/// Who a commit is by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// What the remote branch must be for a push to go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The branch must not exist.
    Absent,
    /// The branch must be at this commit.
    At(Oid),
}

/// Whether `name` is a valid branch name by git's rules (libgit2's
/// `git_branch_name_is_valid`: `check-ref-format` for `refs/heads/<name>`).
#[must_use]
pub fn branch_name_is_valid(name: &str) -> bool {
    git2::Branch::name_is_valid(name).unwrap_or(false)
}

impl Lease {
    /// A lease on a commit given by its hex id; `Absent` for none or one that is not
    /// a commit id.
    #[must_use]
    pub fn from_commit(sha: Option<&str>) -> Self {
        sha.and_then(|c| Oid::from_str(c).ok())
            .map_or(Self::Absent, Self::At)
    }
}

/// A branch repin may write to: a valid git branch name (libgit2's
/// `git_branch_name_is_valid`, git's `check-ref-format` rules) that is not the default
/// branch, not under it (`main/…`), and not `HEAD`-like. Every push, branch move and
/// branch deletion takes one, so no path can write anywhere else, whatever the
/// repository config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnBranch(String);

impl OwnBranch {
    /// Checks `name` against the repository's default branch.
    ///
    /// # Errors
    /// [`Error::NotOwnBranch`] saying why.
    pub fn new(name: &str, default_branch: &str) -> Result<Self, Error> {
        let refuse = |why: &str| {
            Err(Error::NotOwnBranch {
                branch: name.to_owned(),
                why: why.to_owned(),
            })
        };
        if !branch_name_is_valid(name) {
            return refuse("not a valid git branch name");
        }
        let lower = name.to_ascii_lowercase();
        let default = default_branch.to_ascii_lowercase();
        if lower == default {
            return refuse("it is the default branch");
        }
        if lower.starts_with(&format!("{default}/")) {
            return refuse("it is under the default branch");
        }
        let first = lower.split('/').next().unwrap_or_default();
        if matches!(first, "refs" | "heads" | "remotes" | "tags")
            || lower
                .split('/')
                .any(|c| c == "head" || c.ends_with("_head"))
        {
            return refuse("it reads like a git reference, not a branch");
        }
        Ok(Self(name.to_owned()))
    }

    /// The branch name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OwnBranch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A git failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("refusing to write branch {branch:?}: {why}; repin writes only its own branches")]
    /// Not a branch repin may write to.
    NotOwnBranch {
        /// The branch.
        branch: String,
        /// Why not.
        why: String,
    },
    #[error("git {op}: {message}")]
    /// libgit2 failed at step `op`.
    Git {
        /// The step (`clone`, `push`).
        op: &'static str,
        /// libgit2's message.
        message: String,
    },
    /// The remote branch is not where the lease says.
    #[error("refusing to push {branch}: the remote branch is at {found}, not {expected}")]
    Lease {
        /// The branch.
        branch: String,
        /// Where the lease says it is.
        expected: String,
        /// Where it is.
        found: String,
    },
    #[error("push of {branch} rejected by the remote: {reason}")]
    /// The remote refused the push.
    Rejected {
        /// The branch.
        branch: String,
        /// The remote's reason.
        reason: String,
    },
    #[error("{path}: a path outside the repository")]
    /// A file path leaves the repository.
    OutsidePath {
        /// The path.
        path: String,
    },
}

fn git(op: &'static str) -> impl Fn(git2::Error) -> Error {
    move |e| Error::Git {
        op,
        message: e.message().to_owned(),
    }
}

fn callbacks(remote: &Remote) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    let token = remote.token.clone();
    let mut tried = false;
    callbacks.credentials(move |_url, _user, _allowed| {
        // Offer the token once; libgit2 asks again when it was refused.
        match (&token, tried) {
            (Some(token), false) => {
                tried = true;
                Cred::userpass_plaintext("x-access-token", token.expose())
            }
            _ => Err(git2::Error::from_str("authentication failed")),
        }
    });
    callbacks
}

/// Clones `branch` of a remote with depth 1 into `dir` (in full for `file://` remotes:
/// libgit2's local transport cannot fetch shallow, and a local clone costs no network).
///
/// # Errors
/// [`Error::Git`] naming the step.
pub fn clone_shallow(remote: &Remote, branch: &str, dir: &Path) -> Result<Repository, Error> {
    let mut fetch = FetchOptions::new();
    fetch.remote_callbacks(callbacks(remote));
    if !remote.url.starts_with("file://") {
        fetch.depth(1);
    }
    git2::build::RepoBuilder::new()
        .branch(branch)
        .fetch_options(fetch)
        .clone(&remote.url, dir)
        .map_err(git("clone"))
}

/// The commit a clone's `HEAD` points at.
///
/// # Errors
/// [`Error::Git`] when there is none.
pub fn head(repo: &Repository) -> Result<Oid, Error> {
    repo.head()
        .ok()
        .and_then(|h| h.target())
        .ok_or_else(|| Error::Git {
            op: "clone",
            message: "no HEAD".into(),
        })
}

/// The tree of `commit` (its id, hex) and the file mode of each path in it (octal
/// `100644` for a path not in it, as a new file gets).
///
/// # Errors
/// [`Error::Git`] when the commit or its tree cannot be read.
pub fn tree_modes(
    repo: &Repository,
    commit: Oid,
    paths: &[&str],
) -> Result<(String, Vec<i32>), Error> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git("read tree"))?;
    let modes = paths
        .iter()
        .map(|path| {
            tree.get_path(Path::new(path))
                .map_or(0o100_644, |e| e.filemode())
        })
        .collect();
    Ok((tree.id().to_string(), modes))
}

/// A remote's refs (name, commit) and the ref its `HEAD` points at, if it says.
type Listing = (Vec<(String, Oid)>, Option<String>);

/// The remote's [`Listing`]: one `git ls-remote`, no clone.
fn ls_remote(remote: &Remote) -> Result<Listing, Error> {
    let mut detached = git2::Remote::create_detached(remote.url.as_str()).map_err(git("remote"))?;
    let connection = detached
        .connect_auth(git2::Direction::Fetch, Some(callbacks(remote)), None)
        .map_err(git("ls-remote"))?;
    let default = connection
        .default_branch()
        .ok()
        .and_then(|name| name.as_str().ok().map(str::to_owned));
    let refs = connection
        .list()
        .map_err(git("ls-remote"))?
        .iter()
        .map(|head| (head.name().to_owned(), head.oid()))
        .collect();
    Ok((refs, default))
}

/// The commit a remote branch points at, `None` when it does not exist.
///
/// # Errors
/// [`Error::Git`] when the remote cannot be reached or listed.
pub fn remote_tip(remote: &Remote, branch: &str) -> Result<Option<Oid>, Error> {
    let wanted = format!("refs/heads/{branch}");
    let (refs, _) = ls_remote(remote)?;
    Ok(refs
        .into_iter()
        .find_map(|(name, oid)| (name == wanted).then_some(oid)))
}

/// The remote's default branch (where its `HEAD` points) and that branch's commit,
/// from one listing of its refs (`git ls-remote`: no clone, and no API call).
///
/// # Errors
/// [`Error::Git`] when the remote cannot be reached or listed, or names no default
/// branch.
pub fn remote_head(remote: &Remote) -> Result<(String, Oid), Error> {
    let (refs, default) = ls_remote(remote)?;
    let default = default.unwrap_or_default();
    let tip = refs
        .into_iter()
        .find_map(|(name, oid)| (name == default).then_some(oid));
    match (default.strip_prefix("refs/heads/"), tip) {
        (Some(branch), Some(tip)) => Ok((branch.to_owned(), tip)),
        _ => Err(Error::Git {
            op: "ls-remote",
            message: "the remote names no default branch".into(),
        }),
    }
}

/// Makes a commit with `parent`'s tree plus `files` (repository-relative path, new
/// content) and returns it; no branch or working tree changes.
///
/// # Errors
/// [`Error::OutsidePath`] for a path that leaves the repository, [`Error::Git`] else.
pub fn commit_files(
    repo: &Repository,
    parent: Oid,
    files: &[(String, Vec<u8>)],
    message: &str,
    author: &Identity,
) -> Result<Oid, Error> {
    let parent = repo.find_commit(parent).map_err(git("find parent"))?;
    let mut index = git2::Index::new().map_err(git("index"))?;
    index
        .read_tree(&parent.tree().map_err(git("tree"))?)
        .map_err(git("read tree"))?;
    for (path, content) in files {
        let clean = Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !clean || path.is_empty() {
            return Err(Error::OutsidePath { path: path.clone() });
        }
        // Keep the mode (an executable stays executable).
        let mode = index
            .get_path(Path::new(path), 0)
            .map_or(0o100_644, |e| e.mode);
        let blob = repo.blob(content).map_err(git("blob"))?;
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: u32::try_from(content.len()).unwrap_or(u32::MAX),
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).map_err(git("stage"))?;
    }
    let tree = index.write_tree_to(repo).map_err(git("write tree"))?;
    let tree = repo.find_tree(tree).map_err(git("find tree"))?;
    let signature = git2::Signature::now(&author.name, &author.email).map_err(git("signature"))?;
    repo.commit(None, &signature, &signature, message, &tree, &[&parent])
        .map_err(git("commit"))
}

/// Pushes `commit` to `branch` on the remote if the lease holds.
///
/// # Errors
/// [`Error::Lease`] when the remote branch is not what the lease says (nothing is
/// pushed), [`Error::Rejected`] when the remote refuses, [`Error::Git`] else.
pub fn push(
    repo: &Repository,
    remote: &Remote,
    commit: Oid,
    branch: &OwnBranch,
    lease: Lease,
) -> Result<(), Error> {
    let branch = branch.as_str();
    let staging = format!("refs/repin/push/{branch}");
    repo.reference(&staging, commit, true, "repin push")
        .map_err(git("stage ref"))?;
    let result = push_refspec(
        repo,
        remote,
        &format!("+{staging}:refs/heads/{branch}"),
        branch,
        lease,
    );
    if let Ok(mut r) = repo.find_reference(&staging) {
        let _ = r.delete();
    }
    result
}

/// Deletes a remote branch if the lease holds.
///
/// # Errors
/// As [`push`].
pub fn delete_branch(
    repo: &Repository,
    remote: &Remote,
    branch: &OwnBranch,
    lease: Lease,
) -> Result<(), Error> {
    let branch = branch.as_str();
    push_refspec(
        repo,
        remote,
        &format!(":refs/heads/{branch}"),
        branch,
        lease,
    )
}

fn push_refspec(
    repo: &Repository,
    remote: &Remote,
    refspec: &str,
    branch: &str,
    lease: Lease,
) -> Result<(), Error> {
    let lease_error = std::cell::RefCell::new(None);
    let rejected = std::cell::RefCell::new(None);
    // What the remote says on the side (`remote: …` lines): a hook's reason for a
    // refusal is there, while the refusal itself may only say "hook declined".
    let said = std::cell::RefCell::new(String::new());
    let target = format!("refs/heads/{branch}");
    let mut detached = repo.remote_anonymous(&remote.url).map_err(git("remote"))?;
    let mut callbacks = callbacks(remote);
    callbacks.push_negotiation(|updates| {
        for update in updates
            .iter()
            .filter(|u| u.dst_refname().is_ok_and(|d| d == target))
        {
            let found = update.src();
            let ok = match lease {
                Lease::Absent => found.is_zero(),
                Lease::At(expected) => found == expected,
            };
            if !ok {
                *lease_error.borrow_mut() = Some(Error::Lease {
                    branch: branch.to_owned(),
                    expected: match lease {
                        Lease::Absent => "absent".to_owned(),
                        Lease::At(oid) => oid.to_string(),
                    },
                    found: if found.is_zero() {
                        "absent".to_owned()
                    } else {
                        found.to_string()
                    },
                });
                return Err(git2::Error::from_str("lease does not hold"));
            }
        }
        Ok(())
    });
    callbacks.sideband_progress(|data| {
        let mut said = said.borrow_mut();
        if said.len() < 4096 {
            said.push_str(&String::from_utf8_lossy(data));
        }
        true
    });
    callbacks.push_update_reference(|_name, status| {
        if let Some(reason) = status {
            *rejected.borrow_mut() = Some(reason.to_owned());
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let outcome = detached.push(&[refspec], Some(&mut options));
    drop(options);
    if let Some(e) = lease_error.borrow_mut().take() {
        return Err(e);
    }
    outcome.map_err(git("push"))?;
    let rejected = rejected.borrow_mut().take();
    let said = said.borrow();
    let said = said.trim();
    match rejected {
        Some(reason) => Err(Error::Rejected {
            branch: branch.to_owned(),
            reason: redact(
                &if said.is_empty() || reason.contains(said) {
                    reason
                } else {
                    format!("{reason}: {}", said.lines().collect::<Vec<_>>().join(" "))
                },
                remote.token.as_ref(),
            ),
        }),
        None => Ok(()),
    }
}

/// The remote's words with the token taken out: a hostile remote could echo what it
/// was sent, and these words reach errors and logs.
fn redact(said: &str, token: Option<&Secret>) -> String {
    match token.map(Secret::expose).filter(|t| !t.is_empty()) {
        Some(token) => said.replace(token, "***"),
        None => said.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets never reach errors: a remote that echoes the token gets it redacted.
    #[test]
    fn secrets_never_reach_errors_remote_words_are_redacted() {
        let token = Secret::new("ghs_secret123");
        assert_eq!(
            redact(
                "denied for ghs_secret123 (token ghs_secret123)",
                Some(&token)
            ),
            "denied for *** (token ***)"
        );
        assert_eq!(redact("denied", None), "denied");
        assert_eq!(redact("denied", Some(&Secret::new(""))), "denied");
    }
    use std::process::Command;

    fn sh(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A bare repository with `main` holding one Dockerfile; its file:// URL.
    fn bare() -> (tempfile::TempDir, Remote) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        sh(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("Dockerfile"), "FROM a:1\n").unwrap();
        std::fs::write(work.join("run.sh"), "#!/bin/sh\n").unwrap();
        sh(&work, &["update-index", "--add", "--chmod=+x", "run.sh"]);
        sh(&work, &["add", "Dockerfile"]);
        sh(&work, &["commit", "-q", "-m", "init"]);
        sh(dir.path(), &["clone", "-q", "--bare", "work", "origin.git"]);
        let url = format!("file://{}", dir.path().join("origin.git").display());
        (dir, Remote { url, token: None })
    }

    fn bot() -> Identity {
        Identity {
            name: "repin[bot]".into(),
            email: "repin@example.com".into(),
        }
    }

    /// repin writes only its own branches: whatever name a config produces, only a
    /// valid branch name that is neither the default branch nor under it gets through.
    #[test]
    fn writes_only_own_branches() {
        for name in [
            "main",
            "MAIN",
            "main/x",
            "Main/deep/er",
            "HEAD",
            "refs/heads/x",
            "x/HEAD",
            "FETCH_HEAD",
            "x//y",
            "x.lock/y",
            "x/./y",
            "x/.y",
            "x..y",
            "x@{1}",
            "-x",
            "x/",
            "",
            "a b",
            "x~1",
            "x^",
            "x:y",
            "x?",
            "x*",
            "x[",
            "x\\y",
            "/x",
            "x.lock",
        ] {
            assert!(OwnBranch::new(name, "main").is_err(), "{name:?} passed");
        }
        for name in [
            "repin/node",
            "mainline",
            "repin/main",
            "repin/overhead",
            "x.y/z",
        ] {
            assert_eq!(OwnBranch::new(name, "main").unwrap().as_str(), name);
        }
        assert!(OwnBranch::new("trunk", "trunk").is_err());
    }

    fn own(name: &str) -> OwnBranch {
        OwnBranch::new(name, "main").unwrap()
    }

    #[test]
    fn clone_commit_push_with_lease() {
        let (dir, remote) = bare();
        let repo = clone_shallow(&remote, "main", &dir.path().join("clone")).unwrap();
        let head = repo.head().unwrap().target().unwrap();
        assert_eq!(remote_tip(&remote, "main").unwrap(), Some(head));
        assert_eq!(remote_tip(&remote, "repin/a").unwrap(), None);

        let files = vec![
            ("Dockerfile".to_owned(), b"FROM a:2\n".to_vec()),
            ("run.sh".to_owned(), b"#!/bin/sh\necho\n".to_vec()),
        ];
        let commit = commit_files(&repo, head, &files, "Update a", &bot()).unwrap();
        push(&repo, &remote, commit, &own("repin/a"), Lease::Absent).unwrap();
        assert_eq!(remote_tip(&remote, "repin/a").unwrap(), Some(commit));
        // The mode of the executable is kept, the content changed.
        let c = repo.find_commit(commit).unwrap();
        let entry = c.tree().unwrap().get_path(Path::new("run.sh")).unwrap();
        assert_eq!(entry.filemode(), 0o100_755);
        assert_eq!(c.author().name().ok(), Some("repin[bot]"));

        // Absent lease on an existing branch: refused, nothing pushed.
        let again = commit_files(&repo, head, &files[..1], "Update a again", &bot()).unwrap();
        let err = push(&repo, &remote, again, &own("repin/a"), Lease::Absent).unwrap_err();
        assert!(matches!(err, Error::Lease { .. }), "{err}");
        assert_eq!(remote_tip(&remote, "repin/a").unwrap(), Some(commit));
        // Stale lease: refused.
        let err = push(&repo, &remote, again, &own("repin/a"), Lease::At(head)).unwrap_err();
        assert!(matches!(err, Error::Lease { .. }), "{err}");
        // Right lease: a force-push over our own commit.
        push(&repo, &remote, again, &own("repin/a"), Lease::At(commit)).unwrap();
        assert_eq!(remote_tip(&remote, "repin/a").unwrap(), Some(again));
        // Deleting needs the lease too.
        assert!(delete_branch(&repo, &remote, &own("repin/a"), Lease::At(commit)).is_err());
        delete_branch(&repo, &remote, &own("repin/a"), Lease::At(again)).unwrap();
        assert_eq!(remote_tip(&remote, "repin/a").unwrap(), None);
    }

    #[test]
    fn paths_outside_the_repository_are_refused() {
        let (dir, remote) = bare();
        let repo = clone_shallow(&remote, "main", &dir.path().join("clone")).unwrap();
        let head = repo.head().unwrap().target().unwrap();
        for path in ["../x", "/etc/passwd", "a/../../b", ""] {
            let files = vec![(path.to_owned(), b"x".to_vec())];
            let err = commit_files(&repo, head, &files, "m", &bot()).unwrap_err();
            assert!(matches!(err, Error::OutsidePath { .. }), "{path}: {err}");
        }
    }
}
