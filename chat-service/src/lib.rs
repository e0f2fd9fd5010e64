//! chat-service
