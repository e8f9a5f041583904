use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use maxcloud_orders::Published;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::Auth;
use crate::AppState;

fn order_event(state: &AppState, p: &Published) -> Event {
    let u = &p.update;
    let data = serde_json::json!({"order_id": u.order_id, "kind": u.kind, "name": u.name, "state": u.state});
    Event::default().event("order").id(state.orders.event_id(p.seq)).data(data.to_string())
}

/// Live order state changes of the caller's organisation, as server-sent events (`event: order`, each with an
/// `id`). A client reconnecting with `Last-Event-ID` first gets the events it missed (from a replay buffer of
/// the last 10,000); when that is impossible (an id from before a server restart, or too old) it gets a
/// `lagged` event and should re-read the state it shows.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("api_key" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "id of the last event received; missed events are replayed")),
    responses((status = 200, content_type = "text/event-stream", description = "`order` events: {order_id, kind, name, state}; `lagged` when events were missed")))]
pub async fn stream(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tenant = p.tenant.id.clone();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let sub = state.orders.subscribe(last);
    let lagged = sub.gap.then(|| Ok(Event::default().event("lagged").data("{}")));
    let backlog: Vec<Result<Event, Infallible>> =
        sub.backlog.iter().filter(|p| p.update.tenant_id == tenant).map(|p| Ok(order_event(&state, p))).collect();
    let live_state = state.clone();
    let live = BroadcastStream::new(sub.live).filter_map(move |msg| {
        let (tenant, state) = (tenant.clone(), live_state.clone());
        async move {
            match msg {
                Ok(p) if p.update.tenant_id == tenant => Some(Ok(order_event(&state, &p))),
                Ok(_) => None,
                // The subscriber fell behind: tell it to re-read state.
                Err(_) => Some(Ok(Event::default().event("lagged").data("{}"))),
            }
        }
    });
    let events = stream::iter(lagged.into_iter().chain(backlog)).chain(live);
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
