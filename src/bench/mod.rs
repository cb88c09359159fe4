//! The benchmark of issue 6 (`cargo run --release --bin bench`): see README.md,
//! "Benchmarks".

pub mod bulk;
pub mod client;
pub mod compare;
pub mod dovecot;
pub mod emailproxy;
pub mod env;
pub mod logins;
pub mod mailfetch;
pub mod proc;
pub mod refresh;
pub mod relay;
#[cfg(test)]
mod relay_tests;
pub mod report;
pub mod served;
pub mod sessions;
pub mod smtp;
pub mod soak;
#[cfg(test)]
mod stall_tests;
