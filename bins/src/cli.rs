//! Start-up shared by the binaries: argument parsing that keeps the documented exit
//! code 2 for usage errors, the tracing subscriber on stderr, and colour detection
//! (`NO_COLOR`, terminals).

use std::io::IsTerminal;
use std::process::ExitCode;

/// Parses the command line. `Err` carries the exit code to return at once: 2 after a
/// usage error (printed on stderr), 0 after `--help` or `--version` (printed on stdout).
///
/// # Errors
///
/// The exit code, when the program must stop here.
pub fn parse_args<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|err| {
        let _ = err.print();
        if err.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Installs the tracing subscriber: logs on stderr, filtered by `RUST_LOG` or else
/// `default_filter` (e.g. `"warn"`), coloured only when [`colour_stderr`] says so.
pub fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_stderr())
        .init();
}

/// Whether the user asked for no colour: `NO_COLOR` set to a non-empty value.
#[must_use]
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether stderr may be coloured: a terminal, and no `NO_COLOR`.
#[must_use]
pub fn colour_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

/// Whether stdout may be coloured: a terminal, and no `NO_COLOR`.
#[must_use]
pub fn colour_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// An error and its causes, joined with `: `, each cause once: a cause whose text the
/// message already contains (many errors repeat their source) is not repeated.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the plan")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("reading the plan: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(error_chain(&Outer(io())), "reading the plan: no such file");
        assert_eq!(
            error_chain(&Repeats(io())),
            "reading the plan: no such file"
        );
    }
}
