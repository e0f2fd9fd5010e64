//! The fan-out's settings (`EDGE_UPSTREAM_TOKEN`, `EDGE_EVENT_RING`,
//! `EDGE_FEED_LINGER_MS`, `EDGE_MAX_LINGERING_FEEDS`), flattened into the
//! edge's [`Config`].
//!
//! [`Config`]: crate::config::Config

use std::{fmt, time::Duration};

use crate::extract::BearerToken;

/// How the edge shares one upstream subscription per stream between its SSE
/// clients.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutSettings {
    /// The token of the edge's shared upstream subscriptions (one per stream
    /// it serves): a JWT whose `roles` include `service`, verified by
    /// chat-service like any other, long-lived (the feeds it opens end when
    /// it expires; rotate by restarting the edges). Unset: no fan-out, each
    /// SSE client is a `SubscribeMessages` call of its own (the edge before
    /// issue 15).
    #[arg(long, env = "EDGE_UPSTREAM_TOKEN", hide_env_values = true)]
    pub upstream_token: Option<UpstreamToken>,

    /// Recent events kept per stream for resumes (`Last-Event-ID`, `after`)
    /// served by the edge itself. Keep it at least EDGE_EVENT_BUFFER: a
    /// client whose next event has left the ring gets a `gap`.
    #[arg(long, env = "EDGE_EVENT_RING", default_value_t = 1_024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub event_ring: u64,

    /// How long a stream's shared feed outlives its last client, in ms, so
    /// that reconnecting clients (an `EventSource` retries after ~3 s) resume
    /// from its ring instead of reopening it.
    #[arg(long, env = "EDGE_FEED_LINGER_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub feed_linger_ms: u64,

    /// At most this many feeds linger without a client at once. Each holds
    /// an upstream subscription and its ring, so without a bound one client
    /// opening and leaving many streams could keep thousands alive and use
    /// up the edge's upstream subscriptions for everyone else. Past it, a
    /// feed whose last client leaves closes at once (a client coming back
    /// resumes from chat-service instead of the ring). 0: no linger.
    #[arg(long, env = "EDGE_MAX_LINGERING_FEEDS", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub max_lingering_feeds: u64,
}

impl FanoutSettings {
    pub fn feed_linger(&self) -> Duration {
        Duration::from_millis(self.feed_linger_ms)
    }
}

/// The upstream token (JWT-shaped, as a client's); never shown in `Debug`
/// output or logs.
#[derive(Clone)]
pub struct UpstreamToken(BearerToken);

impl UpstreamToken {
    pub fn bearer(&self) -> &BearerToken {
        &self.0
    }
}

impl std::str::FromStr for UpstreamToken {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        BearerToken::from_access_token(text.trim())
            .map(Self)
            .map_err(|_| "must be a JWT (three base64url segments separated by dots)".to_owned())
    }
}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("UpstreamToken(<redacted>)")
    }
}
