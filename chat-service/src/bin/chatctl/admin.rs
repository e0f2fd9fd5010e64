//! The admin commands: one call of `allmine.chat.v1.ChatAdminService` each,
//! with a `service` token, printing the stream it returns.

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use clap::Subcommand;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
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

/// Calls the admin service at `url` with `token` and prints the stream it
/// returns.
pub async fn run(url: &str, token: Option<&str>, command: AdminCommand) -> crate::Outcome {
    let token =
        token.ok_or("admin commands need --token (or CHATCTL_TOKEN) with the service role")?;
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let mut client = ChatAdminServiceClient::new(channel);
    let authorization: MetadataValue<Ascii> = format!("Bearer {token}").parse()?;
    let stream = match command {
        AdminCommand::RegisterStream { stream, owner } => {
            let message = pb::RegisterStreamRequest {
                stream_id: stream,
                owner_id: owner,
            };
            client
                .register_stream(with_token(&authorization, message))
                .await?
        }
        AdminCommand::Open { stream } => {
            let message = pb::SetChatOpenRequest {
                stream_id: stream,
                open: true,
            };
            client
                .set_chat_open(with_token(&authorization, message))
                .await?
        }
        AdminCommand::Close { stream } => {
            let message = pb::SetChatOpenRequest {
                stream_id: stream,
                open: false,
            };
            client
                .set_chat_open(with_token(&authorization, message))
                .await?
        }
        AdminCommand::End { stream } => {
            let message = pb::EndStreamRequest { stream_id: stream };
            client
                .end_stream(with_token(&authorization, message))
                .await?
        }
        AdminCommand::SlowMode { stream, seconds } => {
            let message = pb::UpdateStreamSettingsRequest {
                stream_id: stream,
                slow_mode_seconds: Some(seconds),
            };
            client
                .update_stream_settings(with_token(&authorization, message))
                .await?
        }
        AdminCommand::Get { stream } => {
            let message = pb::GetStreamRequest { stream_id: stream };
            client
                .get_stream(with_token(&authorization, message))
                .await?
        }
    };
    print_stream(&stream.into_inner());
    Ok(())
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
