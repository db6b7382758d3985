//! The pure core of Uhrwerk: a run's mutable state, the workflow state machine that turns
//! requests into history events and effects, task tokens, retry and timeout math, and limits.
//!
//! Invariant: nothing in this crate performs I/O, spawns tasks or reads a clock. Every function
//! that needs the time takes `now` (unix milliseconds) as an argument.

#![allow(deprecated)] // Deprecated wire fields are still echoed, as the real server does.

pub mod config;
pub mod cron;
pub mod kernel;
pub mod retry;
pub mod state;
pub mod time;
pub mod token;
pub mod transfer;

pub use temporalio_protos::temporal::api as pb;
