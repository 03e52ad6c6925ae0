//! Records a check created and must remove on every way out: success, failure, error,
//! and cancellation by the runner's timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use odoo_rpc::Client;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Background removals still running (see [`wait_for_cleanups`]).
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// How long one background removal attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Delays between background attempts: about half a minute in all.
const BACKOFF: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Creates one record of `model` and returns the guard that removes it.
///
/// The `create` runs in a task of its own: when the runner cancels the check while the
/// answer is on its way, the server has created the record but the check would never
/// learn its id. The task finishes the call instead, and hands the check a
/// [`RecordGuard`]; if the check is gone by then, the guard is dropped with the channel
/// and removes the record.
pub(crate) async fn create_guarded(
    client: &Client,
    gate: &str,
    model: &str,
    values: impl Serialize + Send + 'static,
) -> odoo_rpc::Result<RecordGuard> {
    let (sender, receiver) = oneshot::channel();
    let (task_client, gate, model) = (client.clone(), gate.to_owned(), model.to_owned());
    PENDING.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let created = task_client
            .create(&model, values)
            .await
            .map(|id| RecordGuard::new(&task_client, &gate, &model, id));
        // A closed channel gives the guard back: dropping it removes the record.
        drop(sender.send(created));
        PENDING.fetch_sub(1, Ordering::SeqCst);
    });
    match receiver.await {
        Ok(created) => created,
        Err(_) => Err(odoo_rpc::Error::Protocol {
            message: "the create task stopped without an answer".to_owned(),
        }),
    }
}

/// Removes records created by a check when it is dropped without having removed them.
///
/// A gate calls [`RecordGuard::remove`] on its normal way out; if that is never reached
/// (a step failed and the removal failed too, or the runner dropped the check at its
/// timeout), `Drop` spawns a detached task that retries the `unlink` with backoff for
/// about half a minute. Binaries wait for those tasks with [`wait_for_cleanups`] before
/// exiting.
pub(crate) struct RecordGuard {
    client: Client,
    gate: String,
    model: String,
    ids: Vec<i64>,
}

impl RecordGuard {
    fn new(client: &Client, gate: &str, model: &str, id: i64) -> Self {
        RecordGuard {
            // Not the check's client: its timeout is the check's, too short for later.
            client: client.with_timeout(ATTEMPT_TIMEOUT),
            gate: gate.to_owned(),
            model: model.to_owned(),
            ids: vec![id],
        }
    }

    /// The id of the record.
    pub(crate) fn id(&self) -> i64 {
        self.ids.first().copied().unwrap_or_default()
    }

    /// Removes the records now with `client` (the check's, with its deadline); on
    /// success the guard has nothing left to do.
    pub(crate) async fn remove(&mut self, client: &Client) -> odoo_rpc::Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        match client.unlink(&self.model, &self.ids).await {
            Ok(_) | Err(odoo_rpc::Error::MissingError { .. }) => {
                self.ids.clear();
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.ids);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                gate = %self.gate,
                model = %self.model,
                ?ids,
                "no async runtime to remove the check's records: they are left behind"
            );
            return;
        };
        tracing::info!(
            gate = %self.gate,
            model = %self.model,
            ?ids,
            "removing the check's records in the background"
        );
        PENDING.fetch_add(1, Ordering::SeqCst);
        let client = self.client.clone();
        let gate = std::mem::take(&mut self.gate);
        let model = std::mem::take(&mut self.model);
        runtime.spawn(async move {
            remove_in_background(&client, &gate, &model, &ids).await;
            PENDING.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn remove_in_background(client: &Client, gate: &str, model: &str, ids: &[i64]) {
    let start = Instant::now();
    for (attempt, delay) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
        tokio::time::sleep(delay).await;
        match client.unlink(model, ids).await {
            Ok(_) | Err(odoo_rpc::Error::MissingError { .. }) => {
                tracing::info!(
                    gate,
                    model,
                    ?ids,
                    attempt = attempt + 1,
                    elapsed_ms = start.elapsed().as_millis() as u64,
                    "the check's records were removed"
                );
                return;
            }
            Err(err) => tracing::warn!(
                gate,
                model,
                ?ids,
                attempt = attempt + 1,
                error = %err,
                "removing the check's records failed; retrying"
            ),
        }
    }
    tracing::error!(
        gate,
        model,
        ?ids,
        "gave up removing the check's records: they are left behind, remove them by hand"
    );
}

/// How many background removals of records left by cancelled or failed checks
/// (`smoke-crud`, `filestore`) are still running.
#[must_use]
pub fn pending_cleanups() -> usize {
    PENDING.load(Ordering::SeqCst)
}

/// Waits until every background removal has finished, or `timeout`; returns how many
/// are still running. Binaries call this after a run and before exiting, so that a
/// check cancelled by its timeout does not leave its record behind because the process
/// ended first.
pub async fn wait_for_cleanups(timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let pending = pending_cleanups();
        if pending == 0 || Instant::now() >= deadline {
            return pending;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
