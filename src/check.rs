//! `check`: each finding's status against the registry.
//!
//! Every updatable finding names a tag (`latest` when none is written); the unique tags
//! are looked up once, concurrently, then each pin is decided with
//! [`Resolver::update_pin`]. Statuses: `current` (the pin is what the tag points at),
//! `outdated` (with `new_digest`), `unpinned` (no digest; `new_digest` is what `--pin`
//! would add), `skipped` (the scanner's `skip_reason`), `error` (the lookup failed; the
//! message names the registry).

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinSet;

use crate::policy::Held;
use crate::registry::resolve::{PinUpdate, Resolver, TagKey};
use crate::scan::Found;

/// A reference's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Current,
    Outdated,
    Unpinned,
    Skipped,
    Error,
}

/// A finding with its status.
#[derive(Debug, Clone)]
pub struct Checked {
    pub found: Found,
    pub status: Status,
    /// The digest the reference should carry (outdated), or would get (unpinned).
    pub new_digest: Option<String>,
    /// Why the lookup failed.
    pub error: Option<String>,
    /// Why the rules leave the reference alone (set by [`crate::policy`]).
    pub held: Option<Held>,
}

impl Serialize for Checked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Checked", Found::FIELDS + 4)?;
        self.found.serialize_fields(&mut st)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("new_digest", &self.new_digest)?;
        st.serialize_field("error", &self.error)?;
        st.serialize_field("held", &self.held)?;
        st.end()
    }
}

/// The tag a finding is looked up by, if it can be updated at all.
#[must_use]
pub fn tag_key(found: &Found) -> Option<TagKey> {
    if found.skip_reason.is_some() {
        return None;
    }
    let image = found.image.as_ref()?;
    Some(TagKey {
        registry: image.registry.clone(),
        repository: image.repository.clone(),
        tag: image.tag.clone().unwrap_or_else(|| "latest".to_owned()),
    })
}

/// Checks every finding. Findings already held by the rules (`held[i]`, ignored or
/// excluded) are not looked up: they are `skipped`. `tick` is called once per finding
/// decided (for progress).
pub async fn check(
    resolver: &Arc<Resolver>,
    found: Vec<Found>,
    held: &[Option<Held>],
    tick: &(dyn Fn() + Sync),
) -> Vec<Checked> {
    let keys: HashSet<TagKey> = found
        .iter()
        .zip(held.iter().chain(std::iter::repeat(&None)))
        .filter(|(_, h)| h.is_none())
        .filter_map(|(f, _)| tag_key(f))
        .collect();
    // All tags at once: one HEAD each, concurrently.
    let _ = resolver.tags(keys).await;
    let mut set = JoinSet::new();
    for (i, f) in found.into_iter().enumerate() {
        let resolver = Arc::clone(resolver);
        let pre = held.get(i).copied().flatten();
        set.spawn(async move {
            let checked = match pre {
                Some(reason) => Checked {
                    found: f,
                    status: Status::Skipped,
                    new_digest: None,
                    error: None,
                    held: Some(reason),
                },
                None => decide(&resolver, f).await,
            };
            (i, checked)
        });
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(pair) = joined {
            tick();
            out.push(pair);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, c)| c).collect()
}

async fn decide(resolver: &Resolver, found: Found) -> Checked {
    let Some(key) = tag_key(&found) else {
        return Checked {
            found,
            status: Status::Skipped,
            new_digest: None,
            error: None,
            held: None,
        };
    };
    let old = found
        .image
        .as_ref()
        .and_then(|i| i.digest.as_ref())
        .map(ToString::to_string);
    let result = match &old {
        None => resolver
            .tag(&key)
            .await
            .map(|head| (Status::Unpinned, Some(head.digest))),
        Some(old) => resolver
            .update_pin(&key, old, found.platform.as_ref())
            .await
            .map(|update| match update {
                PinUpdate::Current => (Status::Current, None),
                PinUpdate::Outdated(new) => (Status::Outdated, Some(new)),
            }),
    };
    match result {
        Ok((status, new_digest)) => Checked {
            found,
            status,
            new_digest,
            error: None,
            held: None,
        },
        Err(e) => Checked {
            found,
            status: Status::Error,
            new_digest: None,
            error: Some(e.to_string()),
            held: None,
        },
    }
}

/// `check`'s exit code: 2 when any lookup failed, else 1 when any pin is outdated and
/// not held back by the rules, else 0.
#[must_use]
pub fn exit_code(checked: &[Checked]) -> u8 {
    if checked.iter().any(|c| c.status == Status::Error) {
        2
    } else if checked
        .iter()
        .any(|c| c.status == Status::Outdated && c.held.is_none())
    {
        1
    } else {
        0
    }
}
