//! `switchboard`: the one binary that runs any subset of Switchboard's
//! services (`serve`), all of them on embedded backends (`dev`), the
//! database migrations (`migrate`), event replay (`events replay`) and
//! config validation (`config check`).

mod cli;
mod demo;
mod events;
mod keys;
mod migrate;
mod run;
mod services;
mod tenants;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // rustls finds both ring and aws-lc-rs in the tree; pick one before any
    // TLS connection, or it panics at first use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line naming the cause: the context chain, no backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
