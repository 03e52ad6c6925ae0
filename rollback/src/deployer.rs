//! The `Deployer` trait through which the previous-release strategy redeploys a release.
//!
//! It lives in `deploy-core` (so that `deploy-rollback` never depends on
//! `deploy-bluegreen`, which implements it) and is re-exported here with its types.

pub use deploy_core::{
    BoxError as DeployerError, Deployer, RedeployMethod, RedeployReport, ReleaseRef,
};

use crate::history::DeploymentRecord;

/// The release a history record names.
#[must_use]
pub fn release_ref(record: &DeploymentRecord) -> ReleaseRef {
    ReleaseRef {
        stack: record.stack.clone(),
        environment: record.environment,
        release: record.release.clone(),
        git_sha: record.git_sha.clone(),
    }
}
