//! The live event bus: every order state change gets a sequence number and is kept in a bounded ring, so an
//! SSE client that reconnects with `Last-Event-ID` gets what it missed, in order, exactly once. Ids are
//! `<epoch>-<seq>`; the epoch is the bus's start (µs), so an id from before a restart is recognised as such
//! (the client is told to re-read state instead of silently missing events).

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::OrderUpdate;

/// Events kept for reconnecting clients.
pub const REPLAY_CAPACITY: usize = 10_000;

/// An order update with its place in the stream.
#[derive(Debug, Clone)]
pub struct Published {
    pub seq: u64,
    pub update: OrderUpdate,
}

struct Ring {
    next: u64,
    buf: VecDeque<Published>,
}

/// What a (re)subscribing client gets.
pub struct Subscription {
    /// Events after the client's last one, oldest first.
    pub backlog: Vec<Published>,
    /// The client's last event is unknown here (older than the ring, or from before a restart): it missed
    /// events and should re-read state.
    pub gap: bool,
    /// Everything published from now on.
    pub live: broadcast::Receiver<Published>,
}

pub struct EventBus {
    tx: broadcast::Sender<Published>,
    ring: Mutex<Ring>,
    epoch: u64,
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(4096);
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        EventBus { tx, ring: Mutex::new(Ring { next: 0, buf: VecDeque::new() }), epoch }
    }

    /// The stream id of an event: `<epoch>-<seq>`.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// Numbers, keeps and broadcasts an update. The ring and the broadcast happen under one lock, so a
    /// subscriber sees every event either in its backlog or live, never both, never neither.
    pub fn publish(&self, update: OrderUpdate) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.next += 1;
        let published = Published { seq: ring.next, update };
        ring.buf.push_back(published.clone());
        if ring.buf.len() > REPLAY_CAPACITY {
            ring.buf.pop_front();
        }
        // No subscriber is fine.
        let _ = self.tx.send(published);
    }

    /// Subscribes, replaying what came after `last_event_id` (a `Last-Event-ID` header) when given.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.tx.subscribe();
        let Some(last) = last_event_id else {
            return Subscription { backlog: Vec::new(), gap: false, live };
        };
        let last = last
            .split_once('-')
            .filter(|(epoch, _)| epoch.parse::<u64>().ok() == Some(self.epoch))
            .and_then(|(_, seq)| seq.parse::<u64>().ok());
        let oldest = ring.buf.front().map_or(ring.next + 1, |p| p.seq);
        match last {
            Some(last) if last <= ring.next && last + 1 >= oldest => {
                Subscription { backlog: ring.buf.iter().filter(|p| p.seq > last).cloned().collect(), gap: false, live }
            }
            // Unknown, from before a restart, or fallen out of the ring: replay what is kept, flag the gap.
            _ => Subscription { backlog: ring.buf.iter().cloned().collect(), gap: true, live },
        }
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(n: u32) -> OrderUpdate {
        OrderUpdate {
            tenant_id: "t".into(),
            order_id: format!("o{n}"),
            kind: "App".into(),
            name: "a".into(),
            state: "merged".into(),
        }
    }

    #[test]
    fn replays_what_a_client_missed_exactly_once() {
        let bus = EventBus::new();
        bus.publish(update(1));
        let first = bus.subscribe(None);
        assert!(first.backlog.is_empty() && !first.gap);
        bus.publish(update(2));
        bus.publish(update(3));
        let again = bus.subscribe(Some(&bus.event_id(1)));
        assert!(!again.gap);
        assert_eq!(again.backlog.iter().map(|p| p.update.order_id.as_str()).collect::<Vec<_>>(), ["o2", "o3"]);
        assert!(bus.subscribe(Some(&bus.event_id(3))).backlog.is_empty(), "up to date");
        // An id of another epoch (a restarted server) or garbage: a gap.
        assert!(bus.subscribe(Some("1-2")).gap);
        assert!(bus.subscribe(Some("nonsense")).gap);
        // Fallen out of the ring.
        for n in 0..(REPLAY_CAPACITY as u32 + 5) {
            bus.publish(update(n));
        }
        assert!(bus.subscribe(Some(&bus.event_id(2))).gap);
    }
}
