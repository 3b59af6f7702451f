//! Hostile-input benchmark: generated inputs written to hurt (a repository config of
//! thousands of rules, a Dockerfile of 200,000 stages, a chain of 20,000 Compose `x-`
//! aliases, …), each run once in this process; prints wall time and peak RSS.
//!
//! `cargo run --release --example hostile -- CASE` (one case per process, so the peak
//! RSS is the case's own); `scripts/bench-hostile` runs them all.

use std::fmt::Write as _;
use std::time::Instant;

use repin::config::{Rules, load_repo, parse_repo};
use repin::scan::{compose, dockerfile, scan_text};

fn peak_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as f64 / 1024.0 // kilobytes on Linux
}

/// `n` rules, each with image, path and tag globs.
fn config_rules(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            "[[rule]]\nimages = [\"ghcr.io/acme{i}/*\"]\npaths = [\"svc{i}/**\"]\ntags = [\"v{i}.*\"]\nmin_age = \"1d\"\n"
        );
    }
    text
}

fn run(case: &str) -> String {
    match case {
        // Just under the size cap: as many rules as a config may hold.
        "config-rules" => {
            let text = config_rules(2_600);
            let repo = parse_repo(".repin.toml", &text).expect("valid");
            let policy = Rules::new(None, &repo);
            let image = repin::imageref::ImageRef::parse("ghcr.io/acme7/app:v7.1").unwrap();
            let mut held = 0;
            for i in 0..2_000 {
                let s = policy.settings_for(&format!("svc{i}/Dockerfile"), Some(&image));
                held += usize::from(!s.min_age.is_zero());
            }
            format!(
                "{} bytes, {} rules, {held} of 2000 references under min_age",
                text.len(),
                repo.rules.len()
            )
        }
        // Over the cap: refused before parsing.
        "config-3mb" => {
            let dir = tempfile::tempdir().unwrap();
            let text = config_rules(30_000);
            std::fs::write(dir.path().join(".repin.toml"), &text).unwrap();
            let err = load_repo(dir.path()).unwrap_err();
            format!("{} bytes: {err}", text.len())
        }
        "dockerfile-stages" => {
            let mut text = String::new();
            for i in 0..200_000 {
                let _ = writeln!(text, "FROM alpine:3 AS s{i}\nCOPY --from=s{i} /a /b");
            }
            let (found, _) = scan_text("Dockerfile", dockerfile::FORMAT, &text);
            format!("{} bytes, {} references", text.len(), found.len())
        }
        "compose-aliases" => {
            let mut text = String::from("x-a0: &a0\n  image: busybox:1\n");
            for i in 1..20_000 {
                let _ = writeln!(text, "x-a{i}: &a{i}\n  <<: *a{}", i - 1);
            }
            text.push_str("services:\n  s:\n    <<: *a19999\n");
            let (found, warnings) = scan_text("compose.yaml", compose::FORMAT, &text);
            format!(
                "{} bytes, {} references, {} warnings",
                text.len(),
                found.len(),
                warnings.len()
            )
        }
        other => panic!("unknown case {other}"),
    }
}

fn main() {
    let case = std::env::args().nth(1).expect("a case name");
    let started = Instant::now();
    let what = run(&case);
    println!(
        "{case}: {:.3} s, peak RSS {:.1} MiB ({what})",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
}
