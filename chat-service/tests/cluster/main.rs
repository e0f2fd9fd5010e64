//! The 3-node cluster scenarios (issue 16): chat-service on a Cassandra
//! cluster of three nodes ([`allmine_test_support::cluster`]), keyspace with
//! replication 3, every read and write at `LOCAL_QUORUM`, while nodes are
//! stopped and resumed under a send load. A test binary of its own, so that
//! its three JVMs never run beside the `api` suite's tests:
//! `cargo test -p chat-service --test cluster`.
//!
//! - [`load`]: concurrent senders recording each send's answer and the
//!   cluster phase it was sent in.
//! - [`readers`]: history, a subscription from a cursor, and a live
//!   subscriber that follows the whole run, for the history checker.
//! - [`node_loss`]: the scenario itself, and [`rules`]: what it judges.

mod load;
mod node_loss;
mod readers;
mod rules;
