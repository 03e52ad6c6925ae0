//! `[[hooks]]`: a command of the site's own run at a point of each deploy, as a
//! [`DeployStage`]: a change-freeze check before the start, a smoke script before the
//! switch, a cache purge after it, a chat message at the end.
//!
//! The command runs without a shell, with its standard input closed, under the stack's
//! lock, with the deploy described in its environment (`ODOO_DEPLOY_*`, see
//! [`crate::config`]). Its exit status is its verdict:
//!
//! | exit | the deploy |
//! |---|---|
//! | 0 | goes on; the last line on stdout is the stage's summary |
//! | 1 | is refused; the last line on stderr (else stdout) is the reason |
//! | anything else, a signal, the timeout | fails (exit 3); the last lines on stderr are in the message |
//! | the program cannot be run | fails as a configuration error (exit 2) |

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use deploy_core::{ClassifiedError, DeployStage, Event, StageContext, StageOutcome, StagePoint};
use tokio::io::AsyncReadExt;

use crate::config::HookConfig;

/// How much of a hook's stdout and stderr is kept (the rest is read and dropped).
const KEPT_OUTPUT: usize = 64 * 1024;

/// A `[[hooks]]` entry as a deploy stage.
#[derive(Debug, Clone)]
pub struct HookStage {
    config: HookConfig,
    name: String,
}

impl HookStage {
    /// The stage of `config`; its name is `hook <name>`.
    #[must_use]
    pub fn new(config: HookConfig) -> Self {
        let name = format!("hook {}", config.name);
        Self { config, name }
    }
}

/// Why a hook failed (not a refusal).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The program could not be started.
    #[error("cannot run {program}: {cause}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        cause: std::io::Error,
    },
    /// It exited with a code other than 0 and 1, or was killed by a signal.
    #[error("{program} {status}{}", tail_suffix(.stderr))]
    Failed {
        /// The program.
        program: String,
        /// `exited with code 2`, `was killed by signal 9`.
        status: String,
        /// Its last lines on stderr.
        stderr: String,
    },
    /// It ran past its timeout and was killed.
    #[error("{program} did not finish within {}: killed", humantime::format_duration(*.timeout))]
    Timeout {
        /// The program.
        program: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Reading its output failed.
    #[error("reading the output of {program}: {cause}")]
    Output {
        /// The program.
        program: String,
        /// Why.
        cause: std::io::Error,
    },
}

fn tail_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim())
    }
}

#[async_trait]
impl DeployStage for HookStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn point(&self) -> StagePoint {
        self.config.at
    }

    fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("command".to_owned(), format!("{:?}", self.config.command)),
            (
                "timeout".to_owned(),
                humantime::format_duration(self.config.timeout).to_string(),
            ),
        ]
    }

    async fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, ClassifiedError> {
        let Some((program, args)) = self.config.command.split_first() else {
            return Err(ClassifiedError::config(HookError::Spawn {
                program: String::new(),
                cause: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            }));
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("ODOO_DEPLOY_STACK", ctx.stack)
            .env("ODOO_DEPLOY_ENVIRONMENT", ctx.environment.as_str())
            .env("ODOO_DEPLOY_RELEASE", ctx.release.label())
            .env("ODOO_DEPLOY_IMAGE", &ctx.release.image)
            .env(
                "ODOO_DEPLOY_GIT_SHA",
                ctx.release.git_sha.as_deref().unwrap_or_default(),
            )
            .env(
                "ODOO_DEPLOY_LIVE_RELEASE",
                ctx.live.map(|l| l.label()).unwrap_or_default(),
            )
            .env("ODOO_DEPLOY_OPERATOR", ctx.operator)
            .env("ODOO_DEPLOY_STAGE", self.config.at.as_str());
        if let Some(status) = ctx.status {
            command.env("ODOO_DEPLOY_STATUS", status.as_str());
        }
        let mut child = command.spawn().map_err(|source| {
            ClassifiedError::config(HookError::Spawn {
                program: program.clone(),
                cause: source,
            })
        })?;
        ctx.events.emit(
            &Event::progress(&self.name, format!("running {program}"))
                .with_field("pid", i64::from(child.id().unwrap_or_default())),
        );
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let output = async {
            let (out, err) = tokio::join!(read_kept(stdout.as_mut()), read_kept(stderr.as_mut()));
            let status = child.wait().await;
            (status, out, err)
        };
        let (status, out, err) = match tokio::time::timeout(self.config.timeout, output).await {
            Ok(result) => result,
            Err(_) => {
                // Dropping the future drops the child, which kill_on_drop kills.
                return Err(ClassifiedError::infrastructure(HookError::Timeout {
                    program: program.clone(),
                    timeout: self.config.timeout,
                }));
            }
        };
        let output_error = |source| {
            ClassifiedError::infrastructure(HookError::Output {
                program: program.clone(),
                cause: source,
            })
        };
        let status = status.map_err(output_error)?;
        let (out, err) = (out.map_err(output_error)?, err.map_err(output_error)?);
        match status.code() {
            Some(0) => {
                let outcome = StageOutcome::proceed();
                Ok(match last_line(&out) {
                    Some(line) => outcome.with_summary(line),
                    None => outcome,
                })
            }
            Some(1) => Ok(StageOutcome::refuse(
                last_line(&err)
                    .or_else(|| last_line(&out))
                    .unwrap_or_else(|| format!("{program} exited with code 1")),
            )),
            code => {
                let status = match code {
                    Some(code) => format!("exited with code {code}"),
                    None => signal_text(&status),
                };
                Err(ClassifiedError::infrastructure(HookError::Failed {
                    program: program.clone(),
                    status,
                    stderr: last_lines(&err, 5),
                }))
            }
        }
    }
}

#[cfg(unix)]
fn signal_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal().map_or_else(
        || "ended without an exit code".to_owned(),
        |signal| format!("was killed by signal {signal}"),
    )
}

#[cfg(not(unix))]
fn signal_text(_status: &std::process::ExitStatus) -> String {
    "ended without an exit code".to_owned()
}

/// Reads a pipe to its end, keeping its first [`KEPT_OUTPUT`] bytes.
async fn read_kept<R: tokio::io::AsyncRead + Unpin>(
    pipe: Option<&mut R>,
) -> std::io::Result<String> {
    let Some(pipe) = pipe else {
        return Ok(String::new());
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let room = KEPT_OUTPUT.saturating_sub(kept.len());
        kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
    }
    Ok(String::from_utf8_lossy(&kept).into_owned())
}

fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(str::to_owned)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use deploy_core::{Classify, Environment, ErrorClass, RecordingSink, Release, StageVerdict};

    use super::*;

    fn hook(script: &str) -> HookStage {
        HookStage::new(HookConfig {
            name: "check".to_owned(),
            at: StagePoint::BeforeStart,
            command: vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()],
            timeout: Duration::from_secs(5),
        })
    }

    async fn run(stage: &HookStage) -> Result<StageOutcome, ClassifiedError> {
        let release = Release::new("odoo:r2").with_version("r2");
        let events = RecordingSink::new();
        let live = Release::new("odoo:r1").with_version("r1");
        let mut ctx = StageContext::new("shop", Environment::Staging, &release, &events);
        ctx.live = Some(&live);
        stage.run(&ctx).await
    }

    #[tokio::test]
    async fn exit_codes_are_verdicts() {
        let ok = run(&hook(
            "echo checked $ODOO_DEPLOY_STACK $ODOO_DEPLOY_RELEASE from $ODOO_DEPLOY_LIVE_RELEASE",
        ))
        .await
        .unwrap();
        assert_eq!(ok.verdict, StageVerdict::Proceed);
        assert_eq!(ok.summary.as_deref(), Some("checked shop r2 from r1"));

        let refused = run(&hook(
            "echo noise; echo 'change freeze until Monday' >&2; exit 1",
        ))
        .await
        .unwrap();
        assert_eq!(
            refused.verdict,
            StageVerdict::Refuse("change freeze until Monday".to_owned())
        );

        let failed = run(&hook("echo 'db locked' >&2; exit 7"))
            .await
            .unwrap_err();
        assert_eq!(failed.class(), ErrorClass::Infrastructure);
        assert_eq!(failed.to_string(), "/bin/sh exited with code 7: db locked");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_configuration_error_and_a_slow_one_times_out() {
        let missing = HookStage::new(HookConfig {
            name: "gone".to_owned(),
            at: StagePoint::Finish,
            command: vec!["/nonexistent/notify".to_owned()],
            timeout: Duration::from_secs(5),
        });
        let error = run(&missing).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.to_string().contains("/nonexistent/notify"), "{error}");

        let mut slow = hook("sleep 30");
        slow.config.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let error = run(&slow).await.unwrap_err();
        assert!(
            error.to_string().contains("did not finish within 300ms"),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
