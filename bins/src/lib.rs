//! Shared pieces of the `odoo-deploy` binaries: rendering a gate [`Report`] for people
//! and CI systems ([`render`]), showing progress on stderr ([`progress`], and
//! [`transfer`] for backups and restores), and the start-up every binary shares
//! ([`cli`]: arguments, logging, colour); an addon validation report the same ways
//! ([`validation`]).
//!
//! The binaries themselves (`src/bin/`) stay thin: parse arguments, build the library
//! objects, run, print with these helpers, map to an exit code.
//!
//! ```
//! use odoo_deploy::render;
//! # let report: deploy_gates::Report = serde_json::from_str(r#"{
//! #   "schema_version": 1, "result": "passed", "mode": "once", "rounds": 1,
//! #   "elapsed_ms": 3, "stable_ms": 0, "failures": [], "not_passed": [], "gates": []
//! # }"#).unwrap();
//! let xml = render::junit(&report, &[]).unwrap();
//! assert!(xml.starts_with("<?xml"));
//! assert_eq!(render::exit_code(&report), 0);
//! ```
//!
//! [`Report`]: deploy_gates::Report
#![deny(missing_docs)]

pub mod cli;
pub mod output;
pub mod progress;
pub mod render;
pub mod table;
pub mod transfer;
pub mod validation;
