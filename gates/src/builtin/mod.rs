//! Built-in gates.
//!
//! Today only [`TcpGate`], which needs no Odoo client. The Odoo gates (`health`,
//! `authentication`, `modules`, ...) arrive with the `odoo-rpc` client and will live here
//! too, each built from its [`GateSettings`](crate::GateSettings) variant.

mod tcp;

pub use tcp::TcpGate;
