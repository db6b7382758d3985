//! gRPC integration tests: each test starts a server on 127.0.0.1:0 and drives it with the
//! generated tonic client, playing the worker role with a raw `TaskPoller`.

mod common;

mod bad_input;
mod durability;
mod fuzz;
mod history;
mod lifecycle;
mod long_poll;
mod namespaces;
mod retries;
mod start;
mod system;
mod tokens;
mod transport;
mod virtual_time;
mod visibility;
mod workflow;
