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
//! - a peer whose `beat` has not grown for [`LEASE`] (by this instance's
//!   clock) is dead and no longer counted: a dead instance holds delivery
//!   back for at most `LEASE` + one interval. A stopping instance publishes
//!   "nothing more from me" once its appends have finished, so a rolling
//!   restart does not hold anyone back;
//! - a peer taken for dead may be alive, only cut off from the store (its
//!   publishes time out while a node goes away) with an append in flight:
//!   feeds here then pass that append's position before it lands. The peer
//!   refuses such an append instead of acknowledging it ([`super::lease`]):
//!   it judges its own lease by the same rule, which is why a peer is judged
//!   at the *start* of the read that finds its beat unchanged (what it had
//!   published by then is in the answer), while the beat counts as seen only
//!   from that read's *answer*.
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
    seen: HashMap<String, Seen>,
}

#[derive(Debug)]
struct Seen {
    /// The highest beat seen.
    beat: i64,
    /// The answer of the read that first saw it.
    at: Instant,
    /// Taken for dead (logged once).
    dead: bool,
}

impl Peers {
    /// The minimum of `floor_ms` and the watermarks of live peers in `rows`,
    /// read by a read that was sent at `asked` and answered at `answered`.
    fn remote_ms(
        &mut self,
        own: &str,
        rows: &[InstanceWatermark],
        floor_ms: i64,
        asked: Instant,
        answered: Instant,
    ) -> i64 {
        let mut remote_ms = floor_ms;
        let mut present = Vec::with_capacity(rows.len());
        for row in rows.iter().filter(|row| row.instance != own) {
            present.push(row.instance.as_str());
            let seen = self.seen.entry(row.instance.clone()).or_insert(Seen {
                beat: row.beat,
                at: answered,
                dead: false,
            });
            // Only a higher beat is news: an older row answered late (a
            // timed-out write applied after a newer one) says nothing about
            // now, and its lower watermark is safe to count.
            if row.beat > seen.beat {
                *seen = Seen {
                    beat: row.beat,
                    at: answered,
                    dead: false,
                };
            }
            if asked.saturating_duration_since(seen.at) <= LEASE {
                remote_ms = remote_ms.min(row.watermark_ms);
            } else if !seen.dead && row.watermark_ms != GONE_MS {
                seen.dead = true;
                tracing::warn!(peer = %row.instance, beat = row.beat, "a live peer published nothing for the lease; no longer waiting for it");
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
        // After `local_ms`: a peer is judged at a moment this instance's
        // feeds have not passed yet.
        let asked = Instant::now();
        let rows = self.hub.store.watermarks().await?;
        let remote_ms =
            self.peers
                .remote_ms(&self.instance, &rows, local_ms, asked, Instant::now());
        Ok(self.hub.remote.set(remote_ms))
    }

    /// Publishes `watermark_ms` under the next beat; acknowledged, it renews
    /// this instance's own lease from the moment it was sent.
    async fn publish(&mut self, watermark_ms: i64) -> Result<bool, StorageError> {
        self.beat += 1;
        let began = Instant::now();
        let exchanged = self
            .hub
            .store
            .publish_watermark(&InstanceWatermark {
                instance: self.instance.clone(),
                beat: self.beat,
                watermark_ms,
            })
            .await?;
        if exchanged {
            self.hub.own_lease.renewed(began, Instant::now());
        }
        Ok(exchanged)
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
        // From now on peers may pass anything: an append still finishing
        // is refused, not acknowledged.
        self.hub.own_lease.give_up();
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

    fn ms(count: u64) -> Duration {
        Duration::from_millis(count)
    }

    #[test]
    fn a_live_peer_holds_the_watermark_and_a_silent_one_stops_after_the_lease() {
        let mut peers = Peers::default();
        let start = Instant::now();
        let rows = [row("me", 1, 10), row("peer", 1, 500)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, start, start), 500);
        // Beating, the peer keeps holding back, whatever the time.
        let later = start + LEASE * 2;
        let rows = [row("peer", 2, 600)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, later, later), 600);
        // Silent for a lease: dead, no longer counted.
        let rows = [row("peer", 2, 600)];
        let end = later + LEASE;
        assert_eq!(peers.remote_ms("me", &rows, 1_000, end, end), 600);
        let past = end + ms(1);
        assert_eq!(peers.remote_ms("me", &rows, 1_000, past, past), 1_000);
    }

    #[test]
    fn a_peer_is_judged_when_the_read_was_sent_and_its_beat_seen_when_answered() {
        let mut peers = Peers::default();
        let start = Instant::now();
        // Beat 1 is first seen in an answer that took a second to come.
        let rows = [row("peer", 1, 500)];
        assert_eq!(
            peers.remote_ms("me", &rows, 1_000, start, start + ms(1_000)),
            500
        );
        // A read sent within the lease of that answer, answered far later
        // (the store slow during a node loss): what the peer published by
        // then is in it, so it is judged as of the sending, still alive.
        let asked = start + ms(1_000) + LEASE;
        assert_eq!(
            peers.remote_ms("me", &rows, 1_000, asked, asked + ms(1_900)),
            500
        );
        // Sent a lease after the answer that first saw the beat: dead.
        let asked = asked + ms(1);
        assert_eq!(peers.remote_ms("me", &rows, 1_000, asked, asked), 1_000);
    }

    #[test]
    fn only_a_higher_beat_shows_a_peer_alive() {
        let mut peers = Peers::default();
        let start = Instant::now();
        let rows = [row("peer", 5, 500)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, start, start), 500);
        // An older row answered later (a late write): no news of life.
        let later = start + LEASE + ms(1);
        let rows = [row("peer", 4, 400)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, later, later), 1_000);
    }

    #[test]
    fn the_floor_bounds_the_watermark_and_a_leaving_peer_holds_nothing() {
        let mut peers = Peers::default();
        let now = Instant::now();
        assert_eq!(peers.remote_ms("me", &[], 1_000, now, now), 1_000);
        let rows = [row("gone", 7, GONE_MS)];
        assert_eq!(peers.remote_ms("me", &rows, 1_000, now, now), 1_000);
    }
}
