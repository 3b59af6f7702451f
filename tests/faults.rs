//! Registry misbehaviour a real registry will not produce on demand (429s, 5xx, missing
//! or wrong digest headers, slow answers), simulated with wiremock against the client.

use std::sync::Arc;
use std::time::Duration;

use repin::imageref::Digest;
use repin::registry::Error;
use repin::registry::client::{Client, Credentials, Options};
use repin::registry::manifest::DOCKER_MANIFEST;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;

fn fast() -> Options {
    Options {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(2),
        ..Options::default()
    }
}

/// A mock registry whose `/v2/` answers 200 (no auth), and a client with short times.
async fn server() -> (MockServer, String, Arc<Client>) {
    let (server, host) = crate::support::mock::open_registry().await;
    let client = Arc::new(Client::new(fast(), Credentials::Anonymous).unwrap());
    (server, host, client)
}

/// A valid digest made of one repeated hex character.
fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// `MANIFEST` as a `GET` answers it, without a `Docker-Content-Digest`.
fn manifest_body() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("Content-Type", DOCKER_MANIFEST)
        .set_body_bytes(MANIFEST)
}

fn ok_head(digest: &str) -> ResponseTemplate {
    crate::support::mock::head_with_digest(digest, DOCKER_MANIFEST)
}

async fn manifest_requests(server: &MockServer) -> usize {
    crate::support::mock::manifest_requests(server).await.len()
}

#[tokio::test]
async fn rate_limit_honours_retry_after_then_succeeds() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(ok_head(&digest('a')))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let head = client.head_manifest(&host, "app", "1").await.unwrap();
    assert_eq!(head.digest.to_string(), digest('a'));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(manifest_requests(&server).await, 2);
}

#[tokio::test]
async fn rate_limit_longer_than_the_bound_fails_at_once() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    let err = client.head_manifest(&host, "app", "1").await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { attempts: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&host), "{err}");
    assert_eq!(manifest_requests(&server).await, 1);
}

#[tokio::test]
async fn server_error_then_success() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(ok_head(&digest('b')))
        .mount(&server)
        .await;
    assert_eq!(
        client
            .head_manifest(&host, "app", "1")
            .await
            .unwrap()
            .digest
            .to_string(),
        digest('b')
    );
    assert_eq!(manifest_requests(&server).await, 2);
}

#[tokio::test]
async fn server_errors_give_up_after_the_attempts() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let err = client.head_manifest(&host, "app", "1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(manifest_requests(&server).await, 3);
}

#[tokio::test]
async fn missing_digest_header_falls_back_to_get_and_hashes_the_body() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(200).insert_header("Content-Type", DOCKER_MANIFEST))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(manifest_body())
        .mount(&server)
        .await;
    let head = client.head_manifest(&host, "app", "1").await.unwrap();
    assert_eq!(head.digest, Digest::sha256_of(MANIFEST));
    // Once is enough: the registry's next manifest is read with one GET, no HEAD.
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/2"))
        .respond_with(manifest_body())
        .mount(&server)
        .await;
    let head = client.head_manifest(&host, "app", "2").await.unwrap();
    assert_eq!(head.digest, Digest::sha256_of(MANIFEST));
    assert_eq!(
        crate::support::mock::manifest_requests(&server).await,
        [
            "HEAD /v2/app/manifests/1",
            "GET /v2/app/manifests/1",
            "GET /v2/app/manifests/2"
        ]
    );
}

#[tokio::test]
async fn wrong_digest_header_is_an_error_never_a_pin() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let wrong = format!("sha256:{}", "0".repeat(64));
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Docker-Content-Digest", wrong.as_str())
                .set_body_bytes(MANIFEST),
        )
        .mount(&server)
        .await;
    let err = client.head_manifest(&host, "app", "1").await.unwrap_err();
    match err {
        Error::DigestMismatch {
            expected, computed, ..
        } => {
            assert_eq!(expected, wrong);
            assert_eq!(computed, Digest::sha256_of(MANIFEST).to_string());
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
}

#[tokio::test]
async fn body_that_does_not_match_the_digest_asked_for_is_rejected() {
    let (server, host, client) = server().await;
    let asked = format!("sha256:{}", "1".repeat(64));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(MANIFEST))
        .mount(&server)
        .await;
    let err = client.get_manifest(&host, "app", &asked).await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out_after_the_attempts() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ok_head(&digest('c')).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let err = client.head_manifest(&host, "app", "1").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err}");
}

#[tokio::test]
async fn not_found_and_unauthorized_are_told_apart() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/missing/manifests/1"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/private/manifests/1"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let err = client
        .head_manifest(&host, "missing", "1")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), format!("{host}: missing:1 not found"));
    let err = client
        .head_manifest(&host, "private", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 403, .. }),
        "{err}"
    );
    // Neither is retried.
    assert_eq!(manifest_requests(&server).await, 2);
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let (server, host, client) = server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; 4 * 1024 * 1024 + 1]))
        .mount(&server)
        .await;
    let err = client.get_manifest(&host, "app", "1").await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn challenge_is_learned_once_per_registry() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(ok_head(&digest('d')))
        .mount(&server)
        .await;
    let host = server.address().to_string();
    let client = Arc::new(Client::new(fast(), Credentials::Anonymous).unwrap());
    let mut handles = Vec::new();
    for repo in ["a", "b", "c", "d"] {
        let client = Arc::clone(&client);
        let host = host.clone();
        handles.push(tokio::spawn(async move {
            client.head_manifest(&host, repo, "1").await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    // `expect(1)` on /v2/ is verified when the server drops.
}

/// Lists are read once per item: a pull request that page-number paging serves twice
/// (the list changed while it was read) is one pull request.
#[tokio::test]
async fn github_lists_each_item_once_across_pages() {
    use repin::forge::github::GitHub;
    use repin::secret::Secret;
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    let pull = serde_json::json!([{
        "number": 7, "state": "open", "head": {"ref": "repin/a", "sha": "abc"}
    }]);
    let next = format!(
        "<{}/repos/acme/app/pulls?page=2>; rel=\"next\"",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/pulls"))
        .and(query_param("page", "1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next.as_str())
                .set_body_json(pull.clone()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/pulls"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull))
        .mount(&server)
        .await;
    let gh = GitHub::new(&server.uri(), &Secret::new("t")).unwrap();
    let pulls = gh.pulls("acme/app").await.unwrap();
    assert_eq!(pulls.iter().map(|p| p.number).collect::<Vec<_>>(), [7]);
    assert_eq!(gh.calls(), 2, "both pages read");
}

/// A GitHub that does not answer fails the call in bounded time, as a transport error.
#[tokio::test]
async fn github_calls_that_get_no_answer_fail_in_bounded_time() {
    use repin::forge::github::{Error as GitHubError, GitHub};
    use repin::secret::Secret;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let gh = GitHub::new(&server.uri(), &Secret::new("t"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = gh.repo("acme/app").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, GitHubError::Transport { .. }), "{err}");
    assert!(err.to_string().contains("no answer in 0.3 s"), "{err}");
}

#[tokio::test]
async fn github_rate_limits_are_waited_out_within_bounds() {
    use repin::forge::github::GitHub;
    use repin::secret::Secret;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "full_name": "acme/app", "default_branch": "main", "clone_url": "https://example.com/acme/app.git"
        })))
        .mount(&server)
        .await;
    // A secondary limit far in the future fails at once instead of hanging.
    let reset = (chrono::Utc::now().timestamp() + 3600).to_string();
    Mock::given(method("GET"))
        .and(path("/repos/acme/slow"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.as_str())
                .set_body_json(serde_json::json!({"message": "API rate limit exceeded"})),
        )
        .mount(&server)
        .await;
    let gh = GitHub::new(&server.uri(), &Secret::new("t")).unwrap();
    let started = std::time::Instant::now();
    let repo = gh.repo("acme/app").await.unwrap();
    assert_eq!(repo.default_branch, "main");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(gh.calls(), 2);
    let err = gh.repo("acme/slow").await.unwrap_err().to_string();
    assert!(
        err.starts_with("GitHub get repository: rate limited (HTTP 403)"),
        "{err}"
    );
    assert_eq!(gh.calls(), 3);
}

/// `count` tags of `app`, looked up together through one resolver.
async fn lookup_tags(
    client: Arc<Client>,
    host: &str,
    count: usize,
) -> Vec<repin::registry::resolve::Shared<repin::registry::client::Head>> {
    use repin::registry::resolve::{Resolver, TagKey};
    let resolver = Resolver::new(client);
    let keys: std::collections::HashSet<TagKey> = (0..count)
        .map(|i| TagKey::new(host, "app", &format!("t{i}")))
        .collect();
    resolver.tags(keys).await.into_values().collect()
}

/// Registry-wide backoff: a registry that does not answer is given up on once for the
/// whole run — its 16 tags do not each spend their own attempts.
#[tokio::test]
async fn registry_wide_backoff_unanswering_registry_given_up_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let host = server.address().to_string();
    let client = Arc::new(Client::new(fast(), Credentials::Anonymous).unwrap());
    let started = std::time::Instant::now();
    let results = lookup_tags(client, &host, 16).await;
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 16);
    let gave_up = results
        .iter()
        .filter(|r| matches!(r.as_ref().map_err(|e| &**e), Err(Error::GaveUp { .. })))
        .count();
    assert!(results.iter().all(Result::is_err));
    // The attempts are spent by the challenge asked ahead of the tags (for their
    // tokens); every tag then hears the registry was given up on, and why.
    assert_eq!(gave_up, 16, "{results:?}");
    // One request's attempts (3 × 300 ms, plus backoff), not sixteen.
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

/// Registry-wide backoff: `Retry-After` pauses every tag of the registry together, and
/// 429s in a row count against one budget for the registry, not one per tag.
#[tokio::test]
async fn registry_wide_backoff_retry_after_is_shared() {
    let (server, host, client) = server().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let results = lookup_tags(client, &host, 40).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_err));
    assert!(results.iter().all(|r| {
        matches!(
            r.as_ref().map_err(|e| &**e),
            Err(Error::RateLimited { .. } | Error::GaveUp { .. })
        )
    }));
    // Per tag, this would be 40 tags × 2 waits of 1 s, 8 at a time (~10 s) and 120
    // requests; shared, the registry is given up on after its third 429 in a row.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    let requests = manifest_requests(&server).await;
    assert!(requests <= 16, "{requests} requests");
}

/// `--deadline` bounds a whole run: a slow registry's lookups fail when it comes.
#[tokio::test]
async fn deadline_bounds_the_lookups() {
    let (server, host) = crate::support::mock::open_registry().await;
    Mock::given(method("HEAD"))
        .respond_with(ok_head(&digest('a')).set_delay(Duration::from_secs(20)))
        .mount(&server)
        .await;
    let options = Options {
        timeout: Duration::from_secs(30),
        deadline: Some(tokio::time::Instant::now() + Duration::from_secs(1)),
        ..Options::default()
    };
    let client = Arc::new(Client::new(options, Credentials::Anonymous).unwrap());
    let started = std::time::Instant::now();
    let results = lookup_tags(client, &host, 12).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.to_string().contains("deadline")),
        "{results:?}"
    );
}

/// A registry that refuses a token asked for several repositories for one of them
/// (`401`, or `403` `insufficient_scope` as RFC 6750 has it, as icr.io answers): that
/// repository gets a token of its own and its lookup succeeds; a plain 403 with its own
/// token stays an access error.
async fn batched_token_then(refusal: u16) -> Result<(), String> {
    use wiremock::matchers::header;
    let server = MockServer::start().await;
    let host = server.address().to_string();
    let challenge = format!("Bearer realm=\"http://{host}/token\",service=\"reg\"");
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(|r: &wiremock::Request| r.url.query_pairs().filter(|(k, _)| k == "scope").count() > 1)
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"token":"batch","expires_in":300}"#),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"token":"single","expires_in":300}"#),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/b/manifests/1"))
        .and(header("authorization", "Bearer batch"))
        .respond_with(ResponseTemplate::new(refusal))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/b/manifests/1"))
        .and(header("authorization", "Bearer single"))
        .respond_with(ok_head(&digest('b')))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/c/manifests/1"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let client = Arc::new(Client::new(fast(), Credentials::Anonymous).unwrap());
    client.authorize_ahead(&host, &["a", "b"]).await;
    let denied = client.head_manifest(&host, "c", "1").await.unwrap_err();
    assert!(denied.to_string().contains("HTTP 403"), "{denied}");
    client
        .head_manifest(&host, "b", "1")
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn batched_token_refused_falls_back_per_repository_401() {
    batched_token_then(401).await.unwrap();
}

#[tokio::test]
async fn batched_token_refused_falls_back_per_repository_403() {
    batched_token_then(403).await.unwrap();
}
