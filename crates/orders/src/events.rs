//! The live event bus: every order state change and service status change is announced here after the store
//! committed it. The store's event log is the durable record (each event has a sequence number, the SSE id), so the bus only
//! wakes subscribers up; a client reconnecting with `Last-Event-ID` is replayed from the store, also after a
//! server restart, and a subscriber that falls behind re-reads instead of losing events.

use tokio::sync::broadcast;

use crate::OrderUpdate;

/// What the bus announces: something new in a tenant's event log.
#[derive(Debug, Clone)]
pub enum Announcement {
    /// An order changed state.
    Order(OrderUpdate),
    /// A service's status or URL changed (a service event was logged).
    Service { tenant_id: String },
}

impl Announcement {
    pub fn tenant_id(&self) -> &str {
        match self {
            Announcement::Order(u) => &u.tenant_id,
            Announcement::Service { tenant_id } => tenant_id,
        }
    }
}

pub struct EventBus {
    tx: broadcast::Sender<Announcement>,
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(4096);
        EventBus { tx }
    }

    /// Announces what is already in the store.
    pub fn publish(&self, announcement: Announcement) {
        // No subscriber is fine.
        let _ = self.tx.send(announcement);
    }

    /// Every announcement from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Announcement> {
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
    wake: broadcast::Receiver<Announcement>,
    tenant_id: String,
    after: i64,
) -> impl futures::Stream<Item = maxcloud_store::LoggedEvent> + Send {
    const PAGE: i64 = 500;
    struct Reader {
        store: maxcloud_store::Store,
        wake: broadcast::Receiver<Announcement>,
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
                    Ok(a) if a.tenant_id() != r.tenant_id => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
}
