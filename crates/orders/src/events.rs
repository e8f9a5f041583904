//! The live event bus: every order state change is announced here after the store committed it. The store's
//! order-event log is the durable record (each event has a sequence number, the SSE id), so the bus only
//! wakes subscribers up; a client reconnecting with `Last-Event-ID` is replayed from the store, also after a
//! server restart, and a subscriber that falls behind re-reads instead of losing events.

use tokio::sync::broadcast;

use crate::OrderUpdate;

pub struct EventBus {
    tx: broadcast::Sender<OrderUpdate>,
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(4096);
        EventBus { tx }
    }

    /// Announces an update that is already in the store.
    pub fn publish(&self, update: OrderUpdate) {
        // No subscriber is fine.
        let _ = self.tx.send(update);
    }

    /// Every update published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OrderUpdate> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

/// The tenant's order events after sequence number `after`, oldest first, live: the store's log read in
/// pages, re-read whenever the bus announces an update of this tenant (or the subscriber lagged behind the
/// bus, which costs a read, never an event). Ends when the bus closes or the store fails; the client then
/// reconnects with its last id and loses nothing.
pub(crate) fn stream(
    store: maxcloud_store::Store,
    wake: broadcast::Receiver<OrderUpdate>,
    tenant_id: String,
    after: i64,
) -> impl futures::Stream<Item = maxcloud_store::LoggedEvent> + Send {
    const PAGE: i64 = 500;
    struct Reader {
        store: maxcloud_store::Store,
        wake: broadcast::Receiver<OrderUpdate>,
        tenant_id: String,
        last: i64,
        pending: std::collections::VecDeque<maxcloud_store::LoggedEvent>,
    }
    let reader = Reader { store, wake, tenant_id, last: after, pending: Default::default() };
    futures::stream::unfold(reader, |mut r| async move {
        loop {
            if let Some(event) = r.pending.pop_front() {
                return Some((event, r));
            }
            match r.store.events_since(&r.tenant_id, r.last, PAGE).await {
                Ok(page) if !page.is_empty() => {
                    r.last = page.last().map_or(r.last, |e| e.seq);
                    r.pending.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(tenant = %r.tenant_id, error = %e, "cannot read the event log");
                    return None;
                }
            }
            // Caught up: sleep until something of this tenant happens.
            loop {
                match r.wake.recv().await {
                    Ok(u) if u.tenant_id != r.tenant_id => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
}
