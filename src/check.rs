//! `check`: each reference's status against the registry.
//!
//! Every updatable finding names a tag (`latest` when none is written); the unique tags
//! are looked up once, concurrently, then each pin is decided with
//! [`Resolver::update_pin`]. The outcome is written into the reference's own
//! [`Record`]: `current`, `outdated` or `unpinned` with the digest to pin, `skipped`
//! (the scanner's `skip_reason`, or held by the rules before lookup), or `error` (the
//! message names the registry). A lookup task that dies (a panic) is an error at its own
//! reference, never a missing row.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::imageref::Digest;
use crate::model::{Lookup, Record, Status};
use crate::registry::resolve::{ManifestKey, PinUpdate, Reference, Resolver, TagKey};
use crate::scan::Found;

/// The tag a finding is looked up by, if it can be updated at all.
#[must_use]
pub fn tag_key(found: &Found) -> Option<TagKey> {
    if found.skip_reason.is_some() {
        return None;
    }
    let image = found.image.as_ref()?;
    Some(TagKey {
        name: image.name(),
        tag: found.lookup_tag()?.to_owned(),
    })
}

/// Looks up every record not already held by the rules and writes the outcome into it.
/// `tick` is called once per record decided (for progress).
pub async fn check(resolver: &Arc<Resolver>, records: &mut [Record], tick: &(dyn Fn() + Sync)) {
    let keys: HashSet<TagKey> = records
        .iter()
        .filter(|r| r.held.is_none())
        .filter_map(|r| tag_key(&r.found))
        .collect();
    // All tags at once: one HEAD each, concurrently.
    let _ = resolver.tags(keys).await;
    let mut tasks = Vec::new();
    for (i, record) in records.iter_mut().enumerate() {
        let key = tag_key(&record.found).filter(|_| record.held.is_none());
        let Some(key) = key else {
            record.lookup = Lookup::Skipped;
            tick();
            continue;
        };
        let resolver = Arc::clone(resolver);
        let old = record.found.image.as_ref().and_then(|i| i.digest.clone());
        let platform = record.found.platform.clone();
        let failed = format!(
            "{}: the lookup of {key} failed unexpectedly",
            key.name.registry
        );
        tasks.push((i, failed, async move {
            lookup(&resolver, &key, old.as_ref(), platform.as_ref()).await
        }));
    }
    for (i, outcome) in join_indexed(tasks, tick).await {
        records[i].lookup = outcome;
    }
}

/// Runs `(index, message if it dies, task)` concurrently; each result comes back with
/// its index, and a task that panics yields `Lookup::Error(message)` at its own index.
async fn join_indexed<F>(
    tasks: Vec<(usize, String, F)>,
    tick: &(dyn Fn() + Sync),
) -> Vec<(usize, Lookup)>
where
    F: Future<Output = Lookup> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut index = HashMap::new();
    for (i, failed, task) in tasks {
        let handle = set.spawn(task);
        index.insert(handle.id(), (i, failed));
    }
    let mut out = Vec::with_capacity(index.len());
    while let Some(joined) = set.join_next_with_id().await {
        tick();
        let (id, lookup) = match joined {
            Ok((id, lookup)) => (id, Some(lookup)),
            Err(e) => (e.id(), None),
        };
        if let Some((i, failed)) = index.remove(&id) {
            out.push((i, lookup.unwrap_or(Lookup::Error(failed))));
        }
    }
    out
}

/// One reference's lookup, in a span naming the image (`registry/repository:tag`).
#[tracing::instrument(level = "debug", skip_all, fields(image = %key))]
async fn lookup(
    resolver: &Resolver,
    key: &TagKey,
    old: Option<&Digest>,
    platform: Option<&crate::imageref::Platform>,
) -> Lookup {
    let result = match old {
        None => resolver
            .tag(key)
            .await
            .map(|head| Lookup::Unpinned(head.digest)),
        Some(old) => resolver
            .update_pin(key, old, platform)
            .await
            .map(|update| match update {
                PinUpdate::Current => Lookup::Current,
                PinUpdate::Outdated(new) => Lookup::Outdated(new),
            }),
    };
    result.unwrap_or_else(|e| Lookup::Error(e.to_string()))
}

/// `repin digest`: what `image` resolves to now — the tag's digest (`latest` when it
/// names none), or with `platform` that platform's manifest in the tag's index; an
/// image named by digest alone resolves to itself once the registry confirms it. Also
/// returns the full reference (`registry/repository:tag@digest`).
///
/// # Errors
/// The registry's, for this image.
pub async fn digest_of(
    resolver: &Resolver,
    image: &crate::imageref::ImageRef,
    platform: Option<&crate::imageref::Platform>,
) -> Result<(Digest, crate::imageref::ImageRef), Arc<crate::registry::Error>> {
    let reference = match (&image.tag, &image.digest) {
        (None, Some(digest)) => Reference::Digest(digest.clone()),
        _ => Reference::Tag(image.tag_or_default().to_owned()),
    };
    let key = ManifestKey {
        name: image.name(),
        reference,
    };
    let digest = resolver.digest_for(&key, platform).await?;
    let mut full = image.clone();
    if full.tag.is_none() && full.digest.is_none() {
        // The tag that was looked up, as `update --pin` writes it.
        full.tag = Some(crate::imageref::DEFAULT_TAG.to_owned());
    }
    full.digest = Some(digest.clone());
    Ok((digest, full))
}

/// `check`'s exit code: 2 when any lookup failed, else 1 when any pin is outdated and
/// not held back by the rules, else 0.
#[must_use]
pub fn exit_code(records: &[Record]) -> u8 {
    if records.iter().any(|r| r.status() == Status::Error) {
        2
    } else {
        u8::from(
            records
                .iter()
                .any(|r| r.status() == Status::Outdated && r.held.is_none()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Task = std::pin::Pin<Box<dyn Future<Output = Lookup> + Send>>;

    /// One record per reference: a task that dies is an error at its own index, and
    /// every other task's result lands at its own index too.
    #[tokio::test]
    async fn one_record_per_reference_a_dead_lookup_stays_in_its_place() {
        let d = |c: char| -> Digest {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap()
        };
        let (a, b) = (d('a'), d('b'));
        let tasks: Vec<(usize, String, Task)> = vec![
            (
                0,
                "zero died".into(),
                Box::pin(async move { Lookup::Outdated(a) }),
            ),
            (
                1,
                "one died".into(),
                Box::pin(async {
                    let huge: u64 = std::hint::black_box(u64::MAX);
                    let _ = std::time::Instant::now() + std::time::Duration::from_secs(huge);
                    Lookup::Current
                }),
            ),
            (
                2,
                "two died".into(),
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    Lookup::Unpinned(b)
                }),
            ),
        ];
        let ticks = std::sync::atomic::AtomicUsize::new(0);
        let mut out = join_indexed(tasks, &|| {
            ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .await;
        out.sort_by_key(|(i, _)| *i);
        assert_eq!(ticks.into_inner(), 3);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], (0, Lookup::Outdated(d('a'))));
        assert_eq!(out[1], (1, Lookup::Error("one died".into())));
        assert_eq!(out[2], (2, Lookup::Unpinned(d('b'))));
    }
}
