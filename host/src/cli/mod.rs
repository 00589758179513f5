//! The `hybrid` subcommands. Each one is a clap `Args` struct with an `execute` method;
//! `main.rs` only parses arguments, sets up logging and prints the error chain.

mod admin_client;
mod check;
mod deploy;
mod models;
mod new;
mod plan;
mod profile;
mod run;
mod serve;
mod status;

pub use admin_client::AdminArgs;
pub use check::CheckArgs;
pub use deploy::{DeployArgs, DeployModelArgs};
pub use models::ModelsArgs;
pub use new::{Lang, NewArgs};
pub use plan::PlanArgs;
pub use profile::ProfileArgs;
pub use run::RunArgs;
pub use serve::ServeArgs;
pub use status::{PromoteArgs, RollbackArgs, StatusArgs};
