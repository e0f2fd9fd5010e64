//! chatctl: the project's one operator and developer tool.
//!
//! - Admin commands call `allmine.chat.v1.ChatAdminService`, as other Allmine
//!   services would; they need a token with the `service` role ([`admin`]).
//! - `cql-ping` tells whether a CQL database really serves queries, through
//!   the same `scylla` driver chat-service uses ([`cql`]); the scripts use it
//!   as their readiness check.
//! - `token` mints an HS256 development token ([`token`]).
//!
//! ```text
//! chatctl --token "$SERVICE_TOKEN" register-stream --stream <id> --owner <user id>
//! chatctl --token "$SERVICE_TOKEN" slow-mode --stream <id> --seconds 10
//! chatctl cql-ping --nodes 127.0.0.1:9042 --timeout 3
//! chatctl token --secret "$(cat .cache/dev-jwt-secret)" --username alice
//! ```

mod admin;
mod cql;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chatctl",
    about = "Calls the chat admin service, checks a CQL database, mints development tokens"
)]
struct Cli {
    /// Address of the admin service (CHAT_ADMIN_GRPC_ADDR, or the main port).
    /// Admin commands only.
    #[arg(
        long,
        global = true,
        env = "CHATCTL_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    url: String,

    /// A JWT whose `roles` include `service`. Admin commands only.
    #[arg(long, global = true, env = "CHATCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Exits 0 only if a CQL node answers queries (prints its release_version).
    CqlPing(cql::CqlPingArgs),
    /// Prints an HS256 development token (never for a deployed service).
    Token(token::TokenArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Admin(command) => admin::run(&cli.url, cli.token.as_deref(), command).await,
        Command::CqlPing(args) => cql::run(args).await,
        Command::Token(args) => token::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chatctl: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Every command's failure: a message for stderr.
type Outcome = Result<(), Box<dyn std::error::Error>>;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
