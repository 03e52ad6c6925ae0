//! What the gates that write (`smoke-crud` and `filestore`) share: step timings, and
//! the end of a check that removes what it created on every way out (see
//! [`RecordGuard`]).

use odoo_rpc::Client;
use tokio::time::Instant;

use super::cleanup::RecordGuard;
use super::common::{millis, odoo_failure};
use crate::{Result, Verdict};

/// Timings of the steps of a check, as verdict values.
#[derive(Default)]
pub(super) struct Steps {
    values: Vec<(&'static str, f64)>,
}

impl Steps {
    pub(super) fn time(&mut self, name: &'static str, since: Instant) {
        self.values.push((name, millis(since.elapsed())));
    }

    pub(super) fn onto(self, verdict: Verdict) -> Verdict {
        self.values
            .into_iter()
            .fold(verdict, |verdict, (name, value)| {
                verdict.with_value(name, value)
            })
    }
}

/// Ends a check that created a record: removes it now, and words the verdict.
///
/// `middle` is what the steps between create and remove concluded. The removal happens
/// whatever it says; when the removal fails, the guard keeps the record for background
/// removal and the message says so.
pub(super) async fn finish(
    gate: &str,
    client: &Client,
    mut guard: RecordGuard,
    what: &str,
    middle: Result<Verdict>,
    steps: &mut Steps,
) -> Result<Verdict> {
    let start = Instant::now();
    let removal = guard.remove(client).await;
    steps.time("unlink_ms", start);
    match (middle, removal) {
        (Ok(verdict), Ok(())) => Ok(verdict),
        (Ok(verdict), Err(err)) if verdict.is_pass() => {
            odoo_failure(gate, &format!("unlink {what}"), err)
        }
        (Ok(verdict), Err(err)) => Ok(Verdict {
            message: format!(
                "{}; removal failed ({err}), retrying in the background",
                verdict.message
            ),
            ..verdict
        }),
        (Err(err), _) => Err(err),
    }
}
