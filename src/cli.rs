//! Command-line definitions (clap). Behaviour lives in the library; `main.rs` dispatches.
//!
//! A flag's environment fallback that is set but empty (an Action input left unset
//! arrives as an empty variable) counts as unset: such flags accept the empty value
//! ([`path_or_empty`], [`AppId`]) and the options layer drops it.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand, ValueEnum};

/// A path value that may be empty (then unset, see the module doc).
#[must_use]
pub fn path_or_empty() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

/// A GitHub App ID; empty (an empty `GITHUB_APP_ID`) is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppId(pub Option<u64>);

fn app_id(value: &str) -> Result<AppId, String> {
    if value.trim().is_empty() {
        return Ok(AppId(None));
    }
    value
        .trim()
        .parse()
        .map(|id| AppId(Some(id)))
        .map_err(|_| format!("{value:?} is not an App ID (a number)"))
}

/// Keeps digest-pinned container images fresh.
#[derive(Debug, Parser)]
#[command(name = "repin", version, about)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text, or as one JSON object each (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every image reference found, pinned or not.
    Scan(ScanArgs),
    /// Scan, then ask the registries: is each pin current? Exit 0 all current, 1 updates
    /// available, 2 lookups failed.
    Check(CheckArgs),
    /// Rewrite outdated digests in place (only the digest bytes change).
    Update(UpdateArgs),
    /// Print the digest a reference resolves to now (like `crane digest`).
    Digest(DigestArgs),
    /// Forge mode: for each repository, clone it, update it, and open or refresh pull
    /// requests on GitHub. Exit 0, or 2 when any repository failed.
    Run(RunArgs),
    /// The daemon: full runs on the service config's `[serve] schedule`, GitHub
    /// webhooks, `/healthz`, `/readyz` and `/metrics`. Stops cleanly on SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Which repositories, as whom: shared by `run` and `serve`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// A repository to process (`owner/name`). Repeatable. With `--app`, a glob that
    /// limits the installations' repositories (`acme/*`); without, one is needed here
    /// or in the service config's `[github] repositories`.
    #[arg(long = "repo", value_name = "OWNER/NAME")]
    pub repos: Vec<String>,
    /// Run as a GitHub App over every installation and its repositories.
    #[arg(long)]
    pub app: bool,
    /// The App's ID.
    #[arg(long, env = "GITHUB_APP_ID", required_if_eq("app", "true"), value_parser = app_id)]
    pub app_id: Option<AppId>,
    /// A file holding the App's private key (PEM); else `REPIN_GITHUB_APP_KEY` holds it.
    #[arg(long, env = "REPIN_GITHUB_APP_KEY_FILE", value_name = "FILE", value_parser = path_or_empty())]
    pub app_key_file: Option<PathBuf>,
    /// The environment variable holding the GitHub token.
    #[arg(long, default_value = "GITHUB_TOKEN", value_name = "NAME")]
    pub token_env: String,
    /// The GitHub API URL (GitHub Enterprise Server: `https://HOST/api/v3`); else the
    /// service config's `[github] api_url`, else `https://api.github.com`.
    #[arg(long, env = "GITHUB_API_URL")]
    pub api_url: Option<String>,
    /// Only the repositories of this shard (`INDEX/COUNT`, by a stable hash of the
    /// name); else `JOB_COMPLETION_INDEX` with `REPIN_SHARD_COUNT` (a Kubernetes
    /// Indexed Job); else all.
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<String>,
}

/// How pull requests are made: shared by `run` and `serve`.
#[derive(Debug, clap::Args)]
pub struct PrArgs {
    /// Print what would be pushed and opened; touch nothing remote.
    #[arg(long)]
    pub dry_run: bool,
    /// Make commits through GitHub's Git Data API so GitHub signs them (for repositories
    /// that require signed commits).
    #[arg(long)]
    pub commit_via_api: bool,
    /// At most this many open repin pull requests per repository; else the service
    /// config's `[github] max_open`, else 10.
    #[arg(long)]
    pub max_open: Option<usize>,
    /// Commit author and committer name; default the App's bot (`<slug>[bot]`), or
    /// `repin[bot]` with a token.
    #[arg(long)]
    pub author_name: Option<String>,
    /// Commit author and committer email; default `<name>@users.noreply.github.com`.
    #[arg(long)]
    pub author_email: Option<String>,
}

/// `repin run`: pull requests on GitHub.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Which repositories, as whom.
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// How pull requests are made.
    #[command(flatten)]
    pub pr: PrArgs,
    /// Rules and state.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// How to reach registries.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Repositories worked on at once; else the service config's `[serve]
    /// concurrency`, else 4.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: Option<u64>,
}

/// `repin serve`: the daemon.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen here (webhooks, /healthz, /readyz, /metrics); else the service config's
    /// `[serve] listen`, else 0.0.0.0:8080. Port 0 picks a free port (printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// The same fleet, pull request, rule and registry options as `run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// How logs are written to stderr: human-readable lines, or one JSON object per line.
// A doc comment per value would become clap's per-value help and turn `--help` into
// its long form; the flag's own help says what the values mean.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `repin config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the repository config (and the service config with --config) and print
    /// the effective rules. Exit 0 when valid, 2 when not.
    Check(ConfigCheckArgs),
}

/// `repin config check`.
#[derive(Debug, clap::Args)]
pub struct ConfigCheckArgs {
    /// A repository folder (its config is looked for) or a config file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The service config to validate and layer under the repository's rules.
    #[arg(long, env = "REPIN_CONFIG", value_name = "FILE", value_parser = path_or_empty())]
    pub config: Option<PathBuf>,
}

/// Rules and state for `check` and `update`.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// The service config (trusted: registries, credentials by variable name, org rules).
    #[arg(long, env = "REPIN_CONFIG", value_name = "FILE", value_parser = path_or_empty())]
    pub config: Option<PathBuf>,
    /// The state store file (first-seen digests, schedules). Default: `REPIN_STATE`, the
    /// service config's `state`, then ~/.local/state/repin/state.redb.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// What to scan and how to print it.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories to scan (default: the current directory).
    pub paths: Vec<PathBuf>,
    /// Output format: a table for people, or one JSON array.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// `repin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// What to scan and how to print it.
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Rules and state.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// How to reach registries.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `repin update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// What to scan and how to print it.
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Also add the current digest to references that have only a tag.
    #[arg(long)]
    pub pin: bool,
    /// Print a unified diff of the changes and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rules and state.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// How to reach registries.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `repin digest`.
#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    /// The image reference (`nginx:1.27`, `ghcr.io/acme/app:v1`).
    pub image: String,
    /// The platform's manifest digest instead of the index digest (`os/arch[/variant]`).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print the whole reference with the digest (`docker.io/library/nginx:1.27@sha256:…`).
    #[arg(long)]
    pub full_ref: bool,
    /// How to reach registries.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach registries.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// A registry host reached over plain HTTP (loopback hosts always are). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Seconds before a registry request is abandoned (then retried); default 30.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Concurrent requests per registry; default 8 (or the service config's).
    #[arg(long, value_name = "N")]
    pub per_registry: Option<usize>,
    /// Seconds the whole command may spend on registries: lookups not done by then are
    /// errors at their references (and `run` starts no repository after it).
    #[arg(long, value_name = "SECONDS")]
    pub deadline: Option<u64>,
}

/// A local job's flags as [`crate::options::for_job`] takes them.
fn job_flags(
    scan: &ScanArgs,
    policy: &PolicyArgs,
    registry: &RegistryArgs,
    pin: bool,
) -> crate::options::JobFlags {
    crate::options::JobFlags {
        paths: scan.paths.clone(),
        config: policy.config.clone(),
        state: policy.state.clone(),
        pin,
        registry: registry.flags(),
    }
}

impl CheckArgs {
    /// The flags as [`crate::options::for_job`] takes them.
    #[must_use]
    pub fn flags(&self) -> crate::options::JobFlags {
        job_flags(&self.scan, &self.policy, &self.registry, false)
    }
}

impl UpdateArgs {
    /// The flags as [`crate::options::for_job`] takes them.
    #[must_use]
    pub fn flags(&self) -> crate::options::JobFlags {
        job_flags(&self.scan, &self.policy, &self.registry, self.pin)
    }
}

impl RunArgs {
    /// The flags as [`crate::options::for_run`] takes them.
    #[must_use]
    pub fn flags(&self) -> crate::options::RunFlags {
        let (fleet, pr) = (&self.fleet, &self.pr);
        crate::options::RunFlags {
            fleet: crate::options::FleetFlags {
                repos: fleet.repos.clone(),
                app: fleet.app,
                app_id: fleet.app_id.and_then(|id| id.0),
                app_key_file: fleet.app_key_file.clone(),
                token_env: fleet.token_env.clone(),
                api_url: fleet.api_url.clone(),
                shard: fleet.shard.clone(),
            },
            pr: crate::options::PrFlags {
                dry_run: pr.dry_run,
                commit_via_api: pr.commit_via_api,
                max_open: pr.max_open,
                author_name: pr.author_name.clone(),
                author_email: pr.author_email.clone(),
            },
            config: self.policy.config.clone(),
            state: self.policy.state.clone(),
            registry: self.registry.flags(),
            concurrency: self.concurrency.and_then(|n| usize::try_from(n).ok()),
        }
    }
}

impl RegistryArgs {
    /// The flags as [`crate::options`] takes them.
    #[must_use]
    pub fn flags(&self) -> crate::options::RegistryFlags {
        crate::options::RegistryFlags {
            insecure: self.insecure.clone(),
            timeout: self.timeout,
            per_registry: self.per_registry,
            deadline: self.deadline,
        }
    }
}

/// How results are printed on stdout: a table for people, or one JSON array.
// As for `LogFormat`: no per-value doc comments.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}
