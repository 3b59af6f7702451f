//! Pushes images to the test registry through its HTTP API: blobs, then platform
//! manifests by digest, then the index (OCI) or manifest list (Docker) by tag. Pushing a
//! tag again with another `marker` makes new digests and moves the tag.
//!
//! Requests carry the `User-Agent` [`AGENT`], so counting repin's requests in the
//! registry's log leaves them out.

use std::collections::HashMap;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use sha2::{Digest as _, Sha256};

use super::registry::{Auth, PASSWORD, Registry, USER};
use super::token::SERVICE;

pub const AGENT: &str = "repin-test-pusher";

/// Which manifest family to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

impl Flavor {
    fn index_type(self) -> &'static str {
        match self {
            Self::Oci => "application/vnd.oci.image.index.v1+json",
            Self::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }
    fn manifest_type(self) -> &'static str {
        match self {
            Self::Oci => "application/vnd.oci.image.manifest.v1+json",
            Self::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }
    fn config_type(self) -> &'static str {
        match self {
            Self::Oci => "application/vnd.oci.image.config.v1+json",
            Self::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }
    fn layer_type(self) -> &'static str {
        match self {
            Self::Oci => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Docker => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    }
}

/// An index that was pushed: its digest and each platform's manifest digest.
#[derive(Debug, Clone)]
pub struct PushedIndex {
    pub digest: String,
    pub children: HashMap<String, String>,
}

impl PushedIndex {
    /// The manifest digest of `platform` (`linux/amd64`).
    pub fn child(&self, platform: &str) -> &str {
        &self.children[platform]
    }
}

pub struct Pusher<'a> {
    registry: &'a Registry,
    http: reqwest::Client,
    tokens: HashMap<String, String>,
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl<'a> Pusher<'a> {
    pub fn new(registry: &'a Registry) -> Self {
        Self {
            registry,
            http: reqwest::Client::new(),
            tokens: HashMap::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.registry.host)
    }

    async fn authorization(&mut self, repo: &str) -> Option<String> {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        match self.registry.auth {
            Auth::Open => None,
            Auth::Basic => Some(basic),
            Auth::TokenAnonymous | Auth::TokenCredentialed | Auth::TokenOneScope => {
                if let Some(token) = self.tokens.get(repo) {
                    return Some(token.clone());
                }
                let server = self.registry.token.as_ref().expect("token server");
                let url = format!(
                    "{}?service={SERVICE}&scope=repository:{repo}:pull,push",
                    server.realm()
                );
                let mut request = self.http.get(url).header(USER_AGENT, AGENT);
                if self.registry.auth == Auth::TokenCredentialed {
                    request = request.header(AUTHORIZATION, basic);
                }
                let bytes = request.send().await.unwrap().bytes().await.unwrap();
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let token = format!("Bearer {}", body["token"].as_str().unwrap());
                self.tokens.insert(repo.to_owned(), token.clone());
                Some(token)
            }
        }
    }

    async fn request(
        &mut self,
        method: reqwest::Method,
        url: &str,
        repo: &str,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, url).header(USER_AGENT, AGENT);
        if let Some(auth) = self.authorization(repo).await {
            request = request.header(AUTHORIZATION, auth);
        }
        request
    }

    /// Uploads a blob (monolithic upload); returns its digest.
    pub async fn blob(&mut self, repo: &str, bytes: Vec<u8>) -> String {
        let digest = digest_of(&bytes);
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let started = self
            .request(reqwest::Method::POST, &url, repo)
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(
            started.status(),
            202,
            "start upload: {}",
            started.text().await.unwrap()
        );
        let location = started.headers()[LOCATION].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let done = self
            .request(reqwest::Method::PUT, &put, repo)
            .await
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(
            done.status(),
            201,
            "finish upload: {}",
            done.text().await.unwrap()
        );
        digest
    }

    /// Puts a manifest under a tag or digest; returns its digest.
    pub async fn manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> String {
        let digest = digest_of(&bytes);
        let reference = if reference.is_empty() {
            digest.clone()
        } else {
            reference.to_owned()
        };
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let response = self
            .request(reqwest::Method::PUT, &url, repo)
            .await
            .header(CONTENT_TYPE, media_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            201,
            "put manifest: {}",
            response.text().await.unwrap()
        );
        digest
    }

    /// Pushes one platform's image (config, layer, manifest) by digest; returns the
    /// manifest's digest and bytes.
    async fn image(
        &mut self,
        repo: &str,
        platform: &str,
        flavor: Flavor,
        marker: &str,
    ) -> (String, Vec<u8>) {
        let mut parts = platform.split('/');
        let (os, arch, variant) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
        let layer = format!("layer {repo} {platform} {marker}").into_bytes();
        let layer_size = layer.len();
        let layer_digest = self.blob(repo, layer).await;
        let mut config = serde_json::json!({
            "architecture": arch, "os": os,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "created": format!("2026-11-{:02}T10:00:00Z", 1 + marker.bytes().map(u32::from).sum::<u32>() % 28),
            "config": {"Labels": {
                "marker": marker,
                "org.opencontainers.image.source": format!("https://github.com/acme/{}", repo.rsplit('/').next().unwrap()),
                "org.opencontainers.image.revision": format!("rev-{marker}"),
            }},
        });
        if let Some(v) = variant {
            config["variant"] = v.into();
        }
        let config = config.to_string().into_bytes();
        let config_size = config.len();
        let config_digest = self.blob(repo, config).await;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": flavor.manifest_type(),
            "config": {"mediaType": flavor.config_type(), "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": flavor.layer_type(), "digest": layer_digest, "size": layer_size}],
        })
        .to_string()
        .into_bytes();
        let digest = self
            .manifest(repo, "", flavor.manifest_type(), manifest.clone())
            .await;
        (digest, manifest)
    }

    /// Pushes a multi-platform index (or manifest list) under `tag`.
    pub async fn index(
        &mut self,
        repo: &str,
        tag: &str,
        platforms: &[&str],
        flavor: Flavor,
        marker: &str,
    ) -> PushedIndex {
        let mut children = HashMap::new();
        let mut entries = Vec::new();
        for platform in platforms {
            let (digest, bytes) = self.image(repo, platform, flavor, marker).await;
            let mut parts = platform.split('/');
            let mut p = serde_json::json!({"os": parts.next().unwrap(), "architecture": parts.next().unwrap()});
            if let Some(v) = parts.next() {
                p["variant"] = v.into();
            }
            entries.push(serde_json::json!({
                "mediaType": flavor.manifest_type(), "digest": digest, "size": bytes.len(), "platform": p,
            }));
            children.insert((*platform).to_owned(), digest);
        }
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": flavor.index_type(), "manifests": entries,
        })
        .to_string()
        .into_bytes();
        let digest = self.manifest(repo, tag, flavor.index_type(), index).await;
        PushedIndex { digest, children }
    }

    /// Moves `tag` once: pushes a linux/amd64 OCI image under it, then another;
    /// returns (the digest it pointed at, the digest it points at now).
    pub async fn moved(&mut self, repo: &str, tag: &str) -> (String, String) {
        let old = self
            .single(repo, tag, "linux/amd64", Flavor::Oci, "a")
            .await;
        let new = self
            .single(repo, tag, "linux/amd64", Flavor::Oci, "b")
            .await;
        (old, new)
    }

    /// Pushes a single-platform image under `tag`; returns its manifest digest.
    pub async fn single(
        &mut self,
        repo: &str,
        tag: &str,
        platform: &str,
        flavor: Flavor,
        marker: &str,
    ) -> String {
        let (_, bytes) = self.image(repo, platform, flavor, marker).await;
        self.manifest(repo, tag, flavor.manifest_type(), bytes)
            .await
    }

    /// Deletes a manifest by digest (which removes the tags pointing at it).
    pub async fn delete(&mut self, repo: &str, digest: &str) {
        let url = self.url(&format!("/v2/{repo}/manifests/{digest}"));
        let response = self
            .request(reqwest::Method::DELETE, &url, repo)
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            202,
            "delete: {}",
            response.text().await.unwrap()
        );
    }
}
