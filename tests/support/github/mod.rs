//! A stateful fake of the GitHub REST API, in GitHub's shapes, for the routes `repin run`
//! uses: repositories, pull requests (open, closed, merged), comments, labels, reviewers,
//! assignees. Repositories live on a [`GitServer`]; a pull request's head is read from the
//! bare repository. It checks the bearer token and logs every call.
//!
//! Route families: `pulls` (repositories, pull requests, comments, labels, reviewers,
//! assignees, GraphQL auto-merge), `git_data` (blobs, trees, commits, refs), `app` (the
//! App, its installations and their tokens and repositories). Lists are paged as
//! GitHub pages them ([`page`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::git_http::{GitServer, git};

mod app;
mod git_data;
mod pulls;

use app::{access_token, app_itself, installation_repositories, installations};
use git_data::{
    create_blob, create_commit, create_ref, create_tree, get_commit, get_ref, update_ref,
};
use pulls::{
    assignees, comment, create_pull, graphql, labels, list_comments, list_pulls, repo, reviewers,
    update_pull,
};

pub const TOKEN: &str = super::git_http::TOKEN;

#[derive(Debug, Clone)]
pub struct PullState {
    pub number: u64,
    pub repo: String,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub state: String,
    pub merged: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub comments: Vec<String>,
    pub auto_merge: bool,
}

impl PullState {
    /// An open pull request of `repo` from `head` into `base`, with nothing else set.
    pub fn new(number: u64, repo: &str, head: &str, base: &str) -> Self {
        Self {
            number,
            repo: repo.to_owned(),
            head: head.to_owned(),
            base: base.to_owned(),
            title: String::new(),
            body: String::new(),
            state: "open".into(),
            merged: false,
            draft: false,
            labels: Vec::new(),
            reviewers: Vec::new(),
            team_reviewers: Vec::new(),
            assignees: Vec::new(),
            comments: Vec::new(),
            auto_merge: false,
        }
    }
}

#[derive(Default)]
struct Inner {
    repos: HashMap<String, (String, PathBuf)>,
    pulls: Vec<PullState>,
    calls: Vec<(String, String)>,
    /// The App: its ID and public key file (JWTs are verified with `openssl`).
    app: Option<(u64, PathBuf)>,
    /// Installation ID → (account, repositories).
    installations: Vec<(u64, String, Vec<String>)>,
    /// Repositories whose Git Data API refuses trees that change workflow files, as
    /// GitHub does for credentials without the workflows permission (404 Not Found).
    workflow_guarded: std::collections::HashSet<String>,
}

/// The `{owner}/{repo}` preamble of a `/repos/{owner}/{repo}/…` route, read once:
/// `full` is `owner/name`; `number` the `{number}` (0 when the route has none);
/// `tail` the `{sha}` or `{*branch}` (empty when none).
pub(super) struct RepoPath {
    pub full: String,
    pub owner: String,
    pub name: String,
    pub number: u64,
    pub tail: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RepoPath {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let get = |key: &str| params.get(key).cloned().unwrap_or_default();
        let (owner, name) = (get("owner"), get("repo"));
        Ok(Self {
            full: format!("{owner}/{name}"),
            owner,
            name,
            number: get("number").parse().unwrap_or(0),
            tail: params
                .get("sha")
                .or_else(|| params.get("branch"))
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// One page of a list, as GitHub serves lists: `per_page` (default 30, at most 100) and
/// `page` (1-based) from the query, with a `Link: <…>; rel="next"` header while more
/// follow.
pub(super) fn page(uri: &axum::http::Uri, items: Vec<Value>) -> (HeaderMap, Vec<Value>) {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let number = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let start = (number - 1) * per_page;
    let more = items.len() > start + per_page;
    let items: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let mut headers = HeaderMap::new();
    if more {
        let mut rest: Vec<String> = query
            .iter()
            .filter(|(k, _)| *k != "page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rest.sort();
        rest.push(format!("page={}", number + 1));
        let link = format!(
            "<https://api.github.com{}?{}>; rel=\"next\"",
            uri.path(),
            rest.join("&")
        );
        headers.insert(axum::http::header::LINK, link.parse().unwrap());
    }
    (headers, items)
}

/// The token the fake hands out for an installation.
pub fn installation_token(id: u64) -> String {
    format!("ghs_installation_{id}")
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake GitHub.
pub struct FakeGitHub {
    /// Where clients go: the fake, or the OpenAPI-validating proxy in front of it.
    pub url: String,
    inner: Shared,
    server: tokio::task::JoinHandle<()>,
    /// The OpenAPI-validating proxy, stopped with its process group on drop.
    _proxy: Option<super::process::Server>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        // A dropped JoinHandle would leave the task serving until its runtime ends.
        self.server.abort();
    }
}

/// The `OpenAPI` lane: with `REPIN_TEST_OPENAPI` naming a folder where
/// `@stoplight/prism-cli@5.14.2` and `@octokit/openapi` are installed (see
/// `scripts/openapi-lane`), every fake starts behind `prism proxy --errors`, which checks
/// each request the bot sends and each response the fake returns against GitHub's
/// `OpenAPI` description and turns any violation into an error response.
fn start_prism(upstream: &str) -> Option<(String, super::process::Server)> {
    let dir = PathBuf::from(std::env::var_os("REPIN_TEST_OPENAPI")?);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let spec = dir.join("node_modules/@octokit/openapi/generated/api.github.com.json");
    let log = std::fs::File::create(dir.join(format!("prism-{port}.log"))).ok()?;
    let mut command = std::process::Command::new("timeout");
    command
        .arg("600")
        .arg(dir.join("node_modules/.bin/prism"))
        .args([
            "proxy",
            spec.to_str()?,
            upstream,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--errors",
        ])
        .stdout(log.try_clone().ok()?)
        .stderr(log);
    let child = super::process::Server::spawn(command).expect("start prism");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((format!("http://127.0.0.1:{port}"), child));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(child);
    panic!("prism did not start; see {}", dir.display());
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let inner: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/repos/{owner}/{repo}", get(repo))
            .route(
                "/repos/{owner}/{repo}/pulls",
                get(list_pulls).post(create_pull),
            )
            .route(
                "/repos/{owner}/{repo}/pulls/{number}",
                axum::routing::patch(update_pull),
            )
            .route(
                "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
                post(reviewers),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(list_comments).post(comment),
            )
            .route("/repos/{owner}/{repo}/issues/{number}/labels", post(labels))
            .route(
                "/repos/{owner}/{repo}/issues/{number}/assignees",
                post(assignees),
            )
            .route("/repos/{owner}/{repo}/git/blobs", post(create_blob))
            .route("/repos/{owner}/{repo}/git/trees", post(create_tree))
            .route("/repos/{owner}/{repo}/git/commits", post(create_commit))
            .route("/repos/{owner}/{repo}/git/commits/{sha}", get(get_commit))
            .route("/repos/{owner}/{repo}/git/refs", post(create_ref))
            .route(
                "/repos/{owner}/{repo}/git/ref/heads/{*branch}",
                get(get_ref),
            )
            .route(
                "/repos/{owner}/{repo}/git/refs/heads/{*branch}",
                axum::routing::patch(update_ref),
            )
            .route("/graphql", post(graphql))
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&inner),
                enter,
            ))
            .route("/app", get(app_itself))
            .route("/app/installations", get(installations))
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route("/installation/repositories", get(installation_repositories))
            .layer(axum::middleware::map_response_with_state(
                Arc::clone(&inner),
                rate_limit_headers,
            ))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let (url, proxy) = match start_prism(&url) {
            Some((proxied, child)) => (proxied, Some(child)),
            None => (url, None),
        };
        Self {
            url,
            inner,
            server,
            _proxy: proxy,
        }
    }

    /// Registers a repository served by `git`.
    pub fn add_repo(&self, git: &GitServer, full_name: &str) {
        self.inner.lock().unwrap().repos.insert(
            full_name.to_owned(),
            (git.url(full_name), git.path(full_name)),
        );
    }

    /// Refuses, as GitHub does for credentials that may not change workflow files, any
    /// tree of `full_name` that writes under `.github/workflows/`: `404 Not Found`.
    pub fn refuse_workflow_trees(&self, full_name: &str) {
        self.inner
            .lock()
            .unwrap()
            .workflow_guarded
            .insert(full_name.to_owned());
    }

    /// Makes the fake a GitHub App host: JWTs must be signed by the key whose public half
    /// is at `public_key`, with `iss` = `app_id`.
    pub fn enable_app(&self, app_id: u64, public_key: &std::path::Path) {
        self.inner.lock().unwrap().app = Some((app_id, public_key.to_path_buf()));
    }

    /// Installs the App on an account with access to `repos`.
    pub fn add_installation(&self, id: u64, account: &str, repos: &[&str]) {
        self.inner.lock().unwrap().installations.push((
            id,
            account.to_owned(),
            repos.iter().map(|r| (*r).to_owned()).collect(),
        ));
    }

    pub fn pulls(&self) -> Vec<PullState> {
        self.inner.lock().unwrap().pulls.clone()
    }

    /// API calls so far, as (method, path).
    pub fn calls(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Calls that change something (not GETs).
    pub fn writes(&self) -> usize {
        self.calls().iter().filter(|(m, _)| m != "GET").count()
    }

    /// Merges a pull request: the base branch moves to the head's commit.
    pub fn merge(&self, number: u64) {
        let mut inner = self.inner.lock().unwrap();
        let pull = inner
            .pulls
            .iter()
            .find(|p| p.number == number)
            .unwrap()
            .clone();
        let bare = inner.repos[&pull.repo].1.clone();
        let sha = git(&bare, &["rev-parse", &pull.head]).trim().to_owned();
        git(
            &bare,
            &["update-ref", &format!("refs/heads/{}", pull.base), &sha],
        );
        let p = inner.pulls.iter_mut().find(|p| p.number == number).unwrap();
        p.state = "closed".into();
        p.merged = true;
    }

    /// Drops a pull request from every list, as GitHub's first page of 100 does with old
    /// ones.
    pub fn forget_pull(&self, number: u64) {
        self.inner
            .lock()
            .unwrap()
            .pulls
            .retain(|p| p.number != number);
    }

    /// Adds `count` closed pull requests by people (branches `feature-<n>`) to `repo`,
    /// newer than every pull request so far.
    pub fn add_closed_pulls(&self, repo: &str, count: usize) {
        let mut inner = self.inner.lock().unwrap();
        for n in 0..count {
            let number = inner.pulls.len() as u64 + 1;
            let mut pull = PullState::new(number, repo, &format!("feature-{n}"), "main");
            pull.title = format!("Feature {n}");
            pull.body = "A person's change.".into();
            pull.state = "closed".into();
            inner.pulls.push(pull);
        }
    }

    /// Closes a pull request without merging.
    pub fn close(&self, number: u64) {
        let mut inner = self.inner.lock().unwrap();
        let p = inner.pulls.iter_mut().find(|p| p.number == number).unwrap();
        p.state = "closed".into();
    }
}

/// GitHub's rate-limit headers: 5000 an hour, one used per call.
async fn rate_limit_headers(
    State(inner): State<Shared>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let used = inner.lock().unwrap().calls.len();
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", 5000.into());
    headers.insert(
        "x-ratelimit-remaining",
        5000usize.saturating_sub(used).into(),
    );
    response
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
        .map(str::to_owned)
}

/// The fixed token reaches every repository; an installation token only its own.
fn authorized(inner: &Inner, headers: &HeaderMap, repo: Option<&str>) -> bool {
    let Some(token) = bearer(headers) else {
        return false;
    };
    token == TOKEN
        || inner.installations.iter().any(|(id, _, repos)| {
            token == installation_token(*id) && repo.is_none_or(|r| repos.iter().any(|x| x == r))
        })
}

/// The strings of a JSON array (missing or not an array: none).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

/// Every `/repos/…` and `/graphql` call: logged as (method, path), then authorized (the
/// fixed token reaches every repository, an installation token only its own).
async fn enter(
    State(inner): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    {
        let mut guard = inner.lock().unwrap();
        let path = request.uri().path().to_owned();
        let repo = path
            .strip_prefix("/repos/")
            .map(|rest| rest.splitn(3, '/').take(2).collect::<Vec<_>>().join("/"));
        guard.calls.push((request.method().to_string(), path));
        if !authorized(&guard, request.headers(), repo.as_deref()) {
            return error(StatusCode::UNAUTHORIZED, "Bad credentials");
        }
    }
    next.run(request).await
}

fn head_sha(bare: &std::path::Path, branch: &str) -> String {
    std::process::Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(bare)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// In the `OpenAPI` lane, answers are shaped on the description's own example of each
/// response (`$REPIN_TEST_OPENAPI/examples/<name>.json`), with the fake's values merged
/// over it; otherwise they carry the fake's values only.
fn shaped(example: &str, value: Value) -> Value {
    let Some(dir) = std::env::var_os("REPIN_TEST_OPENAPI") else {
        return value;
    };
    let path = PathBuf::from(dir)
        .join("examples")
        .join(format!("{example}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        panic!("no OpenAPI example {}", path.display());
    };
    let template: Value = serde_json::from_str(&text).unwrap();
    match (template, value) {
        // A list answer: every item shaped on the example's first item.
        (Value::Array(items), Value::Array(values)) => {
            let item = items.into_iter().next().unwrap_or(Value::Null);
            Value::Array(values.into_iter().map(|v| merge(item.clone(), v)).collect())
        }
        (template, value) => merge(template, value),
    }
}

/// The repository example describes a fork; ours are not, and carry every key the
/// description requires.
fn not_a_fork(mut repo: Value) -> Value {
    if let Value::Object(map) = &mut repo {
        for key in ["source", "parent", "template_repository"] {
            map.remove(key);
        }
        map.entry("language").or_insert(Value::Null);
    }
    repo
}

/// `value` over `template`, objects merged key by key.
fn merge(template: Value, value: Value) -> Value {
    match (template, value) {
        (Value::Object(mut t), Value::Object(v)) => {
            for (k, val) in v {
                let base = t.remove(&k).unwrap_or(Value::Null);
                t.insert(k, merge(base, val));
            }
            Value::Object(t)
        }
        // An array of objects: each item over the example's first item.
        (Value::Array(t), Value::Array(v)) => {
            let item = t.into_iter().next().unwrap_or(Value::Null);
            Value::Array(v.into_iter().map(|x| merge(item.clone(), x)).collect())
        }
        (_, value) => value,
    }
}
