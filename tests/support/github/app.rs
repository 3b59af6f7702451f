//! The App: `GET /app`, its installations, installation tokens, and an installation's
//! repositories. JWTs are verified with `openssl`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Inner, Shared, bearer, error, installation_token, page, shaped};

/// Verifies an App JWT: RS256 over `header.payload` by the App's key, `iss` the App ID,
/// not expired.
pub(super) fn app_jwt_ok(inner: &Inner, headers: &HeaderMap) -> bool {
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

pub(super) async fn installations(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
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
    let (links, list) = page(&uri, list);
    (
        links,
        Json(shaped("base-installation-items", Value::Array(list))),
    )
        .into_response()
}

pub(super) async fn access_token(
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

pub(super) async fn installation_repositories(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
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
    let total = list.len();
    let (links, list) = page(&uri, list);
    let body = json!({"total_count": total, "repositories": list});
    (links, Json(shaped("repository-paginated-2", body))).into_response()
}

/// `GET /app`: the authenticated App (its slug names the bot).
pub(super) async fn app_itself(State(inner): State<Shared>, headers: HeaderMap) -> Response {
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
