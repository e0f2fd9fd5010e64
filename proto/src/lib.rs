//! The gRPC contract of Allmine live chat, generated from `proto/`.
//!
//! - [`v1`]: package `allmine.chat.v1`: messages, the `ChatService` client
//!   (used by http-edge) and server trait (implemented by chat-service).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of every file, for
//!   server reflection (grpcurl `list`, `describe`).

/// Package `allmine.chat.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("allmine.chat.v1");
}

/// `google.api` annotation types (`HttpRule`), generated because the contract
/// imports them.
pub mod google_api {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
}

/// The encoded `FileDescriptorSet` of the contract and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/chat_descriptor.bin"));

/// The fully-qualified name of the chat service, as reflection and health use it.
pub const CHAT_SERVICE_NAME: &str = "allmine.chat.v1.ChatService";

/// The fully-qualified name of the internal admin service.
pub const CHAT_ADMIN_SERVICE_NAME: &str = "allmine.chat.v1.ChatAdminService";

/// The fully-qualified name of the internal service http-edge calls to
/// authorise each SSE client of its shared feeds.
pub const CHAT_EDGE_SERVICE_NAME: &str = "allmine.chat.v1.ChatEdgeService";

/// Response metadata of `SendMessage` when the reply is the replay of an
/// earlier send with the same idempotency key (value `true`); absent when the
/// message was stored by this call. http-edge turns it into the REST
/// `Idempotent-Replayed` header.
pub const IDEMPOTENT_REPLAYED_METADATA: &str = "idempotent-replayed";
