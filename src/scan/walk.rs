//! Walking trees: which files to scan, and scanning them in parallel.
//!
//! The walk honours `.gitignore` (also outside a git repository) and `.ignore`, includes
//! hidden files and folders (`.github/`, `.devcontainer/`) but never `.git`, and does not
//! follow symbolic links at all, so nothing outside a root is ever read through one. A
//! path given explicitly as a file is scanned even if its name matches no format (as a
//! Dockerfile, or as YAML when it ends in `.yaml`/`.yml`).
//!
//! A file may pull in others ([`super::Extracted::pulls_in`]: GitLab CI's
//! `include: local:`). Once the walk is done, the walked files those paths match are
//! read with the format of the file that pulls them in (unless another format found
//! references in them), and so on for what they pull in: at most [`MAX_PULLED_IN`]
//! files and as many path patterns, each file once. Only files the walk reached are candidates, so the same rules hold for them
//! (no links, nothing ignored, nothing outside the root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Detected, Format, Found, MAX_FILE_SIZE, Warning, dockerfile, scan_bytes};

/// Why a scan could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: no such file or directory")]
    /// A path to scan does not exist.
    NotFound {
        /// The path as given.
        path: String,
    },
    /// A path to scan cannot be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The path as given.
        path: String,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
}

/// Everything a scan found.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings, ordered by path, then position.
    pub found: Vec<Found>,
    /// Per-file problems, ordered by path.
    pub warnings: Vec<Warning>,
    /// Files read and scanned.
    pub files: usize,
    /// Where each scanned file is and how it was read, by output path (for rewriting).
    pub sources: BTreeMap<String, Source>,
}

/// A scanned file.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file's path as the walk reached it.
    pub abs: PathBuf,
    /// The folder it was found under (the scanned root; a root given as a file: its
    /// folder), opened once when the walk began, and its path below that: how
    /// [`crate::edit`] reaches it again without following links, even if the root's
    /// path has been swapped for a link since.
    pub root: Arc<cap_std::fs::Dir>,
    /// Its path below the root.
    pub within: PathBuf,
    /// The format that read it (`None`: none did; it has no findings).
    pub format: Option<Format>,
}

/// A file chosen for scanning.
#[derive(Debug, Clone)]
pub struct FileToScan {
    /// The file's path as the walk reached it.
    pub abs: PathBuf,
    /// As [`Source::root`] and [`Source::within`].
    pub root: Arc<cap_std::fs::Dir>,
    /// Its path below the root.
    pub within: PathBuf,
    /// Path shown in output: relative to its root, `/`-separated.
    pub rel: String,
    /// The formats its path admits; its content settles which one reads it.
    pub detected: Detected,
}

/// Lists the files under each path that repin scans.
///
/// # Errors
/// [`Error::NotFound`] for a path that does not exist, [`Error::Unreadable`] for a root
/// that cannot be read.
pub fn collect(paths: &[PathBuf]) -> Result<(Vec<FileToScan>, Vec<Warning>), Error> {
    let mut jobs = Vec::new();
    let mut warnings = Vec::new();
    for root in paths {
        let prefix = root_prefix(paths, root);
        match check_root(root)? {
            (Some(job), _) => jobs.push(job),
            (None, handle) => {
                for entry in walker(root).build() {
                    match entry_job(root, &handle, prefix.as_deref(), entry, &|_| None) {
                        Ok(Some(job)) => jobs.push(job),
                        Ok(None) => {}
                        Err(warning) => warnings.push(warning),
                    }
                }
            }
        }
    }
    Ok((jobs, warnings))
}

/// Checks that a root exists and is readable, and opens it (a root that is a file: its
/// folder) for the writes to come. A root that is a file is its own job.
fn check_root(root: &Path) -> Result<(Option<FileToScan>, Arc<cap_std::fs::Dir>), Error> {
    let display = root.to_string_lossy().into_owned();
    let meta = std::fs::metadata(root).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: display.clone(),
        },
        _ => Error::Unreadable {
            path: display.clone(),
            source,
        },
    })?;
    let open = |folder: &Path| {
        crate::rooted::open_root(folder)
            .map(Arc::new)
            .map_err(|e| Error::Unreadable {
                path: display.clone(),
                source: e.into_io(),
            })
    };
    if meta.is_file() {
        let name = root.file_name().map_or(root, Path::new);
        let detected =
            Detected::from_path(&slashed(name)).unwrap_or(Detected::only(dockerfile::FORMAT));
        let folder = root
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let handle = open(folder)?;
        let job = FileToScan {
            abs: root.to_path_buf(),
            root: Arc::clone(&handle),
            within: root.file_name().map(PathBuf::from).unwrap_or_default(),
            rel: slashed(root),
            detected,
        };
        return Ok((Some(job), handle));
    }
    std::fs::read_dir(root).map_err(|source| Error::Unreadable {
        path: display.clone(),
        source,
    })?;
    Ok((None, open(root)?))
}

fn walker(root: &Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false)
        .follow_links(false)
        .require_git(false)
        .git_global(false)
        .filter_entry(|e| e.file_name() != ".git");
    builder
}

/// The job for a walked entry: `None` for directories, symbolic links (a file type of
/// their own here, never followed) and files no format reads.
fn entry_job(
    root: &Path,
    handle: &Arc<cap_std::fs::Dir>,
    prefix: Option<&str>,
    entry: Result<ignore::DirEntry, ignore::Error>,
    extra: &Extra<'_>,
) -> Result<Option<FileToScan>, Warning> {
    let entry = entry.map_err(|err| file_warning(slashed(root), err.to_string()))?;
    if !entry.file_type().is_some_and(|t| t.is_file()) {
        return Ok(None);
    }
    let path = entry.path();
    let rel = path.strip_prefix(root).unwrap_or(path);
    // A name that is not UTF-8 cannot be shown, matched by the config's globs, or
    // committed under its own name: such files are not read (a lossy name could point
    // at another file, or make two files one).
    if rel.to_str().is_none() {
        return Ok(None);
    }
    let shown = slashed(rel);
    // A format the config names for the path reads it; the opt-in scanner comes after
    // every format the path admits.
    let detected = match (Detected::from_path(&shown), extra(&shown)) {
        (_, Some(format)) if format != super::extra::FORMAT => Detected::only(format),
        (Some(detected), Some(_)) => detected.with(super::extra::FORMAT),
        (Some(detected), None) => detected,
        (None, Some(_)) => Detected::fallback(super::extra::FORMAT),
        (None, None) => return Ok(None),
    };
    Ok(Some(FileToScan {
        abs: path.to_path_buf(),
        root: Arc::clone(handle),
        within: rel.to_path_buf(),
        rel: match prefix {
            Some(prefix) => format!("{prefix}/{shown}"),
            None => shown,
        },
        detected,
    }))
}

/// Output paths are relative to the root when one root is scanned (the contract). With
/// several roots, each path starts with its root as given, so paths stay unambiguous
/// (`a/Dockerfile`, `b/Dockerfile`).
fn root_prefix(paths: &[PathBuf], root: &Path) -> Option<String> {
    if paths.len() < 2 {
        return None;
    }
    let shown = slashed(root);
    let shown = shown.trim_end_matches('/');
    let shown = shown.strip_prefix("./").unwrap_or(shown);
    (!shown.is_empty() && shown != ".").then(|| shown.to_owned())
}

/// A path as output shows it: `/`-separated.
fn slashed(path: &Path) -> String {
    let s = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

/// A warning about a whole file (no line).
fn file_warning(path: String, message: String) -> Warning {
    Warning {
        path,
        line: None,
        message,
    }
}

/// Reads and scans one file.
fn scan_file(job: &FileToScan) -> Scanned {
    let warn = |message: String| file_warning(job.rel.clone(), message);
    match std::fs::metadata(&job.abs) {
        Ok(meta) if meta.len() > MAX_FILE_SIZE => {
            let message = format!(
                "file too large ({} bytes, the limit is {MAX_FILE_SIZE}); skipped",
                meta.len()
            );
            return (Vec::new(), vec![warn(message)], None);
        }
        Ok(_) => {}
        Err(e) => return (Vec::new(), vec![warn(format!("cannot read: {e}"))], None),
    }
    let bytes = match std::fs::read(&job.abs) {
        Ok(bytes) => bytes,
        Err(e) => return (Vec::new(), vec![warn(format!("cannot read: {e}"))], None),
    };
    match scan_bytes(&job.rel, job.detected, &bytes) {
        Ok(scan) => (
            scan.found,
            scan.warnings,
            Some((job.clone(), scan.format, scan.pulls_in)),
        ),
        Err(warning) => (Vec::new(), vec![warning], None),
    }
}

/// Findings, warnings, and when the file was read and scanned: the job, the format
/// that read it, and the paths it pulls in.
type Scanned = (
    Vec<Found>,
    Vec<Warning>,
    Option<(FileToScan, Option<Format>, Vec<String>)>,
);

/// Most files read because others pull them in, per scan (GitLab allows 150 includes
/// per pipeline).
pub const MAX_PULLED_IN: usize = 150;

/// What a read file pulls in: its path, root and format, and the path patterns.
type Pulls = (String, Arc<cap_std::fs::Dir>, Format, Vec<String>);

fn into_report(outcomes: Vec<Scanned>) -> Report {
    let mut report = Report::default();
    let mut pulls = Vec::new();
    for outcome in outcomes {
        merge(&mut report, &mut pulls, outcome);
    }
    follow(&mut report, pulls);
    report
        .found
        .sort_by(|a, b| (&a.path, a.span.start).cmp(&(&b.path, b.span.start)));
    // Roots that overlap (`. sub`) reach a file twice, under one path: once each.
    report
        .found
        .dedup_by(|a, b| a.path == b.path && a.span == b.span);
    report
        .warnings
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    report.warnings.dedup();
    report
}

/// Adds one file's scan to the report, and what it pulls in to `pulls`.
fn merge(report: &mut Report, pulls: &mut Vec<Pulls>, (found, warnings, scanned): Scanned) {
    report.found.extend(found);
    report.warnings.extend(warnings);
    if let Some((job, format, pulls_in)) = scanned {
        report.files += 1;
        if let Some(format) = format.filter(|_| !pulls_in.is_empty()) {
            pulls.push((job.rel.clone(), Arc::clone(&job.root), format, pulls_in));
        }
        report.sources.insert(
            job.rel,
            Source {
                abs: job.abs,
                root: job.root,
                within: job.within,
                format,
            },
        );
    }
}

/// Reads the files others pull in (see the module doc): walked files under the same
/// root that match a pattern and that no format read by their own path.
/// Past [`MAX_PULLED_IN`] files read, or as many path patterns followed (each costs a
/// pass over the files), the rest is reported and not read.
fn follow(report: &mut Report, mut pulls: Vec<Pulls>) {
    let mut files_left = MAX_PULLED_IN;
    let mut patterns_left = MAX_PULLED_IN;
    let mut with_findings: std::collections::HashSet<String> =
        report.found.iter().map(|f| f.path.clone()).collect();
    while let Some((from, root, format, patterns)) = pulls.pop() {
        if patterns.len() > patterns_left {
            report.warnings.push(file_warning(
                from,
                format!(
                    "more than {MAX_PULLED_IN} include paths in all; its includes are not followed"
                ),
            ));
            continue;
        }
        patterns_left -= patterns.len();
        let Ok(set) = regex::RegexSet::new(patterns.iter().map(|p| include_regex(p))) else {
            continue;
        };
        let targets: Vec<String> = report
            .sources
            .iter()
            .filter(|(rel, s)| {
                yields(s.format, with_findings.contains(*rel), format)
                    && Arc::ptr_eq(&s.root, &root)
                    && s.within.to_str().is_some_and(|w| set.is_match(w))
            })
            .map(|(rel, _)| rel.clone())
            .collect();
        for rel in targets {
            let Some(source) = report.sources.get(&rel) else {
                continue;
            };
            if !yields(source.format, with_findings.contains(&rel), format) {
                continue; // pulled in twice: read once
            }
            if files_left == 0 {
                report.warnings.push(file_warning(
                    rel,
                    format!("more than {MAX_PULLED_IN} files pulled in by includes; not read"),
                ));
                continue;
            }
            files_left -= 1;
            let job = FileToScan {
                abs: source.abs.clone(),
                root: Arc::clone(&source.root),
                within: source.within.clone(),
                rel: rel.clone(),
                detected: Detected::only(format),
            };
            let outcome = scan_file(&job);
            if outcome.2.is_some() {
                report.files -= 1; // counted once, when the walk first read it
                report.warnings.retain(|w| w.path != rel);
            }
            if !outcome.0.is_empty() {
                with_findings.insert(rel.clone());
            }
            merge(report, &mut pulls, outcome);
        }
    }
}

/// Whether a file read as `read` (`None`: by no format), with or without findings, is
/// read again as `puller`, the format of a file that pulls it in: what pulls a file in
/// says what it is, unless a format found references in it by its own path or content
/// (an included Kubernetes manifest stays one) or it was already read so.
fn yields(read: Option<Format>, has_findings: bool, puller: Format) -> bool {
    read != Some(puller) && !has_findings
}

/// An include path pattern as a regular expression over `/`-separated paths: `**`
/// matches anything (folders included: GitLab's `configs/**.yml`), `*` anything
/// within one folder, every other character itself (GitLab gives `?`, `[`, `{` no
/// meaning).
fn include_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("**") {
            out.push_str(".*");
            rest = after;
        } else if let Some(after) = rest.strip_prefix('*') {
            out.push_str("[^/]*");
            rest = after;
        } else {
            out.push_str(&regex::escape(&rest[..c.len_utf8()]));
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push('$');
    out
}

/// Scans the given files, sequentially (for callers that already hold the list).
#[must_use]
pub fn scan_files(files: &[FileToScan]) -> Report {
    into_report(files.iter().map(scan_file).collect())
}

/// Walks every path and scans what it finds, on all cores: each walker thread scans the
/// files it meets, so reading directories and parsing files overlap.
///
/// # Errors
/// See [`collect`]; every root is checked before any is scanned.
pub fn scan_paths(paths: &[PathBuf]) -> Result<Report, Error> {
    scan_paths_with(paths, &|_| None)
}

/// What the repository config says reads a path (relative to its root,
/// `/`-separated): a format that reads it whatever its name (`[scan.read_as]`), or the
/// opt-in scanner for files no format owns ([`super::extra`]; `[scan] extra`), offered
/// after every format the path admits.
pub type Extra<'a> = dyn Fn(&str) -> Option<Format> + Sync + 'a;

/// [`scan_paths`], with the formats `extra` names for paths.
///
/// # Errors
/// See [`collect`].
pub fn scan_paths_with(paths: &[PathBuf], extra: &Extra<'_>) -> Result<Report, Error> {
    let mut outcomes = Vec::new();
    let mut dirs = Vec::new();
    for root in paths {
        match check_root(root)? {
            (Some(job), _) => outcomes.push(scan_file(&job)),
            (None, handle) => dirs.push((root, handle)),
        }
    }
    let shared = Mutex::new(outcomes);
    for (root, handle) in &dirs {
        let prefix = root_prefix(paths, root);
        let prefix = &prefix;
        walker(root).build_parallel().run(|| {
            let shared = &shared;
            Box::new(move |entry| {
                let outcome = match entry_job(root, handle, prefix.as_deref(), entry, extra) {
                    Ok(Some(job)) => scan_file(&job),
                    Ok(None) => return ignore::WalkState::Continue,
                    Err(warning) => (Vec::new(), vec![warning], None),
                };
                shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(outcome);
                ignore::WalkState::Continue
            })
        });
    }
    Ok(into_report(
        shared
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ))
}
