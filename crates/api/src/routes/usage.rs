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

/// `YYYY-MM` → the month's first second and the next month's.
fn month_bounds(text: &str) -> Option<(i64, i64)> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let (year, month): (i32, u8) = (year.parse().ok()?, month.parse().ok()?);
    let start = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, 1).ok()?;
    let next = if month == 12 {
        time::Date::from_calendar_date(year + 1, time::Month::January, 1).ok()?
    } else {
        time::Date::from_calendar_date(year, time::Month::try_from(month + 1).ok()?, 1).ok()?
    };
    Some((start.midnight().assume_utc().unix_timestamp(), next.midnight().assume_utc().unix_timestamp()))
}

/// The organisation's usage of one month as an invoice (admins: it is billing data): a line per service, net,
/// VAT (the price list's `vat_percent`) and gross, exact to the cent; `format=csv` for spreadsheets. The running
/// month is a preview (`final: false`) up to now. Unknown parameters are refused by name.
#[utoipa::path(get, operation_id = "usage_invoice", path = "/api/v1/usage/invoice", tag = "usage", security(("api_key" = [])),
    params(
        ("month" = Option<String>, Query, description = "YYYY-MM (UTC); default: the current month"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses((status = 200, body = m::Invoice), (status = 200, content_type = "text/csv", description = "format=csv"),
        (status = 400, body = m::ErrorBody), (status = 403, body = m::ErrorBody)))]
pub async fn invoice(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Auth(p.clone()).require_admin()?;
    if let Some(unknown) = q.keys().find(|k| !matches!(k.as_str(), "month" | "format")) {
        return Err(
            ApiError::bad_request(format!("unknown parameter {unknown:?}: use month and format")).field(unknown)
        );
    }
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("format must be json or csv, got {other:?}")).field("format"))
        }
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let month = match q.get("month") {
        Some(m) => m.clone(),
        None => rfc3339(now)[..7].to_string(),
    };
    let (from, end) = month_bounds(&month)
        .ok_or_else(|| ApiError::bad_request(format!("month must be YYYY-MM, got {month:?}")).field("month"))?;
    if from > now {
        return Err(ApiError::invalid("month", format!("month: {month} has not begun")));
    }
    let to = end.min(now);
    let prices = &state.config.price_list;
    let rows = state.store.usage(&p.tenant.id, from, to).await?;
    let mut net = 0u128;
    let lines: Vec<m::InvoiceLine> = rows
        .iter()
        .map(|s| {
            let cents = crate::pricing::micros_to_cents(prices.cost_micros(s));
            net += cents;
            m::InvoiceLine {
                kind: s.kind.clone(),
                name: s.name.clone(),
                pods: s.pods,
                vcpu_seconds: s.vcpu_seconds(),
                gib_seconds: s.gib_seconds(),
                amount: crate::pricing::cents_text(cents),
            }
        })
        .collect();
    let vat = crate::pricing::vat_cents(net, prices.vat_basis_points);
    let invoice = m::Invoice {
        number: format!("{}-{month}", p.tenant.slug),
        tenant: p.tenant.slug.clone(),
        month,
        from: rfc3339(from),
        to: rfc3339(to),
        is_final: end <= now,
        currency: prices.currency.clone(),
        lines,
        net: crate::pricing::cents_text(net),
        vat_percent: crate::pricing::percent_text(prices.vat_basis_points),
        vat: crate::pricing::cents_text(vat),
        gross: crate::pricing::cents_text(net + vat),
    };
    if !csv {
        return Ok(axum::Json(invoice).into_response());
    }
    let disposition = format!("attachment; filename=\"invoice-{}.csv\"", invoice.number);
    Ok((
        [("content-type", "text/csv; charset=utf-8".to_string()), ("content-disposition", disposition)],
        invoice_csv(&invoice),
    )
        .into_response())
}

/// The invoice as CSV: a header, a row per service, then net, VAT and gross rows. Written by hand: every field is
/// a DNS label, a catalog kind, an ISO currency code, a month or a number, none of which needs quoting.
fn invoice_csv(i: &m::Invoice) -> String {
    let mut out = String::from("invoice,month,currency,kind,name,pods,vcpu_seconds,gib_seconds,amount\n");
    let head = format!("{},{},{}", i.number, i.month, i.currency);
    for l in &i.lines {
        out.push_str(&format!(
            "{head},{},{},{},{:.3},{:.3},{}\n",
            l.kind, l.name, l.pods, l.vcpu_seconds, l.gib_seconds, l.amount
        ));
    }
    out.push_str(&format!("{head},,net,,,,{}\n", i.net));
    out.push_str(&format!("{head},,VAT {}%,,,,{}\n", i.vat_percent, i.vat));
    out.push_str(&format!("{head},,gross,,,,{}\n", i.gross));
    out
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

    #[test]
    fn months_are_whole_calendar_months() {
        let t = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap().unix_timestamp();
        assert_eq!(month_bounds("2026-12"), Some((t("2026-12-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))));
        assert_eq!(month_bounds("2028-02"), Some((t("2028-02-01T00:00:00Z"), t("2028-03-01T00:00:00Z"))));
        for bad in ["2026-13", "2026-1", "26-01", "2026-00", "2026/01", "2026-01-01"] {
            assert_eq!(month_bounds(bad), None, "{bad}");
        }
    }
}
