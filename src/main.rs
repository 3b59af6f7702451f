//! The `repin` binary: parse the command line, set up logging, run one command, map the
//! outcome to an exit code (0 success, 2 error; later commands add 1).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use repin::cli::{Cli, Command, OutputFormat, ScanArgs};
use repin::{output, scan};

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
    }
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
    tracing::debug!(
        files = report.files,
        found = report.found.len(),
        "scan done"
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Json => output::json(&mut out, &report.found),
        OutputFormat::Text => output::text(&mut out, &report.found),
    }
    .and_then(|()| out.flush())
    .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
