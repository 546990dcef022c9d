//! `switchboard`: the one binary that runs any subset of Switchboard's
//! services (`serve`), all of them on embedded backends (`dev`), the
//! database migrations (`migrate`), event replay (`events replay`),
//! config validation (`config check`) and simulated calls (`contacts
//! simulate`).

mod cli;
mod composition;
mod contacts;
mod demo;
mod events;
mod keys;
mod migrate;
mod run;
mod services;
mod tenants;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: allocation and free were ~12 % of a
/// serving process's CPU under HTTP load (loadtest/http, `perf`), the
/// largest item after the kernel's own work; mimalloc's thread-local free
/// lists take most of that away.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error as one line naming the cause: the context chain, no
/// backtrace, and no cause repeated. Many errors (ours with a `source`,
/// `std::io`, sqlx) already print their cause in their own message; it is
/// left out when it comes again as the next link of the chain.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:1 (server.http_addr): {source}")]
    struct Bind {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let error = anyhow::Error::new(Bind {
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        })
        .context("cannot start");
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse).to_string();
        let line = one_line(&error);
        assert_eq!(
            line,
            format!("cannot start: cannot listen on 127.0.0.1:1 (server.http_addr): {io}")
        );
        assert_eq!(line.matches(&io).count(), 1, "{line}");
    }

    #[test]
    fn every_new_cause_is_named_in_order() {
        let error = anyhow::anyhow!("connection refused")
            .context("cannot connect to postgres://db")
            .context("cannot start");
        assert_eq!(
            one_line(&error),
            "cannot start: cannot connect to postgres://db: connection refused"
        );
    }
}
