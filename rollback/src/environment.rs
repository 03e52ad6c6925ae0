//! Deployment environments: `deploy_core::Environment`, re-exported.
//!
//! History files spell them in lower case (`dev`, `staging`, `uat`, `production`).

pub use deploy_core::Environment;
