//! `update`: turn checked findings into edits, per file, and apply them through
//! [`crate::edit`] (or show them as a diff with `--dry-run`).
//!
//! Only the digest bytes change: an outdated pin gets its new digest after the `@`;
//! a tag-only reference being pinned gets `@digest` appended. What changes is what the
//! policy's change sets hold. A file whose edits do not
//! verify is left untouched and reported; other files still go through.

use std::collections::BTreeMap;

use crate::edit::{self, Edit};
use crate::job::{self, JobOptions, Outcome};
use crate::model::Record;
use crate::policy::ChangeSet;
use crate::scan::walk::Source;

/// What `update` did: the job's findings and decisions, and each planned file.
pub struct Updated {
    /// The job's outcome.
    pub outcome: Outcome,
    /// Each file's edit.
    pub files: Vec<FileOutcome>,
    /// The store could not record the proposals (a schedule may then propose early).
    pub warning: Option<String>,
}

impl Updated {
    /// Whether a lookup or a file failed (`update`'s exit code 2).
    #[must_use]
    pub fn failed(&self) -> bool {
        self.outcome
            .records
            .iter()
            .any(|r| r.lookup.error().is_some())
            || self.files.iter().any(|f| f.error.is_some())
    }

    /// Every error, one line each: a lookup's (`file:line: reference: reason`), then a
    /// file's.
    #[must_use]
    pub fn errors(&self) -> Vec<String> {
        let lookups = self.outcome.records.iter().filter_map(|r| {
            let f = &r.found;
            r.lookup
                .error()
                .map(|e| format!("{}:{}: {}: {e}", f.path, f.line, f.reference))
        });
        let files = self
            .files
            .iter()
            .filter_map(|f| f.error.as_ref().map(ToString::to_string));
        lookups.chain(files).collect()
    }

    /// Every warning, one line each: the job's, the files', the store's.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.outcome
            .all_warnings()
            .into_iter()
            .chain(self.files.iter().filter_map(|f| f.warning.clone()))
            .chain(self.warning.clone())
            .collect()
    }
}

/// `repin update`: runs the job, plans the change sets' edits, applies them (or, with
/// `dry_run`, only diffs them), and records as proposed every scheduled change set all
/// of whose files were written.
///
/// # Errors
/// The job's ([`job::Error`]); per-file and per-lookup failures are in the result.
pub async fn update_tree(
    opts: &JobOptions,
    dry_run: bool,
    tick: &(dyn Fn() + Sync),
) -> Result<Updated, job::Error> {
    let outcome = job::check_tree(opts, tick).await?;
    let plan = plan(&outcome.records, &outcome.change_sets);
    let files = apply(&plan, &outcome.report.sources, dry_run);
    let mut warning = None;
    if !dry_run {
        let written: Vec<&str> = files
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.path.as_str())
            .collect();
        let proposed: Vec<_> = outcome
            .change_sets
            .iter()
            .filter(|s| {
                s.members
                    .iter()
                    .all(|&i| written.contains(&outcome.records[i].found.path.as_str()))
            })
            .collect();
        warning = job::record_proposed(&outcome, &proposed)
            .err()
            .map(|e| e.to_string());
    }
    Ok(Updated {
        outcome,
        files,
        warning,
    })
}

/// What happened to one file.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file, relative to the root.
    pub path: String,
    /// References rewritten (or that would be, in a dry run).
    pub edits: usize,
    /// The unified diff, in a dry run.
    pub diff: Option<String>,
    /// Why it was not rewritten, if it was not.
    pub error: Option<edit::Error>,
    /// Something the user should know about a write that went through (hard links).
    pub warning: Option<String>,
}

/// The edits that carry out the change sets, by path: each member's digest replaced (or
/// appended, for an unpinned reference).
#[must_use]
pub fn plan(records: &[Record], sets: &[ChangeSet]) -> BTreeMap<String, Vec<Edit>> {
    let mut out: BTreeMap<String, Vec<Edit>> = BTreeMap::new();
    for &i in sets.iter().flat_map(|s| &s.members) {
        let Some(r) = records.get(i) else { continue };
        if let Some(edit) = r.new_digest().and_then(|d| Edit::pin(&r.found, d)) {
            out.entry(r.found.path.clone()).or_default().push(edit);
        }
    }
    out
}

/// Applies planned edits file by file.
#[must_use]
pub fn apply(
    plan: &BTreeMap<String, Vec<Edit>>,
    sources: &BTreeMap<String, Source>,
    dry_run: bool,
) -> Vec<FileOutcome> {
    plan.iter()
        .map(|(path, edits)| {
            let outcome = sources
                .get(path)
                .ok_or_else(|| edit::Error::Stale { path: path.clone() })
                .and_then(|source| apply_file(path, source, edits, dry_run));
            match outcome {
                Ok((diff, warning)) => FileOutcome {
                    path: path.clone(),
                    edits: edits.len(),
                    diff,
                    error: None,
                    warning,
                },
                Err(error) => FileOutcome {
                    path: path.clone(),
                    edits: 0,
                    diff: None,
                    error: Some(error),
                    warning: None,
                },
            }
        })
        .collect()
}

/// A file's bytes as they are now, and its text with `edits` spliced in and verified by
/// re-scanning: the edit `update` writes and `run` commits.
///
/// # Errors
/// [`edit::Error`] when the file cannot be read, changed since the scan, or the edit
/// does not verify.
pub fn edited(
    path: &str,
    source: &Source,
    edits: &[Edit],
) -> Result<(Vec<u8>, String), edit::Error> {
    let bytes = crate::rooted::read(&source.root, &source.within, u64::MAX)
        .map_err(|e| edit::Error::from_rooted(path, e))?;
    let old = std::str::from_utf8(&bytes).map_err(|_| edit::Error::Stale {
        path: path.to_owned(),
    })?;
    let new = edit::splice(path, old, edits)?;
    let format = source.format.ok_or_else(|| edit::Error::BadSpans {
        path: path.to_owned(),
    })?;
    edit::verify(path, format, old, &new, edits)?;
    Ok((bytes, new))
}

/// The diff (dry run) or the write's warning.
fn apply_file(
    path: &str,
    source: &Source,
    edits: &[Edit],
    dry_run: bool,
) -> Result<(Option<String>, Option<String>), edit::Error> {
    let (bytes, new) = edited(path, source, edits)?;
    if dry_run {
        let old = String::from_utf8_lossy(&bytes);
        return Ok((Some(edit::unified_diff(path, &old, &new)), None));
    }
    let warning = edit::write_atomic(&source.root, &source.within, path, &bytes, new.as_bytes())?;
    Ok((None, warning))
}
