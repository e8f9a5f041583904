use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use maxcloud_store::{Logged, LoggedEvent};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::AppState;

fn sse_event(e: &LoggedEvent) -> Event {
    let (event, mut data, message) = match &e.what {
        Logged::Order { order_id, state, message } => (
            "order",
            serde_json::json!({"order_id": order_id, "kind": e.kind, "name": e.name, "state": state}),
            message,
        ),
        Logged::Service { status, url, message } => {
            let mut data = serde_json::json!({"kind": e.kind, "name": e.name, "status": status});
            if let Some(url) = url {
                data["url"] = url.clone().into();
            }
            ("service", data, message)
        }
    };
    if let Some(message) = message {
        data["message"] = message.clone().into();
    }
    Event::default().event(event).id(e.seq.to_string()).data(data.to_string())
}

/// Live changes of the caller's organisation, as server-sent events, each with an `id`: `event: order` when an
/// order changes state, `event: service` when a service's status or URL changes as the cluster reports it. The events are kept in the store: a client reconnecting with `Last-Event-ID` first gets every event
/// it missed, in order and once, also across server restarts. An id this server cannot place (malformed, or
/// from another installation) gets a `lagged` event first: re-read the state you show.
#[utoipa::path(get, operation_id = "events_stream", path = "/api/v1/events", tag = "events", security(("api_key" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "id of the last event received; missed events are replayed")),
    responses((status = 200, content_type = "text/event-stream", description = "`order` events: {order_id, kind, name, state, message?}; `service` events: {kind, name, status, url?, message?}; `lagged` when the id is unknown")))]
pub async fn stream(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let (lagged, events) =
        state.orders.events(&p.tenant.id, last).await.map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    let lagged = lagged.then(|| Ok(Event::default().event("lagged").data("{}")));
    let events = stream::iter(lagged).chain(events.map(|e| Ok(sse_event(&e))));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
