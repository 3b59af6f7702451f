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
use super::manifest::{self, ImageFacts, Kind, PlatformDescriptor};
use crate::imageref::{Digest, Platform, RepositoryName};

/// A tag to look up: the repository and the tag. Displays as `registry/repository:tag`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey {
    /// The repository.
    pub name: RepositoryName,
    /// The tag.
    pub tag: String,
}

impl TagKey {
    /// A tag key from its parts.
    #[must_use]
    pub fn new(registry: &str, repository: &str, tag: &str) -> Self {
        Self {
            name: RepositoryName::new(registry, repository),
            tag: tag.to_owned(),
        }
    }
}

impl std::fmt::Display for TagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// What a manifest is asked for by, as the distribution spec's `<reference>`: a tag
/// (mutable: looked up) or a digest (immutable: checked).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag (mutable: looked up).
    Tag(String),
    /// A digest (immutable: checked).
    Digest(Digest),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tag(tag) => f.write_str(tag),
            Self::Digest(digest) => write!(f, "{digest}"),
        }
    }
}

/// A manifest to resolve: the repository and a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestKey {
    /// The repository.
    pub name: RepositoryName,
    /// The tag or digest.
    pub reference: Reference,
}

/// A digest in a repository: the key for immutable facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DigestKey {
    name: RepositoryName,
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

/// Where immutable facts outlive a run: bytes by key. The job hands the state store in
/// ([`Resolver::keep_facts_in`]); both ways are best effort: a fact that is not kept,
/// or kept in a shape that no longer reads, is learned again from the registry.
pub trait Kept: Send + Sync {
    /// The bytes kept under `key`, if any.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Keeps `value` under `key`.
    fn put(&self, key: &str, value: &[u8]);
}

/// Lookups for one run.
pub struct Resolver {
    client: Arc<Client>,
    /// Where facts about digests are kept across runs, once the job gives a place.
    kept: std::sync::OnceLock<Arc<dyn Kept>>,
    tags: Memo<TagKey, Head>,
    kinds: Memo<DigestKey, Option<Kind>>,
    platforms: Memo<DigestKey, Platform>,
    descriptors: Memo<DigestKey, Vec<PlatformDescriptor>>,
    facts: Memo<DigestKey, ImageFacts>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Resolver {
    /// Lookups through `client`, with empty caches.
    #[must_use]
    pub fn new(client: Arc<Client>) -> Arc<Self> {
        Arc::new(Self {
            client,
            kept: std::sync::OnceLock::new(),
            tags: Memo::new(),
            kinds: Memo::new(),
            platforms: Memo::new(),
            descriptors: Memo::new(),
            facts: Memo::new(),
        })
    }

    /// Keeps facts about digests (kind, platform, an index's children, created and
    /// source) in `kept` from now on, and reads them from there before asking a
    /// registry. The first place given stays.
    pub fn keep_facts_in(&self, kept: Arc<dyn Kept>) {
        let _ = self.kept.set(kept);
    }

    /// A fact about a digest: kept from an earlier run, else `learn`ed (and kept). The
    /// key names the fact, the repository and the digest; a digest's bytes never
    /// change, so neither does what they say.
    async fn remembered<V, F, Fut>(&self, fact: &str, dk: &DigestKey, learn: F) -> Result<V, Error>
    where
        V: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        let kept = self.kept.get();
        let key = format!("{fact} {}@{}", dk.name, dk.digest);
        if let Some(v) = kept
            .and_then(|k| k.get(&key))
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            return Ok(v);
        }
        let v = learn().await?;
        if let (Some(kept), Ok(bytes)) = (kept, serde_json::to_vec(&v)) {
            kept.put(&key, &bytes);
        }
        Ok(v)
    }

    /// A fact about a digest, once per run (`memo`) and across runs ([`Self::remembered`]).
    async fn fact<V, F, Fut>(
        &self,
        memo: &Memo<DigestKey, V>,
        fact: &str,
        dk: &DigestKey,
        learn: F,
    ) -> Shared<V>
    where
        V: Clone + serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        memo.get(dk, || self.remembered(fact, dk, learn)).await
    }

    /// The manifest a digest key names, read in full (and checked against the digest).
    async fn manifest(&self, dk: &DigestKey) -> Result<super::client::Fetched, Error> {
        self.client
            .get_manifest(
                &dk.name.registry,
                &dk.name.repository,
                &dk.digest.to_string(),
            )
            .await
    }

    /// The tag's current digest and media type: one `HEAD` per tag per run.
    ///
    /// # Errors
    /// The registry's, shared by every reference that asked.
    #[tracing::instrument(level = "debug", skip_all, fields(image = %key))]
    pub async fn tag(&self, key: &TagKey) -> Shared<Head> {
        self.tags
            .get(key, || async {
                let head = self
                    .client
                    .head_manifest(&key.name.registry, &key.name.repository, &key.tag)
                    .await?;
                if let Some(body) = &head.body
                    && head.media_type.as_deref().and_then(Kind::of) == Some(Kind::Index)
                {
                    self.keep_descriptors(&key.name, &head.digest, body).await;
                }
                Ok(head)
            })
            .await
    }

    /// An index read in full to learn its digest or kind (no `Docker-Content-Digest`,
    /// no telling `Content-Type`) is its children already: kept, so it is not fetched
    /// again.
    async fn keep_descriptors(&self, name: &RepositoryName, digest: &Digest, body: &[u8]) {
        let dk = Self::digest_key(name, digest);
        let _ = self
            .fact(&self.descriptors, "children", &dk, || async {
                manifest::platform_descriptors(body).map_err(|why| Error::Invalid {
                    registry: dk.name.registry.clone(),
                    what: "index",
                    why,
                })
            })
            .await;
    }

    /// Looks up every tag concurrently (the client limits each registry), after asking
    /// each registry for its repositories' tokens in batches
    /// ([`Client::authorize_ahead`]).
    pub async fn tags(self: &Arc<Self>, keys: HashSet<TagKey>) -> HashMap<TagKey, Shared<Head>> {
        let mut by_registry: HashMap<String, Vec<String>> = HashMap::new();
        for key in &keys {
            by_registry
                .entry(key.name.registry.clone())
                .or_default()
                .push(key.name.repository.clone());
        }
        let mut ahead = JoinSet::new();
        for (registry, repositories) in by_registry {
            let client = Arc::clone(&self.client);
            ahead.spawn(async move {
                let repositories: Vec<&str> = repositories.iter().map(String::as_str).collect();
                client.authorize_ahead(&registry, &repositories).await;
            });
        }
        while ahead.join_next().await.is_some() {}
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
    #[tracing::instrument(level = "debug", skip_all, fields(image = %key, pin = %old.short(12)))]
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
        let name = &key.name;
        if self.tag_kind(name, &head).await? != Kind::Index {
            return Ok(PinUpdate::Outdated(head.digest));
        }
        let old_kind = match self.kind(name, old).await {
            Ok(Some(kind)) => kind,
            // A manifest of a type repin does not know: its kind cannot be kept.
            Ok(None) => {
                return Err(Arc::new(Self::pin_unknown(
                    name,
                    old,
                    "has a media type repin does not know",
                )));
            }
            // The old manifest is gone (registries collect untagged manifests): the
            // file's platform, if it fixes one, says which child to take; without one
            // the pin's kind cannot be learned, and guessing could change it.
            Err(e) if e.is_not_found() => match platform {
                Some(_) => Kind::PlatformManifest,
                None => {
                    return Err(Arc::new(Self::pin_unknown(
                        name,
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
            None => self.platform(name, old).await?,
        };
        let child = self
            .platform_child(name, &key.tag, &head.digest, &platform)
            .await?;
        Ok(if child == *old {
            PinUpdate::Current
        } else {
            PinUpdate::Outdated(child)
        })
    }

    /// The digest a manifest key resolves to for `platform` (like `crane digest
    /// --platform`): the tag's (or digest's) own manifest, or its index's child for the
    /// platform. A tag is looked up as in [`Resolver::tag`]; a digest is asked for with
    /// `HEAD` and must come back as itself.
    ///
    /// # Errors
    /// As [`Resolver::update_pin`]; [`Error::OtherManifest`] when a registry answers a
    /// digest with another.
    #[tracing::instrument(level = "debug", skip_all, fields(image = %key.name, reference = %key.reference))]
    pub async fn digest_for(
        &self,
        key: &ManifestKey,
        platform: Option<&Platform>,
    ) -> Shared<Digest> {
        let name = &key.name;
        let head = match &key.reference {
            Reference::Tag(tag) => {
                self.tag(&TagKey {
                    name: name.clone(),
                    tag: tag.clone(),
                })
                .await?
            }
            Reference::Digest(digest) => {
                let head = self
                    .client
                    .head_manifest(&name.registry, &name.repository, &digest.to_string())
                    .await?;
                if head.digest != *digest {
                    return Err(Arc::new(Error::OtherManifest {
                        registry: name.registry.clone(),
                        asked: digest.to_string(),
                        answered: head.digest.to_string(),
                    }));
                }
                head
            }
        };
        let Some(platform) = platform else {
            return Ok(head.digest);
        };
        if self.tag_kind(name, &head).await? != Kind::Index {
            return Ok(head.digest);
        }
        self.platform_child(name, &key.reference.to_string(), &head.digest, platform)
            .await
    }

    /// The child of index `index` for `platform`; `shown` names what the index was
    /// asked for by (a tag or digest), for the error.
    async fn platform_child(
        &self,
        name: &RepositoryName,
        shown: &str,
        index: &Digest,
        platform: &Platform,
    ) -> Shared<Digest> {
        let children = self.descriptors(name, index).await?;
        manifest::select(&children, platform)
            .map(|c| c.digest.clone())
            .ok_or_else(|| {
                Arc::new(Error::PlatformNotOffered {
                    registry: name.registry.clone(),
                    repository: name.repository.clone(),
                    tag: shown.to_owned(),
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
    #[tracing::instrument(level = "debug", skip_all, fields(image = %name, digest = %digest.short(12)))]
    pub async fn facts(&self, name: &RepositoryName, digest: &Digest) -> Shared<ImageFacts> {
        let dk = Self::digest_key(name, digest);
        self.fact(&self.facts, "facts", &dk, || async {
            let mut facts = ImageFacts::default();
            let mut fetched = self.manifest(&dk).await?;
            facts.add_annotations(&fetched.bytes);
            if fetched.media_type.as_deref().and_then(Kind::of) == Some(Kind::Index)
                && let Some(child) = manifest::platform_descriptors(&fetched.bytes)
                    .ok()
                    .and_then(|c| c.into_iter().next())
            {
                fetched = self
                    .client
                    .get_manifest(
                        &dk.name.registry,
                        &dk.name.repository,
                        &child.digest.to_string(),
                    )
                    .await?;
                facts.add_annotations(&fetched.bytes);
            }
            if let Ok(config) = manifest::config_digest(&fetched.bytes) {
                let blob = self
                    .client
                    .get_blob(&dk.name.registry, &dk.name.repository, &config)
                    .await?;
                facts.add_config(&blob);
            }
            Ok(facts)
        })
        .await
    }

    fn digest_key(name: &RepositoryName, digest: &Digest) -> DigestKey {
        DigestKey {
            name: name.clone(),
            digest: digest.clone(),
        }
    }

    fn pin_unknown(name: &RepositoryName, old: &Digest, why: &str) -> Error {
        Error::PinUnknown {
            registry: name.registry.clone(),
            repository: name.repository.clone(),
            digest: format!("{}:{}", old.algorithm().name(), old.short(12)),
            why: why.to_owned(),
        }
    }

    /// Whether the tag points at an index or a manifest. A kind that cannot be learned
    /// is an error: taking the tag's digest then could change a platform pin into an
    /// index pin.
    async fn tag_kind(&self, name: &RepositoryName, head: &Head) -> Shared<Kind> {
        let known = match head.media_type.as_deref().and_then(Kind::of) {
            Some(kind) => Some(kind),
            None => self.kind(name, &head.digest).await?,
        };
        known.ok_or_else(|| {
            Arc::new(Self::pin_unknown(
                name,
                &head.digest,
                "(the tag's manifest) has a media type repin does not know, so whether the tag is an index cannot be learned",
            ))
        })
    }

    /// Index or manifest, by `HEAD` on the digest; when the registry's `Content-Type`
    /// does not say, by the manifest's own bytes (immutable, cached).
    async fn kind(&self, name: &RepositoryName, digest: &Digest) -> Shared<Option<Kind>> {
        let dk = Self::digest_key(name, digest);
        self.fact(&self.kinds, "kind", &dk, || async {
            let head = self
                .client
                .head_manifest(
                    &dk.name.registry,
                    &dk.name.repository,
                    &dk.digest.to_string(),
                )
                .await?;
            let mut body = head.body;
            let kind = if let Some(kind) = head.media_type.as_deref().and_then(Kind::of) {
                Some(kind)
            } else {
                let bytes = match &body {
                    Some(bytes) => Arc::clone(bytes),
                    None => self.manifest(&dk).await?.bytes.into(),
                };
                let kind = Kind::of_body(&bytes);
                body = Some(bytes);
                kind
            };
            if let Some(bytes) = &body
                && kind == Some(Kind::Index)
            {
                self.keep_descriptors(name, digest, bytes).await;
            }
            Ok(kind)
        })
        .await
    }

    /// A platform manifest's platform, from its config blob (immutable, cached).
    async fn platform(&self, name: &RepositoryName, digest: &Digest) -> Shared<Platform> {
        let dk = Self::digest_key(name, digest);
        self.fact(&self.platforms, "platform", &dk, || async {
            let invalid = |why: String| Error::Invalid {
                registry: dk.name.registry.clone(),
                what: "image manifest",
                why,
            };
            let fetched = self.manifest(&dk).await?;
            let config = manifest::config_digest(&fetched.bytes).map_err(invalid)?;
            let blob = self
                .client
                .get_blob(&dk.name.registry, &dk.name.repository, &config)
                .await?;
            manifest::config_platform(&blob).map_err(|why| Error::Invalid {
                registry: dk.name.registry.clone(),
                what: "image config",
                why,
            })
        })
        .await
    }

    /// An index's platform children, by `GET` on its digest (immutable, cached).
    async fn descriptors(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Shared<Vec<PlatformDescriptor>> {
        let dk = Self::digest_key(name, digest);
        self.fact(&self.descriptors, "children", &dk, || async {
            let fetched = self.manifest(&dk).await?;
            manifest::platform_descriptors(&fetched.bytes).map_err(|why| Error::Invalid {
                registry: dk.name.registry.clone(),
                what: "index",
                why,
            })
        })
        .await
    }
}
