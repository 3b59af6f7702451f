//! `repin run`: per repository, clone, run the job, plan the pull requests
//! ([`super::plan`], pure: the decision for each change set and each open repin pull
//! request), and execute the plan: commit and push with a lease (or through the Git
//! Data API), open, update, label, comment, close. A change set's branch is
//! `<branch_prefix><slug>`; every branch is checked to be repin's own
//! ([`git::OwnBranch`]) before anything is written.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::ServiceConfig;
use crate::edit;
use crate::forge::fleet::Target;
use crate::forge::github::{self, GitHub, NewPull, Pull};
use crate::forge::plan::{self, Action, Proposal, Why};
use crate::forge::pr::{self, Proposed};
use crate::forge::queue::{Queue, Ran};
use crate::git::{self, Identity, Lease, OwnBranch, Remote};
use crate::job::KeptTree;
use crate::job::{self, JobOptions, Outcome};
use crate::model::Status;
use crate::policy::ChangeSet;
use crate::state::{Cache, Store};

/// Marks the one comment repin leaves on a branch a person took over.
const HANDS_OFF: &str = "<!-- repin: hands-off -->";

/// Why a repository's run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A GitHub call failed.
    #[error(transparent)]
    GitHub(#[from] github::Error),
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// The job (configs, scan, lookups) failed.
    #[error(transparent)]
    Job(#[from] job::Error),
    /// A file could not be edited.
    #[error(transparent)]
    Edit(#[from] edit::Error),
    /// Local I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Settings of a run that are not per repository (resolved: [`crate::options`]).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Commit author and committer.
    pub author: Identity,
    /// At most this many open repin pull requests per repository.
    pub max_open: usize,
    /// Plan and print; write nothing remote.
    pub dry_run: bool,
    /// The service config (trusted rules under each repository's).
    pub service: Option<ServiceConfig>,
    /// The state store's path; `None`: no store.
    pub store_path: Option<std::path::PathBuf>,
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
    /// Pull requests opened (numbers).
    pub opened: Vec<u64>,
    /// Pull requests updated (numbers).
    pub updated: Vec<u64>,
    /// Pull requests closed (numbers).
    pub closed: Vec<u64>,
    /// Human-readable lines for the log (and the dry run's report).
    pub notes: Vec<String>,
    /// Change sets that failed while the others went on (workflow change sets, whose
    /// push GitHub may refuse for want of a permission): one line each. The repository
    /// counts as failed.
    pub errors: Vec<String>,
}

/// One repository's part of a fleet run.
#[derive(Debug)]
pub struct RepoReport {
    /// `owner/name`.
    pub full_name: String,
    /// What was done, or why the repository failed (one line).
    pub result: Result<RepoSummary, String>,
    /// GitHub API calls the repository cost.
    pub api_calls: usize,
}

/// What a fleet run did, repository by repository.
#[derive(Debug, Default)]
pub struct FleetReport {
    /// Each repository, in the order run.
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
                    t.3 += usize::from(!s.errors.is_empty());
                }
                Err(_) => t.3 += 1,
            }
        }
        t
    }
}

/// `repin run`: the targets, up to `concurrency` at once through the same
/// [`Queue`] `serve` runs repositories with, each in a checkout folder of its own
/// under `work` that is deleted as soon as its repository is done
/// ([`run_repo_apart`]), so temporary space stays about `concurrency` × the largest
/// checkout. Each repository is reported to `done` as it finishes; the report lists
/// them in the targets' order. After `stop_at` (`--deadline`), no repository starts:
/// each left is a failure saying so.
pub async fn run_fleet(
    targets: &[Target],
    opts: &RunOptions,
    work: &Path,
    stop_at: Option<tokio::time::Instant>,
    concurrency: usize,
    done: &mut dyn FnMut(&RepoReport),
) -> FleetReport {
    use futures_util::StreamExt as _;
    let queue = &Queue::new(concurrency);
    // A repository named twice runs once.
    let mut seen = std::collections::HashSet::new();
    let mut running: futures_util::stream::FuturesUnordered<_> = targets
        .iter()
        .filter(|t| seen.insert(t.full_name.to_ascii_lowercase()))
        .enumerate()
        .map(|(i, target)| async move {
            let ran = queue
                .admit(&target.full_name, || async {
                    if stop_at.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        (
                            Err("not started: the run's deadline (--deadline) passed".to_owned()),
                            0,
                        )
                    } else {
                        run_repo_apart(target.clone(), opts.clone(), work).await
                    }
                })
                .await;
            let (result, api_calls) = match ran {
                Ran::Done(done) => done,
                Ran::Folded => (Err("listed twice; run once".to_owned()), 0),
                Ran::Abandoned => (Err("not started".to_owned()), 0),
            };
            let repo = RepoReport {
                full_name: target.full_name.clone(),
                result,
                api_calls,
            };
            (i, repo)
        })
        .collect();
    let mut finished = Vec::with_capacity(targets.len());
    while let Some((i, repo)) = running.next().await {
        done(&repo);
        finished.push((i, repo));
    }
    finished.sort_by_key(|(i, _)| *i);
    FleetReport {
        repos: finished.into_iter().map(|(_, repo)| repo).collect(),
    }
}

/// Runs one repository on a blocking thread (git work blocks) with its own executor,
/// in a checkout folder of its own under `work`, deleted when the repository is done.
/// Returns the outcome (the error as one line) and the GitHub API calls this
/// repository made (counted apart from other repositories sharing the client).
pub async fn run_repo_apart(
    target: Target,
    opts: RunOptions,
    work: &Path,
) -> (Result<RepoSummary, String>, usize) {
    let folder = match tempfile::Builder::new().prefix("repo-").tempdir_in(work) {
        Ok(folder) => folder,
        Err(e) => return (Err(format!("work folder {}: {e}", work.display())), 0),
    };
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let result = handle
            .block_on(github::counting(
                counted,
                run_repo(&target.gh, &target.full_name, &opts, folder.path()),
            ))
            .map_err(|e| e.to_string());
        // The checkout goes now, not when the run ends.
        drop(folder);
        result
    })
    .await
    .unwrap_or_else(|e| Err(format!("the run stopped: {e}")));
    (result, calls.load(std::sync::atomic::Ordering::Relaxed))
}

/// The store key recording that `state`'s digests were declined in `full_name` (a
/// webhook saw its PR closed unmerged; the PR list only reaches the last 100 PRs).
#[must_use]
pub fn declined_key(full_name: &str, state: &Proposed) -> String {
    let proposal = serde_json::to_string(&state.proposal()).unwrap_or_default();
    crate::state::declined_key(full_name, &proposal)
}

/// Whether commit `tip` was authored by `author` (one Git Data API call).
async fn authored_by(gh: &GitHub, full_name: &str, tip: &str, author: &Identity) -> bool {
    gh.commit_author(full_name, tip)
        .await
        .is_ok_and(|(name, email)| name == author.name && email == author.email)
}

fn is_repin_pull(pull: &Pull) -> Option<Proposed> {
    pull.body.as_deref().and_then(Proposed::parse)
}

/// Runs one repository. When the state store keeps its scan ([`KeptTree`]) and its
/// default branch is still at the kept commit (one `git ls-remote`, no API call), the
/// repository is checked from the kept scan and the kept pull request list (asked again
/// only if changed: `304 Not Modified` is free), and cloned only when a change must be
/// committed (or a branch deleted); the work is then done from the fresh clone and a
/// fresh scan, as without a kept scan.
///
/// # Errors
/// [`Error`]; the caller reports it and goes on with the next repository.
#[tracing::instrument(level = "info", skip_all, fields(repository = %full_name))]
pub async fn run_repo(
    gh: &GitHub,
    full_name: &str,
    opts: &RunOptions,
    work: &Path,
) -> Result<RepoSummary, Error> {
    let mut summary = RepoSummary::default();
    let token = gh.git_token().await?;
    let store = opts.store.as_deref();
    let forge = gh.forge();
    let kept = store.and_then(|s| KeptTree::load(s, &forge, full_name, opts.service.as_ref()));
    let mut listed = None;
    if let Some(kept) = &kept {
        let remote = Remote {
            url: kept.clone_url.clone(),
            token: Some(token.clone()),
        };
        match git::remote_head(&remote) {
            Ok((branch, head)) if branch == kept.branch && head.to_string() == kept.commit => {
                let outcome =
                    job::check_kept(&job_options(opts, full_name, None), kept, &|| {}).await?;
                let pulls = pulls(gh, store, full_name).await?;
                let planned = plan_repo(&outcome, &pulls, &branch, opts, full_name)?;
                if !planned.actions.iter().any(needs_checkout) {
                    tracing::info!(commit = %head, "unchanged since the kept scan; not cloned");
                    for action in &planned.actions {
                        if let Some(result) = apply_remote(
                            gh,
                            full_name,
                            action,
                            &planned.proposals,
                            opts.dry_run,
                            &mut summary,
                        )
                        .await
                        {
                            result?;
                        }
                    }
                    return Ok(summary);
                }
                listed = Some(pulls);
            }
            Ok(_) => tracing::debug!("the default branch moved; cloning"),
            Err(e) => tracing::debug!(error = %e, "the kept scan's remote did not answer; cloning"),
        }
    }
    let repo = gh.repo(full_name).await?;
    let remote = Remote {
        url: repo.clone_url.clone(),
        token: Some(token),
    };
    let dir = work.join(pr::slug(full_name));
    let clone = git::clone_shallow(&remote, &repo.default_branch, &dir)?;
    let base = git::head(&clone)?;
    let outcome = job::check_tree(&job_options(opts, full_name, Some(dir)), &|| {}).await?;
    if let Some(store) = store
        && let Some(tree) = KeptTree::of(
            &outcome.scanned(),
            opts.service.as_ref(),
            &repo.default_branch,
            &base.to_string(),
            &repo.clone_url,
        )
    {
        tree.save(store, &forge, full_name);
    }
    let pulls = match listed {
        Some(pulls) => pulls,
        None => pulls(gh, store, full_name).await?,
    };
    let Planned {
        branches,
        proposals,
        actions,
    } = plan_repo(&outcome, &pulls, &repo.default_branch, opts, full_name)?;
    let executor = Executor {
        to: PushTo {
            gh,
            full_name,
            clone: &clone,
            remote: &remote,
            base,
        },
        default_branch: &repo.default_branch,
        outcome: &outcome,
        opts,
        pulls: &pulls,
        proposals: &proposals,
        branches: &branches,
    };
    for action in &actions {
        let result = executor.apply(action, &mut summary).await;
        // A workflow change set's failure is its own: the other change sets go on.
        match (result, action_set(action)) {
            (Ok(()), _) => {}
            (Err(e), Some(set)) if crate::policy::is_workflow_set(&proposals[set].proposed.set) => {
                summary.errors.push(match workflow_refusal(&e) {
                    Some(why) => format!("{}: {why}", proposals[set].branch),
                    None => format!("{}: {e}", proposals[set].branch),
                });
            }
            (Err(e), _) => return Err(e),
        }
    }
    Ok(summary)
}

/// The job's options for one repository of the run; `dir` is its clone (`None` for a
/// kept scan, which reads nothing from disk).
fn job_options(opts: &RunOptions, full_name: &str, dir: Option<std::path::PathBuf>) -> JobOptions {
    JobOptions {
        service: opts.service.clone(),
        store_path: opts.store_path.clone(),
        store: opts.store.clone(),
        repository: Some(full_name.to_owned()),
        ..JobOptions::new(
            dir.into_iter().collect(),
            std::sync::Arc::clone(&opts.resolver),
        )
    }
}

/// The repository's pull requests: the kept list when GitHub says nothing changed since
/// it was kept (`304`), else the list as it is now (kept, with its validator, for the
/// next run).
async fn pulls(gh: &GitHub, store: Option<&Store>, full_name: &str) -> Result<Vec<Pull>, Error> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct KeptPulls {
        etag: String,
        pulls: Vec<Pull>,
    }
    let key = pulls_key(&gh.forge(), full_name);
    let kept: Option<KeptPulls> = store
        .and_then(|s| s.cached(Cache::Trees, &key).ok().flatten())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let (pulls, etag) = match gh
        .pulls_if_changed(full_name, kept.as_ref().map(|k| k.etag.as_str()))
        .await?
    {
        Some(listed) => listed,
        None => match kept {
            Some(kept) => return Ok(kept.pulls),
            // Unchanged since a list repin does not have: asked again in full.
            None => (gh.pulls(full_name).await?, None),
        },
    };
    if let (Some(store), Some(etag)) = (store, etag)
        && let Ok(bytes) = serde_json::to_vec(&KeptPulls {
            etag,
            pulls: pulls.clone(),
        })
        && let Err(e) = store.cache(Cache::Trees, &key, &bytes)
    {
        tracing::debug!(error = %e, "pull request list not kept");
    }
    Ok(pulls)
}

/// The store key of `full_name`'s kept pull request list on `forge` (a GitHub API's
/// base URL, as [`GitHub::forge`] gives it).
#[must_use]
pub fn pulls_key(forge: &str, full_name: &str) -> String {
    format!("pulls {forge} {}", full_name.to_ascii_lowercase())
}

/// A repository's plan: each change set's branch and proposal, and the actions.
struct Planned {
    branches: Vec<OwnBranch>,
    proposals: Vec<Proposal>,
    actions: Vec<Action>,
}

/// Plans a repository from a job's outcome and its pull requests ([`plan::plan`]).
///
/// # Errors
/// [`git::Error::NotOwnBranch`] when a change set's branch is not repin's own (a config
/// that names the default branch) or two change sets would share one: nothing is
/// written in the repository then.
fn plan_repo(
    outcome: &Outcome,
    pulls: &[Pull],
    default_branch: &str,
    opts: &RunOptions,
    full_name: &str,
) -> Result<Planned, Error> {
    // Every branch is checked before anything is written: a config that names the
    // default branch (or anything but a branch of repin's) stops this repository whole.
    let branches = outcome
        .change_sets
        .iter()
        .map(|set| OwnBranch::new(&pr::branch(&set.id, &set.settings), default_branch))
        .collect::<Result<Vec<_>, _>>()?;
    distinct_branches(outcome.change_sets.iter().map(|s| s.id.as_str()), &branches)?;
    let proposals: Vec<Proposal> = outcome
        .change_sets
        .iter()
        .zip(&branches)
        .map(|(set, own)| {
            let members: Vec<_> = set.members.iter().map(|&i| &outcome.records[i]).collect();
            let state = Proposed::of(&set.id, &members);
            Proposal {
                branch: own.as_str().to_owned(),
                title: pr::title(&state, &set.settings),
                proposed: state,
            }
        })
        .collect();
    // The job opens the store whenever there is one (a store that does not open has
    // nothing declined to read).
    let declined = proposals
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            outcome.store.as_ref().is_some_and(|s| {
                matches!(s.get(&declined_key(full_name, &p.proposed)), Ok(Some(_)))
            })
        })
        .map(|(i, _)| i)
        .collect();
    let current = pulls
        .iter()
        .filter(|p| p.is_open())
        .filter(|p| is_repin_pull(p).is_some_and(|s| all_current(outcome, &s)))
        .map(|p| p.number)
        .collect();
    let actions = plan::plan(&plan::Inputs {
        proposals: &proposals,
        pulls,
        declined: &declined,
        current: &current,
        max_open: opts.max_open,
    });
    Ok(Planned {
        branches,
        proposals,
        actions,
    })
}

/// Whether an action needs the clone: a commit to make, or a branch to delete.
fn needs_checkout(action: &Action) -> bool {
    matches!(
        action,
        Action::Open { .. } | Action::Update { .. } | Action::Close { .. }
    )
}

/// Performs an action that needs no clone (a note, or the one comment on a branch a
/// person took over); `None` for one that does ([`needs_checkout`]). With `dry_run`,
/// says what it would do and writes nothing.
async fn apply_remote(
    gh: &GitHub,
    full_name: &str,
    action: &Action,
    proposals: &[Proposal],
    dry_run: bool,
    summary: &mut RepoSummary,
) -> Option<Result<(), Error>> {
    let shown = || plan::Shown { action, proposals }.to_string();
    match action {
        Action::Skip {
            why: Why::UpToDate { .. },
            ..
        } => Some(Ok(())),
        Action::Skip { .. } => {
            summary.notes.push(shown());
            Some(Ok(()))
        }
        Action::HandsOff { set, pull } => {
            summary.notes.push(shown());
            if dry_run {
                return Some(Ok(()));
            }
            Some(hands_off(gh, full_name, *pull, &proposals[*set].branch).await)
        }
        Action::Open { .. } | Action::Update { .. } | Action::Close { .. } => None,
    }
}

/// Refuses change sets whose names slug alike (`app workflows`, `app/workflows`): they
/// would push over each other's branch.
///
/// # Errors
/// [`git::Error::NotOwnBranch`] naming both.
fn distinct_branches<'a>(
    ids: impl Iterator<Item = &'a str>,
    branches: &[OwnBranch],
) -> Result<(), git::Error> {
    let mut seen = std::collections::HashMap::new();
    for (id, own) in ids.zip(branches) {
        if let Some(other) = seen.insert(own.as_str(), id) {
            return Err(git::Error::NotOwnBranch {
                branch: own.as_str().to_owned(),
                why: format!(
                    "change sets {other:?} and {id:?} would share it; name the groups apart"
                ),
            });
        }
    }
    Ok(())
}

/// The change set an action works on, if any.
fn action_set(action: &Action) -> Option<usize> {
    match action {
        Action::Open { set }
        | Action::Update { set, .. }
        | Action::HandsOff { set, .. }
        | Action::Skip { set, .. } => Some(*set),
        Action::Close { .. } => None,
    }
}

/// What to do when GitHub refuses to change a workflow file: which permission is
/// missing and where to grant it. `None` for any other failure.
///
/// A push's refusal names who pushed: a GitHub App (an App installation token, and a
/// workflow's own `GITHUB_TOKEN`, which is one) lacks the `workflows` permission; an
/// OAuth App or personal access token lacks the `workflow` scope. Through the Git
/// Data API (`commit_via_api`) GitHub says less: a tree, commit or branch change that
/// touches a workflow file the credentials may not change is answered `404 Not Found`
/// (or `403`/`422` with the same words as a push); this is called only for a workflow
/// change set, so such an answer there is read as the refusal, naming both remedies.
#[must_use]
pub fn workflow_refusal(e: &Error) -> Option<String> {
    const APP: &str = "the GitHub App needs the Workflows permission (Read and write) — grant it in the App's settings under Permissions & events → Repository permissions → Workflows, then accept the new permission in each installation. A workflow's own GITHUB_TOKEN can never push workflow changes; run repin as an App or with a token that has the workflow scope";
    const TOKEN: &str = "the token needs the workflow scope — a classic personal access token: Settings → Developer settings → Personal access tokens → the `workflow` scope; a fine-grained token: Repository permissions → Workflows: Read and write";
    let said = e.to_string();
    // GitHub's words; the branch name (`…-workflows`) must not count.
    let fix = if said.contains("to create or update workflow") {
        if said.contains("`workflows` permission") || said.contains("GitHub App") {
            format!("GitHub refused to change a workflow file: {APP}")
        } else {
            format!("GitHub refused to change a workflow file: {TOKEN}")
        }
    } else if let Error::GitHub(
        github::Error::NotFound { what, .. }
        | github::Error::Status {
            what,
            status: 403 | 422,
            ..
        },
    ) = e
        && GIT_DATA_WRITES.contains(what)
    {
        format!(
            "GitHub answered {what} of a workflow change with \"{said}\", as it does when the credentials may not change workflow files: if repin runs as a GitHub App, {APP}; with a token, {TOKEN}"
        )
    } else {
        return None;
    };
    Some(format!(
        "{fix}; or leave workflow files alone with `exclude = [\".github/workflows/**\"]` under `[scan]` in .repin.toml"
    ))
}

/// The Git Data API calls that write a commit or move a branch (their `what`).
const GIT_DATA_WRITES: [&str; 5] = [
    "create blob",
    "create tree",
    "create commit",
    "create branch",
    "update branch",
];

/// Carries out one repository's plan.
struct Executor<'a> {
    to: PushTo<'a>,
    default_branch: &'a str,
    outcome: &'a Outcome,
    opts: &'a RunOptions,
    pulls: &'a [Pull],
    proposals: &'a [Proposal],
    branches: &'a [OwnBranch],
}

impl Executor<'_> {
    /// Performs one action; with `--dry-run`, says what it would do and writes nothing.
    async fn apply(&self, action: &Action, summary: &mut RepoSummary) -> Result<(), Error> {
        let (gh, full_name) = (self.to.gh, self.to.full_name);
        let shown = || {
            plan::Shown {
                action,
                proposals: self.proposals,
            }
            .to_string()
        };
        if let Some(done) = apply_remote(
            gh,
            full_name,
            action,
            self.proposals,
            self.opts.dry_run,
            summary,
        )
        .await
        {
            return done;
        }
        match action {
            Action::Skip { .. } | Action::HandsOff { .. } => {}
            Action::Update { set, pull, lease } => {
                let change_set = &self.outcome.change_sets[*set];
                let state = &self.proposals[*set].proposed;
                let Some(prepared) = build(&self.to, self.outcome, change_set, state, self.opts)?
                else {
                    return Ok(());
                };
                if self.opts.dry_run {
                    summary.notes.push(shown());
                    return Ok(());
                }
                let lease = Lease::from_commit(lease.as_deref());
                let sha =
                    publish(&self.to, &prepared, &self.branches[*set], lease, self.opts).await?;
                let state = with_commit(state.clone(), sha);
                let facts = facts(self.outcome, &state).await;
                let patch = serde_json::json!({
                    "title": pr::title(&state, &change_set.settings),
                    "body": pr::body(&state, &facts),
                });
                gh.update_pull(full_name, *pull, &patch).await?;
                summary.updated.push(*pull);
                proposed(self.outcome, change_set, summary);
            }
            Action::Open { set } => self.open(*set, summary).await?,
            Action::Close {
                pull,
                branch,
                delete_at,
            } => {
                if self.opts.dry_run {
                    summary.notes.push(shown());
                    return Ok(());
                }
                gh.comment(
                    full_name,
                    *pull,
                    "The default branch already has these digests; closing.",
                )
                .await?;
                gh.update_pull(full_name, *pull, &serde_json::json!({ "state": "closed" }))
                    .await?;
                if let lease @ Lease::At(_) = Lease::from_commit(delete_at.as_deref())
                    && let Ok(own) = OwnBranch::new(branch, self.default_branch)
                {
                    git::delete_branch(self.to.clone, self.to.remote, &own, lease)?;
                }
                summary.closed.push(*pull);
            }
        }
        Ok(())
    }

    /// Opens proposal `set`'s pull request: commit, push (a leftover branch is
    /// replaced only when it is repin's), then labels, reviewers, assignees, auto-merge.
    async fn open(&self, set: usize, summary: &mut RepoSummary) -> Result<(), Error> {
        let (gh, full_name) = (self.to.gh, self.to.full_name);
        let change_set = &self.outcome.change_sets[set];
        let proposal = &self.proposals[set];
        let branch = &proposal.branch;
        let Some(prepared) = build(
            &self.to,
            self.outcome,
            change_set,
            &proposal.proposed,
            self.opts,
        )?
        else {
            return Ok(());
        };
        if self.opts.dry_run {
            summary.notes.push(
                plan::Shown {
                    action: &Action::Open { set },
                    proposals: self.proposals,
                }
                .to_string(),
            );
            return Ok(());
        }
        // A leftover branch from a closed PR of ours may be replaced; anything else on
        // that name is someone's and stays. So may the branch of a run stopped between
        // its push and its PR: its tip is repin's own commit.
        let lease = match git::remote_tip(self.to.remote, branch)? {
            None => Lease::Absent,
            Some(tip) => {
                let closed_ours = self.pulls.iter().any(|p| {
                    p.head.branch == *branch && p.head.sha == tip.to_string() && !p.is_open()
                });
                if closed_ours
                    || authored_by(gh, full_name, &tip.to_string(), &self.opts.author).await
                {
                    Lease::At(tip)
                } else {
                    summary.notes.push(format!(
                        "{branch}: the branch exists and is not repin's; not opened"
                    ));
                    return Ok(());
                }
            }
        };
        let sha = publish(&self.to, &prepared, &self.branches[set], lease, self.opts).await?;
        let state = with_commit(proposal.proposed.clone(), sha);
        let title = pr::title(&state, &change_set.settings);
        let body = pr::body(&state, &facts(self.outcome, &state).await);
        let pr_settings = &change_set.settings.pr;
        let created = gh
            .create_pull(
                full_name,
                &NewPull {
                    title: &title,
                    head: branch,
                    base: self.default_branch,
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
        summary.opened.push(created.number);
        proposed(self.outcome, change_set, summary);
        Ok(())
    }
}

/// What the registry says about the old and new images of a state (best effort: a
/// failed lookup just leaves the body without that line).
async fn facts(outcome: &Outcome, state: &Proposed) -> pr::Facts {
    let mut out = pr::Facts::new();
    for r in &state.refs {
        let Some((registry, repository)) = r.image.split_once('/') else {
            continue;
        };
        let name = crate::imageref::RepositoryName::new(registry, repository);
        for digest in std::iter::once(&r.new).chain(r.old.as_ref()) {
            if !out.contains_key(digest)
                && let Ok(f) = outcome.resolver.facts(&name, digest).await
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

fn with_commit(mut state: Proposed, sha: String) -> Proposed {
    state.commit = Some(sha);
    state
}

/// Where a change set's commit goes.
struct PushTo<'a> {
    gh: &'a GitHub,
    full_name: &'a str,
    clone: &'a git::Repository,
    remote: &'a Remote,
    base: git::Oid,
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
    let paths: Vec<&str> = prepared.files.iter().map(|(p, _)| p.as_str()).collect();
    let (tree, modes) = git::tree_modes(t.clone, t.base, &paths)?;
    let files: Vec<github::ApiFile> = prepared
        .files
        .iter()
        .zip(modes)
        .map(|((path, content), mode)| (path.clone(), format!("{mode:o}"), content.clone()))
        .collect();
    let sha =
        t.gh.commit_via_api(
            t.full_name,
            &t.base.to_string(),
            &tree,
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
fn all_current(outcome: &Outcome, state: &Proposed) -> bool {
    state.refs.iter().all(|r| {
        outcome.records.iter().any(|c| {
            c.found.path == r.path
                && c.status() == Status::Current
                && c.found
                    .image
                    .as_ref()
                    .is_some_and(|i| i.name().to_string() == r.image && i.tag == r.tag)
        })
    })
}

/// Leaves one comment on a branch a person pushed to, and nothing else.
async fn hands_off(gh: &GitHub, full_name: &str, pull: u64, branch: &str) -> Result<(), Error> {
    let said = gh
        .comments(full_name, pull)
        .await?
        .iter()
        .any(|c| c.contains(HANDS_OFF));
    if !said {
        gh.comment(
            full_name,
            pull,
            &format!("{HANDS_OFF}\nSomeone other than repin pushed to `{branch}`, so repin will not update or close this pull request. Close it to let repin propose again."),
        )
        .await?;
    }
    Ok(())
}

/// A change set's commit, made locally, and what it holds.
struct Prepared {
    commit: git::Oid,
    files: Vec<(String, Vec<u8>)>,
    message: String,
}

/// The commit for a change set: the default branch's tree with the members' files edited
/// (spliced and verified by re-scanning). `None` when no file changes.
fn build(
    to: &PushTo<'_>,
    outcome: &Outcome,
    set: &ChangeSet,
    state: &Proposed,
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
    let commit = git::commit_files(to.clone, to.base, &files, &message, &opts.author)?;
    Ok(Some(Prepared {
        commit,
        files,
        message,
    }))
}

#[cfg(test)]
mod workflow_tests {
    use super::*;

    /// Change sets whose names slug alike never share a branch: the repository stops.
    #[test]
    fn change_sets_never_share_a_branch() {
        let own = |id: &str| OwnBranch::new(&format!("repin/{}", pr::slug(id)), "main").unwrap();
        let ids = ["ghcr.io/acme/app workflows", "ghcr.io/acme/app/workflows"];
        let branches: Vec<_> = ids.iter().map(|id| own(id)).collect();
        let err = distinct_branches(ids.into_iter(), &branches).unwrap_err();
        assert!(err.to_string().contains("would share it"), "{err}");
        let ids = ["a", "b"];
        let branches: Vec<_> = ids.iter().map(|id| own(id)).collect();
        assert!(distinct_branches(ids.into_iter(), &branches).is_ok());
    }

    /// GitHub's two refusals of a workflow change name the missing permission and where
    /// to grant it; any other failure is not read as one.
    #[test]
    fn workflow_refusals_name_the_permission() {
        let rejected = |reason: &str| {
            Error::Git(git::Error::Rejected {
                branch: "repin/x-workflows".into(),
                reason: reason.into(),
            })
        };
        let app = workflow_refusal(&rejected(
            "refusing to allow a GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows` permission",
        ))
        .unwrap();
        assert!(app.contains("needs the Workflows permission"), "{app}");
        let token = workflow_refusal(&rejected(
            "refusing to allow an OAuth App to create or update workflow `.github/workflows/ci.yml` without `workflow` scope",
        ))
        .unwrap();
        assert!(
            token.contains("the token needs the workflow scope"),
            "{token}"
        );
        for other in [
            "pre-receive hook declined",
            "refusing to allow a force push",
        ] {
            assert_eq!(workflow_refusal(&rejected(other)), None, "{other}");
        }
        // Through the Git Data API: a 404 (or 403/422) to a write names both remedies;
        // the same answer to a read, or another status, is not a refusal.
        let api = |what, status: u16| {
            Error::GitHub(if status == 404 {
                github::Error::NotFound {
                    what,
                    message: "Not Found".into(),
                }
            } else {
                github::Error::Status {
                    what,
                    status,
                    message: "x".into(),
                }
            })
        };
        for (what, status) in [
            ("create tree", 404),
            ("create commit", 422),
            ("update branch", 403),
        ] {
            let why = workflow_refusal(&api(what, status)).unwrap();
            assert!(
                why.contains("Workflows permission")
                    && why.contains("workflow scope")
                    && why.contains(what),
                "{why}"
            );
        }
        for (what, status) in [("list pull requests", 404), ("create tree", 500)] {
            assert_eq!(
                workflow_refusal(&api(what, status)),
                None,
                "{what} {status}"
            );
        }
    }
}
