//! The `repin` binary: parse the command line, set up logging, run one command, map the
//! outcome to an exit code (0 success, 1 `check` found updates, 2 error).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use repin::check;
use repin::cli::{
    CheckArgs, Cli, Command, ConfigCheckArgs, ConfigCommand, DigestArgs, FleetArgs, LogFormat,
    OutputFormat, PolicyArgs, PrArgs, RegistryArgs, RunArgs, ScanArgs, ServeArgs, UpdateArgs,
};
use repin::config::{self, Policy, ServiceConfig};
use repin::forge::app::App;
use repin::forge::fleet::{Fleet, Target};
use repin::forge::run::{RunOptions, run_repo};
use repin::git::Identity;
use repin::imageref::{ImageRef, Platform};
use repin::job::{self, JobOptions, Outcome};
use repin::model::Status;
use repin::progress::Progress;
use repin::registry::resolve::TagKey;
use repin::secret::Secret;
use repin::serve::ServeOptions;
use repin::shard::Shard;
use repin::{output, scan, update};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs its work by default; one-shot commands only their problems.
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(cli.verbose, cli.log_format, serving);
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8, format: LogFormat, serving: bool) {
    let default = match (verbose, serving) {
        (0, false) => "warn",
        (0, true) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Scan(args) => scan_command(&args),
        Command::Check(args) => runtime()?.block_on(check_command(args)),
        Command::Update(args) => runtime()?.block_on(update_command(args)),
        Command::Digest(args) => runtime()?.block_on(digest_command(args)),
        Command::Run(args) => runtime()?.block_on(run_command(args)),
        Command::Serve(args) => {
            // Repositories abandoned at the shutdown deadline may still hold a blocking
            // thread; they are not waited for.
            let runtime = runtime()?;
            let code = runtime.block_on(serve_command(args));
            runtime.shutdown_timeout(Duration::from_secs(1));
            code
        }
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

/// The service config, if a path is given (an empty one, as an unset Action input
/// passes, counts as none).
fn load_service(path: Option<&Path>) -> anyhow::Result<Option<config::ServiceConfig>> {
    path.filter(|p| !p.as_os_str().is_empty())
        .map(config::load_service)
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
        deadline: deadline(registry),
        per_registry: registry.per_registry.map(|n| n.max(1)),
        resolver: None,
        store: None,
        repository: None,
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
        OutputFormat::Json => output::check_json(&mut &mut *out, &outcome.records),
        OutputFormat::Text => output::check_text(&mut &mut *out, &outcome.records),
    })?;
    Ok(ExitCode::from(check::exit_code(&outcome.records)))
}

async fn update_command(args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let opts = job_options(&args.scan, &args.policy, &args.registry, args.pin)?;
    let outcome = run_job(&opts).await?;
    let plan = update::plan(&outcome.records, &outcome.change_sets);
    let outcomes = update::apply(&plan, &outcome.report.sources, args.dry_run);
    let mut failed = false;
    for c in outcome
        .records
        .iter()
        .filter(|c| c.status() == Status::Error)
    {
        failed = true;
        let f = &c.found;
        eprintln!(
            "error: {}:{}: {}: {}",
            f.path,
            f.line,
            f.reference,
            c.lookup.error().unwrap_or("lookup failed")
        );
    }
    for o in &outcomes {
        if let Some(e) = &o.error {
            failed = true;
            eprintln!("error: {e}");
        }
        if let Some(w) = &o.warning {
            eprintln!("warning: {w}");
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
                    .all(|&i| written.contains(&outcome.records[i].found.path.as_str()))
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
        deadline: deadline(&args.registry),
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
        if full.tag.is_none() && full.digest.is_none() {
            // The tag that was looked up, as `update --pin` writes it.
            full.tag = Some(repin::edit::DEFAULT_TAG.to_owned());
        }
        full.digest = Some(digest);
        full.to_string()
    } else {
        digest.to_string()
    };
    write_stdout(|out| writeln!(out, "{line}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The shard: `--shard`, else the Indexed Job's variables.
fn shard(args: &FleetArgs) -> anyhow::Result<Option<Shard>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Ok(Shard::choose(args.shard.as_deref(), var)?)
}

/// Who repin acts as and on which repositories: a token and the `--repo`s (else the
/// service config's `[github] repositories`), or the App's installations limited by
/// the `--repo` globs (else the service config's).
fn fleet(args: &FleetArgs, service: Option<&ServiceConfig>) -> anyhow::Result<Fleet> {
    let github = service.map(|s| s.github.clone()).unwrap_or_default();
    let api_url = args
        .api_url
        .clone()
        .or(github.api_url)
        .unwrap_or_else(|| "https://api.github.com".to_owned());
    let repos = if args.repos.is_empty() {
        github.repositories
    } else {
        args.repos.clone()
    };
    let shard = shard(args)?;
    if !args.app {
        let token = std::env::var(&args.token_env)
            .ok()
            .filter(|t| !t.is_empty())
            .with_context(|| format!("environment variable {} is not set", args.token_env))?;
        anyhow::ensure!(
            !repos.is_empty(),
            "name the repositories: --repo OWNER/NAME, or [github] repositories in the service config"
        );
        return Ok(Fleet::token(&api_url, Secret::new(token), repos, shard)?);
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
    let app = App::new(&api_url, app_id, &Secret::new(key))?;
    Ok(Fleet::app(app, repos, shard)?)
}

/// `--deadline` as an instant, counted from now.
fn deadline(registry: &RegistryArgs) -> Option<tokio::time::Instant> {
    registry
        .deadline
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s))
}

/// Registry settings for a fresh set of lookups.
fn lookups(registry: &RegistryArgs, service: Option<ServiceConfig>) -> JobOptions {
    JobOptions {
        service,
        insecure: registry.insecure.clone(),
        timeout: registry.timeout.map(|s| Duration::from_secs(s.max(1))),
        deadline: deadline(registry),
        per_registry: registry.per_registry.map(|n| n.max(1)),
        ..JobOptions::default()
    }
}

/// The settings of each repository's run; the author defaults to the fleet's bot.
async fn run_options(
    pr: &PrArgs,
    policy: &PolicyArgs,
    registry: &RegistryArgs,
    service: Option<ServiceConfig>,
    fleet: &Fleet,
) -> anyhow::Result<RunOptions> {
    let github = service
        .as_ref()
        .map(|s| s.github.clone())
        .unwrap_or_default();
    let name = match &pr.author_name {
        Some(name) => name.clone(),
        None => fleet.bot().await?.name,
    };
    let email = pr
        .author_email
        .clone()
        .unwrap_or_else(|| format!("{name}@users.noreply.github.com"));
    Ok(RunOptions {
        author: Identity { name, email },
        max_open: pr.max_open.or(github.max_open).unwrap_or(10),
        dry_run: pr.dry_run,
        service,
        state: policy.state.clone(),
        insecure: registry.insecure.clone(),
        commit_via_api: pr.commit_via_api || github.commit_via_api.unwrap_or(false),
        resolver: None,
        store: None,
    })
}

async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let service = load_service(args.policy.config.as_deref())?;
    let fleet = fleet(&args.fleet, service.as_ref())?;
    // One set of lookups for the whole run: a tag shared by many repositories is asked
    // about once.
    let shared = job::resolver_for(&lookups(&args.registry, service.clone()))?;
    let opts = RunOptions {
        resolver: Some(shared),
        ..run_options(&args.pr, &args.policy, &args.registry, service, &fleet).await?
    };
    let targets = fleet.targets().await?;
    let work = tempfile::tempdir().context("creating a work folder")?;
    let (mut opened, mut updated, mut closed, mut failed) = (0, 0, 0, 0);
    let stop_at = deadline(&args.registry);
    for Target { gh, full_name } in &targets {
        if stop_at.is_some_and(|d| tokio::time::Instant::now() >= d) {
            failed += 1;
            eprintln!("error: {full_name}: not started: the run's deadline (--deadline) passed");
            continue;
        }
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

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (term, interrupt) {
        (Ok(mut term), Ok(mut interrupt)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot listen for signals; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

async fn serve_command(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let service = load_service(args.run.policy.config.as_deref())?;
    let config = service
        .as_ref()
        .map(|s| s.serve.clone())
        .unwrap_or_default();
    let fleet = fleet(&args.run.fleet, service.as_ref())?;
    let run = run_options(
        &args.run.pr,
        &args.run.policy,
        &args.run.registry,
        service.clone(),
        &fleet,
    )
    .await?;
    let store = match job::state_path(args.run.policy.state.as_deref(), service.as_ref()) {
        Some(path) => match repin::state::Store::open(&path) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                eprintln!("warning: {e}; references under min_age or a schedule wait");
                None
            }
        },
        None => None,
    };
    let webhook_secret = std::env::var(&config.webhook_secret_env)
        .ok()
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    if webhook_secret.is_none() {
        eprintln!(
            "warning: {} is not set; webhooks are turned away",
            config.webhook_secret_env
        );
    }
    if webhook_secret.is_none() && config.schedule.is_none() && !config.run_at_start {
        eprintln!("warning: no schedule, no webhooks and no run at start: nothing will run");
    }
    let listen = args.listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("repin serve: listening on {}", listener.local_addr()?);
    let work = tempfile::tempdir().context("creating a work folder")?;
    let opts = ServeOptions {
        config,
        fleet,
        run,
        lookups: lookups(&args.run.registry, service),
        store,
        webhook_secret,
        work_dir: work.path().to_path_buf(),
    };
    repin::serve::serve(opts, listener, shutdown_signal()).await?;
    eprintln!("repin serve: stopped");
    Ok(ExitCode::SUCCESS)
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
        config::parse_repo(&args.path.display().to_string(), &text).map(|c| (c, Vec::new()))
    } else {
        config::load_repo(&args.path)
    };
    let repo = match repo {
        Ok((repo, warnings)) => {
            for w in warnings {
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
