//! The `repin` binary: parse the command line, read the environment once, resolve the
//! options ([`repin::options`]), run one library operation, print, and map the outcome
//! to an exit code (0 success, 1 `check` found updates, 2 error).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use repin::cli::{
    CheckArgs, Cli, Command, ConfigCheckArgs, ConfigCommand, DigestArgs, FleetArgs, LogFormat,
    OutputFormat, PolicyArgs, PrArgs, RunArgs, ScanArgs, ServeArgs, UpdateArgs,
};
use repin::config::{self, Policy, ServiceConfig};
use repin::forge::app::App;
use repin::forge::fleet::Fleet;
use repin::forge::run::{RunOptions, run_fleet};
use repin::git::Identity;
use repin::imageref::{ImageRef, Platform};
use repin::job::{self, JobOptions};
use repin::options::{self, Env, Lookups};
use repin::progress::Progress;
use repin::secret::Secret;
use repin::serve::ServeOptions;
use repin::shard::Shard;
use repin::{check, output, scan, update};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    // The daemon logs its work by default; one-shot commands only their problems.
    let default = match (cli.verbose, matches!(cli.command, Command::Serve(_))) {
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
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match dispatch(cli.command, &env) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command, env: &Env) -> anyhow::Result<ExitCode> {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
    };
    match command {
        Command::Scan(args) => scan_command(&args),
        Command::Check(args) => runtime()?.block_on(check_command(args, env)),
        Command::Update(args) => runtime()?.block_on(update_command(args, env)),
        Command::Digest(args) => runtime()?.block_on(digest_command(args, env)),
        Command::Run(args) => runtime()?.block_on(run_command(args, env)),
        Command::Serve(args) => {
            // Repositories abandoned at the shutdown deadline may still hold a blocking
            // thread; they are not waited for.
            let runtime = runtime()?;
            let code = runtime.block_on(serve_command(args, env));
            runtime.shutdown_timeout(Duration::from_secs(1));
            code
        }
        Command::Config(ConfigCommand::Check(args)) => config_check_command(&args),
    }
}

fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn warn_all<T: std::fmt::Display>(warnings: impl IntoIterator<Item = T>) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

fn scan_command(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let report = scan::walk::scan_paths(&paths)?;
    warn_all(&report.warnings);
    write_stdout(|out| match args.format {
        OutputFormat::Json => output::json(&mut &mut *out, &report.found),
        OutputFormat::Text => output::text(&mut &mut *out, &report.found),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The service config, if a path is given (an empty one, as an unset Action input
/// passes, counts as none).
fn load_service(path: Option<&Path>) -> anyhow::Result<Option<ServiceConfig>> {
    Ok(path
        .filter(|p| !p.as_os_str().is_empty())
        .map(config::load_service)
        .transpose()?)
}

/// A job over the command's paths, with the options resolved.
fn job_options(
    scan: &ScanArgs,
    policy: &PolicyArgs,
    registry: &repin::cli::RegistryArgs,
    pin: bool,
    env: &Env,
) -> anyhow::Result<JobOptions> {
    let service = load_service(policy.config.as_deref())?;
    let resolver = Lookups::new(&registry.flags(), env, service.as_ref())?.resolver()?;
    Ok(JobOptions {
        state: options::state_path(policy.state.as_deref(), env, service.as_ref()),
        service,
        pin,
        ..JobOptions::new(scan.paths.clone(), resolver)
    })
}

async fn check_command(args: CheckArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let opts = job_options(&args.scan, &args.policy, &args.registry, false, env)?;
    let progress = Progress::start("references checked");
    let outcome = job::run(&opts, &|| progress.tick()).await?;
    drop(progress);
    warn_all(outcome.all_warnings());
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::check_json(&mut &mut *out, &outcome.records),
        OutputFormat::Text => output::check_text(&mut &mut *out, &outcome.records),
    })?;
    Ok(ExitCode::from(check::exit_code(&outcome.records)))
}

async fn update_command(args: UpdateArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let opts = job_options(&args.scan, &args.policy, &args.registry, args.pin, env)?;
    let progress = Progress::start("references checked");
    let updated = update::run(&opts, args.dry_run, &|| progress.tick()).await?;
    drop(progress);
    let outcome = &updated.outcome;
    warn_all(outcome.all_warnings());
    for r in &outcome.records {
        if let Some(e) = r.lookup.error() {
            let f = &r.found;
            eprintln!("error: {}:{}: {}: {e}", f.path, f.line, f.reference);
        }
    }
    for file in &updated.files {
        if let Some(e) = &file.error {
            eprintln!("error: {e}");
        }
    }
    warn_all(
        updated
            .files
            .iter()
            .filter_map(|f| f.warning.as_ref())
            .chain(&updated.warning),
    );
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::update_json(&mut &mut *out, &updated.files),
        OutputFormat::Text => output::update_text(&mut &mut *out, &updated.files, args.dry_run),
    })?;
    Ok(ExitCode::from(if updated.failed() { 2 } else { 0 }))
}

async fn digest_command(args: DigestArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let image = ImageRef::parse(&args.image)
        .with_context(|| format!("{}: not an image reference", args.image))?;
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let resolver = Lookups::new(&args.registry.flags(), env, None)?.resolver()?;
    let (digest, full) = check::digest_of(&resolver, &image, platform.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let line = if args.full_ref {
        full.to_string()
    } else {
        digest.to_string()
    };
    write_stdout(|out| writeln!(out, "{line}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Who repin acts as and on which repositories: a token and the `--repo`s (else the
/// service config's `[github] repositories`), or the App's installations limited by
/// the `--repo` globs (else the service config's).
fn fleet(args: &FleetArgs, service: Option<&ServiceConfig>, env: &Env) -> anyhow::Result<Fleet> {
    let api_url = options::api_url(args.api_url.as_deref(), service);
    let repos = if args.repos.is_empty() {
        service
            .map(|s| s.github.repositories.clone())
            .unwrap_or_default()
    } else {
        args.repos.clone()
    };
    let shard = Shard::choose(args.shard.as_deref(), |name| {
        env.get(name).map(str::to_owned)
    })?;
    if !args.app {
        let token = env
            .get(&args.token_env)
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
        None => env
            .get("REPIN_GITHUB_APP_KEY")
            .context("set --app-key-file or REPIN_GITHUB_APP_KEY")?
            .to_owned(),
    };
    let app_id = args
        .app_id
        .context("--app needs --app-id (or GITHUB_APP_ID)")?;
    let app = App::new(&api_url, app_id, &Secret::new(key))?;
    Ok(Fleet::app(app, repos, shard)?)
}

/// The settings of each repository's run; the author defaults to the fleet's bot.
async fn run_options(
    pr: &PrArgs,
    policy: &PolicyArgs,
    service: Option<ServiceConfig>,
    fleet: &Fleet,
    env: &Env,
    resolver: Arc<repin::registry::resolve::Resolver>,
) -> anyhow::Result<RunOptions> {
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
        max_open: options::max_open(pr.max_open, service.as_ref()),
        dry_run: pr.dry_run,
        state: options::state_path(policy.state.as_deref(), env, service.as_ref()),
        commit_via_api: options::commit_via_api(pr.commit_via_api, service.as_ref()),
        service,
        resolver,
        store: None,
    })
}

async fn run_command(args: RunArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let service = load_service(args.policy.config.as_deref())?;
    let fleet = fleet(&args.fleet, service.as_ref(), env)?;
    // One set of lookups for the whole run: a tag shared by many repositories is asked
    // about once.
    let lookups = Lookups::new(&args.registry.flags(), env, service.as_ref())?;
    let stop_at = lookups.deadline.map(|d| tokio::time::Instant::now() + d);
    let opts = run_options(
        &args.pr,
        &args.policy,
        service,
        &fleet,
        env,
        lookups.resolver()?,
    )
    .await?;
    let targets = fleet.targets().await?;
    let work = tempfile::tempdir().context("creating a work folder")?;
    let report = run_fleet(
        &targets,
        &opts,
        work.path(),
        stop_at,
        &mut |repo| match &repo.result {
            Ok(s) => {
                for note in &s.notes {
                    eprintln!("{}: {note}", repo.full_name);
                }
                println!(
                    "{}: opened {:?}, updated {:?}, closed {:?} ({} GitHub API calls)",
                    repo.full_name, s.opened, s.updated, s.closed, repo.api_calls
                );
            }
            Err(e) => eprintln!("error: {}: {e}", repo.full_name),
        },
    )
    .await;
    let (opened, updated, closed, failed) = report.totals();
    println!(
        "{} repositories, {opened} pull requests opened, {updated} updated, {closed} closed, {failed} failed",
        targets.len()
    );
    Ok(ExitCode::from(if failed > 0 { 2 } else { 0 }))
}

async fn serve_command(args: ServeArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let service = load_service(args.run.policy.config.as_deref())?;
    let config = service
        .as_ref()
        .map(|s| s.serve.clone())
        .unwrap_or_default();
    let fleet = fleet(&args.run.fleet, service.as_ref(), env)?;
    let lookups = Lookups::new(&args.run.registry.flags(), env, service.as_ref())?;
    let run = run_options(
        &args.run.pr,
        &args.run.policy,
        service,
        &fleet,
        env,
        lookups.resolver()?,
    )
    .await?;
    let store = match &run.state {
        Some(path) => match repin::state::Store::open(path) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                eprintln!("warning: {e}; references under min_age or a schedule wait");
                None
            }
        },
        None => None,
    };
    let webhook_secret = options::webhook_secret(env, &config);
    if webhook_secret.is_none() {
        eprintln!(
            "warning: {} is not set; webhooks are turned away",
            config.webhook_secret_env
        );
        if config.schedule.is_none() && !config.run_at_start {
            eprintln!("warning: no schedule, no webhooks and no run at start: nothing will run");
        }
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
        lookups,
        store,
        webhook_secret,
        work_dir: work.path().to_path_buf(),
    };
    repin::serve::serve(opts, listener, repin::serve::shutdown_signal()).await?;
    eprintln!("repin serve: stopped");
    Ok(ExitCode::SUCCESS)
}

fn config_check_command(args: &ConfigCheckArgs) -> anyhow::Result<ExitCode> {
    let service = load_service(args.config.as_deref());
    let repo = if args.path.is_file() {
        let text =
            std::fs::read_to_string(&args.path).with_context(|| args.path.display().to_string())?;
        config::parse_repo(&args.path.display().to_string(), &text).map(|c| (c, Vec::new()))
    } else {
        config::load_repo(&args.path)
    };
    match (service, repo) {
        (Ok(service), Ok((repo, warnings))) => {
            warn_all(warnings);
            let policy = Policy::new(service.as_ref(), &repo);
            write_stdout(|out| output::policy_text(&mut &mut *out, &policy, &repo))?;
            Ok(ExitCode::SUCCESS)
        }
        (service, repo) => {
            if let Err(e) = service {
                eprintln!("{e}");
            }
            if let Err(e) = repo {
                eprintln!("{e}");
            }
            Ok(ExitCode::from(2))
        }
    }
}
