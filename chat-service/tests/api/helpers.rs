//! The suite's harness is test-support's ([`allmine_test_support::service`]):
//! chat-service in process on the embedded store or ScyllaDB, with typed
//! gRPC helpers. Re-exported here under the names the tests import.

pub use allmine_test_support::grpc::{authorized, channel};
pub use allmine_test_support::service::{
    TestService, spawn_service, spawn_service_for, spawn_service_for_with, spawn_service_on,
    spawn_service_with,
};
