//! A repository's scan kept at one commit of its default branch, so that `run` checks
//! a repository whose branch has not moved without cloning it.
//!
//! What is kept is text, not findings: the repository config file and every file the
//! scan found references in (with the format that read it), plus the scan's warnings.
//! On use the texts are scanned again, so findings always come from the scanner that
//! runs. A kept tree is made only when scanning its texts gives exactly the findings
//! the full scan of the clone gave ([`KeptTree::of`]), and is used only for the same
//! repository, default branch and commit, made by the same repin version (and format
//! table) under the same service config ([`fingerprint`]). It is never used to write:
//! a change to commit is made from a fresh clone and a fresh scan.
//!
//! Lost or unreadable entries only cost a clone.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{self, RepoConfig, RepoConfigFile, ServiceConfig};
use crate::scan::{self, Format, Warning};
use crate::state::{Cache, Store};

/// One file with findings, as scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeptFile {
    path: String,
    format: String,
    text: String,
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptTree {
    /// [`fingerprint`] of what made it.
    made_by: String,
    /// The default branch scanned.
    pub branch: String,
    /// Its commit (hex).
    pub commit: String,
    /// The repository's clone URL (no credentials).
    pub clone_url: String,
    /// The repository config file, if there was one, and the warnings finding it gave.
    config: Option<RepoConfigFile>,
    config_warnings: Vec<String>,
    /// Files with findings, by path.
    files: Vec<KeptFile>,
    /// The scan's warnings (files that could not be read, …).
    warnings: Vec<Warning>,
    /// Files the scan read.
    scanned: usize,
}

/// What a kept tree depends on besides the commit: repin's version, its format table
/// (a new format reads files the kept tree left out), and the service config (its
/// `[scan]` rules choose files). A hex SHA-256.
#[must_use]
pub fn fingerprint(service: Option<&ServiceConfig>) -> String {
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION"));
    for name in Format::names() {
        hash.update([0]);
        hash.update(name);
    }
    hash.update([0]);
    hash.update(format!("{service:?}"));
    hash.finalize().iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// What the job scanned, to make a kept tree of.
pub struct Scanned<'a> {
    /// The repository config file and the warnings finding it gave.
    pub config: (&'a Option<RepoConfigFile>, &'a [String]),
    /// The scan's report (its sources give each file's format and place).
    pub report: &'a scan::walk::Report,
    /// The findings the job went on with (after the rules' format switches).
    pub found: Vec<&'a scan::Found>,
}

impl KeptTree {
    fn key(full_name: &str) -> String {
        format!("tree {}", full_name.to_ascii_lowercase())
    }

    /// The tree kept for `full_name`, if there is one made under `service` (an entry
    /// that does not read is none).
    #[must_use]
    pub fn load(store: &Store, full_name: &str, service: Option<&ServiceConfig>) -> Option<Self> {
        let bytes = store
            .cached(Cache::Trees, &Self::key(full_name))
            .ok()
            .flatten()?;
        let kept: Self = serde_json::from_slice(&bytes).ok()?;
        (kept.made_by == fingerprint(service)).then_some(kept)
    }

    /// Keeps it for `full_name` (best effort: a tree not kept costs a clone).
    pub fn save(&self, store: &Store, full_name: &str) {
        let saved = serde_json::to_vec(self)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                store
                    .cache(Cache::Trees, &Self::key(full_name), &bytes)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::debug!(repository = full_name, error = %e, "scan not kept");
        }
    }

    /// A kept tree of what a job scanned at `branch`'s `commit`, when scanning the kept
    /// texts again gives the same findings (else `None`: the repository is cloned each
    /// time, as before).
    #[must_use]
    pub fn of(
        scanned: &Scanned<'_>,
        service: Option<&ServiceConfig>,
        branch: &str,
        commit: &str,
        clone_url: &str,
    ) -> Option<Self> {
        let mut paths: Vec<&str> = scanned.found.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let source = scanned.report.sources.get(path)?;
            let format = source.format?;
            let text = std::fs::read_to_string(&source.abs).ok()?;
            files.push(KeptFile {
                path: path.to_owned(),
                format: format.name().to_owned(),
                text,
            });
        }
        let kept = Self {
            made_by: fingerprint(service),
            branch: branch.to_owned(),
            commit: commit.to_owned(),
            clone_url: clone_url.to_owned(),
            config: scanned.config.0.clone(),
            config_warnings: scanned.config.1.to_vec(),
            files,
            warnings: scanned.report.warnings.clone(),
            scanned: scanned.report.files,
        };
        let (repo, report, _) = kept.rescan().ok()?;
        let rules = config::Rules::new(service, &repo);
        let again: Vec<&scan::Found> = report
            .found
            .iter()
            .filter(|f| rules.scan.format_enabled(f.format))
            .collect();
        (again == scanned.found).then_some(kept)
    }

    /// The repository config, the scan (findings from the kept texts, in the walk's
    /// order; no sources: nothing can be written from it) and the config's warnings.
    ///
    /// # Errors
    /// The repository config's, as when it was read from the clone.
    pub fn rescan(&self) -> Result<(RepoConfig, scan::walk::Report, Vec<String>), config::Error> {
        let repo = match &self.config {
            Some((file, text)) => config::parse_repo(file, text)?,
            None => RepoConfig::default(),
        };
        let mut found = Vec::new();
        for file in &self.files {
            let Some(format) = Format::named(&file.format) else {
                continue;
            };
            found.extend(scan::scan_text(&file.path, format, &file.text).0);
        }
        found.sort_by(|a, b| (&a.path, a.span.start).cmp(&(&b.path, b.span.start)));
        let report = scan::walk::Report {
            found,
            warnings: self.warnings.clone(),
            files: self.scanned,
            sources: std::collections::BTreeMap::new(),
        };
        Ok((repo, report, self.config_warnings.clone()))
    }
}
