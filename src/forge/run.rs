//! `repin run`: per repository, clone, run the job, and keep one pull request per change
//! set right.
//!
//! What each run does for a change set (its branch is `<branch_prefix><slug>`):
//! - an open repin PR proposing exactly these digests: nothing (no writes at all);
//! - an open repin PR proposing other digests: rebuild the branch from the default
//!   branch and force-push it with a lease on the commit repin made (recorded in the PR
//!   state), then update title and body; if the branch moved to a commit repin did not
//!   make, leave it alone and say so once in a comment;
//! - a PR closed without merging that proposed these digests: "not this digest", skip;
//! - otherwise open a PR (up to `max_open` open repin PRs per repository).
//!
//! An open repin PR whose change set has nothing pending and whose references are all
//! current on the default branch (merged elsewhere) is closed with a comment and its
//! branch deleted (again with a lease).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::ServiceConfig;
use crate::edit;
use crate::forge::github::{self, GitHub, NewPull, Pull};
use crate::forge::pr::{self, PrState};
use crate::git::{self, Identity, Lease, OwnBranch, Remote};
use crate::job::{self, JobOptions, Outcome};
use crate::model::Status;
use crate::policy::ChangeSet;
use crate::state::Store;

/// Marks the one comment repin leaves on a branch a person took over.
const HANDS_OFF: &str = "<!-- repin: hands-off -->";

/// Why a repository's run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    GitHub(#[from] github::Error),
    #[error(transparent)]
    Git(#[from] git::Error),
    #[error(transparent)]
    Job(#[from] job::Error),
    #[error(transparent)]
    Edit(#[from] edit::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Settings of a run that are not per repository (resolved: [`crate::options`]).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub author: Identity,
    pub max_open: usize,
    pub dry_run: bool,
    pub service: Option<ServiceConfig>,
    /// The state store's path; `None`: no store.
    pub state: Option<std::path::PathBuf>,
    /// Make commits through GitHub's Git Data API, so GitHub signs them.
    pub commit_via_api: bool,
    /// Lookups shared by every repository of the run.
    pub resolver: std::sync::Arc<crate::registry::resolve::Resolver>,
    /// A state store kept open across repositories (`serve`); else each job opens it.
    pub store: Option<std::sync::Arc<crate::state::Store>>,
}

/// What happened in one repository.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    pub opened: Vec<u64>,
    pub updated: Vec<u64>,
    pub closed: Vec<u64>,
    /// Human-readable lines for the log (and the dry run's report).
    pub notes: Vec<String>,
}

/// One repository's part of a fleet run.
#[derive(Debug)]
pub struct RepoReport {
    pub full_name: String,
    /// What was done, or why the repository failed (one line).
    pub result: Result<RepoSummary, String>,
    /// GitHub API calls the repository cost.
    pub api_calls: usize,
}

/// What a fleet run did, repository by repository.
#[derive(Debug, Default)]
pub struct FleetReport {
    pub repos: Vec<RepoReport>,
}

impl FleetReport {
    /// (opened, updated, closed, failed) over all repositories.
    #[must_use]
    pub fn totals(&self) -> (usize, usize, usize, usize) {
        let mut t = (0, 0, 0, 0);
        for r in &self.repos {
            match &r.result {
                Ok(s) => {
                    t.0 += s.opened.len();
                    t.1 += s.updated.len();
                    t.2 += s.closed.len();
                }
                Err(_) => t.3 += 1,
            }
        }
        t
    }
}

/// `repin run`: every target in turn (clones under `work`), each reported to `done` as
/// it finishes. After `stop_at` (`--deadline`), no repository starts: each left is a
/// failure saying so.
pub async fn run_fleet(
    targets: &[crate::forge::fleet::Target],
    opts: &RunOptions,
    work: &Path,
    stop_at: Option<tokio::time::Instant>,
    done: &mut dyn FnMut(&RepoReport),
) -> FleetReport {
    let mut report = FleetReport::default();
    for target in targets {
        let before = target.gh.calls();
        let result = if stop_at.is_some_and(|d| tokio::time::Instant::now() >= d) {
            Err("not started: the run's deadline (--deadline) passed".to_owned())
        } else {
            run_repo(&target.gh, &target.full_name, opts, work)
                .await
                .map_err(|e| e.to_string())
        };
        let repo = RepoReport {
            full_name: target.full_name.clone(),
            result,
            api_calls: target.gh.calls() - before,
        };
        done(&repo);
        report.repos.push(repo);
    }
    report
}

/// The store key recording that `state`'s digests were declined in `full_name` (a
/// webhook saw its PR closed unmerged; the PR list only reaches the last 100 PRs).
#[must_use]
pub fn declined_key(full_name: &str, state: &PrState) -> String {
    let proposal = serde_json::to_string(&state.proposal()).unwrap_or_default();
    crate::state::declined_key(full_name, &proposal)
}

/// The store to read declined digests from: the job's, else an existing one at the
/// configured path (the job opens the store only when it has something to record, and
/// a missing store is not created here).
fn declined_store(outcome: &Outcome, opts: &RunOptions) -> Option<std::sync::Arc<Store>> {
    outcome.store.clone().or_else(|| {
        let path = opts.state.as_ref()?;
        path.is_file()
            .then(|| Store::open(path).ok().map(std::sync::Arc::new))?
    })
}

/// Whether `tip` was authored by `author` (one Git Data API call).
async fn authored_by(gh: &GitHub, full_name: &str, tip: git2::Oid, author: &Identity) -> bool {
    gh.commit_author(full_name, &tip.to_string())
        .await
        .is_ok_and(|(name, email)| name == author.name && email == author.email)
}

fn is_repin_pull(pull: &Pull) -> Option<PrState> {
    pull.body.as_deref().and_then(PrState::parse)
}

/// Runs one repository.
///
/// # Errors
/// [`Error`]; the caller reports it and goes on with the next repository.
pub async fn run_repo(
    gh: &GitHub,
    full_name: &str,
    opts: &RunOptions,
    work: &Path,
) -> Result<RepoSummary, Error> {
    let mut summary = RepoSummary::default();
    let repo = gh.repo(full_name).await?;
    let remote = Remote {
        url: repo.clone_url.clone(),
        token: Some(gh.git_token().await?),
    };
    let dir = work.join(pr::slug(full_name));
    let clone = git::clone_shallow(&remote, &repo.default_branch, &dir)?;
    let base = clone
        .head()
        .ok()
        .and_then(|h| h.target())
        .ok_or_else(|| git::Error::Git {
            op: "clone",
            message: "no HEAD".into(),
        })?;
    let job_opts = JobOptions {
        service: opts.service.clone(),
        state: opts.state.clone(),
        store: opts.store.clone(),
        repository: Some(full_name.to_owned()),
        ..JobOptions::new(vec![dir.clone()], std::sync::Arc::clone(&opts.resolver))
    };
    let outcome = job::run(&job_opts, &|| {}).await?;
    let pulls = gh.pulls(full_name).await?;
    let store = declined_store(&outcome, opts);
    let mut open_count = pulls
        .iter()
        .filter(|p| p.is_open() && is_repin_pull(p).is_some())
        .count();

    let target = PushTo {
        gh,
        full_name,
        clone: &clone,
        remote: &remote,
        base,
    };
    // Every branch is checked before anything is written: a config that names the
    // default branch (or anything but a branch of repin's) stops this repository whole.
    let branches = outcome
        .change_sets
        .iter()
        .map(|set| OwnBranch::new(&pr::branch(&set.id, &set.settings), &repo.default_branch))
        .collect::<Result<Vec<_>, _>>()?;
    for (set, own) in outcome.change_sets.iter().zip(&branches) {
        let members: Vec<_> = set.members.iter().map(|&i| &outcome.records[i]).collect();
        let state = PrState::of(&set.id, &members);
        let branch = own.as_str().to_owned();
        let open = pulls
            .iter()
            .find(|p| p.is_open() && p.head.branch == branch);
        let declined = pulls.iter().any(|p| {
            !p.is_open()
                && !p.is_merged()
                && p.head.branch == branch
                && is_repin_pull(p).is_some_and(|s| s.proposal() == state.proposal())
        }) || store
            .as_ref()
            .is_some_and(|s| matches!(s.get(&declined_key(full_name, &state)), Ok(Some(_))));
        if declined {
            summary.notes.push(format!(
                "{branch}: these digests were declined (PR closed unmerged); skipped"
            ));
            continue;
        }
        match open {
            Some(pull) => {
                let Some(old) = is_repin_pull(pull) else {
                    summary.notes.push(format!(
                        "{branch}: #{} is not repin's; left alone",
                        pull.number
                    ));
                    continue;
                };
                if old.proposal() == state.proposal() {
                    continue;
                }
                if pull.head.sha != old.commit.as_deref().unwrap_or_default() {
                    hands_off(gh, full_name, pull, &branch, opts, &mut summary).await?;
                    continue;
                }
                let lease = old
                    .commit
                    .as_deref()
                    .and_then(|c| git2::Oid::from_str(c).ok())
                    .map_or(Lease::Absent, Lease::At);
                let Some(prepared) = build(&clone, base, &outcome, set, &state, opts)? else {
                    continue;
                };
                if opts.dry_run {
                    summary
                        .notes
                        .push(format!("{branch}: would update #{}", pull.number));
                    continue;
                }
                let sha = publish(&target, &prepared, own, lease, opts).await?;
                let state = with_commit(state, sha);
                let facts = facts(&outcome, &state).await;
                let patch = serde_json::json!({
                    "title": pr::title(&state, &set.settings),
                    "body": pr::body(&state, &facts),
                });
                gh.update_pull(full_name, pull.number, &patch).await?;
                summary.updated.push(pull.number);
                proposed(&outcome, set, &mut summary);
            }
            None => {
                if open_count >= opts.max_open {
                    summary.notes.push(format!(
                        "{branch}: max_open ({}) reached; not opened",
                        opts.max_open
                    ));
                    continue;
                }
                let Some(prepared) = build(&clone, base, &outcome, set, &state, opts)? else {
                    continue;
                };
                if opts.dry_run {
                    summary.notes.push(format!(
                        "{branch}: would open \"{}\"",
                        pr::title(&state, &set.settings)
                    ));
                    continue;
                }
                // A leftover branch from a closed PR of ours may be replaced; anything
                // else on that name is someone's and stays.
                // So may the branch of a run stopped between its push and its PR: its tip
                // is repin's own commit.
                let lease = match git::remote_tip(&remote, &branch)? {
                    None => Lease::Absent,
                    Some(tip) => {
                        let closed_ours = pulls.iter().any(|p| {
                            p.head.branch == branch && p.head.sha == tip.to_string() && !p.is_open()
                        });
                        if closed_ours || authored_by(gh, full_name, tip, &opts.author).await {
                            Lease::At(tip)
                        } else {
                            summary.notes.push(format!(
                                "{branch}: the branch exists and is not repin's; not opened"
                            ));
                            continue;
                        }
                    }
                };
                let sha = publish(&target, &prepared, own, lease, opts).await?;
                let state = with_commit(state, sha);
                let title = pr::title(&state, &set.settings);
                let body = pr::body(&state, &facts(&outcome, &state).await);
                let pr_settings = &set.settings.pr;
                let created = gh
                    .create_pull(
                        full_name,
                        &NewPull {
                            title: &title,
                            head: &branch,
                            base: &repo.default_branch,
                            body: &body,
                            draft: pr_settings.draft.unwrap_or(false),
                        },
                    )
                    .await?;
                if let Some(labels) = pr_settings.labels.as_ref().filter(|l| !l.is_empty()) {
                    gh.add_labels(full_name, created.number, labels).await?;
                }
                let reviewers = pr_settings.reviewers.clone().unwrap_or_default();
                let teams = pr_settings.team_reviewers.clone().unwrap_or_default();
                if !reviewers.is_empty() || !teams.is_empty() {
                    gh.request_reviewers(full_name, created.number, &reviewers, &teams)
                        .await?;
                }
                if let Some(assignees) = pr_settings.assignees.as_ref().filter(|a| !a.is_empty()) {
                    gh.add_assignees(full_name, created.number, assignees)
                        .await?;
                }
                if pr_settings.automerge == Some(true) {
                    // Best effort: a repository may not allow auto-merge; the PR stands.
                    if let Err(e) = gh.enable_auto_merge(&created.node_id).await {
                        summary.notes.push(format!("#{}: {e}", created.number));
                    }
                }
                open_count += 1;
                summary.opened.push(created.number);
                proposed(&outcome, set, &mut summary);
            }
        }
    }

    // Open repin PRs with nothing pending whose references are current: merged elsewhere.
    let pending: Vec<String> = outcome.change_sets.iter().map(|s| s.id.clone()).collect();
    for pull in pulls.iter().filter(|p| p.is_open()) {
        let Some(state) = is_repin_pull(pull) else {
            continue;
        };
        if pending.contains(&state.set) || !all_current(&outcome, &state) {
            continue;
        }
        if opts.dry_run {
            summary.notes.push(format!(
                "would close #{}: the default branch has these digests",
                pull.number
            ));
            continue;
        }
        gh.comment(
            full_name,
            pull.number,
            "The default branch already has these digests; closing.",
        )
        .await?;
        gh.update_pull(
            full_name,
            pull.number,
            &serde_json::json!({ "state": "closed" }),
        )
        .await?;
        if let Some(commit) = state
            .commit
            .as_deref()
            .and_then(|c| git2::Oid::from_str(c).ok())
            && pull.head.sha == commit.to_string()
            && let Ok(own) = OwnBranch::new(&pull.head.branch, &repo.default_branch)
        {
            git::delete_branch(&clone, &remote, &own, Lease::At(commit))?;
        }
        summary.closed.push(pull.number);
    }
    Ok(summary)
}

/// What the registry says about the old and new images of a state (best effort: a
/// failed lookup just leaves the body without that line).
async fn facts(outcome: &Outcome, state: &PrState) -> pr::Facts {
    let mut out = pr::Facts::new();
    for r in &state.refs {
        let Some((registry, repository)) = r.image.split_once('/') else {
            continue;
        };
        let key = crate::registry::resolve::TagKey {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: r
                .tag
                .clone()
                .unwrap_or_else(|| crate::imageref::DEFAULT_TAG.to_owned()),
        };
        for digest in std::iter::once(&r.new).chain(r.old.as_ref()) {
            if !out.contains_key(digest)
                && let Ok(f) = outcome.resolver.facts(&key, digest).await
            {
                out.insert(digest.clone(), f);
            }
        }
    }
    out
}

/// Records that `set` was proposed now (its schedule's anchor, for this repository), so
/// the next proposal waits for the next tick; a store failure is a note, not a failure
/// (the PR stands; the policy then errs on the side of waiting).
fn proposed(outcome: &Outcome, set: &ChangeSet, summary: &mut RepoSummary) {
    if let Err(e) = job::record_proposed(outcome, &[set]) {
        summary
            .notes
            .push(format!("{e}; the schedule may propose early"));
    }
}

fn with_commit(mut state: PrState, sha: String) -> PrState {
    state.commit = Some(sha);
    state
}

/// Where a change set's commit goes.
struct PushTo<'a> {
    gh: &'a GitHub,
    full_name: &'a str,
    clone: &'a git2::Repository,
    remote: &'a Remote,
    base: git2::Oid,
}

/// Puts the prepared commit on `branch` (if the lease holds): pushed with git, or made
/// again through GitHub's Git Data API so that GitHub signs it (`commit_via_api`).
/// Returns the branch's new commit.
async fn publish(
    t: &PushTo<'_>,
    prepared: &Prepared,
    branch: &OwnBranch,
    lease: Lease,
    opts: &RunOptions,
) -> Result<String, Error> {
    if !opts.commit_via_api {
        git::push(t.clone, t.remote, prepared.commit, branch, lease)?;
        return Ok(prepared.commit.to_string());
    }
    let git_err = |e: git2::Error| git::Error::Git {
        op: "read tree",
        message: e.message().to_owned(),
    };
    let base_tree = t
        .clone
        .find_commit(t.base)
        .and_then(|c| c.tree())
        .map_err(git_err)?;
    let files: Vec<github::ApiFile> = prepared
        .files
        .iter()
        .map(|(path, content)| {
            let mode = base_tree
                .get_path(Path::new(path))
                .map_or(0o100_644, |e| e.filemode());
            (path.clone(), format!("{mode:o}"), content.clone())
        })
        .collect();
    let sha =
        t.gh.commit_via_api(
            t.full_name,
            &t.base.to_string(),
            &base_tree.id().to_string(),
            &files,
            &prepared.message,
        )
        .await?;
    let lease = match lease {
        Lease::Absent => None,
        Lease::At(oid) => Some(oid.to_string()),
    };
    t.gh.set_branch(t.full_name, branch, &sha, lease.as_deref())
        .await?;
    Ok(sha)
}

/// Whether every reference a PR proposed is current in this run's check.
fn all_current(outcome: &Outcome, state: &PrState) -> bool {
    state.refs.iter().all(|r| {
        outcome.records.iter().any(|c| {
            c.found.path == r.path
                && c.status() == Status::Current
                && c.found.image.as_ref().is_some_and(|i| {
                    format!("{}/{}", i.registry, i.repository) == r.image && i.tag == r.tag
                })
        })
    })
}

/// Leaves one comment on a branch a person pushed to, and nothing else.
async fn hands_off(
    gh: &GitHub,
    full_name: &str,
    pull: &Pull,
    branch: &str,
    opts: &RunOptions,
    summary: &mut RepoSummary,
) -> Result<(), Error> {
    summary
        .notes
        .push(format!("{branch}: someone else pushed to it; left alone"));
    if opts.dry_run {
        return Ok(());
    }
    let said = gh
        .comments(full_name, pull.number)
        .await?
        .iter()
        .any(|c| c.contains(HANDS_OFF));
    if !said {
        gh.comment(
            full_name,
            pull.number,
            &format!("{HANDS_OFF}\nSomeone other than repin pushed to `{branch}`, so repin will not update or close this pull request. Close it to let repin propose again."),
        )
        .await?;
    }
    Ok(())
}

/// A change set's commit, made locally, and what it holds.
struct Prepared {
    commit: git2::Oid,
    files: Vec<(String, Vec<u8>)>,
    message: String,
}

/// The commit for a change set: the default branch's tree with the members' files edited
/// (spliced and verified by re-scanning). `None` when no file changes.
fn build(
    clone: &git2::Repository,
    base: git2::Oid,
    outcome: &Outcome,
    set: &ChangeSet,
    state: &PrState,
    opts: &RunOptions,
) -> Result<Option<Prepared>, Error> {
    let plan: BTreeMap<String, Vec<edit::Edit>> =
        crate::update::plan(&outcome.records, std::slice::from_ref(set));
    let mut files = Vec::new();
    for (path, edits) in &plan {
        let Some(source) = outcome.report.sources.get(path) else {
            continue;
        };
        let (_, new) = crate::update::edited(path, source, edits)?;
        files.push((path.clone(), new.into_bytes()));
    }
    if files.is_empty() {
        return Ok(None);
    }
    let message = pr::commit_message(state, &set.settings);
    let commit = git::commit_files(clone, base, &files, &message, &opts.author)?;
    Ok(Some(Prepared {
        commit,
        files,
        message,
    }))
}
