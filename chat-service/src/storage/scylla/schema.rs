//! The CQL schema, applied by chat-service at start-up. Every statement is
//! idempotent (`IF NOT EXISTS`), and the driver waits for schema agreement
//! after each, so several instances may start at once. Future changes are
//! appended to [`statements`] as further idempotent statements.
//!
//! `scripts/scylla-schema.cql` is this schema rendered for operators; a test
//! keeps the two identical.

/// How the keyspace is replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with one factor: for a single local node.
    Simple(u32),
    /// `NetworkTopologyStrategy` with a factor per datacenter: production.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// Parses `simple:1` or `dc1:3,dc2:3`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(factor) = text.strip_prefix("simple:") {
            return parse_factor(factor).map(Self::Simple);
        }
        let mut datacenters = Vec::new();
        for entry in text.split(',') {
            let (datacenter, factor) = entry
                .split_once(':')
                .ok_or_else(|| format!("'{entry}' is not 'datacenter:factor'"))?;
            let datacenter = datacenter.trim();
            if datacenter.is_empty()
                || !datacenter
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!("'{datacenter}' is not a datacenter name"));
            }
            datacenters.push((datacenter.to_owned(), parse_factor(factor)?));
        }
        Ok(Self::NetworkTopology(datacenters))
    }

    fn cql(&self) -> String {
        match self {
            Self::Simple(factor) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            }
            Self::NetworkTopology(datacenters) => {
                let factors: Vec<String> = datacenters
                    .iter()
                    .map(|(datacenter, factor)| format!("'{datacenter}': {factor}"))
                    .collect();
                format!(
                    "{{'class': 'NetworkTopologyStrategy', {}}}",
                    factors.join(", ")
                )
            }
        }
    }
}

fn parse_factor(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(factor) if factor >= 1 => Ok(factor),
        _ => Err(format!("'{text}' is not a replication factor (1 or more)")),
    }
}

/// Whether `name` is a keyspace name CQL accepts unquoted (checked before it
/// is spliced into DDL).
pub fn is_valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// The schema statements, in order.
pub fn statements(keyspace: &str, replication: &Replication) -> Vec<String> {
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {} AND durable_writes = true",
            replication.cql()
        ),
        // One partition per stream and time bucket (start of the window, ms).
        // Newest first; the message id breaks ties between equal timestamps.
        // Sender fields are a snapshot taken at send time; unknown ones are
        // never written (no tombstones).
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.messages (
    stream_id text,
    bucket bigint,
    created_at timestamp,
    message_id text,
    content text,
    updated_at timestamp,
    sender_id text,
    sender_username text,
    sender_name text,
    sender_surname text,
    sender_photo blob,
    sender_availability text,
    PRIMARY KEY ((stream_id, bucket), created_at, message_id)
) WITH CLUSTERING ORDER BY (created_at DESC, message_id DESC)"
        ),
        // The non-empty buckets of each stream, newest window end first, so
        // that reading the newest messages skips silent periods entirely.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.stream_buckets (
    stream_id text,
    bucket_end bigint,
    bucket bigint,
    PRIMARY KEY (stream_id, bucket_end, bucket)
) WITH CLUSTERING ORDER BY (bucket_end DESC, bucket DESC)"
        ),
        // One row per registered stream. Moderators are a frozen set: the
        // record is always written whole, and a frozen value is one cell.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.streams (
    stream_id text PRIMARY KEY,
    owner_id text,
    state text,
    slow_mode_seconds int,
    moderator_ids frozen<set<text>>,
    created_at timestamp,
    updated_at timestamp
)"
        ),
        // Bans and timeouts; a timeout's row carries a TTL that ends with it.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.bans (
    stream_id text,
    user_id text,
    expires_at timestamp,
    reason text,
    banned_by text,
    created_at timestamp,
    PRIMARY KEY ((stream_id, user_id))
)"
        ),
        // Slow-mode bookkeeping: each row lives as long as the slow-mode
        // interval it serves (TTL), so the table stays small.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.last_sent (
    stream_id text,
    user_id text,
    sent_at timestamp,
    PRIMARY KEY ((stream_id, user_id))
)"
        ),
        // Moderation events (deletions, bans, chat state), in the same order
        // as messages, so that live subscribers on every instance see them
        // and a resume from a cursor replays them. Rare: one partition per
        // stream is enough.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.stream_events (
    stream_id text,
    created_at timestamp,
    event_id text,
    event blob,
    PRIMARY KEY (stream_id, created_at, event_id)
)"
        ),
        // Live watermarks of the instances sharing this database, one
        // partition: each instance republishes its row every exchange
        // interval (with a TTL, so a dead instance's row goes away).
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.live_watermarks (
    scope text,
    instance_id text,
    beat bigint,
    watermark_ms bigint,
    PRIMARY KEY (scope, instance_id)
)"
        ),
        // Public profiles pushed by the user service; messages snapshot them.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.user_profiles (
    user_id text PRIMARY KEY,
    username text,
    name text,
    surname text,
    profile_photo blob,
    availability_status text
)"
        ),
        // Idempotent sends: one row per (stream, user, key) holding the
        // original message (protobuf), written with `IF NOT EXISTS` and a TTL
        // equal to the idempotency window, so the table holds one window of
        // keyed sends at most.
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.idempotency_keys (
    stream_id text,
    user_id text,
    idempotency_key text,
    message blob,
    PRIMARY KEY ((stream_id, user_id, idempotency_key))
)"
        ),
    ]
}

/// The schema as one CQL script (for `scripts/scylla-schema.cql`).
pub fn render_script(keyspace: &str, replication: &Replication) -> String {
    let mut script = String::from(
        "-- Allmine live chat schema. Generated from chat-service/src/storage/scylla/schema.rs;\n\
         -- chat-service applies it by itself at start-up. Edit the keyspace name and\n\
         -- replication to match your cluster before running it by hand (cqlsh -f).\n\n",
    );
    for statement in statements(keyspace, replication) {
        script.push_str(&statement);
        script.push_str(";\n\n");
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_parses_simple_and_per_datacenter_forms() {
        assert_eq!(Replication::parse("simple:1"), Ok(Replication::Simple(1)));
        assert_eq!(
            Replication::parse("eu-west:3, us_east:3"),
            Ok(Replication::NetworkTopology(vec![
                ("eu-west".into(), 3),
                ("us_east".into(), 3)
            ]))
        );
        assert!(Replication::parse("simple:0").is_err());
        assert!(Replication::parse("dc1").is_err());
        assert!(Replication::parse("dc'1:3").is_err());
    }

    #[test]
    fn keyspace_names_that_could_inject_cql_are_refused() {
        assert!(is_valid_keyspace("allmine_chat"));
        assert!(!is_valid_keyspace("chat; DROP KEYSPACE x"));
        assert!(!is_valid_keyspace("1chat"));
        assert!(!is_valid_keyspace(""));
    }

    #[test]
    fn the_operator_script_matches_the_schema_the_service_applies() {
        let script_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/scylla-schema.cql");
        let on_disk = std::fs::read_to_string(script_path).unwrap_or_default();
        let rendered = render_script("allmine_chat", &Replication::Simple(1));
        assert_eq!(
            on_disk, rendered,
            "scripts/scylla-schema.cql is stale: regenerate it with `cargo run -p chat-service --bin chat-service -- --print-schema > scripts/scylla-schema.cql`"
        );
    }
}
