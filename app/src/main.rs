//! `pawfile`: the server and its administration commands in one binary (the commands are in `cli/`).

mod cli;

use clap::Parser;
use pawfile_app::startup::telemetry;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: rendering a page allocates and frees many small strings, and
/// glibc's malloc and free took about a fifth of the server's time under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Keys, credentials, mail, the embedded stores: whatever Pawfile writes is its own user's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pawfile: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pawfile: {err}");
            ExitCode::FAILURE
        }
    }
}
