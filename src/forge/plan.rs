//! Pull requests, planned: from data alone — this run's proposals (one per change set:
//! its branch and hidden state), the repository's pull requests with theirs, the
//! proposals the store records as declined, which open repin pull requests are all
//! current, and `max_open` — decide what to do with each. No I/O; the executor
//! ([`super::run`]) carries the plan out, and `--dry-run` prints it.
//!
//! The decisions, per proposal, in this order:
//! - a closed, unmerged pull request on its branch that proposed these digests, or a
//!   declined record in the store: [`Why::Declined`], skip;
//! - an open pull request on its branch whose body is not repin's:
//!   [`Why::NotRepins`], left alone;
//! - an open repin pull request proposing exactly these digests: [`Why::UpToDate`];
//! - one proposing others, whose head is still the commit repin made: [`Action::Update`]
//!   with a lease on that commit; whose head moved: [`Action::HandsOff`];
//! - no open pull request: [`Action::Open`] while fewer than `max_open` repin pull
//!   requests are open (counting the ones this plan opens), else [`Why::MaxOpen`].
//!
//! Then every open repin pull request whose change set has nothing pending and whose
//! references are all current on the default branch is closed ([`Action::Close`]), its
//! branch deleted when its head is still repin's commit.
//!
//! An `Open` the executor cannot carry out (the branch exists and is not repin's, or no
//! file changes) keeps its place in the count for this run; the next run plans again.

use std::collections::HashSet;
use std::fmt;

use super::github::Pull;
use super::pr::Proposed;

/// What this run proposes for one change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The change set's branch (`<branch_prefix><slug>`).
    pub branch: String,
    /// The pull request's title.
    pub title: String,
    /// What it proposes (the hidden state of its pull request).
    pub proposed: Proposed,
}

/// What the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// This run's proposals, one per change set, in change set order.
    pub proposals: &'a [Proposal],
    /// The repository's pull requests (open and recently closed), as listed.
    pub pulls: &'a [Pull],
    /// Proposals (by index) the store records as declined.
    pub declined: &'a HashSet<usize>,
    /// Open repin pull requests (by number) all of whose references are current in
    /// this run's check.
    pub current: &'a HashSet<u64>,
    /// At most this many open repin pull requests.
    pub max_open: usize,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a pull request for proposal `set` (an existing branch of that name is
    /// replaced only when it is repin's; the executor checks).
    Open {
        /// The proposal (change set) index.
        set: usize,
    },
    /// Rebuild proposal `set`'s branch and push it with a lease on `lease` (the commit
    /// repin made; `None`: the branch must be absent), then retitle pull `pull`.
    Update {
        /// The proposal (change set) index.
        set: usize,
        /// The pull request number.
        pull: u64,
        /// The commit repin made (hex); `None`: the branch must be absent.
        lease: Option<String>,
    },
    /// Someone other than repin pushed to pull `pull`'s branch: say so once, nothing
    /// else.
    HandsOff {
        /// The proposal (change set) index.
        set: usize,
        /// The pull request number.
        pull: u64,
    },
    /// Close pull `pull` (the default branch has its digests); delete `branch` with a
    /// lease on `delete_at` when its head is still repin's commit.
    Close {
        /// The pull request number.
        pull: u64,
        /// The pull request's branch.
        branch: String,
        /// Delete the branch with a lease on this commit (still repin's).
        delete_at: Option<String>,
    },
    /// Leave proposal `set` alone.
    Skip {
        /// The proposal (change set) index.
        set: usize,
        /// Why.
        why: Why,
    },
}

/// Why a proposal is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A pull request proposing these digests was closed unmerged.
    Declined,
    /// The open pull request on the branch is not repin's.
    NotRepins {
        /// The pull request number.
        pull: u64,
    },
    /// The open pull request already proposes these digests.
    UpToDate {
        /// The pull request number.
        pull: u64,
    },
    /// `max_open` repin pull requests are open.
    MaxOpen(usize),
}

/// A proposal's repin state read from a pull request's body.
fn proposed_in(pull: &Pull) -> Option<Proposed> {
    pull.body.as_deref().and_then(Proposed::parse)
}

/// Plans one repository's pull requests.
#[must_use]
pub fn plan(inputs: &Inputs<'_>) -> Vec<Action> {
    let Inputs {
        proposals,
        pulls,
        declined,
        current,
        max_open,
    } = *inputs;
    let mut open_count = pulls
        .iter()
        .filter(|p| p.is_open() && proposed_in(p).is_some())
        .count();
    let mut actions = Vec::new();
    for (set, proposal) in proposals.iter().enumerate() {
        let on_branch = |p: &&Pull| p.head.branch == proposal.branch;
        let closed_unmerged = pulls.iter().filter(on_branch).any(|p| {
            !p.is_open()
                && !p.is_merged()
                && proposed_in(p).is_some_and(|s| s.proposal() == proposal.proposed.proposal())
        });
        if closed_unmerged || declined.contains(&set) {
            actions.push(Action::Skip {
                set,
                why: Why::Declined,
            });
            continue;
        }
        let action = match pulls.iter().filter(on_branch).find(|p| p.is_open()) {
            Some(pull) => match proposed_in(pull) {
                None => Action::Skip {
                    set,
                    why: Why::NotRepins { pull: pull.number },
                },
                Some(old) if old.proposal() == proposal.proposed.proposal() => Action::Skip {
                    set,
                    why: Why::UpToDate { pull: pull.number },
                },
                Some(old) if pull.head.sha != old.commit.as_deref().unwrap_or_default() => {
                    Action::HandsOff {
                        set,
                        pull: pull.number,
                    }
                }
                Some(old) => Action::Update {
                    set,
                    pull: pull.number,
                    lease: old.commit,
                },
            },
            None if open_count >= max_open => Action::Skip {
                set,
                why: Why::MaxOpen(max_open),
            },
            None => {
                open_count += 1;
                Action::Open { set }
            }
        };
        actions.push(action);
    }
    let pending: HashSet<&str> = proposals.iter().map(|p| p.proposed.set.as_str()).collect();
    for pull in pulls.iter().filter(|p| p.is_open()) {
        let Some(state) = proposed_in(pull) else {
            continue;
        };
        if pending.contains(state.set.as_str()) || !current.contains(&pull.number) {
            continue;
        }
        let delete_at = state.commit.filter(|c| *c == pull.head.sha);
        actions.push(Action::Close {
            pull: pull.number,
            branch: pull.head.branch.clone(),
            delete_at,
        });
    }
    actions
}

/// One line per action, as `--dry-run` prints it (`branch: would open`, …).
pub struct Shown<'a> {
    /// The action.
    pub action: &'a Action,
    /// The plan's proposals (for branch names and titles).
    pub proposals: &'a [Proposal],
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branch = |set: &usize| self.proposals.get(*set).map_or("?", |p| p.branch.as_str());
        match self.action {
            Action::Open { set } => write!(
                f,
                "{}: would open \"{}\"",
                branch(set),
                self.proposals.get(*set).map_or("", |p| p.title.as_str())
            ),
            Action::Update { set, pull, .. } => write!(f, "{}: would update #{pull}", branch(set)),
            Action::HandsOff { set, .. } => {
                write!(f, "{}: someone else pushed to it; left alone", branch(set))
            }
            Action::Close { pull, .. } => write!(
                f,
                "would close #{pull}: the default branch has these digests"
            ),
            Action::Skip { set, why } => write!(f, "{}: {why}", branch(set)),
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Declined => {
                f.write_str("these digests were declined (PR closed unmerged); skipped")
            }
            Self::NotRepins { pull } => write!(f, "#{pull} is not repin's; left alone"),
            Self::UpToDate { pull } => write!(f, "#{pull} already proposes these digests"),
            Self::MaxOpen(n) => write!(f, "max_open ({n}) reached; not opened"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::github::PullHead;
    use crate::forge::pr::RefState;
    use crate::imageref::Digest;

    fn state(set: &str, digest: &str, commit: Option<&str>) -> Proposed {
        Proposed {
            v: 1,
            set: set.into(),
            refs: vec![RefState {
                path: "Dockerfile".into(),
                line: 1,
                image: "docker.io/library/redis".into(),
                tag: Some("7".into()),
                old: None,
                new: Digest::sha256_of(digest.as_bytes()),
                platform: None,
            }],
            commit: commit.map(Into::into),
        }
    }

    fn proposal(set: &str, digest: &str) -> Proposal {
        Proposal {
            branch: format!("repin/{set}"),
            title: format!("Update {set}"),
            proposed: state(set, digest, None),
        }
    }

    /// A pull request on `set`'s branch: `open`, `merged`, with repin's state (or a
    /// foreign body), its head at `head`.
    fn pull(number: u64, set: &str, open: bool, body: Option<Proposed>, head: &str) -> Pull {
        Pull {
            number,
            node_id: String::new(),
            state: if open { "open" } else { "closed" }.into(),
            merged_at: None,
            title: String::new(),
            body: Some(body.map_or("a person's PR".into(), |s| {
                crate::forge::pr::body(&s, &crate::forge::pr::Facts::new())
            })),
            head: PullHead {
                branch: format!("repin/{set}"),
                sha: head.into(),
            },
        }
    }

    fn run(
        proposals: &[Proposal],
        pulls: &[Pull],
        declined: &[usize],
        current: &[u64],
        max_open: usize,
    ) -> Vec<Action> {
        plan(&Inputs {
            proposals,
            pulls,
            declined: &declined.iter().copied().collect(),
            current: &current.iter().copied().collect(),
            max_open,
        })
    }

    /// The decision matrix, one row per case: what exists, what is planned.
    #[test]
    fn decision_matrix() {
        let a = proposal("a", "new");
        let ours_at = |c| Some(state("a", "old", Some(c)));
        let same_at = |c| Some(state("a", "new", Some(c)));
        let mut merged = pull(5, "a", false, same_at("c1"), "c1");
        merged.merged_at = Some("2026-01-01T00:00:00Z".into());
        // Name, pull requests, proposals declined in the store, max_open, the plan.
        type Case = (&'static str, Vec<Pull>, Vec<usize>, usize, Action);
        let cases: Vec<Case> = vec![
            (
                "nothing open: open",
                vec![],
                vec![],
                10,
                Action::Open { set: 0 },
            ),
            (
                "closed unmerged with these digests: declined",
                vec![pull(3, "a", false, same_at("c1"), "c1")],
                vec![],
                10,
                Action::Skip {
                    set: 0,
                    why: Why::Declined,
                },
            ),
            (
                "closed unmerged with other digests: open",
                vec![pull(3, "a", false, ours_at("c1"), "c1")],
                vec![],
                10,
                Action::Open { set: 0 },
            ),
            (
                "merged with these digests: open",
                vec![merged],
                vec![],
                10,
                Action::Open { set: 0 },
            ),
            (
                "declined in the store: skip",
                vec![],
                vec![0],
                10,
                Action::Skip {
                    set: 0,
                    why: Why::Declined,
                },
            ),
            (
                "open, not repin's: left alone",
                vec![pull(4, "a", true, None, "x")],
                vec![],
                10,
                Action::Skip {
                    set: 0,
                    why: Why::NotRepins { pull: 4 },
                },
            ),
            (
                "open, same digests: up to date",
                vec![pull(4, "a", true, same_at("c1"), "c1")],
                vec![],
                10,
                Action::Skip {
                    set: 0,
                    why: Why::UpToDate { pull: 4 },
                },
            ),
            (
                "open, other digests, head is repin's: update with a lease",
                vec![pull(4, "a", true, ours_at("c1"), "c1")],
                vec![],
                10,
                Action::Update {
                    set: 0,
                    pull: 4,
                    lease: Some("c1".into()),
                },
            ),
            (
                "open, other digests, head moved: hands off",
                vec![pull(4, "a", true, ours_at("c1"), "c2")],
                vec![],
                10,
                Action::HandsOff { set: 0, pull: 4 },
            ),
            (
                "max_open reached by other repin PRs: not opened",
                vec![pull(7, "b", true, Some(state("b", "x", Some("c"))), "c")],
                vec![],
                1,
                Action::Skip {
                    set: 0,
                    why: Why::MaxOpen(1),
                },
            ),
            (
                "a person's open PRs do not count toward max_open",
                vec![pull(7, "b", true, None, "c")],
                vec![],
                1,
                Action::Open { set: 0 },
            ),
        ];
        for (name, pulls, declined, max_open, want) in cases {
            let got = run(std::slice::from_ref(&a), &pulls, &declined, &[], max_open);
            assert_eq!(got.first(), Some(&want), "{name}: {got:?}");
        }
    }

    #[test]
    fn opens_count_toward_max_open() {
        let proposals = [proposal("a", "1"), proposal("b", "2"), proposal("c", "3")];
        let got = run(&proposals, &[], &[], &[], 2);
        assert_eq!(
            got,
            [
                Action::Open { set: 0 },
                Action::Open { set: 1 },
                Action::Skip {
                    set: 2,
                    why: Why::MaxOpen(2)
                },
            ]
        );
    }

    #[test]
    fn closes_only_current_prs_with_nothing_pending() {
        let b_state = Some(state("b", "x", Some("cb")));
        let pulls = [
            // Current, nothing pending, head still repin's: close and delete.
            pull(7, "b", true, b_state.clone(), "cb"),
            // Current, but someone pushed: close, keep the branch.
            pull(8, "c", true, Some(state("c", "x", Some("cc"))), "moved"),
            // Not current: stays.
            pull(9, "d", true, Some(state("d", "x", Some("cd"))), "cd"),
            // Pending in this run: stays (planned above instead).
            pull(10, "a", true, Some(state("a", "old", Some("ca"))), "ca"),
            // Not repin's: never closed.
            pull(11, "e", true, None, "ce"),
        ];
        let got = run(&[proposal("a", "new")], &pulls, &[], &[7, 8, 10, 11], 10);
        assert_eq!(
            got,
            [
                Action::Update {
                    set: 0,
                    pull: 10,
                    lease: Some("ca".into())
                },
                Action::Close {
                    pull: 7,
                    branch: "repin/b".into(),
                    delete_at: Some("cb".into())
                },
                Action::Close {
                    pull: 8,
                    branch: "repin/c".into(),
                    delete_at: None
                },
            ]
        );
    }

    #[test]
    fn dry_run_lines_name_branch_and_pull() {
        let proposals = [proposal("a", "1")];
        let line = |action: Action| {
            Shown {
                action: &action,
                proposals: &proposals,
            }
            .to_string()
        };
        assert_eq!(
            line(Action::Open { set: 0 }),
            "repin/a: would open \"Update a\""
        );
        assert_eq!(
            line(Action::Update {
                set: 0,
                pull: 4,
                lease: None
            }),
            "repin/a: would update #4"
        );
        assert_eq!(
            line(Action::Skip {
                set: 0,
                why: Why::MaxOpen(3)
            }),
            "repin/a: max_open (3) reached; not opened"
        );
    }
}
