//! Repositories, pull requests and their issue side (comments, labels, assignees),
//! reviewers, and GraphQL's auto-merge.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    Inner, PullState, RepoPath, Shared, error, head_sha, not_a_fork, page, shaped, strings,
};

pub(super) fn pull_json(inner: &Inner, p: &PullState) -> Value {
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

pub(super) async fn repo(
    State(inner): State<Shared>,
    RepoPath {
        full, owner, name, ..
    }: RepoPath,
) -> Response {
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

/// Lists a repository's pull requests, paged, with GitHub's validator: a weak `ETag`
/// over the page, and `304 Not Modified` (no body) when `If-None-Match` names it.
pub(super) async fn list_pulls(
    State(inner): State<Shared>,
    RepoPath { full, .. }: RepoPath,
    uri: axum::http::Uri,
    asked: HeaderMap,
) -> Response {
    let inner = inner.lock().unwrap();
    let state = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap_or("open");
    let list: Vec<Value> = inner
        .pulls
        .iter()
        .rev()
        .filter(|p| p.repo == full && (state == "all" || p.state == state))
        .map(|p| pull_json(&inner, p))
        .collect();
    let (mut headers, list) = page(&uri, list);
    let body = shaped("pull-request-simple-items", Value::Array(list));
    let etag = {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(body.to_string().as_bytes());
        format!("W/\"{}\"", hex(&hash))
    };
    headers.insert(axum::http::header::ETAG, etag.parse().unwrap());
    let matches = asked
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, Json(body)).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

pub(super) async fn create_pull(
    State(inner): State<Shared>,
    RepoPath { full, .. }: RepoPath,
    Json(body): Json<Value>,
) -> Response {
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
    let mut pull = PullState::new(
        number,
        &full,
        &head,
        body["base"].as_str().unwrap_or("main"),
    );
    body["title"]
        .as_str()
        .unwrap_or_default()
        .clone_into(&mut pull.title);
    body["body"]
        .as_str()
        .unwrap_or_default()
        .clone_into(&mut pull.body);
    pull.draft = body["draft"].as_bool().unwrap_or(false);
    inner.pulls.push(pull.clone());
    (
        StatusCode::CREATED,
        Json(shaped("pull-request", pull_json(&inner, &pull))),
    )
        .into_response()
}

pub(super) fn with_pull(
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

pub(super) async fn update_pull(
    State(inner): State<Shared>,
    RepoPath { full, number, .. }: RepoPath,
    Json(body): Json<Value>,
) -> Response {
    with_pull(&inner, &full, number, "pull-request", |p| {
        if let Some(t) = body["title"].as_str() {
            t.clone_into(&mut p.title);
        }
        if let Some(b) = body["body"].as_str() {
            b.clone_into(&mut p.body);
        }
        if let Some(s) = body["state"].as_str() {
            s.clone_into(&mut p.state);
        }
    })
}

pub(super) async fn comment(
    State(inner): State<Shared>,
    RepoPath { full, number, .. }: RepoPath,
    Json(body): Json<Value>,
) -> Response {
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    let mut id = 0;
    let response = with_pull(&inner, &full, number, "pull-request", |p| {
        p.comments.push(text.clone());
        id = comment_id(number, p.comments.len() - 1);
    });
    if response.status() != StatusCode::OK {
        return response;
    }
    (
        StatusCode::CREATED,
        Json(shaped(
            "issue-comment",
            json!({"id": id, "body": text, "user": {"login": "repin[bot]"}}),
        )),
    )
        .into_response()
}

/// A comment's ID: unique per pull request and place.
fn comment_id(pull: u64, index: usize) -> u64 {
    pull * 10_000 + index as u64 + 1
}

pub(super) async fn list_comments(
    State(inner): State<Shared>,
    RepoPath { full, number, .. }: RepoPath,
    uri: axum::http::Uri,
) -> Response {
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
        .enumerate()
        .map(|(i, c)| json!({"id": comment_id(number, i), "body": c}))
        .collect();
    let (headers, list) = page(&uri, list);
    (
        headers,
        Json(shaped("issue-comment-items", Value::Array(list))),
    )
        .into_response()
}

pub(super) async fn labels(
    State(inner): State<Shared>,
    RepoPath { full, number, .. }: RepoPath,
    Json(body): Json<Value>,
) -> Response {
    let names: Vec<String> = strings(&body["labels"]);
    with_pull(&inner, &full, number, "pull-request", |p| {
        p.labels.extend(names.clone());
    });
    let list = names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
    Json(shaped("label-items", Value::Array(list))).into_response()
}

pub(super) async fn reviewers(
    State(inner): State<Shared>,
    RepoPath { full, number, .. }: RepoPath,
    Json(body): Json<Value>,
) -> Response {
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

pub(super) async fn assignees(
    State(inner): State<Shared>,
    RepoPath { full, number, .. }: RepoPath,
    Json(body): Json<Value>,
) -> Response {
    let people: Vec<String> = strings(&body["assignees"]);
    let response = with_pull(&inner, &full, number, "issue", |p| {
        p.assignees.extend(people);
    });
    (StatusCode::CREATED, response).into_response()
}

/// GraphQL: just `enablePullRequestAutoMerge`, answered in GitHub's GraphQL shape
/// (errors inside a 200).
pub(super) async fn graphql(State(inner): State<Shared>, Json(body): Json<Value>) -> Response {
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
