//! The `hybrid` subcommands. Each one is a clap `Args` struct with an `execute` method;
//! `main.rs` only parses arguments, sets up logging and prints the error chain.

mod check;
mod models;
mod run;
mod serve;

pub use check::CheckArgs;
pub use models::ModelsArgs;
pub use run::RunArgs;
pub use serve::ServeArgs;
