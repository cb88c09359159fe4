//! The benchmark of issue 6 (`cargo run --release --bin bench`): see README.md,
//! "Benchmarks".

pub mod bulk;
pub mod client;
pub mod env;
pub mod logins;
pub mod proc;
pub mod refresh;
pub mod report;
pub mod sessions;
