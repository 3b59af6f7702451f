//! wiremock registries for misbehaviour a real registry will not produce on demand: an
//! open `/v2/`, answers with chosen headers, the manifest requests a server received,
//! and a client holding Basic credentials for one host.

use std::collections::HashMap;

use repin::registry::auth::Credential;
use repin::registry::client::{Client, Credentials, Options};
use repin::secret::Secret;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The password of [`credentialed_client`].
pub const PASSWORD: &str = "hunter2";

/// A registry whose `/v2/` answers openly; its `host:port`.
pub async fn open_registry() -> (MockServer, String) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let host = server.address().to_string();
    (server, host)
}

/// A `200` carrying `Docker-Content-Digest: value` and the media type.
pub fn head_with_digest(value: &str, media_type: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("Docker-Content-Digest", value)
        .insert_header("Content-Type", media_type)
}

/// The manifest requests a server received, as `METHOD /path`, in order.
pub async fn manifest_requests(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/manifests/"))
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

/// A client with Basic credentials (`user`, [`PASSWORD`]) for `host`.
pub fn credentialed_client(host: &str) -> Client {
    let credentials = Credentials::Fixed(HashMap::from([(
        host.to_owned(),
        Credential::Basic {
            username: "user".into(),
            password: Secret::new(PASSWORD),
        },
    )]));
    Client::new(Options::default(), credentials).unwrap()
}
