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

/// An error and its causes, joined with `: `, each once.
pub use deploy_core::error_chain;

/// The variables in which CI systems name who started a pipeline, in the order they
/// are asked: GitHub Actions, GitLab CI, Buildkite, CircleCI, Drone, Woodpecker.
pub const CI_ACTOR_VARS: [&str; 6] = [
    "GITHUB_ACTOR",
    "GITLAB_USER_LOGIN",
    "BUILDKITE_BUILD_CREATOR",
    "CIRCLE_USERNAME",
    "DRONE_COMMIT_AUTHOR",
    "CI_COMMIT_AUTHOR",
];

/// Who runs the command, when `--operator` is not given: the CI's actor when a CI sets
/// one ([`CI_ACTOR_VARS`]: in a pipeline `$USER` is the runner's account), else `$USER`,
/// else `$LOGNAME`, else the name `/etc/passwd` gives the process's user id (cron jobs and
/// containers often set neither variable), else `uid-N`, else `unknown`.
#[must_use]
pub fn default_operator() -> String {
    CI_ACTOR_VARS
        .iter()
        .chain(["USER", "LOGNAME"].iter())
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
        .or_else(|| process_uid().map(|uid| user_name_of(uid).unwrap_or(format!("uid-{uid}"))))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The process's user id: the owner of `/proc/self`.
fn process_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The user name of `uid` in `/etc/passwd`.
fn user_name_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, uid)
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// Reads the secret a command-line flag names (`--password-env VAR`,
/// `--password-file PATH`) through [`SecretRef`](deploy_core::SecretRef), as stack files
/// and gate plans read theirs: a variable that is unset or empty, or a file that cannot
/// be read or is empty after its trailing line breaks, is an error naming the flag and
/// the reference, never the value.
///
/// # Errors
///
/// The message, `<flag>: <why>`.
pub fn read_secret(
    flag: &str,
    secret: &deploy_core::SecretRef,
) -> Result<secrecy::SecretString, String> {
    secret
        .resolve(&deploy_core::NullSink)
        .map_err(|e| format!("{flag}: {}", error_chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn the_operator_falls_back_to_the_user_name_of_the_uid() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nodoo:x:101:101::/var/lib/odoo:/usr/sbin/nologin\n";
        assert_eq!(super::passwd_name(passwd, 101).as_deref(), Some("odoo"));
        assert_eq!(super::passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(super::passwd_name(passwd, 7), None);
        assert!(super::process_uid().is_some());
    }

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
