//! `GET /api/v1/services/{id}/logs`: the service's container logs across its revisions, as server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use maxcloud_api_model as m;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, LogQuery};

/// Lines sent when `tail` is not given.
const DEFAULT_TAIL: u32 = 100;
/// Most lines a request may ask for.
const MAX_TAIL: u32 = 10_000;

/// Parses `follow` and `tail`; anything else is refused by name.
fn query(q: &HashMap<String, String>) -> ApiResult<LogQuery> {
    if let Some(unknown) = q.keys().find(|k| !matches!(k.as_str(), "follow" | "tail")) {
        return Err(ApiError::bad_request(format!("unknown parameter {unknown:?}: use follow and tail")).field(unknown));
    }
    let follow = match q.get("follow").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("follow must be true or false, got {other:?}")).field("follow"))
        }
    };
    let tail = match q.get("tail") {
        None => DEFAULT_TAIL,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=MAX_TAIL).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!("tail must be an integer from 1 to {MAX_TAIL}, got {t:?}"))
                    .field("tail"))
            }
        },
    };
    Ok(LogQuery { follow, tail })
}

/// The service's container logs, from every pod of every revision, oldest first: the last `tail` lines (default
/// 100), then — with `follow` — each new line as it is printed, also of pods that start later, until the client
/// disconnects. One `log` event per line; without `follow` an `end` event closes the stream.
#[utoipa::path(get, operation_id = "services_logs", path = "/api/v1/services/{id}/logs", tag = "services", security(("api_key" = [])),
    params(("id" = String, Path), ("follow" = Option<bool>, Query, description = "keep streaming new lines"),
        ("tail" = Option<u32>, Query, description = "last lines to send first, 1–10000 (default 100)")),
    responses((status = 200, content_type = "text/event-stream", description = "`log` events: LogLine as JSON; `end` when done (without follow)"),
        (status = 400, body = m::ErrorBody), (status = 404, body = m::ErrorBody),
        (status = 503, body = m::ErrorBody, description = "no cluster is connected")))]
pub async fn stream(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let query = query(&q)?;
    let row = super::services::find(&state, &p.tenant.id, &id).await?;
    let logs = state
        .logs
        .clone()
        .ok_or_else(|| ApiError::unavailable("no cluster is connected: there are no container logs to read"))?;
    let lines = logs
        .logs(format!("mc-{}", p.tenant.slug), row.name.clone(), query)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read the logs of {}: {e}", row.name)))?;
    let events =
        lines.map(|line| Ok(Event::default().event("log").data(serde_json::to_string(&line).unwrap_or_default())));
    let end = (!query.follow).then(|| Ok(Event::default().event("end").data("{}")));
    Ok(Sse::new(events.chain(stream::iter(end))).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
