//! Live watermarks exchanged between the instances sharing one database, so
//! that a feed delivers a position as soon as *every* instance has finished
//! its appends before it, instead of waiting a fixed settle window.
//!
//! Every [`EXCHANGE_INTERVAL`] each instance publishes its local watermark
//! (every append it created before it has finished, [`super::InFlight`]) to
//! the store's `live_watermarks` table with a growing `beat`, and reads every
//! row back. The *remote watermark* is the minimum over the live peers' rows
//! and this instance's own local watermark taken before the read. Why that
//! is enough:
//! - a peer's row covers its appends exactly (an append still in flight,
//!   however slow, holds it back: up to the statement timeout, 2 s);
//! - a peer that starts publishes its first row before it serves a call;
//!   if a read does not see that row, the row was written after the read
//!   began, so every message of that peer is created after the local
//!   watermark taken before the read (clocks agreeing);
//! - a peer whose `beat` has not changed for [`LEASE`] (by this instance's
//!   clock) is dead and no longer counted: a dead instance holds delivery
//!   back for at most `LEASE` + one interval. A stopping instance publishes
//!   "nothing more from me" once its appends have finished, so a rolling
//!   restart does not hold anyone back.
//!
//! Stores without other writers (the embedded one) have nothing to exchange:
//! the remote watermark then never limits anything.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::time::{Instant, MissedTickBehavior};

use super::{HISTORY_WAIT_LIMIT, Hub};
use crate::domain::ObjectIdGenerator;
use crate::storage::{InstanceWatermark, StorageError};

/// How often an instance publishes its watermark and reads its peers'.
/// Cross-instance delivery waits up to two of these (the sender's publish,
/// then the reader's read) plus the append itself: 50 ms keeps that well
/// under 250 ms at one write and one read per instance every 50 ms.
pub const EXCHANGE_INTERVAL: Duration = Duration::from_millis(50);

/// A peer whose beat has not changed for this long is dead and no longer
/// holds delivery back. Well above a heartbeat write's p99.9 under load
/// (about 0.5 s measured, see docs/live.md), so a slow peer is not taken
/// for a dead one.
pub const LEASE: Duration = Duration::from_secs(2);

/// The watermark a leaving instance publishes: it will append nothing more.
const GONE_MS: i64 = i64::MAX;

/// The remote part of this instance's live watermark.
#[derive(Debug)]
pub struct RemoteWatermark {
    /// Everything created before this (ms) has landed from every instance;
    /// `i64::MAX` while nothing is exchanged.
    ms: AtomicI64,
}

impl Default for RemoteWatermark {
    fn default() -> Self {
        Self {
            ms: AtomicI64::new(i64::MAX),
        }
    }
}

impl RemoteWatermark {
    pub fn ms(&self) -> i64 {
        self.ms.load(Ordering::Acquire)
    }

    /// Sets the value; true if it moved forward.
    fn set(&self, ms: i64) -> bool {
        self.ms.swap(ms, Ordering::AcqRel) < ms
    }
}

/// The peers this instance has seen, to tell live ones from dead ones by
/// this instance's own clock (clocks of peers never decide liveness).
#[derive(Debug, Default)]
struct Peers {
    /// Instance → (last beat seen, when it was first seen).
    seen: HashMap<String, (i64, Instant)>,
}

impl Peers {
    /// The minimum of `floor_ms` and the watermarks of live peers in `rows`.
    fn remote_ms(
        &mut self,
        own: &str,
        rows: &[InstanceWatermark],
        floor_ms: i64,
        now: Instant,
    ) -> i64 {
        let mut remote_ms = floor_ms;
        let mut present = Vec::with_capacity(rows.len());
        for row in rows.iter().filter(|row| row.instance != own) {
            present.push(row.instance.as_str());
            let seen = self
                .seen
                .entry(row.instance.clone())
                .or_insert((row.beat, now));
            if seen.0 != row.beat {
                *seen = (row.beat, now);
            }
            if now.duration_since(seen.1) <= LEASE {
                remote_ms = remote_ms.min(row.watermark_ms);
            }
        }
        self.seen
            .retain(|instance, _| present.contains(&instance.as_str()));
        remote_ms
    }
}

/// One instance's side of the exchange.
struct Exchange {
    hub: Arc<Hub>,
    instance: String,
    beat: i64,
    peers: Peers,
}

impl Exchange {
    /// Publishes this instance's watermark, reads everyone's, updates the
    /// hub's remote watermark; true if it moved forward.
    async fn round(&mut self) -> Result<bool, StorageError> {
        // Taken before the read: see the module docs (a peer starting now).
        let local_ms = self.hub.inflight.watermark_ms();
        self.publish(local_ms).await?;
        let rows = self.hub.store.watermarks().await?;
        let remote_ms = self
            .peers
            .remote_ms(&self.instance, &rows, local_ms, Instant::now());
        Ok(self.hub.remote.set(remote_ms))
    }

    async fn publish(&mut self, watermark_ms: i64) -> Result<bool, StorageError> {
        self.beat += 1;
        self.hub
            .store
            .publish_watermark(&InstanceWatermark {
                instance: self.instance.clone(),
                beat: self.beat,
                watermark_ms,
            })
            .await
    }

    async fn run(mut self) {
        let mut ticks = tokio::time::interval(EXCHANGE_INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = self.hub.stopping.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match self.round().await {
                Ok(advanced) => {
                    failing = false;
                    if advanced {
                        self.hub.wake_all();
                    }
                }
                // Delivery waits (the remote watermark stays) until the
                // store answers again; logged once per outage.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "live watermark exchange failed; cross-instance delivery waits");
                }
                Err(_) => {}
            }
        }
        self.leave().await;
    }

    /// Once this instance's appends have finished (at most
    /// [`HISTORY_WAIT_LIMIT`]), tells peers it will append nothing more.
    async fn leave(mut self) {
        let give_up = Instant::now() + HISTORY_WAIT_LIMIT;
        while self.hub.inflight.has_pending() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Err(error) = self.publish(GONE_MS).await {
            tracing::info!(%error, "could not publish leaving; peers stop waiting for this instance after the lease");
        }
    }
}

/// Starts the exchange if the store has peers to exchange with: publishes
/// this instance's first watermark and reads its peers' before returning
/// (so before this instance serves a send), then keeps exchanging until
/// shutdown.
pub(super) async fn start(hub: &Arc<Hub>) -> Result<(), StorageError> {
    let mut exchange = Exchange {
        hub: Arc::clone(hub),
        instance: ObjectIdGenerator::new().next(Utc::now()).to_string(),
        beat: 0,
        peers: Peers::default(),
    };
    if !exchange.publish(hub.inflight.watermark_ms()).await? {
        return Ok(());
    }
    exchange.round().await?;
    tracing::info!(instance = %exchange.instance, "live watermark exchange started");
    tokio::spawn(exchange.run());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(instance: &str, beat: i64, watermark_ms: i64) -> InstanceWatermark {
        InstanceWatermark {
            instance: instance.into(),
            beat,
            watermark_ms,
        }
    }

    #[test]
    fn a_live_peer_holds_the_watermark_and_a_silent_one_stops_after_the_lease() {
        let mut peers = Peers::default();
        let start = Instant::now();
        let rows = [row("me", 1, 10), row("peer", 1, 500)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, start), 500);
        // Beating, the peer keeps holding back, whatever the time.
        let later = start + LEASE * 2;
        let rows = [row("peer", 2, 600)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, later), 600);
        // Silent for a lease: dead, no longer counted.
        let rows = [row("peer", 2, 600)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, later + LEASE), 600);
        assert_eq!(
            peers.remote_ms("me", &rows, 1_000, later + LEASE + Duration::from_millis(1)),
            1_000
        );
    }

    #[test]
    fn the_floor_bounds_the_watermark_and_a_leaving_peer_holds_nothing() {
        let mut peers = Peers::default();
        let now = Instant::now();
        assert_eq!(peers.remote_ms("me", &[], 1_000, now), 1_000);
        let rows = [row("gone", 7, GONE_MS)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, now), 1_000);
    }
}
