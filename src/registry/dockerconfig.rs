//! Credentials from Docker's `config.json`, read the way the Docker CLI reads them:
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`); per registry a
//! `credHelpers` entry first, then the `credsStore` helper, then the `auths` entry
//! (`auth` = base64 `user:password`, or an `identitytoken`).
//!
//! A helper is the program `docker-credential-<name>`, run with `get` and the server on
//! stdin; it answers `{"Username": …, "Secret": …}` (a `<token>` user means the secret
//! is an identity token). Docker Hub's entries are keyed `https://index.docker.io/v1/`.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::auth::Credential;
use super::error::Error;
use crate::imageref::DOCKER_HUB;
use crate::secret::Secret;

/// The parts of `config.json` that hold credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The key Docker files Docker Hub credentials under.
const HUB_KEY: &str = "https://index.docker.io/v1/";

impl DockerConfig {
    /// Loads a config file; a missing file is an empty config.
    ///
    /// # Errors
    /// [`Error::DockerConfig`] when the file exists but cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bad = |why: String| Error::DockerConfig {
            path: path.display().to_string(),
            why,
        };
        // A FIFO or a device would block or never end: only a regular file is read.
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => return Err(bad("not a regular file".to_owned())),
            _ => {}
        }
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(without_values(&e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The credential for a registry host, if the config has one.
    ///
    /// # Errors
    /// [`Error::CredentialHelper`] when a helper named for this registry fails, and
    /// [`Error::DockerConfig`] for an `auth` entry that is not base64 `user:password`.
    pub async fn credential(&self, registry: &str) -> Result<Option<Credential>, Error> {
        let keys = keys_for(registry);
        if let Some(helper) = keys.iter().find_map(|k| self.cred_helpers.get(*k)) {
            return run_helper(helper, server_for(registry)).await;
        }
        if let Some(store) = self.creds_store.as_deref().filter(|s| !s.is_empty()) {
            match run_helper(store, server_for(registry)).await {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(e) => tracing::warn!("{e}; falling back to the auths in config.json"),
            }
        }
        let Some(entry) = keys.iter().find_map(|k| self.auths.get(*k)) else {
            return Ok(None);
        };
        entry_credential(entry).map_err(|why| Error::DockerConfig {
            path: format!("auths[{registry}]"),
            why,
        })
    }
}

/// A JSON error as a message that never echoes the file's values (serde's own message
/// quotes them: `invalid type: string "dXNlcjpodW50ZXIy"`, a base64 `user:password`):
/// what kind of fault, and where.
fn without_values(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "not valid JSON",
        Category::Eof => "JSON ends early",
        Category::Data => "a value has the wrong type or shape",
        Category::Io => "cannot be read",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// The `auths` keys a registry's credentials may be filed under.
fn keys_for(registry: &str) -> Vec<&str> {
    if registry == DOCKER_HUB {
        vec![
            HUB_KEY,
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
    } else {
        vec![registry]
    }
}

/// What a helper is asked for: Docker Hub's legacy URL, or the host.
fn server_for(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        HUB_KEY
    } else {
        registry
    }
}

fn entry_credential(entry: &AuthEntry) -> Result<Option<Credential>, String> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(Secret::new(token))));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "auth is not base64".to_owned())?;
        let decoded = String::from_utf8(decoded).map_err(|_| "auth is not UTF-8".to_owned())?;
        let (username, password) = decoded.split_once(':').ok_or("auth is not user:password")?;
        return Ok(Some(Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic {
            username: u.clone(),
            password: Secret::new(p.clone()),
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<helper> get` for a server.
async fn run_helper(helper: &str, server: &str) -> Result<Option<Credential>, Error> {
    let fail = |why: String| Error::CredentialHelper {
        helper: helper.to_owned(),
        why,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(fail("invalid helper name".to_owned()));
    }
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| fail("no answer within 30s".to_owned()))?
        .map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        // Helpers answer "credentials not found" on stdout with a failing status.
        let said = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
        if said.contains("not found") {
            return Ok(None);
        }
        return Err(fail(format!("exited with {}", output.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| fail("answer is not the expected JSON".to_owned()))?;
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials go only where they belong: not into error messages either.
    #[test]
    fn credentials_only_where_they_belong_config_errors_echo_no_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        for text in [
            r#"{"auths": {"r.io": "dXNlcjpodW50ZXIy"}}"#,
            r#"{"auths": {"r.io": {"auth": ["dXNlcjpodW50ZXIy"]}}}"#,
            r#"{"auths": {"r.io": {"auth": "dXNlcjpodW50ZXIy"}}, "credsStore": 42}"#,
            r#"{"auths": {"r.io": {"auth": "dXNlcjpodW50ZXIy"#,
            r#"{"auths": {"r.io": {"password": hunter2}}}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            let err = DockerConfig::load(&path).unwrap_err().to_string();
            for secret in ["dXNlcjpodW50ZXIy", "hunter2", "r.io"] {
                assert!(!err.contains(secret), "{text}: {err}");
            }
            assert!(err.contains("line 1 column"), "{err}");
        }
    }

    fn config(json: &str) -> DockerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn auths_entries() {
        let c = config(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"ghcr.io":{"identitytoken":"tok"},"quay.io":{}}}"#,
        );
        assert_eq!(
            c.credential("docker.io").await.unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: Secret::new("pass")
            })
        );
        assert_eq!(
            c.credential("ghcr.io").await.unwrap(),
            Some(Credential::IdentityToken(Secret::new("tok")))
        );
        assert_eq!(c.credential("quay.io").await.unwrap(), None);
        assert_eq!(c.credential("other.io").await.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_auth_names_the_registry_not_the_value() {
        let c = config(r#"{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}"#);
        let err = c.credential("r.io").await.unwrap_err().to_string();
        assert_eq!(err, "docker config auths[r.io]: auth is not user:password");
    }

    #[tokio::test]
    async fn missing_helper_is_an_error_naming_it() {
        let c = config(r#"{"credHelpers":{"r.io":"repin-test-no-such-helper"}}"#);
        let err = c.credential("r.io").await.unwrap_err().to_string();
        assert!(
            err.starts_with(
                "credential helper docker-credential-repin-test-no-such-helper: cannot run"
            ),
            "{err}"
        );
        let c = config(r#"{"credHelpers":{"r.io":"../evil"}}"#);
        assert!(c.credential("r.io").await.is_err());
    }

    #[test]
    fn missing_file_is_empty() {
        let c = DockerConfig::load(Path::new("/nonexistent/config.json")).unwrap();
        assert!(c.auths.is_empty());
    }
}
