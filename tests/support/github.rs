//! A stateful fake of the GitHub REST API, in GitHub's shapes, for the routes `repin run`
//! uses: repositories, pull requests (open, closed, merged), comments, labels, reviewers,
//! assignees. Repositories live on a [`GitServer`]; a pull request's head is read from the
//! bare repository. It checks the bearer token and logs every call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::git_http::{GitServer, git};

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

#[derive(Default)]
struct Inner {
    repos: HashMap<String, (String, PathBuf)>,
    pulls: Vec<PullState>,
    calls: Vec<(String, String)>,
    /// The App: its ID and public key file (JWTs are verified with `openssl`).
    app: Option<(u64, PathBuf)>,
    /// Installation ID → (account, repositories).
    installations: Vec<(u64, String, Vec<String>)>,
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

/// The OpenAPI lane: with `REPIN_TEST_OPENAPI` naming a folder where
/// `@stoplight/prism-cli@5.14.2` and `@octokit/openapi` are installed (see
/// `scripts/openapi-lane`), every fake starts behind `prism proxy --errors`, which checks
/// each request the bot sends and each response the fake returns against GitHub's
/// OpenAPI description and turns any violation into an error response.
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

/// Verifies an App JWT: RS256 over `header.payload` by the App's key, `iss` the App ID,
/// not expired.
fn app_jwt_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (Some((app_id, public_key)), Some(jwt)) = (&inner.app, bearer(headers)) else {
        return false;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).ok();
    let (Some(header), Some(claims), Some(signature)) =
        (decode(parts[0]), decode(parts[1]), decode(parts[2]))
    else {
        return false;
    };
    let header: Value = serde_json::from_slice(&header).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&claims).unwrap_or_default();
    let iss_ok = claims["iss"].as_u64() == Some(*app_id)
        || claims["iss"].as_str() == Some(&app_id.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp_ok = claims["exp"].as_u64().is_some_and(|e| e > now);
    if header["alg"] != "RS256" || !iss_ok || !exp_ok {
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    let sig = dir.path().join("sig");
    std::fs::write(&sig, signature).unwrap();
    let mut child = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            public_key.to_str().unwrap(),
            "-signature",
            sig.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    child.wait().unwrap().success()
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

/// In the OpenAPI lane, answers are shaped on the description's own example of each
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

fn pull_json(inner: &Inner, p: &PullState) -> Value {
    let bare = &inner.repos[&p.repo].1;
    let (owner, _) = p.repo.split_once('/').unwrap();
    json!({
        "url": format!("https://api.github.com/repos/{}/pulls/{}", p.repo, p.number),
        "id": 1000 + p.number,
        "html_url": format!("https://github.com/{}/pull/{}", p.repo, p.number),
        "number": p.number,
        "node_id": format!("PR_{}_{}", p.repo.replace('/', "_"), p.number),
        "state": p.state,
        "locked": false,
        "title": p.title,
        "body": p.body,
        "draft": p.draft,
        "user": {"login": "repin[bot]", "id": 1, "type": "Bot"},
        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "assignees": p.assignees.iter().map(|a| json!({"login": a})).collect::<Vec<_>>(),
        "requested_reviewers": p.reviewers.iter().map(|r| json!({"login": r})).collect::<Vec<_>>(),
        "requested_teams": p.team_reviewers.iter().map(|t| json!({"slug": t})).collect::<Vec<_>>(),
        "merged_at": if p.merged { json!("2026-11-22T09:00:00Z") } else { Value::Null },
        "closed_at": if p.state == "closed" { json!("2026-11-22T09:00:00Z") } else { Value::Null },
        "head": {"label": format!("{owner}:{}", p.head), "ref": p.head, "sha": head_sha(bare, &p.head)},
        "base": {"label": format!("{owner}:{}", p.base), "ref": p.base, "sha": head_sha(bare, &p.base)},
    })
}

async fn repo(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    let full = format!("{owner}/{name}");
    let inner = inner.lock().unwrap();
    match inner.repos.get(&full) {
        Some((clone_url, _)) => Json(not_a_fork(shaped(
            "full-repository-default-response",
            json!({
                "id": 42, "node_id": "R_1", "name": name, "full_name": full,
                "owner": {"login": owner, "id": 7, "type": "Organization"},
                "private": false, "html_url": format!("https://github.com/{full}"),
                "clone_url": clone_url, "default_branch": "main", "archived": false,
            }),
        )))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn list_pulls(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let full = format!("{owner}/{name}");
    let inner = inner.lock().unwrap();
    let state = query.get("state").map_or("open", String::as_str);
    let list: Vec<Value> = inner
        .pulls
        .iter()
        .rev()
        .filter(|p| p.repo == full && (state == "all" || p.state == state))
        .map(|p| pull_json(&inner, p))
        .collect();
    Json(shaped("pull-request-simple-items", Value::Array(list))).into_response()
}

async fn create_pull(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let mut inner = inner.lock().unwrap();
    let head = body["head"].as_str().unwrap_or_default().to_owned();
    let exists = inner
        .pulls
        .iter()
        .any(|p| p.repo == full && p.head == head && p.state == "open");
    if exists {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "A pull request already exists",
        );
    }
    if head_sha(&inner.repos[&full].1, &head).is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: head does not exist",
        );
    }
    let number = inner.pulls.len() as u64 + 1;
    let pull = PullState {
        number,
        repo: full,
        head,
        base: body["base"].as_str().unwrap_or("main").to_owned(),
        title: body["title"].as_str().unwrap_or_default().to_owned(),
        body: body["body"].as_str().unwrap_or_default().to_owned(),
        state: "open".into(),
        merged: false,
        draft: body["draft"].as_bool().unwrap_or(false),
        labels: Vec::new(),
        reviewers: Vec::new(),
        team_reviewers: Vec::new(),
        assignees: Vec::new(),
        comments: Vec::new(),
        auto_merge: false,
    };
    inner.pulls.push(pull.clone());
    (
        StatusCode::CREATED,
        Json(shaped("pull-request", pull_json(&inner, &pull))),
    )
        .into_response()
}

fn with_pull(
    inner: &Shared,
    full: &str,
    number: u64,
    example: &str,
    change: impl FnOnce(&mut PullState),
) -> Response {
    let mut inner = inner.lock().unwrap();
    let Some(pull) = inner
        .pulls
        .iter_mut()
        .find(|p| p.repo == full && p.number == number)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    change(pull);
    let pull = pull.clone();
    Json(shaped(example, pull_json(&inner, &pull))).into_response()
}

async fn update_pull(
    State(inner): State<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    with_pull(&inner, &full, number, "pull-request", |p| {
        if let Some(t) = body["title"].as_str() {
            p.title = t.to_owned();
        }
        if let Some(b) = body["body"].as_str() {
            p.body = b.to_owned();
        }
        if let Some(s) = body["state"].as_str() {
            p.state = s.to_owned();
        }
    })
}

async fn comment(
    State(inner): State<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    let response = with_pull(&inner, &full, number, "pull-request", |p| {
        p.comments.push(text.clone());
    });
    if response.status() != StatusCode::OK {
        return response;
    }
    (
        StatusCode::CREATED,
        Json(shaped(
            "issue-comment",
            json!({"id": 1, "body": text, "user": {"login": "repin[bot]"}}),
        )),
    )
        .into_response()
}

async fn list_comments(
    State(inner): State<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Response {
    let full = format!("{owner}/{name}");
    let inner = inner.lock().unwrap();
    let Some(pull) = inner
        .pulls
        .iter()
        .find(|p| p.repo == full && p.number == number)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let list: Vec<Value> = pull
        .comments
        .iter()
        .map(|c| json!({"id": 1, "body": c}))
        .collect();
    Json(shaped("issue-comment-items", Value::Array(list))).into_response()
}

async fn labels(
    State(inner): State<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let names: Vec<String> = strings(&body["labels"]);
    with_pull(&inner, &full, number, "pull-request", |p| {
        p.labels.extend(names.clone());
    });
    let list = names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
    Json(shaped("label-items", Value::Array(list))).into_response()
}

async fn reviewers(
    State(inner): State<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let (people, teams) = (
        strings(&body["reviewers"]),
        strings(&body["team_reviewers"]),
    );
    let response = with_pull(&inner, &full, number, "pull-request-review-request", |p| {
        p.reviewers.extend(people);
        p.team_reviewers.extend(teams);
    });
    (StatusCode::CREATED, response).into_response()
}

async fn assignees(
    State(inner): State<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let people: Vec<String> = strings(&body["assignees"]);
    let response = with_pull(&inner, &full, number, "issue", |p| {
        p.assignees.extend(people);
    });
    (StatusCode::CREATED, response).into_response()
}

async fn installations(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    let mut guard = inner.lock().unwrap();
    guard
        .calls
        .push(("GET".into(), "/app/installations".into()));
    if !app_jwt_ok(&guard, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    }
    let app_id = guard.app.as_ref().map(|a| a.0);
    let list: Vec<Value> = guard
        .installations
        .iter()
        .map(|(id, account, _)| {
            json!({
                "id": id,
                // Enterprise's keys too: prism checks the `anyOf` account by its
                // last branch.
                "account": {
                    "login": account, "id": id, "type": "Organization", "name": account,
                    "slug": account, "created_at": "2020-01-01T00:00:00Z",
                    "updated_at": "2020-01-01T00:00:00Z",
                },
                "app_id": app_id,
                "target_type": "Organization",
                "repository_selection": "selected",
                "access_tokens_url": format!("https://api.github.com/app/installations/{id}/access_tokens"),
                "permissions": {"contents": "write", "pull_requests": "write"},
            })
        })
        .collect();
    Json(shaped("base-installation-items", Value::Array(list))).into_response()
}

async fn access_token(
    State(inner): State<Shared>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let mut guard = inner.lock().unwrap();
    guard.calls.push((
        "POST".into(),
        format!("/app/installations/{id}/access_tokens"),
    ));
    if !app_jwt_ok(&guard, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    }
    if !guard.installations.iter().any(|(i, _, _)| *i == id) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    (
        StatusCode::CREATED,
        Json(shaped(
            "installation-token",
            json!({
                "token": installation_token(id),
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "permissions": {"contents": "write", "pull_requests": "write"},
                "repository_selection": "selected",
            }),
        )),
    )
        .into_response()
}

async fn installation_repositories(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    let mut guard = inner.lock().unwrap();
    guard
        .calls
        .push(("GET".into(), "/installation/repositories".into()));
    let token = bearer(&headers).unwrap_or_default();
    let Some((_, _, repos)) = guard
        .installations
        .iter()
        .find(|(id, _, _)| token == installation_token(*id))
    else {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    let list: Vec<Value> = repos
        .iter()
        .map(|r| json!({"full_name": r, "name": r.split('/').nth(1), "private": false}))
        .collect();
    let page = json!({"total_count": list.len(), "repositories": list});
    Json(shaped("repository-paginated-2", page)).into_response()
}

/// Runs git in a bare repository with input on stdin and extra environment; stdout.
fn git_in(
    bare: &std::path::Path,
    args: &[&str],
    input: &[u8],
    env: &[(&str, &str)],
) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("git")
        .args(args)
        .current_dir(bare)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The bare repository behind `full`.
fn repo_dir(inner: &Shared, full: &str) -> Result<PathBuf, Box<Response>> {
    inner
        .lock()
        .unwrap()
        .repos
        .get(full)
        .map(|(_, bare)| bare.clone())
        .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, "Not Found")))
}

fn created(example: &str, sha: &str, extra: Value) -> Response {
    let mut body = json!({"sha": sha, "url": format!("https://api.github.com/git/{sha}")});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (StatusCode::CREATED, Json(shaped(example, body))).into_response()
}

async fn create_blob(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    use base64::Engine as _;
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let content = body["content"].as_str().unwrap_or_default();
    let bytes = if body["encoding"] == "base64" {
        base64::engine::general_purpose::STANDARD
            .decode(content.replace('\n', ""))
            .unwrap_or_default()
    } else {
        content.as_bytes().to_vec()
    };
    match git_in(&bare, &["hash-object", "-w", "--stdin"], &bytes, &[]) {
        Ok(sha) => created("short-blob", &sha, json!({})),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

async fn create_tree(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let index = tempfile::NamedTempFile::new().unwrap();
    let index_path = index.path().to_str().unwrap().to_owned();
    let env = [("GIT_INDEX_FILE", index_path.as_str())];
    let base = body["base_tree"].as_str().unwrap_or_default();
    if let Err(e) = git_in(&bare, &["read-tree", base], b"", &env) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, &e);
    }
    for entry in body["tree"].as_array().into_iter().flatten() {
        let info = format!(
            "{},{},{}",
            entry["mode"].as_str().unwrap_or("100644"),
            entry["sha"].as_str().unwrap_or_default(),
            entry["path"].as_str().unwrap_or_default()
        );
        if let Err(e) = git_in(
            &bare,
            &["update-index", "--add", "--cacheinfo", &info],
            b"",
            &env,
        ) {
            return error(StatusCode::UNPROCESSABLE_ENTITY, &e);
        }
    }
    match git_in(&bare, &["write-tree"], b"", &env) {
        Ok(sha) => created("git-tree", &sha, json!({"truncated": false})),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

async fn create_commit(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let tree = body["tree"].as_str().unwrap_or_default().to_owned();
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    let mut args = vec!["commit-tree".to_owned(), tree];
    for parent in body["parents"].as_array().into_iter().flatten() {
        args.push("-p".into());
        args.push(parent.as_str().unwrap_or_default().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // GitHub authors API commits as the token's user and commits them as itself, signed.
    let env = [
        ("GIT_AUTHOR_NAME", "repin[bot]"),
        ("GIT_AUTHOR_EMAIL", "repin[bot]@users.noreply.github.com"),
        ("GIT_COMMITTER_NAME", "GitHub"),
        ("GIT_COMMITTER_EMAIL", "noreply@github.com"),
    ];
    match git_in(&bare, &args, message.as_bytes(), &env) {
        Ok(sha) => created(
            "git-commit",
            &sha,
            json!({"verification": {"verified": true, "reason": "valid"}}),
        ),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

async fn get_commit(
    State(inner): State<Shared>,
    Path((owner, name, sha)): Path<(String, String, String)>,
) -> Response {
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let out = std::process::Command::new("git")
        .args(["log", "-1", "--format=%an%n%ae%n%cn%n%ce%n%T", &sha, "--"])
        .current_dir(&bare)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields: Vec<&str> = text.lines().collect();
    if !out.status.success() || fields.len() < 5 {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(shaped(
        "git-commit",
        json!({
            "sha": sha,
            "author": {"name": fields[0], "email": fields[1], "date": "2026-11-15T10:00:00Z"},
            "committer": {"name": fields[2], "email": fields[3], "date": "2026-11-15T10:00:00Z"},
            "tree": {"sha": fields[4]},
            "parents": [],
            "message": "",
        }),
    ))
    .into_response()
}

async fn get_ref(
    State(inner): State<Shared>,
    Path((owner, name, branch)): Path<(String, String, String)>,
) -> Response {
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let sha = head_sha(&bare, &branch);
    if sha.is_empty() {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(shaped(
        "git-ref",
        json!({"ref": format!("refs/heads/{branch}"), "object": {"sha": sha, "type": "commit"}}),
    ))
    .into_response()
}

async fn create_ref(
    State(inner): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let reference = body["ref"].as_str().unwrap_or_default();
    let sha = body["sha"].as_str().unwrap_or_default();
    let branch = reference.strip_prefix("refs/heads/").unwrap_or(reference);
    if !head_sha(&bare, branch).is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Reference already exists");
    }
    match git_in(&bare, &["update-ref", reference, sha], b"", &[]) {
        Ok(_) => (
            StatusCode::CREATED,
            Json(shaped(
                "git-ref",
                json!({"ref": reference, "object": {"sha": sha, "type": "commit"}}),
            )),
        )
            .into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

async fn update_ref(
    State(inner): State<Shared>,
    Path((owner, name, branch)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let full = format!("{owner}/{name}");
    let bare = match repo_dir(&inner, &full) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let sha = body["sha"].as_str().unwrap_or_default();
    match git_in(&bare, &["update-ref", &format!("refs/heads/{branch}"), sha], b"", &[]) {
        Ok(_) => Json(shaped("git-ref", json!({"ref": format!("refs/heads/{branch}"), "object": {"sha": sha, "type": "commit"}}))).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

/// GraphQL: just `enablePullRequestAutoMerge`, answered in GitHub's GraphQL shape
/// (errors inside a 200).
async fn graphql(State(inner): State<Shared>, Json(body): Json<Value>) -> Response {
    let query = body["query"].as_str().unwrap_or_default();
    let id = body["variables"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !query.contains("enablePullRequestAutoMerge") {
        return Json(json!({"errors": [{"message": "unsupported query"}]})).into_response();
    }
    let mut guard = inner.lock().unwrap();
    let found = guard
        .pulls
        .iter_mut()
        .find(|p| format!("PR_{}_{}", p.repo.replace('/', "_"), p.number) == id);
    match found {
        Some(p) => {
            p.auto_merge = true;
            Json(json!({"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": p.number}}}})).into_response()
        }
        None => Json(json!({"errors": [{"message": format!("Could not resolve to a node with the global id of '{id}'")}]})).into_response(),
    }
}

/// `GET /app`: the authenticated App (its slug names the bot).
async fn app_itself(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    let mut guard = inner.lock().unwrap();
    guard.calls.push(("GET".into(), "/app".into()));
    if !app_jwt_ok(&guard, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    }
    let id = guard.app.as_ref().map_or(0, |a| a.0);
    Json(shaped(
        "integration",
        json!({"id": id, "slug": "repin-test", "name": "repin test", "node_id": "A_1"}),
    ))
    .into_response()
}
