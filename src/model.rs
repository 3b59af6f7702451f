//! One record per reference: what the scan found, the settings the rules give it, what
//! the registry said about it, and why the rules hold it back. Every stage after the
//! scan reads and fills these records; none keeps a parallel list aligned by index, so a
//! lookup that fails (or dies) can only ever mark its own reference.

use serde::Serialize;

use crate::config::Effective;
use crate::imageref::Digest;
use crate::scan::Found;

/// A reference's status, as `check` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Pinned to the digest the tag points at (for its kind and platform).
    Current,
    /// Pinned to a digest the tag no longer points at.
    Outdated,
    /// A tag without a digest.
    Unpinned,
    /// Not looked up: a skip reason, or held by the rules.
    Skipped,
    /// The lookup failed.
    Error,
}

impl Status {
    /// The status as output names it (`current`, `outdated`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Outdated => "outdated",
            Self::Unpinned => "unpinned",
            Self::Skipped => "skipped",
            Self::Error => "error",
        }
    }
}

/// What the registry said about a reference. An outdated or unpinned reference always
/// carries the digest to pin, an error always its message: no other combination exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Not looked up: the scanner's `skip_reason`, or held by the rules before lookup.
    Skipped,
    /// The pin is what the tag points at.
    Current,
    /// The pin should become this digest.
    Outdated(Digest),
    /// No digest yet; this is what `--pin` would add.
    Unpinned(Digest),
    /// The lookup failed; one line naming the registry.
    Error(String),
}

impl Lookup {
    /// The status this lookup gives.
    #[must_use]
    pub fn status(&self) -> Status {
        match self {
            Self::Skipped => Status::Skipped,
            Self::Current => Status::Current,
            Self::Outdated(_) => Status::Outdated,
            Self::Unpinned(_) => Status::Unpinned,
            Self::Error(_) => Status::Error,
        }
    }

    /// The digest to pin, for an outdated or unpinned reference.
    #[must_use]
    pub fn new_digest(&self) -> Option<&Digest> {
        match self {
            Self::Outdated(d) | Self::Unpinned(d) => Some(d),
            _ => None,
        }
    }

    /// The lookup's error message, if it failed.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a reference is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Held {
    /// A rule says `ignore = true`.
    Ignored,
    /// Outside `[scan]` `include`, or inside `exclude`.
    ExcludedPath,
    /// The new digest is in `ignore_digests`.
    IgnoredDigest,
    /// The new digest has not been seen for `min_age` yet.
    TooYoung,
    /// The change set's schedule has not ticked since its last proposal.
    OutsideSchedule,
}

impl Held {
    /// The hold as output names it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::ExcludedPath => "excluded-path",
            Self::IgnoredDigest => "ignored-digest",
            Self::TooYoung => "too-young",
            Self::OutsideSchedule => "outside-schedule",
        }
    }
}

/// Everything known about one reference.
#[derive(Debug, Clone)]
pub struct Record {
    /// The reference as the scan found it.
    pub found: Found,
    /// The rules that apply to it (service config, then repository config).
    pub settings: Effective,
    /// What the registry said.
    pub lookup: Lookup,
    /// Why the rules leave it alone, if they do.
    pub held: Option<Held>,
}

impl Record {
    /// A record before any lookup.
    #[must_use]
    pub fn new(found: Found, settings: Effective) -> Self {
        Self {
            found,
            settings,
            lookup: Lookup::Skipped,
            held: None,
        }
    }

    /// The record's status: a skip reason or hold first, else the lookup's.
    #[must_use]
    pub fn status(&self) -> Status {
        self.lookup.status()
    }

    /// The digest to pin to, when the lookup found one to change to.
    #[must_use]
    pub fn new_digest(&self) -> Option<&Digest> {
        self.lookup.new_digest()
    }
}

/// `check --format json`'s object: the scan fields, then `status`, `new_digest`,
/// `error` and `held`.
impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Record", Found::FIELDS + 4)?;
        self.found.serialize_fields(&mut st)?;
        st.serialize_field("status", &self.status())?;
        st.serialize_field("new_digest", &self.new_digest())?;
        st.serialize_field("error", &self.lookup.error())?;
        st.serialize_field("held", &self.held)?;
        st.end()
    }
}
