//! The policy engine: from what the registry says to what should be proposed.
//!
//! Pure functions, no I/O, over [`Record`]s. [`records`] runs before any lookup (ignored
//! images and excluded paths cost no requests); [`decide`] runs after `check`, with the time and a
//! [`Snapshot`] of the state store, and yields why each reference is held back and the
//! change sets to propose.
//!
//! - `ignore_digests`: a new digest on the list is never proposed (a newer one is).
//! - `min_age`: a new digest is proposed only once it has been *seen* (by repin) for that
//!   long. Registries' `created` times are not used: reproducible builds (ko, apko,
//!   distroless) set them to 1970. No record, or no store at all, means "just seen", so
//!   lost state delays a proposal and never hastens one.
//! - `schedule`: a change set is proposed at most once per cron tick: only if a tick
//!   fell after its anchor (the last proposal, or when repin first saw it pending).
//!   Missing state again means waiting for the next tick.
//! - Change sets: one per `group`, else one per image (`registry/repository`); the
//!   references in the repository's workflows (`.github/workflows/`) always form change
//!   sets of their own (id suffix [`WORKFLOWS`]): pushing them needs a permission other
//!   files do not (an App's `workflows`, a token's `workflow` scope), and a refusal must
//!   not hold back the other updates.

use crate::config::{Effective, Rules};
use crate::model::{Held, Record, Status};
use crate::scan::Found;
use crate::state::{Snapshot, anchor_key, seen_key};

/// References that travel together, and their settings (the first member's).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSet {
    /// The change set's id: its group, or the image.
    pub id: String,
    /// Indices into the run's records.
    pub members: Vec<usize>,
    /// The settings of its first member (its pull request's).
    pub settings: Effective,
}

/// One record per finding, with its effective settings and what is held before any
/// lookup: excluded paths and ignored images (these cost no requests).
#[must_use]
pub fn records(found: Vec<Found>, policy: &Rules) -> Vec<Record> {
    found
        .into_iter()
        .map(|mut f| {
            let settings = policy.settings_for(&f.path, f.image.as_ref());
            // A pin without a tag follows the rule's tag (a comment's comes first).
            if f.skip_reason == Some(crate::scan::SkipReason::NoTag)
                && let Some(tag) = &settings.follow_tag
            {
                f.skip_reason = None;
                f.follow = Some(crate::scan::Follow {
                    tag: tag.clone(),
                    from: "rule",
                });
            }
            let held = if !policy.scan.path_included(&f.path) {
                Some(Held::ExcludedPath)
            } else if settings.ignore {
                Some(Held::Ignored)
            } else {
                None
            };
            let mut record = Record::new(f, settings);
            record.held = held;
            record
        })
        .collect()
}

/// The change set a reference belongs to.
#[must_use]
pub fn change_set_id(found: &Found, effective: &Effective) -> String {
    let id = effective.group.clone().unwrap_or_else(|| {
        found
            .image
            .as_ref()
            .map_or_else(|| found.reference.clone(), |i| i.name().to_string())
    });
    if is_workflow(&found.path) {
        format!("{id}{WORKFLOWS}")
    } else {
        id
    }
}

/// The suffix of a change set made of workflow files.
pub const WORKFLOWS: &str = " workflows";

/// Whether a change set is made of workflow files (its id ends in [`WORKFLOWS`]).
#[must_use]
pub fn is_workflow_set(id: &str) -> bool {
    id.ends_with(WORKFLOWS)
}

/// Whether a path (relative to the repository root) is one of its workflows, which
/// GitHub lets only a token with the `workflow` scope, or an App with the `workflows`
/// permission, change.
#[must_use]
pub fn is_workflow(path: &str) -> bool {
    path.starts_with(".github/workflows/")
}

/// Whether a record wants a change (before holds): an outdated pin, or an unpinned
/// reference when pinning is asked for (`--pin` or the `pin` setting).
#[must_use]
pub fn wants_change(record: &Record, pin_flag: bool) -> bool {
    match record.status() {
        Status::Outdated => true,
        Status::Unpinned => pin_flag || record.settings.pin,
        _ => false,
    }
}

fn seen_key_of(record: &Record) -> Option<String> {
    let image = record.found.image.as_ref()?;
    let digest = record.new_digest()?;
    let tag = record.found.lookup_tag()?;
    Some(seen_key(
        &image.registry,
        &image.repository,
        tag,
        &digest.to_string(),
    ))
}

/// The state keys [`decide`] will read: first-seen times of candidate digests under a
/// `min_age`, and anchors of candidate change sets under a `schedule` (in `scope`, the
/// repository). Commands record these (now, if absent) before taking the snapshot.
#[must_use]
pub fn state_keys(records: &[Record], pin_flag: bool, scope: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for r in records {
        if r.held.is_some() || !wants_change(r, pin_flag) {
            continue;
        }
        if !r.settings.min_age.is_zero()
            && let Some(key) = seen_key_of(r)
        {
            keys.push(key);
        }
        if r.settings.schedule.is_some() {
            keys.push(anchor_key(scope, &change_set_id(&r.found, &r.settings)));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Decides holds (written into the records) and the change sets to propose. `now` is
/// Unix seconds; `state` is `None` when the store is unavailable (everything under
/// `min_age` or a `schedule` then waits); `scope` is the repository the anchors are
/// kept for.
pub fn decide(
    records: &mut [Record],
    pin_flag: bool,
    now: u64,
    state: Option<&Snapshot>,
    scope: &str,
) -> Vec<ChangeSet> {
    let mut sets: Vec<ChangeSet> = Vec::new();
    for (i, r) in records.iter_mut().enumerate() {
        if r.held.is_some() || !wants_change(r, pin_flag) {
            continue;
        }
        let Some(digest) = r.new_digest() else {
            continue;
        };
        let e = &r.settings;
        let id = change_set_id(&r.found, e);
        let time =
            |key: Option<String>| key.and_then(|k| state.and_then(|s| s.times.get(&k).copied()));
        let reason = if e.ignore_digests.contains(digest) {
            Some(Held::IgnoredDigest)
        } else if !e.min_age.is_zero()
            && time(seen_key_of(r))
                .is_none_or(|first| now.saturating_sub(first) < e.min_age.as_secs())
        {
            Some(Held::TooYoung)
        } else if let Some(schedule) = &e.schedule
            && time(Some(anchor_key(scope, &id)))
                .is_none_or(|anchor| !schedule.ticked(to_utc(anchor), to_utc(now)))
        {
            Some(Held::OutsideSchedule)
        } else {
            None
        };
        if reason.is_some() {
            r.held = reason;
            continue;
        }
        match sets.iter_mut().find(|s| s.id == id) {
            Some(set) => set.members.push(i),
            None => sets.push(ChangeSet {
                id,
                members: vec![i],
                settings: e.clone(),
            }),
        }
    }
    sets
}

fn to_utc(secs: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RepoConfig, parse_repo};
    use crate::model::Lookup;
    use crate::scan::{dockerfile, scan_text};

    const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const DAY: u64 = 86_400;
    const SCOPE: &str = "acme/web";
    /// Monday 2026-11-23 12:00 UTC.
    const MONDAY_NOON: u64 = 1_795_435_200;

    /// Findings of a Dockerfile (found, and whether each is pinned).
    fn outdated(lines: &[&str]) -> Vec<Found> {
        let text: String = lines.iter().flat_map(|l| ["FROM ", l, "\n"]).collect();
        scan_text("Dockerfile", dockerfile::FORMAT, &text).0
    }

    /// Records under `config`, every one looked up as outdated to NEW (or unpinned
    /// with NEW available) unless the rules held it before lookup.
    fn looked_up(config: &str, found: &[Found]) -> Vec<Record> {
        let repo: RepoConfig = parse_repo(".repin.toml", config).unwrap();
        let policy = Rules::new(None, &repo);
        let new: crate::imageref::Digest = NEW.parse().unwrap();
        let mut records = records(found.to_vec(), &policy);
        for r in &mut records {
            let pinned = r.found.image.as_ref().is_some_and(|i| i.digest.is_some());
            r.lookup = match (r.held, pinned) {
                (Some(_), _) => Lookup::Skipped,
                (None, true) => Lookup::Outdated(new.clone()),
                (None, false) => Lookup::Unpinned(new.clone()),
            };
        }
        records
    }

    /// Held reasons per reference, and change sets as (id, members).
    type Decided = (Vec<Option<&'static str>>, Vec<(String, Vec<usize>)>);

    fn run(config: &str, found: &[Found], now: u64, state: Option<&Snapshot>) -> Decided {
        let mut records = looked_up(config, found);
        let sets = decide(&mut records, false, now, state, SCOPE);
        (
            records.iter().map(|r| r.held.map(Held::name)).collect(),
            sets.into_iter().map(|s| (s.id, s.members)).collect(),
        )
    }

    fn snapshot(entries: &[(String, u64)]) -> Snapshot {
        Snapshot {
            times: entries.iter().cloned().collect(),
        }
    }

    #[test]
    fn defaults_one_change_set_per_image() {
        let c = outdated(&[
            &format!("node:20@{OLD}"),
            &format!("node:18@{OLD}"),
            &format!("redis:7@{OLD}"),
        ]);
        let (held, sets) = run("", &c, MONDAY_NOON, None);
        assert_eq!(held, vec![None, None, None]);
        assert_eq!(
            sets,
            vec![
                ("docker.io/library/node".into(), vec![0, 1]),
                ("docker.io/library/redis".into(), vec![2])
            ]
        );
    }

    #[test]
    fn ignore_rules_and_groups() {
        let c = outdated(&[
            &format!("node:20@{OLD}"),
            &format!("redis:7@{OLD}"),
            &format!("ghcr.io/acme/a:1@{OLD}"),
            &format!("ghcr.io/acme/b:1@{OLD}"),
        ]);
        let config = "[[rule]]\nimages = [\"docker.io/library/redis\"]\nignore = true\n[[rule]]\nimages = [\"ghcr.io/acme/*\"]\ngroup = \"acme\"\n";
        let (held, sets) = run(config, &c, MONDAY_NOON, None);
        assert_eq!(held, vec![None, Some("ignored"), None, None]);
        assert_eq!(
            sets,
            vec![
                ("docker.io/library/node".into(), vec![0]),
                ("acme".into(), vec![2, 3])
            ]
        );
    }

    #[test]
    fn unpinned_references_change_only_with_pin() {
        let c = outdated(&["node:20", "redis:7"]);
        let (_, sets) = run("", &c, MONDAY_NOON, None);
        assert!(sets.is_empty());
        let (_, sets) = run(
            "[[rule]]\nimages = [\"docker.io/library/redis\"]\npin = true\n",
            &c,
            MONDAY_NOON,
            None,
        );
        assert_eq!(sets, vec![("docker.io/library/redis".into(), vec![1])]);
    }

    #[test]
    fn ignore_digests_holds_only_that_digest() {
        let c = outdated(&[&format!("node:20@{OLD}")]);
        let (held, _) = run(
            &format!("[update]\nignore_digests = [\"{NEW}\"]\n"),
            &c,
            MONDAY_NOON,
            None,
        );
        assert_eq!(held, vec![Some("ignored-digest")]);
        let (held, _) = run(
            &format!("[update]\nignore_digests = [\"{OLD}\"]\n"),
            &c,
            MONDAY_NOON,
            None,
        );
        assert_eq!(held, vec![None]);
    }

    #[test]
    fn min_age_with_and_without_records() {
        let c = outdated(&[&format!("node:20@{OLD}")]);
        let config = "[update]\nmin_age = \"3d\"\n";
        let key = seen_key("docker.io", "library/node", "20", NEW);
        // No store at all, or no record: wait.
        assert_eq!(
            run(config, &c, MONDAY_NOON, None).0,
            vec![Some("too-young")]
        );
        assert_eq!(
            run(config, &c, MONDAY_NOON, Some(&Snapshot::default())).0,
            vec![Some("too-young")]
        );
        // Seen two days ago: wait; three days ago: go.
        let two = snapshot(&[(key.clone(), MONDAY_NOON - 2 * DAY)]);
        assert_eq!(
            run(config, &c, MONDAY_NOON, Some(&two)).0,
            vec![Some("too-young")]
        );
        let three = snapshot(&[(key, MONDAY_NOON - 3 * DAY)]);
        assert_eq!(run(config, &c, MONDAY_NOON, Some(&three)).0, vec![None]);
    }

    #[test]
    fn schedule_at_most_once_per_tick() {
        let c = outdated(&[&format!("node:20@{OLD}")]);
        let config = "[update]\nschedule = \"0 6 * * MON\"\n";
        let anchor = anchor_key(SCOPE, "docker.io/library/node");
        // Missing state: wait for a tick.
        assert_eq!(
            run(config, &c, MONDAY_NOON, None).0,
            vec![Some("outside-schedule")]
        );
        // First seen pending on Sunday; Monday 06:00 ticked since: go.
        let sunday = snapshot(&[(anchor.clone(), MONDAY_NOON - DAY)]);
        assert_eq!(run(config, &c, MONDAY_NOON, Some(&sunday)).0, vec![None]);
        // Proposed Monday 07:00 already: no second proposal until next Monday.
        let proposed = snapshot(&[(anchor.clone(), MONDAY_NOON - 5 * 3600)]);
        assert_eq!(
            run(config, &c, MONDAY_NOON, Some(&proposed)).0,
            vec![Some("outside-schedule")]
        );
        // Another repository's proposal of the same image holds nothing back here.
        let elsewhere = snapshot(&[
            (
                anchor_key("acme/other", "docker.io/library/node"),
                MONDAY_NOON - 5 * 3600,
            ),
            (anchor.clone(), MONDAY_NOON - DAY),
        ]);
        assert_eq!(run(config, &c, MONDAY_NOON, Some(&elsewhere)).0, vec![None]);
        assert_eq!(
            run(config, &c, MONDAY_NOON + 7 * DAY, Some(&proposed)).0,
            vec![None]
        );
    }

    #[test]
    fn excluded_paths_are_held_before_lookups() {
        let text = format!("FROM node:20@{OLD}\n");
        let (found, _) = scan_text("test/Dockerfile", dockerfile::FORMAT, &text);
        let repo = parse_repo(".repin.toml", "[scan]\nexclude = [\"test/**\"]\n").unwrap();
        let policy = Rules::new(None, &repo);
        let held: Vec<_> = records(found, &policy).iter().map(|r| r.held).collect();
        assert_eq!(held, vec![Some(Held::ExcludedPath)]);
    }

    #[test]
    fn state_keys_cover_what_decide_reads() {
        let c = outdated(&[&format!("node:20@{OLD}"), &format!("redis:7@{OLD}")]);
        let records = looked_up(
            "[[rule]]\nimages = [\"docker.io/library/node\"]\nmin_age = \"1d\"\n[[rule]]\nimages = [\"docker.io/library/redis\"]\nschedule = \"0 6 * * *\"\ngroup = \"cache\"\n",
            &c,
        );
        let keys = state_keys(&records, false, SCOPE);
        assert_eq!(
            keys,
            vec![
                anchor_key(SCOPE, "cache"),
                seen_key("docker.io", "library/node", "20", NEW)
            ]
        );
    }
}
