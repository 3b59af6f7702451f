//! Renderings of findings for stdout: a table for people, a JSON array for tools (the
//! shape fixed in DESIGN.md). Logs and warnings never go here.

use std::io::{self, Write};

use crate::scan::Found;

/// Writes findings as one JSON array, one object per finding.
///
/// # Errors
/// Any error writing to `out`.
pub fn json(out: &mut impl Write, found: &[Found]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, found)?;
    writeln!(out)
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
    let header = ["LOCATION", "FORMAT", "REFERENCE", "STATE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header.map(str::to_owned)).chain(rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        writeln!(out, "{}", line.trim_end())?;
    }
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
