//! Integration tests of the audit log: one binary, one module per concern.

mod common;

mod chain;
mod durability;
mod evidence;
mod evidence_tamper;
mod formats;
mod lookup;
mod postgres;
mod query;
mod retention;
mod tamper;
