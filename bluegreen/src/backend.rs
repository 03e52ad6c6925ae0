//! The orchestrator's slot backend: what it needs from the thing that runs the slots'
//! containers. [`DockerSlots`] is the implementation used in production; a test can
//! give the orchestrator another one (in memory) to check reconcile, rollback and
//! crash-recovery decisions in milliseconds, beside the real-engine tests.

use std::time::Duration;

use async_trait::async_trait;

use crate::docker::{DockerSlots, ReadyOptions, RemoveOutcome, StartOutcome, StopOutcome};
use crate::error::Result;
use crate::registry::{ImageOutcome, ImageProblem, ProgressFn, PullPolicy, RegistryCredentials};
use crate::slot::{ContainerInfo, Slot, SlotSpec, SlotState};

/// What `policy` says of `image` on `backend`'s engine: `Some(id)` when the engine has
/// it and the policy does not pull anyway, `None` when it is to be pulled.
///
/// # Errors
/// [`Error::Image`](crate::Error::Image) (not found) when the engine lacks it and the
/// policy is [`PullPolicy::Never`]; the backend's error when the engine cannot be asked.
pub async fn present_image<B: SlotBackend + ?Sized>(
    backend: &B,
    image: &str,
    policy: PullPolicy,
) -> Result<Option<String>> {
    if policy == PullPolicy::Always {
        return Ok(None);
    }
    match backend.image_id(image).await? {
        Some(id) => Ok(Some(id)),
        None if policy == PullPolicy::Never => Err(crate::Error::Image {
            image: image.to_owned(),
            problem: ImageProblem::NotFound,
            detail: "it is not on the engine and the stack file says pull = \"never\"".to_owned(),
        }),
        None => Ok(None),
    }
}

/// Runs a stack's two slots.
///
/// # Contract
///
/// Every method reads or changes the engine's real state (never a copy kept by the
/// backend), is idempotent as its documentation on [`DockerSlots`] says, and returns
/// the crate's [`Error`](crate::Error)s with the same meaning: a container that does
/// not start is [`Error::SlotFailedToStart`](crate::Error::SlotFailedToStart) with its
/// last log lines, a missing one [`Error::SlotNotFound`](crate::Error::SlotNotFound).
#[async_trait]
pub trait SlotBackend: Send + Sync {
    /// Removes the one-off containers of `stack` an interrupted operation left running
    /// (see [`DockerSlots::remove_stale_one_offs`]); the default has none.
    ///
    /// # Errors
    /// When the engine cannot list them.
    async fn remove_stale_one_offs(&self, _stack: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The engine's id of `image`, `None` when it does not have it.
    ///
    /// # Errors
    /// When the engine cannot be asked.
    async fn image_id(&self, image: &str) -> Result<Option<String>>;

    /// Pulls `image` from its registry (see [`DockerSlots::pull_image`]).
    ///
    /// # Errors
    /// [`Error::Image`](crate::Error::Image) when it cannot be had.
    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
        progress: &ProgressFn,
    ) -> Result<ImageOutcome>;

    /// Both slots' containers of `stack`, as the engine has them.
    ///
    /// # Errors
    /// When the engine cannot be asked.
    async fn state(&self, stack: &str) -> Result<SlotState>;

    /// One slot's container (`None`: there is none).
    ///
    /// # Errors
    /// When the engine cannot be asked.
    async fn inspect(&self, stack: &str, slot: Slot) -> Result<Option<ContainerInfo>>;

    /// Creates (or reuses) and starts the slot of `spec`, and waits until it answers
    /// its health path.
    ///
    /// # Errors
    /// As [`DockerSlots::launch`].
    async fn launch(&self, spec: &SlotSpec, ready: &ReadyOptions) -> Result<ContainerInfo>;

    /// Starts an existing container.
    ///
    /// # Errors
    /// As [`DockerSlots::start`].
    async fn start(&self, stack: &str, slot: Slot) -> Result<StartOutcome>;

    /// Waits until a running slot answers `health_path`.
    ///
    /// # Errors
    /// As [`DockerSlots::wait_slot_ready`].
    async fn wait_slot_ready(
        &self,
        stack: &str,
        slot: Slot,
        health_path: &str,
        ready: &ReadyOptions,
    ) -> Result<ContainerInfo>;

    /// Stops a slot's container, waiting `grace` before killing it.
    ///
    /// # Errors
    /// As [`DockerSlots::stop`].
    async fn stop(&self, stack: &str, slot: Slot, grace: Duration) -> Result<StopOutcome>;

    /// Removes a slot's container (stopping it first).
    ///
    /// # Errors
    /// As [`DockerSlots::remove`].
    async fn remove(&self, stack: &str, slot: Slot) -> Result<RemoveOutcome>;

    /// The last `tail` lines of a slot's log.
    ///
    /// # Errors
    /// As [`DockerSlots::logs`].
    async fn logs(&self, stack: &str, slot: Slot, tail: usize) -> Result<String>;
}

#[async_trait]
impl SlotBackend for DockerSlots {
    async fn remove_stale_one_offs(&self, stack: &str) -> Result<Vec<String>> {
        DockerSlots::remove_stale_one_offs(self, stack).await
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        DockerSlots::image_id(self, image).await
    }

    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
        progress: &ProgressFn,
    ) -> Result<ImageOutcome> {
        DockerSlots::pull_image(self, image, credentials, progress).await
    }

    async fn state(&self, stack: &str) -> Result<SlotState> {
        DockerSlots::state(self, stack).await
    }

    async fn inspect(&self, stack: &str, slot: Slot) -> Result<Option<ContainerInfo>> {
        DockerSlots::inspect(self, stack, slot).await
    }

    async fn launch(&self, spec: &SlotSpec, ready: &ReadyOptions) -> Result<ContainerInfo> {
        DockerSlots::launch(self, spec, ready).await
    }

    async fn start(&self, stack: &str, slot: Slot) -> Result<StartOutcome> {
        DockerSlots::start(self, stack, slot).await
    }

    async fn wait_slot_ready(
        &self,
        stack: &str,
        slot: Slot,
        health_path: &str,
        ready: &ReadyOptions,
    ) -> Result<ContainerInfo> {
        DockerSlots::wait_slot_ready(self, stack, slot, health_path, ready).await
    }

    async fn stop(&self, stack: &str, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        DockerSlots::stop(self, stack, slot, grace).await
    }

    async fn remove(&self, stack: &str, slot: Slot) -> Result<RemoveOutcome> {
        DockerSlots::remove(self, stack, slot).await
    }

    async fn logs(&self, stack: &str, slot: Slot, tail: usize) -> Result<String> {
        DockerSlots::logs(self, stack, slot, tail).await
    }
}
