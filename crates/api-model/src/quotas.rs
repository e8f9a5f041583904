//! `GET /api/v1/quotas`: the organisation's limits and what is in use.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Limits; `null` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaLimits {
    pub services: Option<i64>,
    pub databases: Option<i64>,
    /// Σ maximum instances of all resources.
    pub max_scale: Option<i64>,
    /// Σ CPU requested at maximum scale, in milli-vCPU.
    pub cpu_milli: Option<i64>,
    /// Σ memory requested at maximum scale, in bytes.
    pub memory_bytes: Option<i64>,
}

/// What the organisation's resources add up to (pending orders included, resources being deleted not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsed {
    pub services: i64,
    pub databases: i64,
    pub max_scale: i64,
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Quota {
    /// Organisation slug.
    pub tenant: String,
    pub limits: QuotaLimits,
    pub used: QuotaUsed,
}

/// `GET /api/v1/usage/invoice?month=YYYY-MM`: the month's usage as an invoice. Amounts are exact decimals in the
/// currency with two places: each line rounded half up to cents, net = Σ lines, VAT on net, gross = net + VAT.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invoice {
    /// `<organisation>-<YYYY-MM>`.
    pub number: String,
    pub tenant: String,
    /// `YYYY-MM`.
    pub month: String,
    /// First second of the month (RFC 3339).
    pub from: String,
    /// End of the metered window: the month's end, or now for the running month.
    pub to: String,
    /// False while the month is still running (a preview).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub net: String,
    /// e.g. `19`.
    pub vat_percent: String,
    pub vat: String,
    pub gross: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoiceLine {
    pub kind: String,
    pub name: String,
    pub pods: u64,
    pub vcpu_seconds: f64,
    pub gib_seconds: f64,
    pub amount: String,
}
