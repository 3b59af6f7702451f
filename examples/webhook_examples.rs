//! Checks `repin serve`'s webhook reading against GitHub's own example deliveries
//! (`@octokit/webhooks-examples`, fetched by `scripts/webhook-examples`; nothing of it
//! is committed).
//!
//! ```text
//! scripts/webhook-examples        # or: cargo run --example webhook_examples -- INDEX.json
//! ```
//!
//! For every example of every event: the payload parses; the fields repin reads exist
//! where it reads them (`installation.id`, `repositories[].full_name`,
//! `repositories_added[].full_name`, push `ref` / `repository.default_branch` /
//! `commits[].added|modified|removed`, and a closed pull request's `merged`, `body`,
//! `user.type`, `head.repo`); each event becomes the work it should. Prints a line per
//! event and exits 1 on any mismatch.

use repin::serve::webhook::{Event, parse};
use serde_json::Value;

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/webhook-examples/index.json".to_owned());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e} (run scripts/webhook-examples)");
        std::process::exit(2);
    });
    let index: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    let mut failures = Vec::new();
    let mut total = 0;
    for event in &index {
        let name = event["name"].as_str().unwrap_or_default();
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for example in event["examples"].as_array().into_iter().flatten() {
            total += 1;
            let body = serde_json::to_vec(example).unwrap_or_default();
            let action = example["action"].as_str().unwrap_or_default();
            let label = format!("{name}.{action}");
            let parsed = match parse(name, &body) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            *kinds
                .entry(match &parsed {
                    Event::Ping => "ping",
                    Event::Repositories { .. } => "repositories",
                    Event::Installation(_) => "installation",
                    Event::Push { .. } => "push",
                    Event::Declined { .. } => "declined",
                    Event::Ignored(_) => "ignored",
                })
                .or_default() += 1;
            if let Some(problem) = check(name, action, example, &parsed) {
                failures.push(format!("{label}: {problem}"));
            }
        }
        if matches!(
            name,
            "ping" | "installation" | "installation_repositories" | "push" | "pull_request"
        ) {
            println!("{name}: {kinds:?}");
        }
    }
    println!(
        "{total} example deliveries of {} events read; {} problems",
        index.len(),
        failures.len()
    );
    for f in &failures {
        println!("  {f}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["full_name"].as_str().map(str::to_owned))
        .collect()
}

/// What should have come of one example, or the problem.
fn check(name: &str, action: &str, v: &Value, parsed: &Event) -> Option<String> {
    let installation = v["installation"]["id"].as_u64();
    match (name, action) {
        ("ping", _) => (parsed != &Event::Ping).then(|| format!("{parsed:?}")),
        ("installation", "created" | "new_permissions_accepted" | "unsuspend") => match parsed {
            Event::Repositories {
                installation: Some(id),
                repos,
            } if Some(*id) == installation
                && !repos.is_empty()
                && *repos == names(&v["repositories"]) =>
            {
                None
            }
            Event::Installation(id)
                if Some(*id) == installation && v.get("repositories").is_none() =>
            {
                None
            }
            other => Some(format!("expected its repositories, got {other:?}")),
        },
        ("installation_repositories", "added") => match parsed {
            Event::Repositories {
                installation: Some(_),
                repos,
            } if !repos.is_empty() && *repos == names(&v["repositories_added"]) => None,
            other => Some(format!("expected the added repositories, got {other:?}")),
        },
        ("push", _) => {
            let missing = ["ref", "repository", "commits"]
                .iter()
                .find(|k| v.get(**k).is_none())
                .map(|k| format!("no `{k}`"))
                .or_else(|| {
                    v["repository"]["default_branch"]
                        .as_str()
                        .is_none()
                        .then(|| "no repository.default_branch".to_owned())
                })
                .or_else(|| {
                    v["commits"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["modified"].as_array().is_none())
                        .map(|_| "a commit without `modified`".to_owned())
                });
            missing.or_else(|| match parsed {
                Event::Push { .. } | Event::Ignored(_) => None,
                other => Some(format!("{other:?}")),
            })
        }
        ("pull_request", "closed") => {
            let pull = &v["pull_request"];
            let missing = ["/merged", "/user/type", "/head/repo"]
                .iter()
                .find(|p| pull.pointer(p).is_none())
                .map(|p| format!("no pull_request{p}"));
            // GitHub's examples carry no repin state: never declined.
            missing.or_else(|| match parsed {
                Event::Ignored(_) => None,
                other => Some(format!("{other:?}")),
            })
        }
        _ => match parsed {
            Event::Ignored(_) => None,
            other => Some(format!("unexpected {other:?}")),
        },
    }
}
