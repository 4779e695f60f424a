//! Integration tests of the audit log: one binary, one module per concern.

mod common;

mod chain;
mod durability;
mod query;
mod retention;
mod tamper;
