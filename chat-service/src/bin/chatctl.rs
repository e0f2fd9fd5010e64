//! chatctl: a small operator tool for `allmine.chat.v1.ChatAdminService`,
//! as other Allmine services would call it. It needs a token with the
//! `service` role.
//!
//! ```text
//! chatctl --token "$SERVICE_TOKEN" register-stream --stream <id> --owner <user id>
//! chatctl --token "$SERVICE_TOKEN" slow-mode --stream <id> --seconds 10
//! ```

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use clap::{Parser, Subcommand};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(
    name = "chatctl",
    about = "Calls the chat admin service (ChatAdminService)"
)]
struct Cli {
    /// Address of the admin service (CHAT_ADMIN_GRPC_ADDR, or the main port).
    #[arg(long, env = "CHATCTL_URL", default_value = "http://127.0.0.1:50051")]
    url: String,

    /// A JWT whose `roles` include `service`.
    #[arg(long, env = "CHATCTL_TOKEN", hide_env_values = true)]
    token: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Registers a stream and its owner (idempotent for the same owner).
    RegisterStream {
        #[arg(long)]
        stream: String,
        #[arg(long)]
        owner: String,
    },
    /// Opens a stream's chat.
    Open {
        #[arg(long)]
        stream: String,
    },
    /// Closes a stream's chat (it can be reopened).
    Close {
        #[arg(long)]
        stream: String,
    },
    /// Ends a stream: its chat closes for good.
    End {
        #[arg(long)]
        stream: String,
    },
    /// Sets slow mode (0 turns it off; at most 120 s).
    SlowMode {
        #[arg(long)]
        stream: String,
        #[arg(long)]
        seconds: u32,
    },
    /// Shows a stream's chat state.
    Get {
        #[arg(long)]
        stream: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(stream) => {
            print_stream(&stream);
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("chatctl: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<pb::Stream, Box<dyn std::error::Error>> {
    let channel = Channel::from_shared(cli.url)?.connect().await?;
    let mut client = ChatAdminServiceClient::new(channel);
    let authorization: MetadataValue<Ascii> = format!("Bearer {}", cli.token).parse()?;
    let stream = match cli.command {
        Command::RegisterStream { stream, owner } => {
            let message = pb::RegisterStreamRequest {
                stream_id: stream,
                owner_id: owner,
            };
            client
                .register_stream(with_token(&authorization, message))
                .await?
        }
        Command::Open { stream } => {
            let message = pb::SetChatOpenRequest {
                stream_id: stream,
                open: true,
            };
            client
                .set_chat_open(with_token(&authorization, message))
                .await?
        }
        Command::Close { stream } => {
            let message = pb::SetChatOpenRequest {
                stream_id: stream,
                open: false,
            };
            client
                .set_chat_open(with_token(&authorization, message))
                .await?
        }
        Command::End { stream } => {
            let message = pb::EndStreamRequest { stream_id: stream };
            client
                .end_stream(with_token(&authorization, message))
                .await?
        }
        Command::SlowMode { stream, seconds } => {
            let message = pb::UpdateStreamSettingsRequest {
                stream_id: stream,
                slow_mode_seconds: Some(seconds),
            };
            client
                .update_stream_settings(with_token(&authorization, message))
                .await?
        }
        Command::Get { stream } => {
            let message = pb::GetStreamRequest { stream_id: stream };
            client
                .get_stream(with_token(&authorization, message))
                .await?
        }
    };
    Ok(stream.into_inner())
}

/// `message` with the `authorization` metadata set.
fn with_token<T>(authorization: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}

fn print_stream(stream: &pb::Stream) {
    let state = pb::ChatState::try_from(stream.state)
        .map(|state| state.as_str_name())
        .unwrap_or("CHAT_STATE_UNSPECIFIED");
    println!(
        "stream {} owner {} state {} slow_mode {}s moderators [{}]",
        stream.stream_id,
        stream.owner_id,
        state,
        stream.slow_mode_seconds,
        stream.moderator_ids.join(", ")
    );
}
