//! The bot's usual test world: a real registry where `app:1` moved to a new digest,
//! repositories whose Dockerfile pins the one before (served by real git over HTTP), and the fake
//! GitHub knowing them, ready to host a GitHub App (`APP_ID`, key made with `openssl`).

use super::git_http::GitServer;
use super::github::FakeGitHub;
use super::images::Pusher;
use super::registry::{Auth, Registry};

pub const APP_ID: u64 = 4242;

pub struct World {
    pub reg: Registry,
    pub git: GitServer,
    pub fake: FakeGitHub,
    /// Holds the App key pair; a place for state files too.
    pub keys: tempfile::TempDir,
    /// The App's private key (PEM).
    pub private: String,
    pub host: String,
    /// The digest `app:1` points at now (the repositories pin the one before).
    pub new: String,
}

impl World {
    pub async fn new(repos: &[&str]) -> Self {
        let reg = Registry::start(Auth::Open);
        let mut pusher = Pusher::new(&reg);
        let host = reg.host.clone();
        let (old, new) = pusher.moved("app", "1").await;
        let git = GitServer::start();
        let fake = FakeGitHub::start().await;
        for repo in repos {
            git.repo(
                repo,
                &[("Dockerfile", &format!("FROM {host}/app:1@{old}\n"))],
            );
            fake.add_repo(&git, repo);
        }
        let keys = tempfile::tempdir().unwrap();
        let (private, public) = super::app_key(keys.path());
        fake.enable_app(APP_ID, &public);
        Self {
            reg,
            git,
            fake,
            keys,
            private,
            host,
            new,
        }
    }

    /// Runs `repin run --app --app-id APP_ID ARGS…` as the App against the fake
    /// (`env` is set last, so it can override the key or the API URL).
    pub fn run_as_app(&self, args: &[&str], env: &[(&str, &str)]) -> super::Run {
        let app_id = APP_ID.to_string();
        let mut all = vec!["run", "--app", "--app-id", app_id.as_str()];
        all.extend_from_slice(args);
        let mut vars = vec![
            ("REPIN_GITHUB_APP_KEY", self.private.as_str()),
            ("GITHUB_API_URL", self.fake.url.as_str()),
        ];
        vars.extend_from_slice(env);
        super::repin_env(std::path::Path::new("."), &all, &vars)
    }

    /// Pull requests opened in `repo`.
    pub fn pulls_in(&self, repo: &str) -> usize {
        self.fake.pulls().iter().filter(|p| p.repo == repo).count()
    }

    /// The Dockerfile on a branch of `repo`.
    pub fn dockerfile(&self, repo: &str, branch: &str) -> String {
        super::git_http::git(
            &self.git.path(repo),
            &["show", &format!("{branch}:Dockerfile")],
        )
    }
}
