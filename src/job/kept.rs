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
    /// The store key of `full_name`'s kept tree on `forge` (a GitHub API's base URL:
    /// the same name on another GitHub is another repository).
    #[must_use]
    pub fn key(forge: &str, full_name: &str) -> String {
        format!("tree {forge} {}", full_name.to_ascii_lowercase())
    }

    /// The tree kept for `full_name` on `forge`, if there is one made under `service`
    /// (an entry that does not read is none).
    #[must_use]
    pub fn load(
        store: &Store,
        forge: &str,
        full_name: &str,
        service: Option<&ServiceConfig>,
    ) -> Option<Self> {
        let bytes = store
            .cached(Cache::Trees, &Self::key(forge, full_name))
            .ok()
            .flatten()?;
        let kept: Self = serde_json::from_slice(&bytes).ok()?;
        (kept.made_by == fingerprint(service)).then_some(kept)
    }

    /// Keeps it for `full_name` on `forge` (best effort: a tree not kept costs a clone).
    pub fn save(&self, store: &Store, forge: &str, full_name: &str) {
        let saved = serde_json::to_vec(self)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                store
                    .cache(Cache::Trees, &Self::key(forge, full_name), &bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn keep(dir: &Path, service: Option<&ServiceConfig>) -> (Option<KeptTree>, Vec<scan::Found>) {
        let (config, warnings) = config::find_repo_config(dir).unwrap();
        let report = scan::walk::scan_paths(&[dir.to_path_buf()]).unwrap();
        let found: Vec<&scan::Found> = report.found.iter().collect();
        let scanned = Scanned {
            config: (&config, &warnings),
            report: &report,
            found,
        };
        (
            KeptTree::of(
                &scanned,
                service,
                "main",
                "c0ffee",
                "https://git.example/acme/web",
            ),
            report.found.clone(),
        )
    }

    use std::path::Path;

    /// The kept texts give back the clone's findings, in its order, with every format
    /// (a GitLab file read because another includes it keeps the includer's format);
    /// files without findings are not kept.
    #[test]
    fn kept_scans_give_back_the_clones_findings() {
        let dir = tree(&[
            (".repin.toml", "[update]\ngroup = \"all\"\n"),
            (
                "Dockerfile",
                &format!("FROM alpine:3.20@{PIN}\r\nFROM busybox\r\n"),
            ),
            (
                "deploy/app.yaml",
                &format!(
                    "\u{feff}kind: Pod\nspec:\n  containers:\n    - image: \"nginx:1@{PIN}\"\n"
                ),
            ),
            (".gitlab-ci.yml", "include:\n  - local: ci/jobs.yml\n"),
            ("ci/jobs.yml", &format!("build:\n  image: ruby:3@{PIN}\n")),
            ("README.md", "no images here\n"),
        ]);
        let (kept, found) = keep(dir.path(), None);
        let kept = kept.expect("kept");
        assert!(found.iter().any(|f| f.path == "ci/jobs.yml"), "{found:?}");
        let paths: Vec<&str> = kept.files.iter().map(|f| f.path.as_str()).collect();
        assert!(
            !paths.contains(&"README.md") && !paths.contains(&".gitlab-ci.yml"),
            "{paths:?}"
        );
        let (repo, report, _) = kept.rescan().unwrap();
        assert_eq!(report.found, found);
        assert_eq!(repo.update.group.as_deref(), Some("all"));
        // Through the store: the same tree back, for the same service config only.
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(&store_dir.path().join("s.redb")).unwrap();
        let forge = "https://api.github.com";
        kept.save(&store, forge, "Acme/Web");
        assert_eq!(
            KeptTree::load(&store, forge, "acme/web", None),
            Some(kept.clone())
        );
        // The same name on another GitHub is another repository.
        assert_eq!(
            KeptTree::load(&store, "https://ghe.example/api/v3", "acme/web", None),
            None
        );
        let other = ServiceConfig {
            per_registry: Some(3),
            ..ServiceConfig::default()
        };
        assert_eq!(
            KeptTree::load(&store, forge, "acme/web", Some(&other)),
            None
        );
        assert_eq!(KeptTree::load(&store, forge, "acme/api", None), None);
        // An entry that does not read is none.
        store
            .cache(
                Cache::Trees,
                &KeptTree::key(forge, "acme/web"),
                b"{\"made_by\":",
            )
            .unwrap();
        assert_eq!(KeptTree::load(&store, forge, "acme/web", None), None);
    }

    /// A file that changed between the scan and the keeping (its kept text no longer
    /// gives the scan's findings) makes no kept tree: the repository is cloned.
    #[test]
    fn a_tree_whose_texts_disagree_is_not_kept() {
        let dir = tree(&[("Dockerfile", &format!("FROM alpine:3.20@{PIN}\n"))]);
        let (config, warnings) = config::find_repo_config(dir.path()).unwrap();
        let report = scan::walk::scan_paths(&[dir.path().to_path_buf()]).unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM alpine:3.21\n").unwrap();
        let scanned = Scanned {
            config: (&config, &warnings),
            report: &report,
            found: report.found.iter().collect(),
        };
        assert_eq!(KeptTree::of(&scanned, None, "main", "c0ffee", "u"), None);
        // Nor does a file that cannot be read any more.
        std::fs::remove_file(dir.path().join("Dockerfile")).unwrap();
        assert_eq!(KeptTree::of(&scanned, None, "main", "c0ffee", "u"), None);
    }
}
