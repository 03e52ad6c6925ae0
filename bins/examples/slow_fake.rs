//! The fake Odoo with latency added to every answer, for `scripts/bench-gates.sh`.
//!
//! ```text
//! cargo run --release -p odoo-deploy --example slow_fake -- --latency 300ms [--hash-passwords]
//! listening on http://127.0.0.1:41234
//! ```
//!
//! Database `demo`, user `admin` with the password in `$SLOW_FAKE_PASSWORD` (default
//! `admin`), module `sale` installed, release `bench`. Runs until interrupted. With
//! `--hash-passwords` it checks passwords as Odoo does (pbkdf2-sha512, 600,000 rounds).
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::Duration;

use odoo_fixtures::{FakeOdoo, Fault, ModuleState};

fn main() -> ExitCode {
    let mut latency = Duration::ZERO;
    let mut hash_passwords = false;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        if arg == "--hash-passwords" {
            hash_passwords = true;
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--latency", Some(value)) => match humantime::parse_duration(&value) {
                Ok(value) => latency = value,
                Err(err) => {
                    eprintln_error(&format!("--latency {value}: {err}"));
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln_error("usage: slow_fake [--latency DURATION] [--hash-passwords]");
                return ExitCode::from(2);
            }
        }
    }
    let password = std::env::var("SLOW_FAKE_PASSWORD").unwrap_or_else(|_| "admin".to_owned());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln_error(&err.to_string());
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let fake = match FakeOdoo::builder()
            .database("demo")
            .user("admin", password)
            .module("sale", ModuleState::Installed)
            .release("bench")
            .record_requests(false)
            .hash_passwords(hash_passwords)
            .start()
            .await
        {
            Ok(fake) => fake,
            Err(err) => {
                eprintln_error(&err.to_string());
                return ExitCode::FAILURE;
            }
        };
        fake.set_fault(Fault::Latency(latency));
        println!("listening on {}", fake.uri());
        let _ = tokio::signal::ctrl_c().await;
        ExitCode::SUCCESS
    })
}

fn eprintln_error(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "slow_fake: {text}");
}
