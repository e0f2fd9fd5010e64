//! `chatctl cql-ping`: is a CQL database ready to serve chat-service?
//!
//! Ready means more than an open port: the `scylla` driver (the one
//! chat-service uses) opens a session, which negotiates the protocol and
//! reads the cluster's topology and schema, then `system.local` answers with
//! the node's `release_version` and `system_schema.keyspaces` answers too.
//! The scripts (`scripts/test.sh`, `bench.sh`, `cassandra.sh`) use it as their
//! readiness check; exit status 0 only if every step succeeded in time.

use std::time::Duration;

use clap::Args;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

#[derive(Debug, Args)]
pub struct CqlPingArgs {
    /// Contact points, `host:port`, comma separated (as CHAT_SCYLLA_NODES).
    #[arg(
        long,
        env = "CHAT_SCYLLA_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:9042"
    )]
    nodes: Vec<String>,

    /// Seconds for the whole check (connection, both queries).
    #[arg(long, default_value_t = 3.0, value_parser = parse_timeout)]
    timeout: f64,

    /// Print nothing; only the exit status tells.
    #[arg(long)]
    quiet: bool,
}

/// Runs the check and prints the node's `release_version` (unless quiet).
pub async fn run(args: CqlPingArgs) -> crate::Outcome {
    let timeout = Duration::from_secs_f64(args.timeout);
    let release_version = tokio::time::timeout(timeout, ping(&args.nodes, timeout))
        .await
        .map_err(|_| {
            format!(
                "no CQL answer from {} within {} s",
                args.nodes.join(","),
                args.timeout
            )
        })??;
    if !args.quiet {
        println!("{release_version}");
    }
    Ok(())
}

async fn ping(nodes: &[String], timeout: Duration) -> Result<String, Box<dyn std::error::Error>> {
    let session: Session = SessionBuilder::new()
        .known_nodes(nodes)
        .connection_timeout(timeout)
        .build()
        .await?;
    let (release_version,) = session
        .query_unpaged("SELECT release_version FROM system.local", ())
        .await?
        .into_rows_result()?
        .first_row::<(Option<String>,)>()?;
    // The schema tables are what chat-service reads first when it starts
    // (keyspace and table checks); a node can answer `system.local` a moment
    // before it serves them.
    let keyspaces = session
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", ())
        .await?
        .into_rows_result()?
        .rows_num();
    if keyspaces == 0 {
        return Err("system_schema.keyspaces answered with no row".into());
    }
    Ok(release_version.unwrap_or_else(|| "unknown".to_owned()))
}

/// A positive, finite number of seconds, at most a day.
fn parse_timeout(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 {
        Ok(seconds)
    } else {
        Err(format!(
            "must be more than 0 and at most 86400 seconds, got {text}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;

    #[test]
    fn the_timeout_is_a_positive_number_of_seconds() {
        assert_eq!(parse_timeout("3"), Ok(3.0));
        assert_eq!(parse_timeout("0.5"), Ok(0.5));
        for text in ["0", "-1", "NaN", "inf", "abc", "86401"] {
            assert!(parse_timeout(text).is_err(), "{text}");
        }
    }
}
