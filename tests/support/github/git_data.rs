//! The Git Data API over the bare repositories: blobs, trees, commits and refs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use std::path::PathBuf;

use super::{RepoPath, Shared, error, head_sha, shaped};

/// Runs git in a bare repository with input on stdin and extra environment; stdout.
pub(super) fn git_in(
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

/// The bare repository behind a `/repos/{owner}/{repo}/git/…` route (404 when the fake
/// has no such repository), and the route's `{sha}` or `{*branch}`.
pub(super) struct Bare {
    pub dir: PathBuf,
    pub tail: String,
    /// Trees that change workflow files are refused ([`super::FakeGitHub::refuse_workflow_trees`]).
    pub workflow_guarded: bool,
}

impl axum::extract::FromRequestParts<Shared> for Bare {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        inner: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let RepoPath { full, tail, .. } = RepoPath::from_request_parts(parts, inner).await?;
        let inner = inner.lock().unwrap();
        let dir = inner
            .repos
            .get(&full)
            .map(|(_, bare)| bare.clone())
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "Not Found"))?;
        let workflow_guarded = inner.workflow_guarded.contains(&full);
        Ok(Self {
            dir,
            tail,
            workflow_guarded,
        })
    }
}

pub(super) fn created(example: &str, sha: &str, extra: Value) -> Response {
    let mut body = json!({"sha": sha, "url": format!("https://api.github.com/git/{sha}")});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (StatusCode::CREATED, Json(shaped(example, body))).into_response()
}

pub(super) async fn create_blob(Bare { dir: bare, .. }: Bare, Json(body): Json<Value>) -> Response {
    use base64::Engine as _;
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

pub(super) async fn create_tree(
    Bare {
        dir: bare,
        workflow_guarded,
        ..
    }: Bare,
    Json(body): Json<Value>,
) -> Response {
    let entries = body["tree"].as_array().into_iter().flatten();
    if workflow_guarded
        && entries.clone().any(|e| {
            e["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(".github/workflows/"))
        })
    {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
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

pub(super) async fn create_commit(
    Bare { dir: bare, .. }: Bare,
    Json(body): Json<Value>,
) -> Response {
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

pub(super) async fn get_commit(
    Bare {
        dir: bare,
        tail: sha,
        ..
    }: Bare,
) -> Response {
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

pub(super) async fn get_ref(
    Bare {
        dir: bare,
        tail: branch,
        ..
    }: Bare,
) -> Response {
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

pub(super) async fn create_ref(Bare { dir: bare, .. }: Bare, Json(body): Json<Value>) -> Response {
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

pub(super) async fn update_ref(
    Bare {
        dir: bare,
        tail: branch,
        ..
    }: Bare,
    Json(body): Json<Value>,
) -> Response {
    let sha = body["sha"].as_str().unwrap_or_default();
    match git_in(&bare, &["update-ref", &format!("refs/heads/{branch}"), sha], b"", &[]) {
        Ok(_) => Json(shaped("git-ref", json!({"ref": format!("refs/heads/{branch}"), "object": {"sha": sha, "type": "commit"}}))).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}
