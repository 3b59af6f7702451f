//! Benchmark and accuracy check of the scanner over the shared corpus of real files.
//!
//! ```text
//! cargo run --release --example corpus -- ../shared/corpus
//! ```
//!
//! Prints timings (best and median of several full scans), peak memory, and checks:
//! every finding's span holds its reference in the file as read independently here, and
//! every `@sha256:` pin on an image line of a Dockerfile, Compose file, Kubernetes
//! manifest, workflow or GitLab CI file (by the corpus's `kind` column, among files the formats read)
//! is inside some finding. Then the round trip `update` relies on: every digest-pinned
//! reference gets a different digest through the same splice-and-verify code `update`
//! uses, the file is re-scanned, and every byte outside the digests must be unchanged.
//! Exits 1 when a check fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use repin::edit::{self, Edit};
use repin::imageref::Digest;
use repin::scan::walk;

const RUNS: usize = 20;

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/corpus".to_owned()),
    );
    let (jobs, _) = walk::collect(std::slice::from_ref(&root)).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let bytes: u64 = jobs
        .iter()
        .filter_map(|j| std::fs::metadata(&j.abs).ok())
        .map(|m| m.len())
        .sum();

    // Timing: the whole scan (walk + read + parse), repeated.
    let mut times = Vec::with_capacity(RUNS);
    let mut report = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let r = walk::scan_paths(std::slice::from_ref(&root)).expect("scan");
        times.push(start.elapsed());
        report = Some(r);
    }
    let report = report.expect("at least one run");
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "scanned {} files ({:.1} MB), {} findings, {} warnings",
        report.files,
        bytes as f64 / 1e6,
        report.found.len(),
        report.warnings.len()
    );
    println!(
        "time per full scan over {RUNS} runs: best {:.1} ms, median {:.1} ms, worst {:.1} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
    if let Some(hwm) = peak_memory_kb() {
        println!("peak memory (VmHWM): {:.1} MB", hwm as f64 / 1024.0);
    }

    let mut walk_times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let _ = walk::collect(std::slice::from_ref(&root));
            start.elapsed()
        })
        .collect();
    walk_times.sort();
    println!(
        "of which walking the tree: median {:.1} ms",
        ms(walk_times[RUNS / 2])
    );

    let mut failures = 0;
    // Spans, checked against the file as read here.
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for f in &report.found {
        let bytes = files
            .entry(f.path.clone())
            .or_insert_with(|| std::fs::read(root.join(&f.path)).unwrap_or_default());
        let ok = bytes.get(f.span.clone()) == Some(f.written().as_bytes());
        let line = 1 + bytes[..f.span.start.min(bytes.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        if !ok || line != f.line {
            failures += 1;
            println!("SPAN ERROR {}:{} {:?}", f.path, f.line, f.reference);
        }
    }
    let mut skips: HashMap<&str, usize> = HashMap::new();
    for f in &report.found {
        *skips
            .entry(f.skip_reason.map_or("updatable", |s| s.name()))
            .or_default() += 1;
    }
    let mut skips: Vec<_> = skips.into_iter().collect();
    skips.sort_unstable();
    println!("findings by state: {skips:?}");

    // Coverage of digest pins on image lines.
    let detected: HashMap<&str, _> = jobs.iter().map(|j| (j.rel.as_str(), j)).collect();
    let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv")).unwrap_or_default();
    let (mut pins, mut covered, mut composed) = (0, 0, 0);
    for row in manifest.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (Some(path), Some(kind)) = (cols.first(), cols.get(5)) else {
            continue;
        };
        // Workflows count where GitHub reads them (`.github/workflows/`, `action.yml`);
        // copies kept elsewhere as test data are not workflows to keep fresh.
        let workflow_elsewhere = *kind == "github-actions"
            && !repin::scan::github_actions::reads(path)
            || *kind == "gitlab-ci" && !repin::scan::gitlab_ci::reads(path);
        if !matches!(
            *kind,
            "dockerfile" | "compose" | "kubernetes" | "github-actions"
        ) || !detected.contains_key(path)
            || workflow_elsewhere
        {
            continue;
        }
        let text = std::fs::read(root.join(path)).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let in_file: Vec<_> = report.found.iter().filter(|f| f.path == *path).collect();
        for (at, _) in text.match_indices("@sha256:") {
            if !on_image_line(&text, at, kind) {
                continue;
            }
            pins += 1;
            // A reference written as one string holds the `@`; a composed one's span
            // is its digest part, right after it.
            let holder = in_file
                .iter()
                .find(|f| f.span.contains(&at) || f.span.start == at + 1);
            if let Some(f) = holder {
                covered += 1;
                if f.fields.is_some() {
                    composed += 1;
                }
            } else {
                failures += 1;
                let line = text[..at].matches('\n').count() + 1;
                println!("MISSED {path}:{line}");
            }
        }
    }
    println!(
        "digest pins on image lines: {pins}, found: {covered} ({composed} as the digest part of a reference composed from several places)"
    );
    // Digests in Helm values and Kustomize files, where they are mostly written in a
    // field of their own (`digest: sha256:…`), in a tag (`tag: 1.2@sha256:…`) or in an
    // image string: every one on such a line must be inside a finding's span.
    let (mut split_pins, mut split_found) = (0, 0);
    for row in manifest.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (Some(path), Some(kind)) = (cols.first(), cols.get(5)) else {
            continue;
        };
        if !matches!(*kind, "helm-values" | "kustomize") || !detected.contains_key(path) {
            continue;
        }
        let text = std::fs::read(root.join(path)).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        // Values files count where Helm reads them (a `values` name) and Kustomize files
        // where Kustomize does; test data under other names is other YAML.
        let read_as_such = if *kind == "helm-values" {
            repin::scan::helm_values::reads(path)
        } else {
            repin::scan::kustomize::accepts(path, &text)
        };
        if !read_as_such {
            continue;
        }
        let in_file: Vec<_> = report.found.iter().filter(|f| f.path == *path).collect();
        for (at, _) in text.match_indices("sha256:") {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let key = text[start..at].trim_start().trim_start_matches("- ");
            let key = key.split(':').next().unwrap_or_default().trim();
            let keyed = matches!(key, "digest" | "tag" | "newTag" | "version" | "image")
                || key.ends_with("Image");
            if !keyed || key.starts_with('#') || in_block_scalar(&text, start) {
                continue;
            }
            split_pins += 1;
            if in_file.iter().any(|f| f.span.contains(&at)) {
                split_found += 1;
            } else {
                failures += 1;
                let line = text[..at].matches('\n').count() + 1;
                println!("MISSED {path}:{line}");
            }
        }
    }
    println!("digests in Helm values and Kustomize fields: {split_pins}, found: {split_found}");
    failures += round_trip(&report);
    for w in report.warnings.iter().take(50) {
        println!("warning: {w}");
    }
    if failures > 0 {
        println!("FAILED: {failures} problems");
        std::process::exit(1);
    }
    println!("ok: zero span errors, every pin on an image line found");
}

/// Rewrites every updatable pinned digest (not `no-tag` ones, which repin never
/// rewrites) in every file through `edit::splice` + `edit::verify`,
/// and checks that only digest bytes changed. Returns the number of failures.
fn round_trip(report: &walk::Report) -> usize {
    let started = Instant::now();
    let (mut files, mut refs, mut failures) = (0, 0, 0);
    for (path, source) in &report.sources {
        let Ok(text) = std::fs::read_to_string(&source.abs) else {
            continue;
        };
        let edits: Vec<Edit> = report
            .found
            .iter()
            .filter(|f| &f.path == path)
            .filter(|f| {
                f.skip_reason.is_none() && f.image.as_ref().is_some_and(|i| i.digest.is_some())
            })
            .filter_map(|f| Edit::pin(f, &Digest::sha256_of(f.reference.as_bytes())))
            .collect();
        if edits.is_empty() {
            continue;
        }
        files += 1;
        refs += edits.len();
        let Some(format) = source.format else {
            continue;
        };
        let new = match edit::splice(path, &text, &edits)
            .and_then(|new| edit::verify(path, format, &text, &new, &edits).map(|()| new))
        {
            Ok(new) => new,
            Err(e) => {
                failures += 1;
                println!("ROUND TRIP {e}");
                continue;
            }
        };
        // Same length (sha256 for sha256), and only bytes inside digests differ.
        let digest_bytes: Vec<std::ops::Range<usize>> = edits
            .iter()
            .map(|e| {
                let at = e.span.start + e.text.rfind('@').unwrap_or(0) + 1;
                at..e.span.end
            })
            .collect();
        let outside_ok = new.len() == text.len()
            && text
                .bytes()
                .zip(new.bytes())
                .enumerate()
                .all(|(i, (a, b))| a == b || digest_bytes.iter().any(|r| r.contains(&i)));
        if !outside_ok {
            failures += 1;
            println!("ROUND TRIP {path}: bytes outside the digests changed");
        }
    }
    println!(
        "round trip: {refs} pinned references in {files} files rewritten and verified in {:.1} ms, {failures} failures",
        started.elapsed().as_secs_f64() * 1000.0
    );
    failures
}

/// Whether the line holding byte `at` is one where an image reference is written, judged
/// by plain text (independent of the scanner): `FROM`, `COPY --from`, `RUN --mount`,
/// `ARG` and `# syntax=` in Dockerfiles; an `image:` key in YAML.
fn on_image_line(text: &str, at: usize, kind: &str) -> bool {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or_default();
    let before = text[start..at].trim_start().trim_start_matches('\u{feff}');
    if kind == "dockerfile" {
        let upper = before.to_ascii_uppercase();
        ["FROM ", "COPY ", "RUN ", "ARG ", "# SYNTAX=", "#SYNTAX="]
            .iter()
            .any(|p| upper.starts_with(p))
            && (upper.contains("FROM") || upper.starts_with("ARG") || upper.contains("SYNTAX"))
    } else if kind == "gitlab-ci" {
        // `image:`, a mapping's `name:`, or a bare list item (a service), outside
        // scripts.
        let item = before.strip_prefix("- ").map(str::trim_start);
        let key = item.unwrap_or(before);
        let keyed = key.starts_with("image:") || key.starts_with("name:");
        let bare = item.is_some_and(|i| !i.contains(':') || i.contains('@')) && !key.contains(' ');
        (keyed || bare) && !in_block_scalar(text, start)
    } else if kind == "github-actions" {
        // Workflow and action image lines: `image:`, `container:`, `uses: docker://`,
        // the well-known actions' inputs, and `image=` options (inside a block scalar).
        let key = before.trim_start_matches("- ").trim_start();
        let keyed = ["image:", "container:", "uses: docker://", "node_image:"]
            .iter()
            .any(|k| key.starts_with(k));
        keyed && !in_block_scalar(text, start) || key.starts_with("image=")
    } else {
        let key = before.trim_start_matches("- ").trim_start();
        key.starts_with("image:") && !line.contains("imageID") && !in_block_scalar(text, start)
    }
}

/// Whether the line starting at `start` is inside a YAML block scalar (`key: |`), judged
/// by indentation: some less-indented line above it ends with a block indicator.
fn in_block_scalar(text: &str, start: usize) -> bool {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let line = text[start..].lines().next().unwrap_or_default();
    let mut depth = indent(line);
    for above in text[..start].lines().rev() {
        if above.trim().is_empty() || depth == 0 {
            continue;
        }
        if indent(above) < depth {
            let t = above.trim_end();
            let t = t.split(" #").next().unwrap_or(t).trim_end();
            if t.ends_with('|') || t.ends_with('>') || t.ends_with("|-") || t.ends_with(">-") {
                return true;
            }
            depth = indent(above);
        }
    }
    false
}

fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string(Path::new("/proc/self/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
