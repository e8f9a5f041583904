use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::Auth;
use crate::AppState;

/// Live order state changes of the caller's organisation, as server-sent events (`event: order`).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("api_key" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "`order` events: {order_id, kind, name, state}")))]
pub async fn stream(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tenant = p.tenant.id.clone();
    let events = BroadcastStream::new(state.orders.subscribe()).filter_map(move |msg| {
        let tenant = tenant.clone();
        async move {
            match msg {
                Ok(update) if update.tenant_id == tenant => {
                    let data = serde_json::json!({
                        "order_id": update.order_id, "kind": update.kind, "name": update.name, "state": update.state,
                    });
                    Some(Ok(Event::default().event("order").data(data.to_string())))
                }
                Ok(_) => None,
                // The subscriber fell behind: tell it to re-read state.
                Err(_) => Some(Ok(Event::default().event("lagged").data("{}"))),
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
