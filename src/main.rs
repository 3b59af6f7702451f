//! The `repin` binary: parse the command line, set up logging, run one command, map the
//! outcome to an exit code (0 success, 1 `check` found updates, 2 error).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use repin::check::{self, Status};
use repin::cli::{
    CheckArgs, Cli, Command, ConfigCheckArgs, ConfigCommand, DigestArgs, OutputFormat, PolicyArgs,
    RegistryArgs, RunArgs, ScanArgs, UpdateArgs,
};
use repin::config::{self, Policy};
use repin::imageref::{ImageRef, Platform};
use repin::job::{self, JobOptions, Outcome};
use repin::progress::Progress;
use repin::registry::resolve::TagKey;
use repin::{output, scan, update};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Scan(args) => scan_command(&args),
        Command::Check(args) => runtime()?.block_on(check_command(args)),
        Command::Update(args) => runtime()?.block_on(update_command(args)),
        Command::Digest(args) => runtime()?.block_on(digest_command(args)),
        Command::Run(args) => runtime()?.block_on(run_command(args)),
        Command::Config(ConfigCommand::Check(args)) => config_check_command(&args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn scan_command(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let report = scan::walk::scan_paths(&paths)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    write_stdout(|out| match args.format {
        OutputFormat::Json => output::json(&mut &mut *out, &report.found),
        OutputFormat::Text => output::text(&mut &mut *out, &report.found),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn load_service(path: Option<&Path>) -> anyhow::Result<Option<config::ServiceConfig>> {
    path.map(config::load_service)
        .transpose()
        .map_err(anyhow::Error::from)
}

fn job_options(
    scan: &ScanArgs,
    policy: &PolicyArgs,
    registry: &RegistryArgs,
    pin: bool,
) -> anyhow::Result<JobOptions> {
    Ok(JobOptions {
        paths: scan.paths.clone(),
        service: load_service(policy.config.as_deref())?,
        state: policy.state.clone(),
        pin,
        insecure: registry.insecure.clone(),
        timeout: registry.timeout.map(|s| Duration::from_secs(s.max(1))),
        per_registry: registry.per_registry.map(|n| n.max(1)),
        resolver: None,
    })
}

/// Runs the job with a progress line, and prints its warnings.
async fn run_job(opts: &JobOptions) -> anyhow::Result<Outcome> {
    let progress = Progress::start("references checked");
    let outcome = job::run(opts, &|| progress.tick()).await?;
    drop(progress);
    for warning in &outcome.report.warnings {
        eprintln!("warning: {warning}");
    }
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(outcome)
}

async fn check_command(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let opts = job_options(&args.scan, &args.policy, &args.registry, false)?;
    let outcome = run_job(&opts).await?;
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::check_json(&mut &mut *out, &outcome.checked),
        OutputFormat::Text => output::check_text(&mut &mut *out, &outcome.checked),
    })?;
    Ok(ExitCode::from(check::exit_code(&outcome.checked)))
}

async fn update_command(args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let opts = job_options(&args.scan, &args.policy, &args.registry, args.pin)?;
    let outcome = run_job(&opts).await?;
    let plan = update::plan(&outcome.checked, &outcome.change_sets);
    let outcomes = update::apply(&plan, &outcome.report.sources, args.dry_run);
    let mut failed = false;
    for c in outcome.checked.iter().filter(|c| c.status == Status::Error) {
        failed = true;
        let f = &c.found;
        eprintln!(
            "error: {}:{}: {}: {}",
            f.path,
            f.line,
            f.reference,
            c.error.as_deref().unwrap_or("lookup failed")
        );
    }
    for o in &outcomes {
        if let Some(e) = &o.error {
            failed = true;
            eprintln!("error: {e}");
        }
    }
    if !args.dry_run {
        // A change set counts as proposed when every file it touches was written.
        let written: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.path.as_str())
            .collect();
        let proposed: Vec<_> = outcome
            .change_sets
            .iter()
            .filter(|s| {
                s.members
                    .iter()
                    .all(|&i| written.contains(&outcome.checked[i].found.path.as_str()))
            })
            .collect();
        if let Err(e) = job::record_proposed(&outcome, &proposed) {
            eprintln!("warning: {e}");
        }
    }
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::update_json(&mut &mut *out, &outcomes),
        OutputFormat::Text => output::update_text(&mut &mut *out, &outcomes, args.dry_run),
    })?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn digest_command(args: DigestArgs) -> anyhow::Result<ExitCode> {
    let image = ImageRef::parse(&args.image)
        .with_context(|| format!("{}: not an image reference", args.image))?;
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let opts = JobOptions {
        insecure: args.registry.insecure.clone(),
        timeout: args.registry.timeout.map(Duration::from_secs),
        per_registry: args.registry.per_registry,
        ..JobOptions::default()
    };
    let resolver = job::resolver_for(&opts)?;
    // A digest-only reference resolves to itself (after checking that it exists).
    let reference = match (&image.tag, &image.digest) {
        (None, Some(digest)) => digest.to_string(),
        (tag, _) => tag.clone().unwrap_or_else(|| "latest".to_owned()),
    };
    let key = TagKey {
        registry: image.registry.clone(),
        repository: image.repository.clone(),
        tag: reference,
    };
    let digest = resolver
        .digest_for(&key, platform.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let line = if args.full_ref {
        let mut full = image.clone();
        full.digest = digest.parse().ok();
        full.to_string()
    } else {
        digest
    };
    write_stdout(|out| writeln!(out, "{line}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The (client, repository) pairs a run covers: one token client for `--repo`s, or
/// every App installation's repositories (limited by the `--repo` globs, else the
/// service config's `[github] repositories`).
/// Also the bot's identity: the App's `<slug>[bot]`, or `repin[bot]` with a token.
async fn run_targets(
    args: &RunArgs,
    service: Option<&repin::config::ServiceConfig>,
) -> anyhow::Result<(
    Vec<(Arc<repin::forge::github::GitHub>, String)>,
    repin::git::Identity,
)> {
    use repin::forge::github::GitHub;
    if !args.app {
        let token = std::env::var(&args.token_env)
            .ok()
            .filter(|t| !t.is_empty())
            .with_context(|| format!("environment variable {} is not set", args.token_env))?;
        let token = repin::secret::Secret::new(token);
        let mut out = Vec::new();
        for full_name in &args.repos {
            // A client per repository, so the call count is per repository.
            out.push((
                Arc::new(GitHub::new(
                    args.api_url.as_deref().unwrap_or_default(),
                    &token,
                )?),
                full_name.clone(),
            ));
        }
        let bot = repin::git::Identity {
            name: "repin[bot]".into(),
            email: "repin[bot]@users.noreply.github.com".into(),
        };
        return Ok((out, bot));
    }
    let key = match &args.app_key_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the App key {}", path.display()))?,
        None => std::env::var("REPIN_GITHUB_APP_KEY")
            .context("set --app-key-file or REPIN_GITHUB_APP_KEY")?,
    };
    let app_id = args
        .app_id
        .context("--app needs --app-id (or GITHUB_APP_ID)")?;
    let app = repin::forge::app::App::new(
        args.api_url.as_deref().unwrap_or_default(),
        app_id,
        &repin::secret::Secret::new(key),
    )?;
    // The flags' globs, else the service config's allowlist.
    let patterns: Vec<String> = if args.repos.is_empty() {
        service
            .map(|s| s.github.repositories.clone())
            .unwrap_or_default()
    } else {
        args.repos.clone()
    };
    let mut filter = globset::GlobSetBuilder::new();
    for pattern in &patterns {
        filter.add(globset::Glob::new(pattern).with_context(|| format!("--repo {pattern}"))?);
    }
    let filter = filter.build()?;
    let bot = app.bot_identity().await?;
    let mut out = Vec::new();
    for installation in app.installations().await? {
        let gh = Arc::new(app.installation(installation.id)?);
        for full_name in gh.installation_repositories().await? {
            if patterns.is_empty() || filter.is_match(&full_name) {
                out.push((Arc::clone(&gh), full_name));
            }
        }
    }
    Ok((out, bot))
}

async fn run_command(mut args: RunArgs) -> anyhow::Result<ExitCode> {
    use repin::forge::run::{RunOptions, run_repo};
    let service = load_service(args.policy.config.as_deref())?;
    let github = service
        .as_ref()
        .map(|s| s.github.clone())
        .unwrap_or_default();
    args.api_url = args
        .api_url
        .or(github.api_url)
        .or_else(|| Some("https://api.github.com".to_owned()));
    let opts = RunOptions {
        author: repin::git::Identity {
            name: String::new(),
            email: String::new(),
        },
        max_open: args.max_open.or(github.max_open).unwrap_or(10),
        dry_run: args.dry_run,
        service,
        state: args.policy.state.clone(),
        insecure: args.registry.insecure.clone(),
        commit_via_api: args.commit_via_api || github.commit_via_api.unwrap_or(false),
        resolver: None,
    };
    // One set of lookups for the whole run: a tag shared by many repositories is asked
    // about once.
    let shared = job::resolver_for(&JobOptions {
        service: opts.service.clone(),
        insecure: opts.insecure.clone(),
        timeout: args.registry.timeout.map(|s| Duration::from_secs(s.max(1))),
        per_registry: args.registry.per_registry.map(|n| n.max(1)),
        ..JobOptions::default()
    })?;
    let opts = RunOptions {
        resolver: Some(shared),
        ..opts
    };
    let (targets, bot) = run_targets(&args, opts.service.as_ref()).await?;
    let name = args.author_name.clone().unwrap_or(bot.name);
    let email = args
        .author_email
        .clone()
        .unwrap_or_else(|| format!("{name}@users.noreply.github.com"));
    let opts = RunOptions {
        author: repin::git::Identity { name, email },
        ..opts
    };
    let work = tempfile::tempdir().context("creating a work folder")?;
    let (mut opened, mut updated, mut closed, mut failed) = (0, 0, 0, 0);
    for (gh, full_name) in &targets {
        let before = gh.calls();
        match run_repo(gh, full_name, &opts, work.path()).await {
            Ok(summary) => {
                for note in &summary.notes {
                    eprintln!("{full_name}: {note}");
                }
                println!(
                    "{full_name}: opened {:?}, updated {:?}, closed {:?} ({} GitHub API calls)",
                    summary.opened,
                    summary.updated,
                    summary.closed,
                    gh.calls() - before
                );
                opened += summary.opened.len();
                updated += summary.updated.len();
                closed += summary.closed.len();
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {full_name}: {e}");
            }
        }
    }
    println!(
        "{} repositories, {opened} pull requests opened, {updated} updated, {closed} closed, {failed} failed",
        targets.len()
    );
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn config_check_command(args: &ConfigCheckArgs) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let service = match load_service(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let repo = if args.path.is_file() {
        let text =
            std::fs::read_to_string(&args.path).with_context(|| args.path.display().to_string())?;
        config::parse_repo(&args.path.display().to_string(), &text).map(|c| (c, None))
    } else {
        config::load_repo(&args.path)
    };
    let repo = match repo {
        Ok((repo, warning)) => {
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            Some(repo)
        }
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if !problems.is_empty() {
        for p in problems {
            eprintln!("{p}");
        }
        return Ok(ExitCode::from(2));
    }
    let repo = repo.unwrap_or_default();
    let policy = Policy::new(service.as_ref(), &repo);
    write_stdout(|out| output::policy_text(&mut &mut *out, &policy, &repo))?;
    Ok(ExitCode::SUCCESS)
}
