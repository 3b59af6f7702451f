//! Manifests as far as repin needs them, in the OCI spec's words: media types, an
//! index's descriptors of platform manifests ([`PlatformDescriptor`]), an image manifest's config descriptor, and a config's platform.
//!
//! Why not `oci-spec` types: Docker manifest lists and v2 manifests are not OCI types,
//! `oci-spec` brings builder and getter machinery for every field, and repin reads five
//! fields. These serde structs accept both families (the JSON shapes agree on them).

use serde::Deserialize;

use crate::imageref::{Digest, Platform, shorten};

/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker manifest list (the index of Docker's media types).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// An OCI image manifest (one platform).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker v2 image manifest (one platform).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header for manifest requests: indexes first, then single manifests. A
/// registry answers 404 to a HEAD for an index whose type is not accepted.
pub const ACCEPT_ANY: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or config repin reads.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Whether a digest names an index (multi-platform) or a platform manifest (an image
/// manifest for one platform).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum Kind {
    /// An image index (or Docker manifest list): one descriptor per platform.
    Index,
    /// An image manifest for one platform.
    PlatformManifest,
}

impl Kind {
    /// The kind a media type denotes; `None` for types repin does not know.
    #[must_use]
    pub fn of(media_type: &str) -> Option<Self> {
        // Registries may add parameters (`; charset=utf-8`); media types are
        // case-insensitive.
        let media_type = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => Some(Self::Index),
            OCI_MANIFEST | DOCKER_MANIFEST => Some(Self::PlatformManifest),
            _ => None,
        }
    }

    /// The kind a manifest's own bytes show: its `mediaType` field, else its shape (an
    /// index lists `manifests`, an image manifest has a `config`). For registries that
    /// send no (or a generic) `Content-Type`.
    #[must_use]
    pub fn of_body(bytes: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Shape {
            #[serde(default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            config: Option<serde::de::IgnoredAny>,
        }
        let shape: Shape = serde_json::from_slice(bytes).ok()?;
        if let Some(kind) = shape.media_type.as_deref().and_then(Self::of) {
            return Some(kind);
        }
        match (shape.manifests.is_some(), shape.config.is_some()) {
            (true, false) => Some(Self::Index),
            (false, true) => Some(Self::PlatformManifest),
            _ => None,
        }
    }
}

/// Checks a digest a registry supplied (`what` says where it was: a header, a
/// descriptor) against the reference grammar.
///
/// # Errors
/// A message naming where the value was, the value (shortened) and why it is not a
/// digest.
pub fn checked_digest(what: &str, value: &str) -> Result<Digest, String> {
    value.parse::<Digest>().map_err(|e| {
        let why = match e {
            crate::imageref::ParseError::InvalidDigest { why, .. } => why,
            _ => "not a digest",
        };
        format!("{what} {} is not a digest: {why}", shorten(value))
    })
}

#[derive(Debug, Clone, Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl From<RawPlatform> for Platform {
    fn from(p: RawPlatform) -> Self {
        Self {
            os: p.os,
            architecture: p.architecture,
            variant: p.variant.filter(|v| !v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Debug, Deserialize)]
struct RawIndex {
    manifests: Vec<RawDescriptor>,
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    config: RawDescriptor,
}

/// One platform's entry in an index: a descriptor with a platform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PlatformDescriptor {
    /// The platform manifest's digest.
    pub digest: Digest,
    /// Its platform.
    pub platform: Platform,
}

/// The descriptors in an index of platform manifests for a real platform (attestation
/// manifests, `unknown/unknown`, are left out).
///
/// # Errors
/// A message when the bytes are not an index, or when any descriptor's digest is not a
/// digest (an index that lies about one child is trusted about none).
pub fn platform_descriptors(bytes: &[u8]) -> Result<Vec<PlatformDescriptor>, String> {
    let index: RawIndex = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for d in index.manifests {
        let digest = checked_digest("descriptor digest", &d.digest)?;
        if d.media_type.as_deref().and_then(Kind::of) == Some(Kind::Index) {
            continue;
        }
        let Some(platform) = d.platform.map(Platform::from) else {
            continue;
        };
        if platform.os != "unknown" {
            children.push(PlatformDescriptor { digest, platform });
        }
    }
    Ok(children)
}

/// The config descriptor's digest of an image manifest.
///
/// # Errors
/// A message when the bytes are not an image manifest or the digest is not a digest.
pub fn config_digest(bytes: &[u8]) -> Result<Digest, String> {
    let manifest: RawManifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    checked_digest("config digest", &manifest.config.digest)
}

/// What an image says about itself, for a reviewer: when it was built and where its
/// source is (OCI annotations on the manifest or index, else the config's labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ImageFacts {
    /// `created` from the config; `None` when absent or the reproducible-build epoch.
    pub created: Option<String>,
    /// `org.opencontainers.image.source`.
    pub source: Option<String>,
    /// `org.opencontainers.image.revision`.
    pub revision: Option<String>,
}

const SOURCE: &str = "org.opencontainers.image.source";
const REVISION: &str = "org.opencontainers.image.revision";

#[derive(Debug, Default, Deserialize)]
struct RawAnnotated {
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfigFacts {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    config: Option<RawConfigLabels>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfigLabels {
    #[serde(default, rename = "Labels")]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

impl ImageFacts {
    /// Fills what is still missing from a manifest's or index's annotations.
    pub fn add_annotations(&mut self, manifest: &[u8]) {
        let raw: RawAnnotated = serde_json::from_slice(manifest).unwrap_or_default();
        self.source = self
            .source
            .take()
            .or_else(|| raw.annotations.get(SOURCE).cloned());
        self.revision = self
            .revision
            .take()
            .or_else(|| raw.annotations.get(REVISION).cloned());
    }

    /// Fills what is still missing from an image config.
    pub fn add_config(&mut self, config: &[u8]) {
        let raw: RawConfigFacts = serde_json::from_slice(config).unwrap_or_default();
        let labels = raw.config.and_then(|c| c.labels).unwrap_or_default();
        self.source = self.source.take().or_else(|| labels.get(SOURCE).cloned());
        self.revision = self
            .revision
            .take()
            .or_else(|| labels.get(REVISION).cloned());
        // Reproducible builds (ko, apko, distroless) write the epoch: not a real time.
        self.created = self
            .created
            .take()
            .or(raw.created)
            .filter(|c| !c.starts_with("1970-01-01"));
    }
}

/// The platform an image config declares.
///
/// # Errors
/// A message when the bytes are not an image config.
pub fn config_platform(bytes: &[u8]) -> Result<Platform, String> {
    let raw: RawPlatform = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(raw.into())
}

/// Platforms compare with the defaults Docker applies: `arm64` means `arm64/v8`, `arm`
/// means `arm/v7`.
#[must_use]
pub fn same_platform(a: &Platform, b: &Platform) -> bool {
    fn variant(p: &Platform) -> Option<&str> {
        match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            ("arm", None) => Some("v7"),
            (_, v) => v,
        }
    }
    a.os == b.os && a.architecture == b.architecture && variant(a) == variant(b)
}

/// The descriptor among `children` (an index's) for `platform`.
#[must_use]
pub fn select<'a>(
    children: &'a [PlatformDescriptor],
    platform: &Platform,
) -> Option<&'a PlatformDescriptor> {
    children
        .iter()
        .find(|c| same_platform(&c.platform, platform))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(Kind::of(OCI_INDEX), Some(Kind::Index));
        assert_eq!(
            Kind::of("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
            Some(Kind::Index)
        );
        assert_eq!(Kind::of(DOCKER_MANIFEST), Some(Kind::PlatformManifest));
        assert_eq!(Kind::of("text/html"), None);
        assert_eq!(
            Kind::of("Application/VND.OCI.image.index.v1+json"),
            Some(Kind::Index)
        );
        assert_eq!(Kind::of_body(br#"{"manifests":[]}"#), Some(Kind::Index));
        assert_eq!(
            Kind::of_body(br#"{"config":{}}"#),
            Some(Kind::PlatformManifest)
        );
        assert_eq!(
            Kind::of_body(format!(r#"{{"mediaType":"{DOCKER_LIST}","manifests":[]}}"#).as_bytes()),
            Some(Kind::Index)
        );
        assert_eq!(Kind::of_body(br#"{"manifests":[],"config":{}}"#), None);
        assert_eq!(Kind::of_body(b"<html>"), None);
    }

    #[test]
    fn platform_descriptors_skip_attestations() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let children = platform_descriptors(index).unwrap();
        assert_eq!(children.len(), 2);
        let arm: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(
            select(&children, &arm).unwrap().digest.to_string(),
            format!("sha256:{}", "b".repeat(64))
        );
        let arm_v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(select(&children, &arm_v7).is_none());
    }

    #[test]
    fn manifest_config_and_platform() {
        let cfg = format!("sha256:{}", "c".repeat(64));
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cfg}","size":2}},"layers":[]}}"#
        );
        assert_eq!(config_digest(manifest.as_bytes()).unwrap().to_string(), cfg);
        let config = br#"{"architecture":"arm","os":"linux","variant":"v7","rootfs":{}}"#;
        let p = config_platform(config).unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(config_digest(b"{}").is_err());
    }

    #[test]
    fn image_facts_from_annotations_then_labels() {
        let mut facts = ImageFacts::default();
        facts.add_annotations(
            br#"{"annotations":{"org.opencontainers.image.source":"https://github.com/acme/app"}}"#,
        );
        facts.add_config(br#"{"created":"2026-11-20T10:00:00Z","config":{"Labels":{"org.opencontainers.image.source":"https://other","org.opencontainers.image.revision":"abc123"}}}"#);
        assert_eq!(facts.source.as_deref(), Some("https://github.com/acme/app"));
        assert_eq!(facts.revision.as_deref(), Some("abc123"));
        assert_eq!(facts.created.as_deref(), Some("2026-11-20T10:00:00Z"));
        let mut epoch = ImageFacts::default();
        epoch.add_config(br#"{"created":"1970-01-01T00:00:00Z"}"#);
        assert_eq!(epoch.created, None);
    }

    #[test]
    fn sha256_of_bytes() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Digests are checked data: a descriptor or config reference that is not a digest
    /// makes the whole manifest invalid, with the value shortened in the message.
    #[test]
    fn digests_are_checked_data_in_descriptors() {
        for bad in [
            "sha256:ZZZ",
            "sha256:deadbeef",
            "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "",
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\n",
        ] {
            let index = format!(
                r#"{{"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{bad}","platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
            );
            let err = platform_descriptors(index.as_bytes()).unwrap_err();
            assert!(err.starts_with("descriptor digest \""), "{bad}: {err}");
            let manifest = format!(r#"{{"config":{{"digest":"{bad}"}}}}"#);
            let err = config_digest(manifest.as_bytes()).unwrap_err();
            assert!(err.contains("is not a digest"), "{bad}: {err}");
        }
        let long = format!("sha256:{}", "x".repeat(10_000));
        let err = checked_digest("header", &long).unwrap_err();
        assert!(err.len() < 200, "{err}");
    }
}
