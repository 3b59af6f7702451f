//! The `repin` binary: parse the command line, set up logging, run one command, map the
//! outcome to an exit code (0 success, 1 `check` found updates, 2 error).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use repin::check::{self, Checked};
use repin::cli::{
    CheckArgs, Cli, Command, DigestArgs, OutputFormat, RegistryArgs, ScanArgs, UpdateArgs,
};
use repin::imageref::{ImageRef, Platform};
use repin::progress::Progress;
use repin::registry::client::{Client, Credentials, Options};
use repin::registry::dockerconfig::DockerConfig;
use repin::registry::resolve::{Resolver, TagKey};
use repin::scan::walk::Report;
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
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Scans the paths and prints the warnings on stderr.
fn scan_paths(args: &ScanArgs) -> anyhow::Result<Report> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let report = scan::walk::scan_paths(&paths)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    tracing::debug!(
        files = report.files,
        found = report.found.len(),
        "scan done"
    );
    Ok(report)
}

fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn scan_command(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let report = scan_paths(args)?;
    write_stdout(|out| match args.format {
        OutputFormat::Json => output::json(&mut &mut *out, &report.found),
        OutputFormat::Text => output::text(&mut &mut *out, &report.found),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A resolver for this run: Docker's credentials, the CLI's transport options.
fn resolver(args: &RegistryArgs) -> anyhow::Result<Arc<Resolver>> {
    let credentials = match DockerConfig::default_path() {
        Some(path) => Credentials::Docker(DockerConfig::load(&path)?),
        None => Credentials::Anonymous,
    };
    let options = Options {
        timeout: Duration::from_secs(args.timeout.max(1)),
        per_registry: args.per_registry.max(1),
        insecure: args.insecure.clone(),
        ..Options::default()
    };
    Ok(Resolver::new(Arc::new(Client::new(options, credentials)?)))
}

async fn checked(
    scan_args: &ScanArgs,
    registry: &RegistryArgs,
) -> anyhow::Result<(Report, Vec<Checked>)> {
    let mut report = scan_paths(scan_args)?;
    let resolver = resolver(registry)?;
    let found = std::mem::take(&mut report.found);
    let progress = Progress::start(found.len(), "references checked");
    let checked = check::check(&resolver, found, &|| progress.tick()).await;
    drop(progress);
    Ok((report, checked))
}

async fn check_command(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let (_, checked) = checked(&args.scan, &args.registry).await?;
    write_stdout(|out| match args.scan.format {
        OutputFormat::Json => output::check_json(&mut &mut *out, &checked),
        OutputFormat::Text => output::check_text(&mut &mut *out, &checked),
    })?;
    Ok(ExitCode::from(check::exit_code(&checked)))
}

async fn update_command(args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let (report, checked) = checked(&args.scan, &args.registry).await?;
    let plan = update::plan(&checked, args.pin);
    let outcomes = update::apply(&plan, &report.sources, args.dry_run);
    let mut failed = false;
    for c in checked.iter().filter(|c| c.status == check::Status::Error) {
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
    let resolver = resolver(&args.registry)?;
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
