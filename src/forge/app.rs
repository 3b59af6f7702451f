//! GitHub App authentication: the App's private key signs an RS256 JWT (octocrab does
//! it per request), which lists the App's installations and mints installation tokens;
//! each installation gets a [`GitHub`] client whose token octocrab refreshes before it
//! expires.

use serde::Deserialize;

use super::github::{Error, GitHub};
use crate::secret::Secret;

/// An installation of the App.
#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    /// The installation ID.
    pub id: u64,
    /// The account it is installed on.
    pub account: Account,
}

/// The account an installation belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// The account's login (user or organization).
    pub login: String,
}

/// A GitHub App.
pub struct App {
    client: octocrab::Octocrab,
    /// The API's base URL.
    base_url: String,
}

impl App {
    /// # Errors
    /// [`Error::Setup`] for a key that is not an RSA PEM or a bad URL.
    pub fn new(base_url: &str, app_id: u64, private_key_pem: &Secret) -> Result<Self, Error> {
        let key =
            octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes())
                .map_err(|_| Error::Setup("the App private key is not an RSA key in PEM".into()))?;
        let client = octocrab::Octocrab::builder()
            .base_uri(base_url)
            .map_err(|e| Error::Setup(e.to_string()))?
            .app(octocrab::models::AppId(app_id), key)
            .build()
            .map_err(|e| Error::Setup(e.to_string()))?;
        Ok(Self {
            client,
            base_url: base_url.to_owned(),
        })
    }

    /// Every installation of the App.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn installations(&self) -> Result<Vec<Installation>, Error> {
        GitHub::for_app(self.client.clone(), &self.base_url)
            .pages(
                "list installations",
                "/app/installations",
                super::github::MAX_REPOSITORY_PAGES,
                |page: Vec<Installation>| page,
                |installation| installation.id,
            )
            .await
    }

    /// The App's bot identity, the default commit author: `<slug>[bot]`.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn bot_identity(&self) -> Result<crate::git::Identity, Error> {
        #[derive(Deserialize)]
        struct Me {
            slug: String,
        }
        let me: Me = GitHub::for_app(self.client.clone(), &self.base_url)
            .call("get the App", http::Method::GET, "/app", None)
            .await?;
        let name = format!("{}[bot]", me.slug);
        Ok(crate::git::Identity {
            email: format!("{name}@users.noreply.github.com"),
            name,
        })
    }

    /// A client acting as one installation.
    ///
    /// # Errors
    /// [`Error::Setup`].
    pub fn installation(&self, id: u64) -> Result<GitHub, Error> {
        let client = self
            .client
            .installation(octocrab::models::InstallationId(id))
            .map_err(|e| Error::Setup(e.to_string()))?;
        Ok(GitHub::for_installation(client, &self.base_url))
    }
}
