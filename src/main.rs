//! The `repin` binary: parse the command line, read the environment once, resolve the
//! options ([`repin::options`]), run one library operation, print, and map the outcome
//! to an exit code (0 success, 1 `check` found updates, 2 error).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use repin::cli::{
    CheckArgs, Cli, Command, ConfigCheckArgs, ConfigCommand, DigestArgs, LogFormat, OutputFormat,
    RunArgs, ScanArgs, ServeArgs, UpdateArgs,
};
use repin::config;
use repin::forge::run::run_fleet;
use repin::imageref::{ImageRef, Platform};
use repin::job;
use repin::options::{self, Env, Lookups};
use repin::progress::Progress;
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

type Stdout<'a> = std::io::BufWriter<std::io::StdoutLock<'a>>;

fn write_stdout(write: impl FnOnce(&mut Stdout<'_>) -> std::io::Result<()>) -> anyhow::Result<()> {
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
        OutputFormat::Json => output::json(out, &report.found),
        OutputFormat::Text => output::text(out, &report.found),
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn check_command(args: CheckArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let opts = options::for_job(&args.flags(), env)?;
    let progress = Progress::start("references checked");
    let outcome = job::check_tree(&opts, &|| progress.tick()).await?;
    drop(progress);
    warn_all(outcome.all_warnings());
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::check_json(out, &outcome.records),
        OutputFormat::Text => output::check_text(out, &outcome.records),
    })?;
    Ok(ExitCode::from(check::exit_code(&outcome.records)))
}

async fn update_command(args: UpdateArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let opts = options::for_job(&args.flags(), env)?;
    let progress = Progress::start("references checked");
    let updated = update::update_tree(&opts, args.dry_run, &|| progress.tick()).await?;
    drop(progress);
    warn_all(updated.warnings());
    for error in updated.errors() {
        eprintln!("error: {error}");
    }
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::update_json(out, &updated.files),
        OutputFormat::Text => output::update_text(out, &updated.files, args.dry_run),
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

async fn run_command(args: RunArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let run = options::for_run(&args.flags(), env).await?;
    let targets = run.fleet.targets().await?;
    let work = tempfile::tempdir().context("creating a work folder")?;
    let report = run_fleet(
        &targets,
        &run.options,
        work.path(),
        run.stop_at,
        run.concurrency,
        &mut |repo| {
            let stdout = &mut std::io::stdout().lock();
            // A closed stdout or stderr must not stop the fleet: the summary still counts.
            let _ = output::run_repo(stdout, &mut std::io::stderr().lock(), repo);
        },
    )
    .await;
    write_stdout(|out| output::run_totals(out, &report))?;
    Ok(ExitCode::from(if report.totals().3 > 0 { 2 } else { 0 }))
}

async fn serve_command(args: ServeArgs, env: &Env) -> anyhow::Result<ExitCode> {
    let work = tempfile::tempdir().context("creating a work folder")?;
    let serve = options::for_serve(&args.run.flags(), args.listen, env, work.path().into()).await?;
    warn_all(&serve.warnings);
    let listener = tokio::net::TcpListener::bind(serve.listen)
        .await
        .with_context(|| format!("listening on {}", serve.listen))?;
    eprintln!("repin serve: listening on {}", listener.local_addr()?);
    repin::serve::serve(serve.options, listener, repin::serve::shutdown_signal()).await?;
    eprintln!("repin serve: stopped");
    Ok(ExitCode::SUCCESS)
}

fn config_check_command(args: &ConfigCheckArgs) -> anyhow::Result<ExitCode> {
    match config::check(args.config.as_deref(), &args.path) {
        Ok(checked) => {
            warn_all(&checked.warnings);
            write_stdout(|out| output::policy_text(out, &checked.rules, &checked.repo))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in errors {
                // Diagnostics are `file:line:col: why` lines already; a file that
                // cannot be read is an error like any other.
                match e {
                    config::Error::Invalid(_) => eprintln!("{e}"),
                    config::Error::Read { .. } => eprintln!("error: {e}"),
                }
            }
            Ok(ExitCode::from(2))
        }
    }
}
