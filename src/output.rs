//! Renderings of findings for stdout: a table for people, a JSON array for tools (the
//! shape fixed in DESIGN.md). Logs and warnings never go here.

use std::io::{self, Write};

use crate::config::{RepoConfig, Rules};
use crate::forge::run::{FleetReport, RepoReport};
use crate::model::{Lookup, Record, Status};
use crate::scan::Found;
use crate::update::FileOutcome;

/// Writes findings as one JSON array, one object per finding.
///
/// # Errors
/// Any error writing to `out`.
pub fn json(out: &mut impl Write, found: &[Found]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, found)?;
    writeln!(out)
}

/// Writes checked findings as one JSON array: the scan fields plus `status`,
/// `new_digest` and `error`.
///
/// # Errors
/// Any error writing to `out`.
pub fn check_json(out: &mut impl Write, checked: &[Record]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, checked)?;
    writeln!(out)
}

/// Writes checked findings as a table: location, reference, status and what changes.
///
/// # Errors
/// Any error writing to `out`.
pub fn check_text(out: &mut impl Write, checked: &[Record]) -> io::Result<()> {
    if checked.is_empty() {
        return writeln!(out, "no image references found");
    }
    let rows: Vec<[String; 4]> = checked
        .iter()
        .map(|c| {
            let f = &c.found;
            let detail = match &c.lookup {
                Lookup::Outdated(d) | Lookup::Unpinned(d) => {
                    format!("→ {}:{}", d.algorithm().name(), d.short(12))
                }
                Lookup::Skipped => f
                    .skip_reason
                    .map(|r| r.name().to_owned())
                    .unwrap_or_default(),
                Lookup::Error(e) => e.clone(),
                Lookup::Current => String::new(),
            };
            let detail = match c.held {
                Some(h) if detail.is_empty() => format!("held: {}", h.name()),
                Some(h) => format!("{detail} (held: {})", h.name()),
                None => detail,
            };
            // A pin without a tag says which tag it followed, and from where.
            let detail = match &f.follow {
                Some(follow) => {
                    let said = format!("follows tag {} ({})", follow.tag, follow.from);
                    if detail.is_empty() {
                        said
                    } else {
                        format!("{detail}; {said}")
                    }
                }
                None => detail,
            };
            [
                format!("{}:{}:{}", f.path, f.line, f.column),
                f.reference.clone(),
                c.status().name().to_owned(),
                detail,
            ]
        })
        .collect();
    table(out, ["LOCATION", "REFERENCE", "STATUS", "DETAIL"], &rows)?;
    let count = |s| checked.iter().filter(|c| c.status() == s).count();
    writeln!(
        out,
        "\n{} current, {} outdated, {} unpinned, {} skipped, {} errors",
        count(Status::Current),
        count(Status::Outdated),
        count(Status::Unpinned),
        count(Status::Skipped),
        count(Status::Error)
    )
}

/// Writes what `update` did, one line per file (and diffs in a dry run).
///
/// # Errors
/// Any error writing to `out`.
pub fn update_text(
    out: &mut impl Write,
    outcomes: &[FileOutcome],
    dry_run: bool,
) -> io::Result<()> {
    for o in outcomes {
        if let Some(diff) = &o.diff {
            write!(out, "{diff}")?;
        } else if o.error.is_none() && !dry_run {
            let plural = if o.edits == 1 { "" } else { "s" };
            writeln!(out, "updated {}: {} reference{plural}", o.path, o.edits)?;
        }
    }
    if outcomes.is_empty() {
        writeln!(out, "nothing to update")?;
    }
    Ok(())
}

/// Writes what `update` did as one JSON array: per file `path`, `references` rewritten
/// (or that would be), `diff` (dry run) and `error`.
///
/// # Errors
/// Any error writing to `out`.
pub fn update_json(out: &mut impl Write, outcomes: &[FileOutcome]) -> io::Result<()> {
    let items: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "path": o.path,
                "references": o.edits,
                "diff": o.diff,
                "error": o.error.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &items)?;
    writeln!(out)
}

/// Writes the effective rules: the scan settings, then every layer in precedence order
/// with what it matches and the keys it sets.
///
/// # Errors
/// Any error writing to `out`.
pub fn policy_text(out: &mut impl Write, policy: &Rules, repo: &RepoConfig) -> io::Result<()> {
    match &repo.file {
        Some(file) => writeln!(out, "{file}: valid")?,
        None => writeln!(out, "no repository config: defaults")?,
    }
    let list = |m: &crate::config::Matcher| {
        if m.patterns.is_empty() {
            "*".to_owned()
        } else {
            m.patterns.join(", ")
        }
    };
    writeln!(out, "\n[scan]")?;
    writeln!(out, "include = {}", list(&policy.scan.include))?;
    writeln!(
        out,
        "exclude = {}",
        if policy.scan.exclude.patterns.is_empty() {
            "(none)".to_owned()
        } else {
            list(&policy.scan.exclude)
        }
    )?;
    let formats = policy.scan.formats.as_ref().map_or_else(
        // Every format of the table (the opt-in scanner reads only the paths listed).
        || crate::scan::Format::names().join(", "),
        |f| {
            f.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    writeln!(out, "formats = {formats}")?;
    writeln!(
        out,
        "\nrules, later overriding earlier for the keys they set:"
    )?;
    for layer in &policy.layers {
        writeln!(
            out,
            "\n{} (images: {}; paths: {}; tags: {})",
            layer.origin,
            list(&layer.images),
            list(&layer.paths),
            list(&layer.tags)
        )?;
        let value = serde_json::to_value(&layer.settings).unwrap_or_default();
        let mut any = false;
        if let serde_json::Value::Object(map) = value {
            for (key, v) in map.iter().filter(|(_, v)| !v.is_null()) {
                any = true;
                writeln!(out, "  {key} = {v}")?;
            }
        }
        if !any {
            writeln!(out, "  (sets nothing)")?;
        }
    }
    Ok(())
}

/// Writes an aligned table with a header row; trailing spaces trimmed.
fn table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header.map(str::to_owned)).chain(rows.iter().cloned()) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes findings as an aligned table: location, format, reference, state.
///
/// # Errors
/// Any error writing to `out`.
pub fn text(out: &mut impl Write, found: &[Found]) -> io::Result<()> {
    if found.is_empty() {
        return writeln!(out, "no image references found");
    }
    let rows: Vec<[String; 4]> = found
        .iter()
        .map(|f| {
            let state = match (f.skip_reason, f.image.as_ref()) {
                (Some(reason), _) => format!("skipped: {}", reason.name()),
                (None, Some(image)) if image.digest.is_some() => "pinned".to_owned(),
                (None, _) => "unpinned".to_owned(),
            };
            let state = match &f.platform {
                Some(p) => format!("{state} ({p})"),
                None => state,
            };
            [
                format!("{}:{}:{}", f.path, f.line, f.column),
                f.format.to_string(),
                f.reference.clone(),
                state,
            ]
        })
        .collect();
    table(out, ["LOCATION", "FORMAT", "REFERENCE", "STATE"], &rows)?;
    let pinned = found
        .iter()
        .filter(|f| f.image.as_ref().is_some_and(|i| i.digest.is_some()))
        .count();
    writeln!(
        out,
        "\n{} references, {pinned} pinned by digest, {} skipped",
        found.len(),
        found.iter().filter(|f| f.skip_reason.is_some()).count()
    )
}

/// One repository of `repin run`, as it finishes: its notes and its error on `log`
/// (`owner/name: note`, `error: owner/name: reason`), its summary on `out`
/// (`owner/name: opened [PR numbers], updated [..], closed [..] (N GitHub API calls)`).
///
/// # Errors
/// Writing fails.
pub fn run_repo(out: &mut impl Write, log: &mut impl Write, repo: &RepoReport) -> io::Result<()> {
    match &repo.result {
        Ok(s) => {
            for note in &s.notes {
                writeln!(log, "{}: {note}", repo.full_name)?;
            }
            for error in &s.errors {
                writeln!(log, "error: {}: {error}", repo.full_name)?;
            }
            writeln!(
                out,
                "{}: opened {:?}, updated {:?}, closed {:?} ({} GitHub API calls)",
                repo.full_name, s.opened, s.updated, s.closed, repo.api_calls
            )
        }
        Err(e) => writeln!(log, "error: {}: {e}", repo.full_name),
    }
}

/// The last line of `repin run`: repositories and pull requests counted.
///
/// # Errors
/// Writing fails.
pub fn run_totals(out: &mut impl Write, report: &FleetReport) -> io::Result<()> {
    let (opened, updated, closed, failed) = report.totals();
    writeln!(
        out,
        "{} repositories, {opened} pull requests opened, {updated} updated, {closed} closed, {failed} failed",
        report.repos.len()
    )
}
