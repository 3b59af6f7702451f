//! `repin run` end to end: a real registry, real git over smart HTTP, and the fake
//! GitHub. Opens the PR, then keeps it right: zero writes when nothing changed, the same
//! PR updated when the tag moves, nothing left after a merge, a declined digest not
//! proposed again, a branch a person pushed to left alone.

use std::path::Path;

use crate::support::git_http::{GitServer, git};
use crate::support::github::{FakeGitHub, TOKEN};
use crate::support::images::{Flavor, Pusher};
use crate::support::registry::{Auth, Registry};
use crate::support::world::World;
use crate::support::{Run, app_key, repin_env};

const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

fn run(fake: &FakeGitHub, state: &Path, repo: &str) -> Run {
    let out = repin_env(
        Path::new("."),
        &["run", "--repo", repo, "--state", state.to_str().unwrap()],
        &[
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_API_URL", fake.url.as_str()),
        ],
    );
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_requests_are_opened_and_kept_right() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let a = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let tool = pusher
        .single("tool", "2", "linux/amd64", Flavor::Docker, "a")
        .await;
    let b = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "b").await;

    let git_server = GitServer::start();
    let dockerfile = format!(
        "FROM {host}/app:1@{}\nFROM {host}/tool:2@{tool}\n",
        a.digest
    );
    let config = "[update]\nlabels = [\"dependencies\"]\nreviewers = [\"octocat\"]\n";
    git_server.repo(
        "acme/web",
        &[
            ("Dockerfile", &dockerfile),
            (".repin.toml", config),
            ("README.md", "web\n"),
        ],
    );
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/web");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let bare = git_server.path("acme/web");

    // 1. First run: one PR for app (tool is current), with the edit on its branch.
    // API calls: repository, pull list, create, labels, reviewers.
    let out = run(&fake, &state, "acme/web");
    assert_eq!(fake.calls().len(), 5, "{:?}", fake.calls());
    assert!(
        out.stdout.contains("(5 GitHub API calls)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("acme/web: opened [1]"),
        "{}",
        out.stdout
    );
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(
        pr.head,
        format!("repin/127.0.0.1-{}-app", host.split(':').nth(1).unwrap())
    );
    assert_eq!(
        pr.title,
        format!("Update {host}/app:1 digest to {}", &b.digest[7..14])
    );
    assert!(
        pr.body.contains(&format!(
            "| `Dockerfile:1` | `{host}/app` | `1` | `{}` → `{}` | all (index) |",
            &a.digest[7..19],
            &b.digest[7..19]
        )),
        "{}",
        pr.body
    );
    assert!(pr.body.contains("<!-- repin-state: "));
    // What the new image says about itself: built when, from where, what changed.
    assert!(
        pr.body.contains(
            "built 2026-11-15T10:00:00Z · source: https://github.com/acme/app · changes: https://github.com/acme/app/compare/rev-a...rev-b\n"
        ),
        "{}",
        pr.body
    );
    assert_eq!(pr.labels, vec!["dependencies"]);
    assert_eq!(pr.reviewers, vec!["octocat"]);
    assert_eq!(
        git(&bare, &["show", &format!("{}:Dockerfile", pr.head)]),
        dockerfile.replace(&a.digest, &b.digest)
    );
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an", &pr.head]),
        "repin[bot]\n"
    );

    // 2. Nothing changed: zero writes, and at most 3 API calls.
    let writes = fake.writes();
    let calls = fake.calls().len();
    let tip = git(&bare, &["rev-parse", &pr.head]);
    let out = run(&fake, &state, "acme/web");
    assert_eq!(fake.writes(), writes);
    assert!(
        fake.calls().len() - calls <= 3,
        "{:?}",
        &fake.calls()[calls..]
    );
    assert!(
        out.stdout.contains("opened [], updated [], closed []"),
        "{}",
        out.stdout
    );
    assert_eq!(git(&bare, &["rev-parse", &pr.head]), tip);

    // 3. The tag moves again: the same PR is updated in place.
    let c = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "c").await;
    let out = run(&fake, &state, "acme/web");
    assert!(out.stdout.contains("updated [1]"), "{}", out.stdout);
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].body.contains(&c.digest));
    assert_eq!(
        git(&bare, &["show", &format!("{}:Dockerfile", pr.head)]),
        dockerfile.replace(&a.digest, &c.digest)
    );

    // 4. Merged: nothing left to do.
    fake.merge(1);
    let writes = fake.writes();
    let out = run(&fake, &state, "acme/web");
    assert!(
        out.stdout.contains("opened [], updated [], closed []"),
        "{}",
        out.stdout
    );
    assert_eq!(fake.writes(), writes);

    // 5. Closed without merging: that digest is not proposed again; a newer one is.
    let d = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "d").await;
    let out = run(&fake, &state, "acme/web");
    assert!(out.stdout.contains("opened [2]"), "{}", out.stdout);
    fake.close(2);
    let out = run(&fake, &state, "acme/web");
    assert!(
        out.stdout.contains("opened [], updated [], closed []"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("declined"), "{}", out.stderr);
    pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "e").await;
    let out = run(&fake, &state, "acme/web");
    assert!(out.stdout.contains("opened [3]"), "{}", out.stdout);
    let _ = d;

    // 6. A person pushes to the PR's branch: repin leaves it alone, says so once.
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["clone", "-q", bare.to_str().unwrap(), "w"]);
    let w = work.path().join("w");
    let branch = fake.pulls()[2].head.clone();
    git(&w, &["checkout", "-q", &branch]);
    std::fs::write(w.join("NOTES"), "mine\n").unwrap();
    git(&w, &["add", "NOTES"]);
    git(&w, &["commit", "-qm", "human change"]);
    git(&w, &["push", "-q", "origin", &branch]);
    pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "f").await;
    for _ in 0..2 {
        let out = run(&fake, &state, "acme/web");
        assert!(
            out.stderr.contains("someone else pushed to it; left alone"),
            "{}",
            out.stderr
        );
    }
    let pr3 = &fake.pulls()[2];
    assert_eq!(pr3.comments.len(), 1, "one comment, not one per run");
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%s", &branch]),
        "human change\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_max_open_and_merged_elsewhere() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let mut old = Vec::new();
    let mut new = Vec::new();
    for repo in ["one", "two"] {
        let (a, b) = pusher.moved(repo, "1").await;
        old.push(a);
        new.push(b);
    }
    let git_server = GitServer::start();
    let dockerfile = format!(
        "FROM {host}/one:1@{}\nFROM {host}/two:1@{}\n",
        old[0], old[1]
    );
    git_server.repo("acme/api", &[("Dockerfile", &dockerfile)]);
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/api");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let bare = git_server.path("acme/api");
    let branches = || git(&bare, &["branch", "--list", "repin/*"]);

    // A dry run says what it would do and writes nothing, remote or local.
    let out = repin_env(
        Path::new("."),
        &[
            "run",
            "--repo",
            "acme/api",
            "--dry-run",
            "--state",
            state.to_str().unwrap(),
        ],
        &[
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_API_URL", fake.url.as_str()),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("would open").count(),
        2,
        "{}",
        out.stderr
    );
    assert_eq!(fake.writes(), 0);
    assert_eq!(branches(), "");

    // max_open 1: one PR now.
    let out = repin_env(
        Path::new("."),
        &[
            "run",
            "--repo",
            "acme/api",
            "--max-open",
            "1",
            "--state",
            state.to_str().unwrap(),
        ],
        &[
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_API_URL", fake.url.as_str()),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("max_open (1) reached"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.pulls().len(), 1);

    // Someone updates main with the same digest by hand: the PR is closed, its branch
    // deleted, and the other image gets its PR.
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["clone", "-q", bare.to_str().unwrap(), "w"]);
    let w = work.path().join("w");
    let first = &fake.pulls()[0];
    let (fixed_old, fixed_new) = if first.body.contains(&new[0]) {
        (&old[0], &new[0])
    } else {
        (&old[1], &new[1])
    };
    std::fs::write(
        w.join("Dockerfile"),
        dockerfile.replace(fixed_old, fixed_new),
    )
    .unwrap();
    git(&w, &["commit", "-qam", "bump by hand"]);
    git(&w, &["push", "-q", "origin", "main"]);
    let out = run(&fake, &state, "acme/api");
    assert!(
        out.stdout.contains("opened [2], updated [], closed [1]"),
        "{}",
        out.stdout
    );
    let pulls = fake.pulls();
    assert_eq!(pulls[0].state, "closed");
    assert!(!pulls[0].merged);
    assert_eq!(
        pulls[0].comments,
        vec!["The default branch already has these digests; closing."]
    );
    assert_eq!(
        branches().lines().count(),
        1,
        "the closed PR's branch is deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn app_mode_across_two_installations() {
    let world = World::new(&["acme/one", "acme/two", "globex/three"]).await;
    let (reg, git_server, fake) = (&world.reg, &world.git, &world.fake);
    let (host, new, keys, private) = (&world.host, &world.new, &world.keys, &world.private);
    fake.add_installation(1, "acme", &["acme/one", "acme/two"]);
    fake.add_installation(2, "globex", &["globex/three"]);
    let state = keys.path().join("state.redb");
    let out = world.run_as_app(&["--state", state.to_str().unwrap()], &[]);
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout
            .ends_with("3 repositories, 3 pull requests opened, 0 updated, 0 closed, 0 failed\n"),
        "{}",
        out.stdout
    );
    let pulls = fake.pulls();
    // Repositories run concurrently: the pull requests come in any order.
    let mut repos: Vec<&str> = pulls.iter().map(|p| p.repo.as_str()).collect();
    repos.sort_unstable();
    assert_eq!(repos, vec!["acme/one", "acme/two", "globex/three"]);
    for repo in ["acme/one", "acme/two", "globex/three"] {
        let bare = git_server.path(repo);
        assert_eq!(
            git(&bare, &["show", &format!("{}:Dockerfile", pulls[0].head)]),
            format!("FROM {host}/app:1@{new}\n")
        );
    }
    // Commits are the App's bot's.
    let bare = git_server.path("globex/three");
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an <%ae>", &pulls[2].head]),
        "repin-test[bot] <repin-test[bot]@users.noreply.github.com>\n"
    );
    // Lookups are shared across the run: three repositories, one HEAD for the tag.
    let heads = reg
        .requests("repin/")
        .into_iter()
        .filter(|r| r.method == "HEAD" && r.path == "/v2/app/manifests/1")
        .count();
    assert_eq!(heads, 1);
    // Tokens were minted per installation, with a verified JWT.
    let minted: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|(_, p)| p.ends_with("/access_tokens"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(minted.len(), 2, "{minted:?}");

    // A repository glob limits the run; a wrong key is refused.
    let out = world.run_as_app(
        &[
            "--repo",
            "globex/*",
            "--dry-run",
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.stdout
            .ends_with("1 repositories, 0 pull requests opened, 0 updated, 0 closed, 0 failed\n"),
        "{}",
        out.stdout
    );
    // Or the service config's allowlist.
    let service = keys.path().join("svc.toml");
    std::fs::write(
        &service,
        format!(
            "[github]\nrepositories = [\"acme/*\"]\napi_url = \"{}\"\n",
            fake.url
        ),
    )
    .unwrap();
    let out = repin_env(
        Path::new("."),
        &[
            "run",
            "--app",
            "--app-id",
            "4242",
            "--dry-run",
            "--config",
            service.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        &[("REPIN_GITHUB_APP_KEY", private.as_str())],
    );
    assert!(
        out.stdout
            .ends_with("2 repositories, 0 pull requests opened, 0 updated, 0 closed, 0 failed\n"),
        "{}",
        out.stdout
    );
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = app_key(other_dir.path());
    let out = world.run_as_app(
        &["--state", state.to_str().unwrap()],
        &[("REPIN_GITHUB_APP_KEY", other.as_str())],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("error: GitHub get the App:"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("PRIVATE KEY"),
        "the key must never be shown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_through_the_git_data_api_when_asked() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let (a, b) = pusher.moved("app", "1").await;
    let git_server = GitServer::start();
    let dockerfile = format!("FROM {host}/app:1@{a}\n");
    // A prefix without `/`: the OpenAPI lane's proxy cannot route a `/` inside `{ref}`.
    let config = "[update]\nbranch_prefix = \"repin-\"\nautomerge = true\n";
    git_server.repo(
        "acme/signed",
        &[
            ("build/Dockerfile", &dockerfile),
            ("README.md", "x\n"),
            (".repin.toml", config),
        ],
    );
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/signed");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let bare = git_server.path("acme/signed");
    let args = [
        "run",
        "--repo",
        "acme/signed",
        "--commit-via-api",
        "--state",
        state.to_str().unwrap(),
    ];
    let env = [
        ("GITHUB_TOKEN", TOKEN),
        ("GITHUB_API_URL", fake.url.as_str()),
    ];

    let out = repin_env(Path::new("."), &args, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pr = fake.pulls()[0].clone();
    assert!(pr.auto_merge, "GitHub's auto-merge is on");
    // The commit was made by GitHub (signed there), on top of main, with the edit.
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an|%cn|%s", &pr.head]),
        format!(
            "repin[bot]|GitHub|Update {host}/app:1 digest to {}\n",
            &b[7..14]
        )
    );
    assert_eq!(
        git(&bare, &["show", &format!("{}:build/Dockerfile", pr.head)]),
        format!("FROM {host}/app:1@{b}\n")
    );
    assert_eq!(
        git(&bare, &["rev-parse", &format!("{}^", pr.head)]),
        git(&bare, &["rev-parse", "main"])
    );
    let api: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|(_, p)| p.contains("/git/"))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        api,
        vec![
            "POST /repos/acme/signed/git/blobs".to_owned(),
            "POST /repos/acme/signed/git/trees".into(),
            "POST /repos/acme/signed/git/commits".into(),
            format!("GET /repos/acme/signed/git/ref/heads/{}", pr.head),
            "POST /repos/acme/signed/git/refs".into(),
        ]
    );

    // The tag moves: the branch is moved through the API too, and the PR updated.
    let c = pusher
        .single("app", "1", "linux/amd64", Flavor::Oci, "c")
        .await;
    let out = repin_env(Path::new("."), &args, &env);
    assert!(out.stdout.contains("updated [1]"), "{}", out.stdout);
    assert_eq!(
        git(&bare, &["show", &format!("{}:build/Dockerfile", pr.head)]),
        format!("FROM {host}/app:1@{c}\n")
    );
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%cn", &pr.head]),
        "GitHub\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_between_push_and_pull_request_is_finished_next_time() {
    let world = World::new(&["acme/one", "acme/two"]).await;
    let (git_server, fake, host, new) = (&world.git, &world.fake, &world.host, &world.new);
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    run(fake, &state, "acme/one");
    let first = fake.pulls()[0].clone();
    // As if the run had stopped after its push: the branch is there, the PR is not.
    fake.forget_pull(first.number);
    let out = run(fake, &state, "acme/one");
    assert!(
        !out.stderr.contains("not repin's") && fake.pulls().len() == 1,
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(fake.pulls()[0].head, first.head);
    assert_eq!(
        world.dockerfile("acme/one", &first.head),
        format!("FROM {host}/app:1@{new}\n")
    );
    // A branch of that name with someone else's commit is theirs.
    let bare = git_server.path("acme/two");
    let theirs = std::process::Command::new("git")
        .args(["commit-tree", "-m", "mine", "HEAD^{tree}", "-p", "HEAD"])
        .current_dir(&bare)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .unwrap();
    let theirs = String::from_utf8(theirs.stdout).unwrap();
    git(
        &bare,
        &[
            "update-ref",
            &format!("refs/heads/{}", first.head),
            theirs.trim(),
        ],
    );
    let out = run(fake, &state, "acme/two");
    assert!(out.stdout.contains("acme/two: opened []"), "{}", out.stdout);
    assert!(
        out.stderr.contains("the branch exists and is not repin's"),
        "{}",
        out.stderr
    );
    assert_eq!(
        git(&bare, &["rev-parse", &first.head]).trim(),
        theirs.trim()
    );
    let _ = new;
}

/// Lists are read page by page: an open repin pull request older than the 100 newest
/// pull requests is still seen (else the next run would try to open it again).
#[tokio::test(flavor = "multi_thread")]
async fn pull_requests_past_the_first_page_are_seen() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let a = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let _b = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "b").await;
    let git_server = GitServer::start();
    let dockerfile = format!("FROM {host}/app:1@{}\n", a.digest);
    git_server.repo("acme/web", &[("Dockerfile", &dockerfile)]);
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/web");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");

    let out = run(&fake, &state, "acme/web");
    assert!(
        out.stdout.contains("acme/web: opened [1]"),
        "{}",
        out.stdout
    );
    fake.add_closed_pulls("acme/web", 150);
    let before = fake.calls().len();
    let out = run(&fake, &state, "acme/web");
    assert!(
        out.stdout
            .contains("acme/web: opened [], updated [], closed []"),
        "{}",
        out.stdout
    );
    assert_eq!(fake.pulls().len(), 151, "no second pull request");
    let lists = fake.calls()[before..]
        .iter()
        .filter(|(m, p)| m == "GET" && p == "/repos/acme/web/pulls")
        .count();
    assert_eq!(lists, 2, "two pages of 100");
}

/// Workflow files form their own change set: GitHub's refusal to let a token without
/// the `workflows` permission change them fails that change set alone, says which
/// permission is missing and where to grant it, and the other updates go through.
/// Pushed with git, GitHub names the permission in its refusal.
#[tokio::test(flavor = "multi_thread")]
async fn workflow_refusals_name_the_permission_and_block_nothing_else() {
    workflow_refusal_case(false).await;
}

/// As above, committed through the Git Data API (`--commit-via-api`), where GitHub only
/// answers `404 Not Found` to a tree that changes a workflow file.
#[tokio::test(flavor = "multi_thread")]
async fn workflow_refusals_name_the_permission_through_the_git_data_api() {
    workflow_refusal_case(true).await;
}

async fn workflow_refusal_case(via_api: bool) {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let a = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let _b = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "b").await;
    let git_server = GitServer::start();
    let pin = format!("{host}/app:1@{}", a.digest);
    let dockerfile = format!("FROM {pin}\n");
    let workflow =
        format!("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    container: {pin}\n");
    git_server.repo(
        "acme/web",
        &[
            ("Dockerfile", &dockerfile),
            (".github/workflows/ci.yml", &workflow),
        ],
    );
    git_server.refuse_workflow_pushes("acme/web");
    let fake = FakeGitHub::start().await;
    fake.add_repo(&git_server, "acme/web");
    fake.refuse_workflow_trees("acme/web");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let mut args = vec![
        "run",
        "--repo",
        "acme/web",
        "--state",
        state.to_str().unwrap(),
    ];
    if via_api {
        args.push("--commit-via-api");
    }
    let out = repin_env(
        Path::new("."),
        &args,
        &[
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_API_URL", fake.url.as_str()),
        ],
    );
    assert_eq!(
        out.code, 2,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("acme/web: opened [1]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("needs the Workflows permission")
            && out.stderr.contains("Repository permissions → Workflows"),
        "{}",
        out.stderr
    );
    if via_api {
        assert!(
            out.stderr.contains("create tree") && out.stderr.contains("workflow scope"),
            "{}",
            out.stderr
        );
    }
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(!pulls[0].head.contains("workflows"), "{}", pulls[0].head);
    let bare = git_server.path("acme/web");
    let branches = git(&bare, &["branch", "--list"]);
    assert!(!branches.contains("workflows"), "{branches}");
    let changed = git(&bare, &["diff", "--name-only", "main", &pulls[0].head]);
    assert_eq!(changed.trim(), "Dockerfile");
}

/// A repository with one open repin pull request, and what the fleet tests need.
struct Kept {
    reg: Registry,
    git_server: GitServer,
    fake: FakeGitHub,
    _state_dir: tempfile::TempDir,
    state: std::path::PathBuf,
    host: String,
}

impl Kept {
    async fn start() -> Self {
        let reg = Registry::start(Auth::Open);
        let mut pusher = Pusher::new(&reg);
        let host = reg.host.clone();
        let a = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
        pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "b").await;
        let git_server = GitServer::start();
        let dockerfile = format!("FROM {host}/app:1@{}\n", a.digest);
        git_server.repo(
            "acme/web",
            &[("Dockerfile", &dockerfile), ("README.md", "web\n")],
        );
        let fake = FakeGitHub::start().await;
        fake.add_repo(&git_server, "acme/web");
        let state_dir = tempfile::tempdir().unwrap();
        let state = state_dir.path().join("state.redb");
        let kept = Self {
            reg,
            git_server,
            fake,
            _state_dir: state_dir,
            state,
            host,
        };
        let out = kept.run();
        assert!(out.stdout.contains("opened [1]"), "{}", out.stdout);
        kept
    }

    fn run(&self) -> Run {
        run(&self.fake, &self.state, "acme/web")
    }

    /// Runs once more; returns (clones and fetches, API calls, writes) it cost.
    fn run_counted(&self) -> (usize, usize, usize, Run) {
        let (fetches, calls, writes) = (
            self.git_server.fetches(),
            self.fake.calls().len(),
            self.fake.writes(),
        );
        let out = self.run();
        (
            self.git_server.fetches() - fetches,
            self.fake.calls().len() - calls,
            self.fake.writes() - writes,
            out,
        )
    }

    /// Pushes a commit to `main` changing `files`.
    fn push(&self, files: &[(&str, &str)]) {
        let work = tempfile::tempdir().unwrap();
        let bare = self.git_server.path("acme/web");
        git(work.path(), &["clone", "-q", bare.to_str().unwrap(), "w"]);
        let w = work.path().join("w");
        for (path, text) in files {
            std::fs::write(w.join(path), text).unwrap();
        }
        git(&w, &["add", "-A"]);
        git(&w, &["commit", "-qm", "change"]);
        git(&w, &["push", "-q", "origin", "main"]);
    }
}

/// An unchanged repository is not cloned on the second run: its default branch is read
/// with `git ls-remote`, its scan comes from the state store, its pull request list is
/// asked with the kept validator (`304`): one API call, no write. When the tag moves,
/// the repository is cloned to commit the change, and the PR is right.
#[tokio::test(flavor = "multi_thread")]
async fn unchanged_repository_is_not_cloned_on_the_second_run() {
    let kept = Kept::start().await;
    for _ in 0..2 {
        let served = kept.git_server.served().len();
        let (fetches, calls, writes, out) = kept.run_counted();
        assert_eq!(fetches, 0, "not cloned");
        // Git served one listing of the refs, nothing more.
        let idle = &kept.git_server.served()[served..];
        assert_eq!(idle.len(), 1, "{idle:?}");
        assert!(idle[0].bytes < 1024, "{idle:?}");
        assert!(calls <= 2, "{calls} API calls: {:?}", kept.fake.calls());
        assert_eq!(writes, 0);
        assert!(
            out.stdout.contains("opened [], updated [], closed []"),
            "{}",
            out.stdout
        );
    }
    // The tag moves: a change must be committed, so the repository is cloned.
    let mut pusher = Pusher::new(&kept.reg);
    let c = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "c").await;
    let (fetches, _, _, out) = kept.run_counted();
    assert_eq!(fetches, 1);
    assert!(out.stdout.contains("updated [1]"), "{}", out.stdout);
    let pr = &kept.fake.pulls()[0];
    assert_eq!(
        git(
            &kept.git_server.path("acme/web"),
            &["show", &format!("{}:Dockerfile", pr.head)]
        ),
        format!("FROM {}/app:1@{}\n", kept.host, c.digest)
    );
    // And then it is idle again.
    let (fetches, calls, writes, _) = kept.run_counted();
    assert_eq!((fetches, writes), (0, 0));
    assert!(calls <= 2);
}

/// A moved default branch, a changed repository config and a changed service config
/// each invalidate the kept scan: the repository is cloned; the new config's effect
/// shows; then it is idle again.
#[tokio::test(flavor = "multi_thread")]
async fn moved_branch_or_changed_config_is_cloned() {
    let kept = Kept::start().await;
    kept.push(&[("README.md", "web, moved\n")]);
    let (fetches, _, writes, _) = kept.run_counted();
    assert_eq!((fetches, writes), (1, 0), "a moved branch is cloned");
    let (fetches, _, _, _) = kept.run_counted();
    assert_eq!(fetches, 0);

    // The repository config now labels repin's pull requests and groups them anew:
    // cloned, and the change set's new branch gets its PR.
    kept.push(&[(".repin.toml", "[update]\ngroup = \"all images\"\n")]);
    let (fetches, _, _, out) = kept.run_counted();
    assert_eq!(fetches, 1, "a changed repository config is cloned");
    assert!(out.stdout.contains("opened [2]"), "{}", out.stdout);
    assert!(kept.fake.pulls()[1].head.ends_with("all-images"));
    let (fetches, _, writes, _) = kept.run_counted();
    assert_eq!((fetches, writes), (0, 0));

    // A service config the kept scan was not made under: cloned.
    let service = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(service.path(), "[github]\nmax_open = 5\n").unwrap();
    let with_service = |kept: &Kept| {
        let fetches = kept.git_server.fetches();
        let out = repin_env(
            Path::new("."),
            &[
                "run",
                "--repo",
                "acme/web",
                "--state",
                kept.state.to_str().unwrap(),
                "--config",
                service.path().to_str().unwrap(),
            ],
            &[
                ("GITHUB_TOKEN", TOKEN),
                ("GITHUB_API_URL", kept.fake.url.as_str()),
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        kept.git_server.fetches() - fetches
    };
    assert!(
        with_service(&kept) > 0,
        "a changed service config is cloned"
    );
    assert_eq!(with_service(&kept), 0);
}

/// Lost or corrupt state costs a clone, never a wrong pull request: a kept scan that
/// does not read, and a state file that is not a store, each make the run clone and
/// find the open PR right.
#[tokio::test(flavor = "multi_thread")]
async fn corrupted_state_costs_a_clone_not_a_wrong_pr() {
    let kept = Kept::start().await;
    let (fetches, _, _, _) = kept.run_counted();
    assert_eq!(fetches, 0);
    {
        let store = repin::state::Store::open(&kept.state).unwrap();
        let forge = kept.fake.url.trim_end_matches('/').to_ascii_lowercase();
        for key in [
            repin::job::KeptTree::key(&forge, "acme/web"),
            repin::forge::run::pulls_key(&forge, "acme/web"),
        ] {
            assert!(
                store
                    .cached(repin::state::Cache::Trees, &key)
                    .unwrap()
                    .is_some(),
                "{key} is kept"
            );
            store
                .cache(
                    repin::state::Cache::Trees,
                    &key,
                    b"{\"made_by\": 7, garbage",
                )
                .unwrap();
        }
        store.set(&["flush".to_owned()], 1).unwrap();
    }
    let (fetches, _, writes, out) = kept.run_counted();
    assert_eq!((fetches, writes), (1, 0), "{}", out.stderr);
    assert!(out.stdout.contains("opened [], updated [], closed []"));
    let (fetches, _, _, _) = kept.run_counted();
    assert_eq!(fetches, 0, "kept again");

    // The whole file: not a store any more.
    let mut bytes = std::fs::read(&kept.state).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&kept.state, &bytes).unwrap();
    let (fetches, _, writes, out) = kept.run_counted();
    assert_eq!((fetches, writes), (1, 0), "{}", out.stderr);
    assert!(out.stdout.contains("opened [], updated [], closed []"));
    assert_eq!(kept.fake.pulls().len(), 1, "no second pull request");
}

/// Each repository's checkout is its own folder under the run's work folder, gone as
/// soon as the repository is done (not when the run ends), and its API calls are
/// counted apart from other repositories sharing the client.
#[tokio::test(flavor = "multi_thread")]
async fn checkouts_are_deleted_when_their_repository_is_done() {
    use repin::registry::client::{Client, Credentials, Options};
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let a = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "b").await;
    let git_server = GitServer::start();
    let fake = FakeGitHub::start().await;
    for name in ["acme/one", "acme/two"] {
        git_server.repo(
            name,
            &[("Dockerfile", &format!("FROM {host}/app:1@{}\n", a.digest))],
        );
        fake.add_repo(&git_server, name);
    }
    let client = Client::new(Options::default(), Credentials::Anonymous).unwrap();
    let opts = repin::forge::run::RunOptions {
        author: repin::git::Identity {
            name: "repin[bot]".into(),
            email: "repin[bot]@users.noreply.github.com".into(),
        },
        max_open: 10,
        dry_run: false,
        service: None,
        store_path: None,
        commit_via_api: false,
        resolver: repin::registry::resolve::Resolver::new(std::sync::Arc::new(client)),
        store: None,
    };
    let gh = std::sync::Arc::new(
        repin::forge::github::GitHub::new(&fake.url, &repin::secret::Secret::new(TOKEN)).unwrap(),
    );
    let work = tempfile::tempdir().unwrap();
    let target = |name: &str| repin::forge::fleet::Target {
        gh: std::sync::Arc::clone(&gh),
        full_name: name.to_owned(),
    };
    let (one, two) = tokio::join!(
        repin::forge::run::run_repo_apart(target("acme/one"), opts.clone(), work.path()),
        repin::forge::run::run_repo_apart(target("acme/two"), opts.clone(), work.path()),
    );
    for (result, calls) in [one, two] {
        assert_eq!(result.unwrap().opened.len(), 1);
        // Repository, pull list, create: each repository's own, though the client is shared.
        assert_eq!(calls, 3);
    }
    assert_eq!(gh.calls(), 6);
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Kept scans are kept per forge: a repository of the same name on another GitHub is
/// another repository — never checked from the first one's kept scan, and its token
/// never sent to the first one's git server.
#[tokio::test(flavor = "multi_thread")]
async fn kept_scans_are_kept_per_forge() {
    let reg = Registry::start(Auth::Open);
    let mut pusher = Pusher::new(&reg);
    let host = reg.host.clone();
    let a = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "a").await;
    let b = pusher.index("app", "1", &PLATFORMS, Flavor::Oci, "b").await;
    // Forge A: acme/web is current; forge B: another acme/web, outdated.
    let (git_a, git_b) = (GitServer::start(), GitServer::start());
    git_a.repo(
        "acme/web",
        &[("Dockerfile", &format!("FROM {host}/app:1@{}\n", b.digest))],
    );
    git_b.repo(
        "acme/web",
        &[("Dockerfile", &format!("FROM {host}/app:1@{}\n", a.digest))],
    );
    let (fake_a, fake_b) = (FakeGitHub::start().await, FakeGitHub::start().await);
    fake_a.add_repo(&git_a, "acme/web");
    fake_b.add_repo(&git_b, "acme/web");
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let out = run(&fake_a, &state, "acme/web");
    assert!(out.stdout.contains("opened []"), "{}", out.stdout);
    let served_a = git_a.served().len();
    let out = run(&fake_b, &state, "acme/web");
    assert!(
        git_a.served().len() == served_a,
        "forge B's run reached forge A's git server"
    );
    assert!(out.stdout.contains("opened [1]"), "{}", out.stdout);
    // Each forge's repository is then idle from its own kept scan.
    let fetches = (git_a.fetches(), git_b.fetches());
    run(&fake_a, &state, "acme/web");
    run(&fake_b, &state, "acme/web");
    assert_eq!((git_a.fetches(), git_b.fetches()), fetches);
}
