//! Update settings: what a `[update]` table or a `[[rule]]` may set, as written (raw,
//! with spans) and as checked (parsed durations, schedules, globs).
//!
//! Every key is optional: a layer sets only the keys it names, and
//! [`Settings::overlay`] lets a later layer override exactly those.

use std::str::FromStr as _;
use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

use super::diag::Diagnostics;

/// Declares a raw table type holding every settings key plus `$extra` keys, with
/// unknown keys refused (so a typo is an error, not a silently ignored setting).
macro_rules! raw_settings {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $extra:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* #[serde(default)] pub $extra: $ty,)*
            /// Leave the reference alone.
            pub ignore: Option<bool>,
            /// Add a digest to a tag-only reference.
            pub pin: Option<bool>,
            /// How long a new digest must have been seen before it is proposed
            /// (`3d`, `12h`).
            pub min_age: Option<Spanned<String>>,
            /// When changes may be proposed (cron, or `daily`, `weekly`, …).
            pub schedule: Option<Spanned<String>>,
            /// The zone the schedule is read in (IANA name; default UTC).
            pub timezone: Option<Spanned<String>>,
            /// Change sets: references with the same group share one pull request.
            pub group: Option<Spanned<String>>,
            /// Digests never proposed (`sha256:<hex>`).
            pub ignore_digests: Option<Vec<Spanned<String>>>,
            /// The tag a pin without one follows (`latest`, `3.20`).
            pub follow_tag: Option<Spanned<String>>,
            /// Labels for the pull request.
            pub labels: Option<Vec<String>>,
            /// Reviewers requested (logins).
            pub reviewers: Option<Vec<String>>,
            /// Team reviewers requested (team slugs).
            pub team_reviewers: Option<Vec<String>>,
            /// Assignees (logins).
            pub assignees: Option<Vec<String>>,
            /// Turn on GitHub's auto-merge (squash).
            pub automerge: Option<bool>,
            /// Open the pull request as a draft.
            pub draft: Option<bool>,
            /// The branch name's prefix (default `repin/`).
            pub branch_prefix: Option<Spanned<String>>,
            /// The pull request's title (default: from the change).
            pub title: Option<String>,
        }

        impl $name {
            /// The settings keys of this table, checked.
            pub fn settings(&self, diags: &mut $crate::config::diag::Diagnostics<'_>) -> $crate::config::settings::Settings {
                $crate::config::settings::Settings::check(
                    &$crate::config::settings::RawFields {
                        ignore: self.ignore,
                        pin: self.pin,
                        min_age: self.min_age.as_ref(),
                        schedule: self.schedule.as_ref(),
                        timezone: self.timezone.as_ref(),
                        group: self.group.as_ref(),
                        ignore_digests: self.ignore_digests.as_deref(),
                        follow_tag: self.follow_tag.as_ref(),
                        labels: self.labels.as_ref(),
                        reviewers: self.reviewers.as_ref(),
                        team_reviewers: self.team_reviewers.as_ref(),
                        assignees: self.assignees.as_ref(),
                        automerge: self.automerge,
                        draft: self.draft,
                        branch_prefix: self.branch_prefix.as_ref(),
                        title: self.title.as_ref(),
                    },
                    diags,
                )
            }
        }
    };
}

pub(crate) use raw_settings;

raw_settings!(
    /// `[update]`: settings for every image.
    RawUpdate {}
);

/// Borrowed view of the settings keys of any raw table.
pub struct RawFields<'a> {
    /// Leave the reference alone.
    pub ignore: Option<bool>,
    /// Add a digest to a tag-only reference.
    pub pin: Option<bool>,
    /// How long a new digest must have been seen before it is proposed
    /// (`3d`, `12h`).
    pub min_age: Option<&'a Spanned<String>>,
    /// When changes may be proposed (cron, or `daily`, `weekly`, …).
    pub schedule: Option<&'a Spanned<String>>,
    /// The zone the schedule is read in (IANA name; default UTC).
    pub timezone: Option<&'a Spanned<String>>,
    /// Change sets: references with the same group share one pull request.
    pub group: Option<&'a Spanned<String>>,
    /// Digests never proposed (`sha256:<hex>`).
    pub ignore_digests: Option<&'a [Spanned<String>]>,
    /// The tag a pin without one follows.
    pub follow_tag: Option<&'a Spanned<String>>,
    /// Labels for the pull request.
    pub labels: Option<&'a Vec<String>>,
    /// Reviewers requested (logins).
    pub reviewers: Option<&'a Vec<String>>,
    /// Team reviewers requested (team slugs).
    pub team_reviewers: Option<&'a Vec<String>>,
    /// Assignees (logins).
    pub assignees: Option<&'a Vec<String>>,
    /// Turn on GitHub's auto-merge (squash).
    pub automerge: Option<bool>,
    /// Open the pull request as a draft.
    pub draft: Option<bool>,
    /// The branch name's prefix (default `repin/`).
    pub branch_prefix: Option<&'a Spanned<String>>,
    /// The pull request's title (default: from the change).
    pub title: Option<&'a String>,
}

/// A cron schedule: standard 5-field syntax, in a time zone (UTC by default).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written (5 fields).
    pub expression: String,
    /// The zone the schedule is read in (IANA name; default UTC).
    pub timezone: chrono_tz::Tz,
    /// The cron expression (seconds first, as the `cron` crate reads it).
    pub cron: cron::Schedule,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl Schedule {
    /// Parses a 5-field expression (the `cron` crate wants seconds first; they are 0).
    ///
    /// # Errors
    /// The `cron` crate's reason.
    pub fn parse(expression: &str, timezone: chrono_tz::Tz) -> Result<Self, String> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "a schedule has 5 fields (minute hour day-of-month month day-of-week), this one has {fields}"
            ));
        }
        // The crate's message quotes the expression with our seconds field and a caret on
        // extra lines; its last line is the reason.
        let cron = cron::Schedule::from_str(&format!("0 {expression}")).map_err(|e| {
            let message = e.to_string();
            message.lines().last().unwrap_or_default().trim().to_owned()
        })?;
        Ok(Self {
            expression: expression.to_owned(),
            timezone,
            cron,
        })
    }

    /// Whether a tick falls in `(after, now]`.
    #[must_use]
    pub fn ticked(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let after = after.with_timezone(&self.timezone);
        self.cron
            .after(&after)
            .next()
            .is_some_and(|tick| tick.with_timezone(&chrono::Utc) <= now)
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{} ({})", self.expression, self.timezone))
    }
}

/// Pull-request settings (used by the forge later; validated now).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PrSettings {
    /// Labels for the pull request.
    pub labels: Option<Vec<String>>,
    /// Reviewers requested (logins).
    pub reviewers: Option<Vec<String>>,
    /// Team reviewers requested (team slugs).
    pub team_reviewers: Option<Vec<String>>,
    /// Assignees (logins).
    pub assignees: Option<Vec<String>>,
    /// Turn on GitHub's auto-merge (squash).
    pub automerge: Option<bool>,
    /// Open the pull request as a draft.
    pub draft: Option<bool>,
    /// The branch name's prefix (default `repin/`).
    pub branch_prefix: Option<String>,
    /// The pull request's title (default: from the change).
    pub title: Option<String>,
}

/// Checked settings; `None` means "this layer does not say".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Settings {
    /// Leave the reference alone.
    pub ignore: Option<bool>,
    /// Add a digest to a tag-only reference.
    pub pin: Option<bool>,
    /// How long a new digest must have been seen before it is proposed
    /// (`3d`, `12h`).
    #[serde(serialize_with = "serialize_duration")]
    pub min_age: Option<Duration>,
    /// When changes may be proposed (cron, or `daily`, `weekly`, …).
    pub schedule: Option<Schedule>,
    /// Change sets: references with the same group share one pull request.
    pub group: Option<String>,
    /// Digests never proposed (`sha256:<hex>`).
    pub ignore_digests: Option<Vec<crate::imageref::Digest>>,
    /// The tag a pin without one follows.
    pub follow_tag: Option<String>,
    /// How pull requests are made.
    #[serde(flatten)]
    pub pr: PrSettings,
}

#[allow(clippy::ref_option)] // serde's `serialize_with` hands over `&Option<_>`
fn serialize_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(&humantime::format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// A checked duration (`"3d"`, `"12h"`), or a diagnostic.
pub fn duration(v: &Spanned<String>, diags: &mut Diagnostics<'_>) -> Option<Duration> {
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.error(
                Some(v.span()),
                format!(
                    "invalid duration {:?}: {e} (write e.g. \"3d\", \"12h\")",
                    v.get_ref()
                ),
            );
            None
        }
    }
}

/// A checked schedule in its time zone (UTC when none is given), or diagnostics; a time
/// zone without a schedule is an error.
pub fn schedule(
    expression: Option<&Spanned<String>>,
    timezone_text: Option<&Spanned<String>>,
    diags: &mut Diagnostics<'_>,
) -> Option<Schedule> {
    let timezone = match timezone_text {
        None => Some(chrono_tz::UTC),
        Some(v) => v.get_ref().parse::<chrono_tz::Tz>().ok().or_else(|| {
            let message = format!(
                "unknown time zone {:?} (write an IANA name such as \"Europe/Berlin\")",
                v.get_ref()
            );
            diags.error(Some(v.span()), message);
            None
        }),
    };
    if timezone_text.is_some() && expression.is_none() {
        diags.error(
            timezone_text.map(Spanned::span),
            "`timezone` applies to a `schedule`, and this table has none",
        );
    }
    // A bad time zone is reported above; the expression is still checked (in UTC).
    expression.and_then(|v| {
        match Schedule::parse(v.get_ref(), timezone.unwrap_or(chrono_tz::UTC)) {
            Ok(s) => timezone.map(|_| s),
            Err(e) => {
                diags.error(
                    Some(v.span()),
                    format!("invalid schedule {:?}: {e}", v.get_ref()),
                );
                None
            }
        }
    })
}

impl Settings {
    /// Checks raw settings, recording a diagnostic for each bad value.
    pub fn check(raw: &RawFields<'_>, diags: &mut Diagnostics<'_>) -> Self {
        let min_age = raw.min_age.and_then(|v| duration(v, diags));
        let schedule = schedule(raw.schedule, raw.timezone, diags);
        let ignore_digests = raw.ignore_digests.map(|list| {
            list.iter()
                .filter_map(|d| match d.get_ref().parse::<crate::imageref::Digest>() {
                    Ok(digest) => Some(digest),
                    Err(e) => {
                        diags.error(Some(d.span()), e.to_string());
                        None
                    }
                })
                .collect()
        });
        let follow_tag =
            raw.follow_tag
                .and_then(|t| match crate::imageref::check_tag(t.get_ref()) {
                    Ok(()) => Some(t.get_ref().clone()),
                    Err(e) => {
                        diags.error(Some(t.span()), e.to_string());
                        None
                    }
                });
        let group = raw.group.and_then(|g| {
            let ok = !g.get_ref().trim().is_empty() && !g.get_ref().contains(['\n', '\r']);
            if ok {
                Some(g.get_ref().clone())
            } else {
                diags.error(
                    Some(g.span()),
                    "a group name must be a non-empty single line",
                );
                None
            }
        });
        let branch_prefix = raw.branch_prefix.and_then(|b| {
            let v = b.get_ref();
            let why = if v.is_empty()
                || !v
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.'))
            {
                Some("letters, digits, '/', '-', '_' and '.' only")
            } else if v.starts_with('-')
                // git's check-ref-format rules, on the prefix followed by a slug.
                || !git2::Branch::name_is_valid(&format!("{v}x")).unwrap_or(false)
            {
                Some("not a valid start of a git branch name (no '//', '..', '/.', '.lock/', leading '/', '-' or '.')")
            } else {
                None
            };
            match why {
                None => Some(v.clone()),
                Some(why) => {
                    diags.error(
                        Some(b.span()),
                        format!("invalid branch prefix {v:?}: {why}"),
                    );
                    None
                }
            }
        });
        Self {
            ignore: raw.ignore,
            pin: raw.pin,
            min_age,
            schedule,
            group,
            ignore_digests,
            follow_tag,
            pr: PrSettings {
                labels: raw.labels.cloned(),
                reviewers: raw.reviewers.cloned(),
                team_reviewers: raw.team_reviewers.cloned(),
                assignees: raw.assignees.cloned(),
                automerge: raw.automerge,
                draft: raw.draft,
                branch_prefix,
                title: raw.title.cloned(),
            },
        }
    }

    /// Overrides the keys `later` sets.
    pub fn overlay(&mut self, later: &Self) {
        fn set<T: Clone>(slot: &mut Option<T>, value: Option<&T>) {
            if let Some(value) = value {
                *slot = Some(value.clone());
            }
        }
        set(&mut self.ignore, later.ignore.as_ref());
        set(&mut self.pin, later.pin.as_ref());
        set(&mut self.min_age, later.min_age.as_ref());
        set(&mut self.schedule, later.schedule.as_ref());
        set(&mut self.group, later.group.as_ref());
        set(&mut self.ignore_digests, later.ignore_digests.as_ref());
        set(&mut self.follow_tag, later.follow_tag.as_ref());
        set(&mut self.pr.labels, later.pr.labels.as_ref());
        set(&mut self.pr.reviewers, later.pr.reviewers.as_ref());
        set(
            &mut self.pr.team_reviewers,
            later.pr.team_reviewers.as_ref(),
        );
        set(&mut self.pr.assignees, later.pr.assignees.as_ref());
        set(&mut self.pr.automerge, later.pr.automerge.as_ref());
        set(&mut self.pr.draft, later.pr.draft.as_ref());
        set(&mut self.pr.branch_prefix, later.pr.branch_prefix.as_ref());
        set(&mut self.pr.title, later.pr.title.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn overlay_sets_only_what_the_later_layer_says() {
        let mut base = Settings {
            ignore: Some(false),
            pin: Some(true),
            group: Some("all".into()),
            ..Settings::default()
        };
        let later = Settings {
            pin: Some(false),
            min_age: Some(Duration::from_secs(60)),
            ..Settings::default()
        };
        base.overlay(&later);
        assert_eq!(base.ignore, Some(false));
        assert_eq!(base.pin, Some(false));
        assert_eq!(base.min_age, Some(Duration::from_secs(60)));
        assert_eq!(base.group.as_deref(), Some("all"));
    }

    #[test]
    fn schedule_ticks() {
        // Mondays at 06:00 in Berlin (05:00 UTC in winter).
        let s = Schedule::parse("0 6 * * MON", "Europe/Berlin".parse().unwrap()).unwrap();
        let utc = |d, h, m| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // Sunday 23 Nov → Monday 23 Nov 2026 is a Monday.
        assert!(!s.ticked(utc(22, 12, 0), utc(23, 4, 59)));
        assert!(s.ticked(utc(22, 12, 0), utc(23, 5, 0)));
        assert!(!s.ticked(utc(23, 5, 0), utc(29, 23, 0)));
        assert!(
            Schedule::parse("0 6 * *", chrono_tz::UTC)
                .unwrap_err()
                .contains("5 fields")
        );
        assert!(Schedule::parse("61 * * * *", chrono_tz::UTC).is_err());
    }
}
