//! The admin API as the CLI speaks it: where it is, the token, and one request with its
//! reply or a message saying why there is none.
//!
//! Exit codes shared by `deploy`, `deploy-model`, `status`, `promote` and `rollback`:
//! 0 done, 1 refused by the box (the reply says why), 3 the admin API could not be reached
//! or no token was given.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// The box refused.
pub const REFUSED: u8 = 1;
/// The admin API could not be reached, or no token.
pub const UNREACHABLE: u8 = 3;

/// Where the admin API is and how to authenticate, common to every admin subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The admin API's base URL.
    #[arg(
        long,
        value_name = "URL",
        env = "HYBRID_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub admin: String,
    /// The environment variable holding the bearer token.
    #[arg(long, value_name = "VAR", default_value = "HYBRID_ADMIN_TOKEN")]
    pub token_env: String,
    /// Print the box's JSON reply instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Give up on a reply after this many seconds (a deploy compiles and runs smoke
    /// requests before it answers).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
}

/// A reply from the admin API.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (`null` if it was not JSON).
    pub body: Value,
}

impl Reply {
    /// The error message of a refusal, or the whole body.
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .map_or_else(|| self.body.to_string(), str::to_owned)
    }
}

impl AdminArgs {
    /// Sends one request; `Err` holds the exit code after printing why.
    pub fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Reply, ExitCode> {
        let Ok(token) = std::env::var(&self.token_env) else {
            eprintln!(
                "error: no admin token: set {} to the token the box was started with",
                self.token_env
            );
            return Err(ExitCode::from(UNREACHABLE));
        };
        let url = format!("{}{path}", self.admin.trim_end_matches('/'));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(self.timeout)))
            .build()
            .new_agent();
        let auth = format!("Bearer {token}");
        let sent = match (method, body) {
            ("PUT", Some(bytes)) => agent
                .put(&url)
                .header("authorization", &auth)
                .header("content-type", "application/octet-stream")
                .send(&bytes[..]),
            ("POST", _) => agent.post(&url).header("authorization", &auth).send_empty(),
            _ => agent.get(&url).header("authorization", &auth).call(),
        };
        let mut response = sent.map_err(|e| {
            eprintln!("error: cannot reach the admin API at {}: {e}", self.admin);
            ExitCode::from(UNREACHABLE)
        })?;
        let status = response.status().as_u16();
        let bytes = response.body_mut().read_to_vec().unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// Prints `reply` (as JSON with `--json`, else with `summary`) and returns the exit
    /// code: 0 on 2xx, 1 otherwise.
    pub fn finish(&self, reply: &Reply, summary: impl FnOnce(&Value) -> String) -> ExitCode {
        let ok = (200..300).contains(&reply.status);
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&reply.body).unwrap_or_default()
            );
        } else if ok {
            println!("{}", summary(&reply.body));
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            eprintln!("error: refused ({}): {}", reply.status, reply.message());
            ExitCode::from(REFUSED)
        }
    }
}
