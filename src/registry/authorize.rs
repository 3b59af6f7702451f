//! How a request gets its `Authorization`: the registry's challenge, learned once per
//! registry with `GET /v2/`; its credential, looked up once ([`super::credentials`]);
//! and for a bearer challenge, a token from the realm (only over HTTPS unless the
//! registry itself is on plain HTTP: [`super::transport::realm_allowed`]) — asked ahead
//! for many repositories at once ([`Client::authorize_ahead`]), else per repository
//! scope — kept per scope in the registry's [`super::auth::TokenCache`] until it
//! expires.

use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};

use super::auth::{self, Challenge, Credential, Token};
use super::client::{Client, RegistryState};
use super::error::Error;
use super::retry::Attempt;
use super::transport::{form_body, header_str, read_capped, realm_allowed};
use crate::secret::Secret;

impl Client {
    /// The registry's challenge, learned once with `GET /v2/` (retried like any request).
    pub(super) async fn challenge(
        &self,
        registry: &str,
        state: &RegistryState,
    ) -> Result<Challenge, Error> {
        state
            .challenge
            .get_or_try_init(|| async {
                let url = &format!("{}/v2/", self.base_url(registry));
                let unexpected = |r: &reqwest::Response| Error::Status {
                    registry: registry.to_owned(),
                    status: r.status().as_u16(),
                };
                self.retry(registry, state)
                    .run(unexpected, |timeout| async move {
                        let r = match self.http.get(url).timeout(timeout).send().await {
                            Ok(r) => r,
                            Err(e) => return Ok(Attempt::Failed(e)),
                        };
                        if r.status() == StatusCode::UNAUTHORIZED {
                            let header = header_str(&r, WWW_AUTHENTICATE).unwrap_or_default();
                            return auth::parse_challenge(&header).map(Attempt::Done).map_err(
                                |why| Error::Invalid {
                                    registry: registry.to_owned(),
                                    what: "auth challenge",
                                    why,
                                },
                            );
                        }
                        // Some registries answer 404 on /v2/ but serve manifests openly.
                        if r.status().is_success() || r.status() == StatusCode::NOT_FOUND {
                            return Ok(Attempt::Done(Challenge::None));
                        }
                        Ok(Attempt::Status(r))
                    })
                    .await
            })
            .await
            .cloned()
    }

    /// The registry's credential, looked up once per run.
    pub(super) async fn credential(
        &self,
        registry: &str,
        state: &RegistryState,
    ) -> Result<Option<Credential>, Error> {
        state
            .credential
            .get_or_try_init(|| self.credentials.get(self.endpoint(registry)))
            .await
            .cloned()
    }

    /// The `Authorization` value for a request, if the registry wants one: Basic with
    /// the credential, or a bearer token for the repository's pull scope (from the
    /// cache while fresh; one fetch at a time per scope).
    pub(super) async fn authorization(
        &self,
        registry: &str,
        repository: &str,
        state: &RegistryState,
        challenge: &Challenge,
    ) -> Result<Option<Secret>, Error> {
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self
                .credential(registry, state)
                .await?
                .and_then(|c| c.basic_header())),
            Challenge::Bearer { realm, service } => {
                let scope = auth::pull_scope(repository);
                let cell = state.tokens.cell(&scope);
                let mut slot = cell.lock().await;
                if let Some(token) = slot.as_ref().filter(|t| t.is_fresh()) {
                    return Ok(Some(token.bearer()));
                }
                let token = self
                    .fetch_token(
                        registry,
                        state,
                        realm,
                        service.as_deref(),
                        std::slice::from_ref(&scope),
                    )
                    .await?;
                let header = token.bearer();
                *slot = Some(token);
                Ok(Some(header))
            }
        }
    }

    /// Bearer tokens for many repositories of one registry ahead of their requests:
    /// one token request per batch of scopes (repeated `scope` parameters, batched by
    /// [`auth::batches`]), each token kept for every scope it was asked for. Best
    /// effort: a scope without a token here gets its own when its request needs it,
    /// and a registry that refuses a batched token for one of its scopes (it granted
    /// fewer than asked) gets one scope per token from then on.
    pub async fn authorize_ahead(&self, registry: &str, repositories: &[&str]) {
        let state = self.state(registry);
        let Ok(Challenge::Bearer { realm, service }) = self.challenge(registry, &state).await
        else {
            return;
        };
        if !state.tokens.batches() {
            return;
        }
        let mut scopes: Vec<String> = repositories.iter().map(|r| auth::pull_scope(r)).collect();
        scopes.sort();
        scopes.dedup();
        // Cells locked in one (sorted) order: two batches never wait on each other
        // crosswise; a request's own fetch locks one cell at a time.
        let mut wanted = Vec::new();
        for scope in scopes {
            let cell = state.tokens.cell(&scope);
            let slot = cell.lock_owned().await;
            if !slot.as_ref().is_some_and(Token::is_fresh) {
                wanted.push((scope, slot));
            }
        }
        let scopes: Vec<String> = wanted.iter().map(|(s, _)| s.clone()).collect();
        let mut slots = wanted.into_iter().map(|(_, slot)| slot);
        for batch in auth::batches(&scopes) {
            // A request may have learned meanwhile that the registry grants fewer
            // scopes than asked: then each request fetches its own.
            if !state.tokens.batches() {
                return;
            }
            let token = self
                .fetch_token(registry, &state, &realm, service.as_deref(), batch)
                .await;
            for mut slot in slots.by_ref().take(batch.len()) {
                if let Ok(token) = &token {
                    *slot = Some(Token {
                        batch: batch.len() > 1,
                        ..token.clone()
                    });
                }
            }
        }
    }

    /// A token for `scopes` from the realm: with a refresh token (an identity token in
    /// Docker's config) by `POST`, else by `GET` with Basic credentials or none.
    async fn fetch_token(
        &self,
        registry: &str,
        state: &RegistryState,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, Error> {
        let bad = |why: String| Error::Invalid {
            registry: registry.to_owned(),
            what: "token response",
            why,
        };
        let base = reqwest::Url::parse(&self.base_url(registry)).map_err(|_| Error::Invalid {
            registry: registry.to_owned(),
            what: "registry URL",
            why: crate::imageref::shorten(registry),
        })?;
        let realm =
            realm_allowed(&base, realm, &self.options.insecure).map_err(|why| Error::Insecure {
                registry: registry.to_owned(),
                why,
            })?;
        let realm = realm.as_str();
        let credential = &self.credential(registry, state).await?;
        let bad = &bad;
        let unexpected = |r: &reqwest::Response| {
            bad(format!(
                "token endpoint answered HTTP {}",
                r.status().as_u16()
            ))
        };
        self.retry(registry, state)
            .run(unexpected, |timeout| async move {
                let request = match credential {
                    Some(Credential::IdentityToken(refresh)) => {
                        // OAuth2 names several scopes in one space-separated `scope`.
                        let joined = scopes.join(" ");
                        let mut form = vec![
                            ("grant_type", "refresh_token"),
                            ("refresh_token", refresh.expose()),
                            ("scope", joined.as_str()),
                            ("client_id", "repin"),
                        ];
                        if let Some(service) = service {
                            form.push(("service", service));
                        }
                        self.http
                            .post(realm)
                            .body(form_body(&form))
                            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    }
                    other => {
                        let mut query: Vec<(&str, &str)> =
                            scopes.iter().map(|s| ("scope", s.as_str())).collect();
                        if let Some(service) = service {
                            query.push(("service", service));
                        }
                        let url = format!(
                            "{realm}{}{}",
                            if realm.contains('?') { '&' } else { '?' },
                            form_body(&query)
                        );
                        let mut request = self.http.get(url);
                        if let Some(header) = other.as_ref().and_then(Credential::basic_header) {
                            request = request.header(AUTHORIZATION, header.expose());
                        }
                        request
                    }
                };
                let r = match request.timeout(timeout).send().await {
                    Ok(r) => r,
                    Err(e) => return Ok(Attempt::Failed(e)),
                };
                if r.status().is_success() {
                    let body =
                        read_capped(registry, r, "token response", self.options.timeout).await?;
                    return auth::parse_token(&body, Instant::now())
                        .map(Attempt::Done)
                        .map_err(bad);
                }
                if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    return Err(Error::Unauthorized {
                        registry: registry.to_owned(),
                        status: r.status().as_u16(),
                    });
                }
                Ok(Attempt::Status(r))
            })
            .await
    }
}
