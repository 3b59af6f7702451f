//! Lookups at the request budget: every unique `(registry, repository, tag)` is asked
//! once per run (one `HEAD`), whatever number of files and lines name it; facts about
//! digests (an index or a platform manifest, which platform, an index's children) never
//! change, so each is learned once and cached.
//!
//! Deciding a pin's new digest keeps the kind of pin the user chose. A pin equal to the
//! tag's digest is current (no more requests). Otherwise, when the tag now points at an
//! index, the old pin's kind is learned (`HEAD` by digest); an index pin takes the
//! index's digest, a platform pin takes the same platform's child from the index (`GET`
//! the index; the platform comes from `FROM --platform` or from the old manifest's config
//! blob). A tag that no longer offers the platform is an error, and the pin stays; so is
//! an old pin whose kind cannot be learned (deleted from the registry, with no platform
//! in the file): guessing could turn a platform pin into an index pin.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use super::client::{Client, Head};
use super::error::Error;
use super::manifest::{self, Child, ImageFacts, Kind};
use crate::imageref::{Digest, Platform};

/// A tag to look up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

impl std::fmt::Display for TagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// A digest in a repository: the key for immutable facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DigestKey {
    registry: String,
    repository: String,
    digest: Digest,
}

/// Shared error: one failed lookup fans out to every reference that needed it.
pub type Shared<T> = Result<T, Arc<Error>>;

/// A lazily computed, shared value per key (single-flight).
struct Memo<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<Shared<V>>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    fn new() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }

    async fn get<F, Fut>(&self, key: &K, compute: F) -> Shared<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        let cell = self
            .cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| async { compute().await.map_err(Arc::new) })
            .await
            .clone()
    }
}

/// How an old pin relates to the tag now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinUpdate {
    /// The pin is what the tag points at (for its kind and platform).
    Current,
    /// The pin should become this digest.
    Outdated(Digest),
}

/// Lookups for one run.
pub struct Resolver {
    client: Arc<Client>,
    tags: Memo<TagKey, Head>,
    kinds: Memo<DigestKey, Option<Kind>>,
    platforms: Memo<DigestKey, Platform>,
    children: Memo<DigestKey, Vec<Child>>,
    facts: Memo<DigestKey, ImageFacts>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Resolver {
    #[must_use]
    pub fn new(client: Arc<Client>) -> Arc<Self> {
        Arc::new(Self {
            client,
            tags: Memo::new(),
            kinds: Memo::new(),
            platforms: Memo::new(),
            children: Memo::new(),
            facts: Memo::new(),
        })
    }

    /// The tag's current digest and media type: one `HEAD` per tag per run.
    pub async fn tag(&self, key: &TagKey) -> Shared<Head> {
        self.tags
            .get(key, || async {
                let head = self
                    .client
                    .head_manifest(&key.registry, &key.repository, &key.tag)
                    .await?;
                if let Some(body) = &head.body
                    && head.media_type.as_deref().and_then(Kind::of) == Some(Kind::Index)
                {
                    self.keep_children(key, &head.digest, body).await;
                }
                Ok(head)
            })
            .await
    }

    /// An index read in full to learn its digest or kind (no `Docker-Content-Digest`,
    /// no telling `Content-Type`) is its children already: kept, so it is not fetched
    /// again.
    async fn keep_children(&self, key: &TagKey, digest: &Digest, body: &[u8]) {
        let dk = Self::digest_key(key, digest);
        let _ = self
            .children
            .get(&dk, || async {
                manifest::index_children(body).map_err(|why| Error::Invalid {
                    registry: dk.registry.clone(),
                    what: "index",
                    why,
                })
            })
            .await;
    }

    /// Looks up every tag concurrently (the client limits each registry).
    pub async fn tags(self: &Arc<Self>, keys: HashSet<TagKey>) -> HashMap<TagKey, Shared<Head>> {
        let mut set = JoinSet::new();
        for key in keys {
            let this = Arc::clone(self);
            set.spawn(async move {
                let head = this.tag(&key).await;
                (key, head)
            });
        }
        let mut out = HashMap::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((key, head)) = joined {
                out.insert(key, head);
            }
        }
        out
    }

    /// The new digest for a pin of `key` at `old`, keeping the pin's kind and platform.
    /// `platform` is what the file fixes (`FROM --platform=…`), if anything.
    ///
    /// # Errors
    /// The tag's lookup error, the errors of learning the old pin's facts, and
    /// [`Error::PlatformNotOffered`].
    pub async fn update_pin(
        &self,
        key: &TagKey,
        old: &Digest,
        platform: Option<&Platform>,
    ) -> Shared<PinUpdate> {
        let head = self.tag(key).await?;
        if head.digest == *old {
            return Ok(PinUpdate::Current);
        }
        if self.tag_kind(key, &head).await? != Kind::Index {
            return Ok(PinUpdate::Outdated(head.digest));
        }
        let old_kind = match self.kind(key, old).await {
            Ok(Some(kind)) => kind,
            // A manifest of a type repin does not know: its kind cannot be kept.
            Ok(None) => {
                return Err(Arc::new(self.pin_unknown(
                    key,
                    old,
                    "has a media type repin does not know",
                )));
            }
            // The old manifest is gone (registries collect untagged manifests): the
            // file's platform, if it fixes one, says which child to take; without one
            // the pin's kind cannot be learned, and guessing could change it.
            Err(e) if e.is_not_found() => match platform {
                Some(_) => Kind::Manifest,
                None => {
                    return Err(Arc::new(self.pin_unknown(
                        key,
                        old,
                        "is gone from the registry, so whether it was the index or one platform's manifest cannot be learned; fix the platform in the file (FROM --platform=…) or re-pin by hand",
                    )));
                }
            },
            Err(e) => return Err(e),
        };
        if old_kind == Kind::Index {
            return Ok(PinUpdate::Outdated(head.digest));
        }
        let platform = match platform {
            Some(p) => p.clone(),
            None => self.platform(key, old).await?,
        };
        let children = self.children(key, &head.digest).await?;
        match manifest::select(&children, &platform) {
            Some(child) if child.digest == *old => Ok(PinUpdate::Current),
            Some(child) => Ok(PinUpdate::Outdated(child.digest.clone())),
            None => Err(Arc::new(Error::PlatformNotOffered {
                registry: key.registry.clone(),
                repository: key.repository.clone(),
                tag: key.tag.clone(),
                platform: platform.to_string(),
            })),
        }
    }

    /// The digest a reference resolves to for `platform` (like `crane digest
    /// --platform`): the tag's own digest, or its index's child for the platform.
    ///
    /// # Errors
    /// As [`Resolver::update_pin`].
    pub async fn digest_for(&self, key: &TagKey, platform: Option<&Platform>) -> Shared<Digest> {
        let head = self.tag(key).await?;
        let Some(platform) = platform else {
            return Ok(head.digest);
        };
        if self.tag_kind(key, &head).await? != Kind::Index {
            return Ok(head.digest);
        }
        let children = self.children(key, &head.digest).await?;
        manifest::select(&children, platform)
            .map(|c| c.digest.clone())
            .ok_or_else(|| {
                Arc::new(Error::PlatformNotOffered {
                    registry: key.registry.clone(),
                    repository: key.repository.clone(),
                    tag: key.tag.clone(),
                    platform: platform.to_string(),
                })
            })
    }

    /// Created time and source of an image (for PR bodies): the manifest's or index's
    /// annotations, then the config of the manifest (an index's first child). A few GETs,
    /// made only when a change is proposed; cached.
    ///
    /// # Errors
    /// The registry's.
    pub async fn facts(&self, key: &TagKey, digest: &Digest) -> Shared<ImageFacts> {
        let dk = Self::digest_key(key, digest);
        self.facts
            .get(&dk, || async {
                let mut facts = ImageFacts::default();
                let mut fetched = self
                    .client
                    .get_manifest(&dk.registry, &dk.repository, &dk.digest.to_string())
                    .await?;
                facts.add_annotations(&fetched.bytes);
                if fetched.media_type.as_deref().and_then(Kind::of) == Some(Kind::Index)
                    && let Some(child) = manifest::index_children(&fetched.bytes)
                        .ok()
                        .and_then(|c| c.into_iter().next())
                {
                    fetched = self
                        .client
                        .get_manifest(&dk.registry, &dk.repository, &child.digest.to_string())
                        .await?;
                    facts.add_annotations(&fetched.bytes);
                }
                if let Ok(config) = manifest::config_digest(&fetched.bytes) {
                    let blob = self
                        .client
                        .get_blob(&dk.registry, &dk.repository, &config)
                        .await?;
                    facts.add_config(&blob);
                }
                Ok(facts)
            })
            .await
    }

    fn digest_key(key: &TagKey, digest: &Digest) -> DigestKey {
        DigestKey {
            registry: key.registry.clone(),
            repository: key.repository.clone(),
            digest: digest.clone(),
        }
    }

    fn pin_unknown(&self, key: &TagKey, old: &Digest, why: &str) -> Error {
        Error::PinUnknown {
            registry: key.registry.clone(),
            repository: key.repository.clone(),
            digest: format!("{}:{}", old.algorithm().name(), old.short(12)),
            why: why.to_owned(),
        }
    }

    /// Whether the tag points at an index or a manifest. A kind that cannot be learned
    /// is an error: taking the tag's digest then could change a platform pin into an
    /// index pin.
    async fn tag_kind(&self, key: &TagKey, head: &Head) -> Shared<Kind> {
        let known = match head.media_type.as_deref().and_then(Kind::of) {
            Some(kind) => Some(kind),
            None => self.kind(key, &head.digest).await?,
        };
        known.ok_or_else(|| {
            Arc::new(self.pin_unknown(
                key,
                &head.digest,
                "(the tag's manifest) has a media type repin does not know, so whether the tag is an index cannot be learned",
            ))
        })
    }

    /// Index or manifest, by `HEAD` on the digest; when the registry's `Content-Type`
    /// does not say, by the manifest's own bytes (immutable, cached).
    async fn kind(&self, key: &TagKey, digest: &Digest) -> Shared<Option<Kind>> {
        let dk = Self::digest_key(key, digest);
        self.kinds
            .get(&dk, || async {
                let head = self
                    .client
                    .head_manifest(&dk.registry, &dk.repository, &dk.digest.to_string())
                    .await?;
                let mut body = head.body;
                let kind = match head.media_type.as_deref().and_then(Kind::of) {
                    Some(kind) => Some(kind),
                    None => {
                        let bytes = match &body {
                            Some(bytes) => Arc::clone(bytes),
                            None => self
                                .client
                                .get_manifest(&dk.registry, &dk.repository, &dk.digest.to_string())
                                .await?
                                .bytes
                                .into(),
                        };
                        let kind = Kind::of_body(&bytes);
                        body = Some(bytes);
                        kind
                    }
                };
                if let Some(bytes) = &body
                    && kind == Some(Kind::Index)
                {
                    self.keep_children(key, digest, bytes).await;
                }
                Ok(kind)
            })
            .await
    }

    /// A platform manifest's platform, from its config blob (immutable, cached).
    async fn platform(&self, key: &TagKey, digest: &Digest) -> Shared<Platform> {
        let dk = Self::digest_key(key, digest);
        self.platforms
            .get(&dk, || async {
                let invalid = |why: String| Error::Invalid {
                    registry: dk.registry.clone(),
                    what: "image manifest",
                    why,
                };
                let fetched = self
                    .client
                    .get_manifest(&dk.registry, &dk.repository, &dk.digest.to_string())
                    .await?;
                let config = manifest::config_digest(&fetched.bytes).map_err(invalid)?;
                let blob = self
                    .client
                    .get_blob(&dk.registry, &dk.repository, &config)
                    .await?;
                manifest::config_platform(&blob).map_err(|why| Error::Invalid {
                    registry: dk.registry.clone(),
                    what: "image config",
                    why,
                })
            })
            .await
    }

    /// An index's platform children, by `GET` on its digest (immutable, cached).
    async fn children(&self, key: &TagKey, digest: &Digest) -> Shared<Vec<Child>> {
        let dk = Self::digest_key(key, digest);
        self.children
            .get(&dk, || async {
                let fetched = self
                    .client
                    .get_manifest(&dk.registry, &dk.repository, &dk.digest.to_string())
                    .await?;
                manifest::index_children(&fetched.bytes).map_err(|why| Error::Invalid {
                    registry: dk.registry.clone(),
                    what: "index",
                    why,
                })
            })
            .await
    }
}
