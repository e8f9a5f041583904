//! Metered usage of the caller's organisation, priced by the configured price list.

use std::collections::HashMap;

use axum::extract::{Query, State};
use maxcloud_api_model as m;
use maxcloud_store::ServiceUsage;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, Time};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::pricing::micros_to_units;
use crate::AppState;

/// The longest window one request may ask for.
const MAX_SPAN_DAYS: i64 = 366;

fn parse_time(text: &str, field: &str) -> ApiResult<i64> {
    super::time_param(text, field).map(OffsetDateTime::unix_timestamp)
}

/// RFC 3339 (UTC, whole seconds).
fn rfc3339(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

/// The start of the UTC month that contains `seconds`.
fn month_start(seconds: i64) -> i64 {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.replace_day(1).ok())
        .map_or(0, |t| t.replace_time(Time::MIDNIGHT).unix_timestamp())
}

/// What the organisation's services used in `[from, to)` — requested vCPUs and GiB of memory × seconds
/// running, per service — and what it costs. `to` defaults to now, `from` to the start of the UTC month of
/// `to`; times count in whole seconds; a window spans at most 366 days.
#[utoipa::path(get, operation_id = "usage_get", path = "/api/v1/usage", tag = "usage", security(("api_key" = [])),
    params(
        ("from" = Option<String>, Query, description = "Start (RFC 3339, inclusive); default: start of the UTC month"),
        ("to" = Option<String>, Query, description = "End (RFC 3339, exclusive); default: now"),
    ),
    responses((status = 200, body = m::Usage), (status = 400, body = m::ErrorBody), (status = 401, body = m::ErrorBody),
        (status = 422, body = m::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<axum::Json<m::Usage>> {
    let to = match q.get("to") {
        Some(t) => parse_time(t, "to")?,
        None => OffsetDateTime::now_utc().unix_timestamp(),
    };
    let from = match q.get("from") {
        Some(t) => parse_time(t, "from")?,
        None => month_start(to - 1),
    };
    if from >= to {
        return Err(ApiError::invalid("to", format!("to: must be after from ({})", rfc3339(from))));
    }
    if to - from > MAX_SPAN_DAYS * 86_400 {
        return Err(ApiError::invalid("to", format!("to: a window spans at most {MAX_SPAN_DAYS} days")));
    }
    let prices = &state.config.price_list;
    let rows = state.store.usage(&p.tenant.id, from, to).await?;
    let mut total = ServiceUsage::default();
    let mut total_cost = 0u128;
    let services = rows
        .iter()
        .map(|s| {
            let cost = prices.cost_micros(s);
            total.cpu_milli_seconds += s.cpu_milli_seconds;
            total.memory_byte_seconds += s.memory_byte_seconds;
            total_cost += cost;
            m::ServiceUsage {
                kind: s.kind.clone(),
                name: s.name.clone(),
                pods: s.pods,
                vcpu_seconds: s.vcpu_seconds(),
                gib_seconds: s.gib_seconds(),
                cost: micros_to_units(cost),
            }
        })
        .collect();
    Ok(axum::Json(m::Usage {
        tenant: p.tenant.slug.clone(),
        from: rfc3339(from),
        to: rfc3339(to),
        currency: prices.currency.clone(),
        price_list: prices.to_wire(),
        services,
        total: m::UsageTotal {
            vcpu_seconds: total.vcpu_seconds(),
            gib_seconds: total.gib_seconds(),
            cost: micros_to_units(total_cost),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_windows_start_at_the_month() {
        let t = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap().unix_timestamp();
        assert_eq!(month_start(t("2026-03-17T12:34:56Z")), t("2026-03-01T00:00:00Z"));
        // A window ending at a month's start covers the month before.
        assert_eq!(month_start(t("2026-03-01T00:00:00Z") - 1), t("2026-02-01T00:00:00Z"));
        assert_eq!(rfc3339(t("2026-03-17T14:34:56.9+02:00")), "2026-03-17T12:34:56Z");
    }
}
