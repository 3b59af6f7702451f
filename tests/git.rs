//! git against a real smart-HTTP server (`git http-backend`): shallow clone with a token,
//! a commit pushed from the shallow clone, and the lease refusing to overwrite a human's
//! commit.

use repin::git::{self, Identity, Lease, OwnBranch, Remote};
use repin::secret::Secret;

use crate::support::git_http::{GitServer, TOKEN, git};

fn bot() -> Identity {
    Identity {
        name: "repin[bot]".into(),
        email: "repin@example.com".into(),
    }
}

#[test]
fn shallow_clone_commit_and_push_over_http() {
    let server = GitServer::start();
    let url = server.repo(
        "acme/app",
        &[("Dockerfile", "FROM a:1\n"), ("README.md", "hi\n")],
    );
    // A second commit on main, so that depth 1 really is shallow.
    let bare = server.path("acme/app");
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["clone", "-q", bare.to_str().unwrap(), "w"]);
    let w = work.path().join("w");
    std::fs::write(w.join("README.md"), "hello\n").unwrap();
    git(&w, &["commit", "-qam", "second"]);
    git(&w, &["push", "-q", "origin", "main"]);

    let remote = Remote {
        url: url.clone(),
        token: Some(Secret::new(TOKEN)),
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = git::clone_shallow(&remote, "main", &dir.path().join("clone")).unwrap();
    assert!(repo.is_shallow(), "depth 1 over HTTP");
    let head = repo.head().unwrap().target().unwrap();
    let commit = git::commit_files(
        &repo,
        head,
        &[("Dockerfile".into(), b"FROM a:2\n".to_vec())],
        "Update a",
        &bot(),
    )
    .unwrap();
    let own = OwnBranch::new("repin/a", "main").unwrap();
    git::push(&repo, &remote, commit, &own, Lease::Absent).unwrap();
    let log = git(&bare, &["log", "--format=%an %s", "repin/a"]);
    assert_eq!(log, "repin[bot] Update a\nHuman second\nHuman initial\n");
    assert_eq!(git(&bare, &["show", "repin/a:Dockerfile"]), "FROM a:2\n");

    // A human pushes to the bot's branch: the bot's lease no longer holds.
    git(&w, &["fetch", "-q", "origin", "repin/a"]);
    git(&w, &["checkout", "-q", "-b", "repin/a", "FETCH_HEAD"]);
    std::fs::write(w.join("NOTES"), "mine\n").unwrap();
    git(&w, &["add", "NOTES"]);
    git(&w, &["commit", "-qm", "human fix"]);
    git(&w, &["push", "-q", "origin", "repin/a"]);
    let redo = git::commit_files(
        &repo,
        head,
        &[("Dockerfile".into(), b"FROM a:3\n".to_vec())],
        "Update a",
        &bot(),
    )
    .unwrap();
    let err = git::push(&repo, &remote, redo, &own, Lease::At(commit)).unwrap_err();
    assert!(matches!(err, git::Error::Lease { .. }), "{err}");
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%s", "repin/a"]),
        "human fix\n"
    );
}

#[test]
fn a_wrong_token_is_refused_and_never_shown() {
    let server = GitServer::start();
    let url = server.repo("acme/app", &[("Dockerfile", "FROM a:1\n")]);
    let remote = Remote {
        url,
        token: Some(Secret::new("wrong-token")),
    };
    let dir = tempfile::tempdir().unwrap();
    let err = git::clone_shallow(&remote, "main", &dir.path().join("clone"))
        .err()
        .expect("refused");
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    assert!(git::remote_tip(&remote, "main").is_err());
}
