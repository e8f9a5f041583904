//! Wire types of the max-cloud REST API (`/api/v1`).
//!
//! These are the JSON shapes on the wire, shared by the server, the `maxcloud` CLI, the end-to-end tests
//! and the benches. They carry no behaviour; the server parses request types into domain types once, at
//! the edge. Timestamps are RFC 3339 strings in UTC. Request types reject unknown fields.

use std::collections::BTreeMap;

mod logs;
mod quotas;
mod registry;
mod revisions;
mod secrets;
pub use logs::LogLine;
pub use quotas::{Invoice, InvoiceLine, Quota, QuotaLimits, QuotaUsed};
pub use registry::{RegistryImage, RegistryImages, RegistryInfo, RegistryToken};
pub use revisions::{
    AddDomainRequest, Domain, DomainVerification, Revision, Revisions, ServedRevisions, ServedTarget,
    SetTrafficRequest, TrafficTarget,
};
pub use secrets::{SecretInfo, SecretKeyRef, SetSecretRequest};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `GET /healthz`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Every error response: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `invalid_parameters`, `unauthorized`, `not_found`, `conflict`.
    pub code: String,
    /// One-line human-readable reason.
    pub message: String,
    /// The offending field as a dotted path (`parameters.scaling.maxScale`), when one field is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every invalid field with its reason (`invalid_parameters`), in field order; `field` is the first. Forms
    /// show each beside its input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// Dotted path, e.g. `parameters.scaling.maxScale`.
    pub field: String,
    /// What is wrong, e.g. `must be greater than or equal to 1`.
    pub message: String,
}

// ---------------------------------------------------------------- auth

/// `POST /api/v1/auth/register`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub org_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Organization {
    pub id: String,
    pub name: String,
    /// DNS-1123 slug: the tenant's namespace is `mc-<slug>`, its Git repo `/git/<slug>.git`.
    pub slug: String,
    pub created_at: String,
}

/// `201` answer of `POST /api/v1/auth/register`. The API key is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub user: User,
    pub organization: Organization,
    pub api_key: String,
}

/// `GET /api/v1/auth/status`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthStatus {
    pub authenticated: bool,
    pub user: User,
    pub organization: Organization,
    /// `admin` or `member`.
    pub role: String,
    pub api_key: ApiKey,
}

/// `POST /api/v1/auth/api-keys`
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[serde(default)]
    pub name: Option<String>,
}

/// An API key as listed: never the secret itself, only its prefix.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// First characters of the key (`mc_ab12cd34`), enough to recognise it.
    pub prefix: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// `201` answer of `POST /api/v1/auth/api-keys`: the key is shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub api_key: String,
}

/// `201` answer of `POST /api/v1/auth/git-tokens`: a read-only token for the tenant's Git repo (for Flux).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedGitToken {
    pub id: String,
    pub token: String,
    /// Clone URL path of the tenant repo, e.g. `/git/acme-shop.git`.
    pub repo_path: String,
    pub created_at: String,
}

/// `POST /api/v1/auth/invites` (admins).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    pub email: String,
    /// `member` (default) or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `201` answer of `POST /api/v1/auth/invites`. Without a mailer the token is in the answer, shown once
/// (`mail: none`, with a `note`); with one it went to the invitee only (`mail: sent`, no token). Valid until
/// `expires_at` (the server's `--invite-ttl`, 7 days by default).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvite {
    pub id: String,
    pub email: String,
    pub role: String,
    /// The `mci_…` token, when no e-mail carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: String,
    /// `sent` (the invite e-mail went out) or `none` (no mailer configured).
    #[serde(default)]
    pub mail: String,
    /// What the admin has to do, e.g. pass the token on because no e-mail was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An invite of the organisation as `GET /api/v1/auth/invites` lists it (never the token).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    pub id: String,
    pub email: String,
    /// `admin` or `member`.
    pub role: String,
    /// `pending`, `accepted`, `expired` or `revoked`.
    pub state: String,
    /// E-mail of the admin who invited.
    pub invited_by: String,
    /// `none` (no mailer), `pending` (being sent) or `sent`.
    pub mail: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// `POST /api/v1/auth/accept-invite`: answered like a registration (user, organisation, API key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    pub token: String,
}

/// A member of the organisation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub user: User,
    /// `admin` or `member`.
    pub role: String,
    pub joined_at: String,
}

// ---------------------------------------------------------------- services (typed App facade)

/// `POST /api/v1/services`: the typed facade over an `App` create order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceRequest {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<BTreeMap<String, String>>,
    /// Variables read from the organisation's secrets (`maxcloud secrets`): VAR → secret and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<BTreeMap<String, SecretKeyRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_scale: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale: Option<i64>,
    /// Hard limit of concurrent requests per instance (`containerConcurrency`), 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i64>,
    /// CPU request, a Kubernetes quantity such as `500m` or `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory request, a Kubernetes quantity such as `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// `public` (default) or `internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Name of the revision this deploy creates (`<service>-<revision>` in the cluster); generated (`r<N>`) when
    /// absent. Must be new for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Keep the traffic where it is: the new revision gets 0% (redeploys only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_traffic: bool,
    /// Tag the new revision (its own URL `<tag>-<service>.<domain>`), e.g. with `no_traffic` to test it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `PATCH /api/v1/services/{id}`: change only the given fields; the rest keeps its current value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchServiceRequest {
    /// Must equal the service's name if given (services cannot be renamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Replaces all environment variables when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<BTreeMap<String, String>>,
    /// Replaces all secret variables when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<BTreeMap<String, SecretKeyRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_scale: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Name of the revision this change creates; generated (`r<N>`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Keep the traffic where it is: the new revision gets 0%.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_traffic: bool,
    /// Tag the new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A container app as the seed API showed it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Service {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub image: String,
    /// `ready`, `pending`, `failed` or `deleting`.
    pub status: String,
    pub url: Option<String>,
    pub port: i64,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env_vars: BTreeMap<String, String>,
    /// Variables read from secrets.
    #[serde(default)]
    pub secret_env: BTreeMap<String, SecretKeyRef>,
    pub min_scale: i64,
    pub max_scale: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The latest order that changed this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The newest revision's name (`maxcloud revisions NAME` lists them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

// ---------------------------------------------------------------- catalog

/// One orderable service type, derived from its XRD.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogEntry {
    pub kind: String,
    pub plural: String,
    pub group: String,
    pub version: String,
    pub api_version: String,
    pub description: String,
    /// JSON Schema of the order parameters (the resource's `spec`), defaults included.
    #[schema(value_type = BTreeMap<String, Value>)]
    pub schema: Value,
    /// CEL rules that hold for the parameters, as written in the XRD.
    pub rules: Vec<CatalogRule>,
    /// Suggested order of the top-level parameters in forms (`x-ui-order`).
    pub ui_order: Vec<String>,
    /// Merge policy per action: `auto` or `review`.
    pub merge_policy: BTreeMap<String, String>,
    /// What one resource with the default parameters costs per month at list prices; absent for types whose
    /// XRD does not say what they request (`maxcloud.dev/price-*` annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceEstimate>,
}

/// A monthly price estimate (730 h at list prices), from the fewest to the most instances the parameters allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PriceEstimate {
    /// e.g. `EUR`
    pub currency: String,
    /// Decimal amount at the fewest instances, e.g. `0.00` for an App that scales to zero.
    pub monthly_min: String,
    /// Decimal amount at the most instances.
    pub monthly_max: String,
    /// One line, as in pull requests: `EUR 0.00–663.57 per month (0–10 instances of 1 vCPU, 512 MiB; …)`.
    pub summary: String,
}

/// `POST /api/v1/catalog/{kind}/estimate`: the parameters an order would carry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    /// The resource's `spec`, as in an order; defaults apply.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Value>)]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogRule {
    /// Where the rule sits, as a dotted path below the parameters (`scaling`), empty at the top.
    pub path: String,
    pub rule: String,
    pub message: String,
}

// ---------------------------------------------------------------- orders

/// `POST /api/v1/orders`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// `create` (default), `update` or `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Catalog kind, e.g. `App` (case-insensitive; the plural `apps` works too).
    pub kind: String,
    /// DNS-1123 label, unique per kind within the tenant.
    pub name: String,
    /// The resource's `spec`; validated against the XRD's schema and CEL rules. Ignored for deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = BTreeMap<String, Value>)]
    pub parameters: Option<Value>,
}

/// `POST /api/v1/orders/{id}/reject`
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectOrderRequest {
    /// Why the change is refused; recorded as the order's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: String,
    pub tenant: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub kind: String,
    pub name: String,
    #[schema(value_type = BTreeMap<String, Value>)]
    pub parameters: Value,
    /// `accepted`, `pr_open`, `merged`, `applied`, `ready`, `failed`, `rejected` or `superseded`.
    pub state: String,
    pub requester: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub resource_id: String,
    /// Path of the resource file in the tenant repo, e.g. `apps/shop.yaml`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<OrderTransition>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PullRequest {
    pub number: i64,
    pub branch: String,
    /// `open`, `merged` or `closed`.
    pub state: String,
    /// `auto` or `review`.
    pub merge_policy: String,
    pub head_commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    pub title: String,
    pub body: String,
    /// The pull request's page on the Git hosting provider (absent for the embedded local provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For orders that need review: `pending`, `approved` or `changes_requested`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_state: Option<String>,
    /// Who approved or asked for changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewed_by: Vec<String>,
    /// Reviewers the merge policy requires (besides the number of approvals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_reviewers: Vec<String>,
    /// Approving reviews the merge policy requires (review policy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<i64>,
}

/// A tenant's merge policy for one kind and action: `GET /api/v1/policies`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MergePolicy {
    pub kind: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// `auto` (merged at once) or `review` (merged once approved on the pull request).
    pub policy: String,
    /// Reviewers who must approve (review policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<String>,
    /// Approving reviews needed (review policy).
    pub required_approvals: i64,
    /// `true`: set by the organisation; `false`: the catalog's default.
    pub custom: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `PUT /api/v1/policies/{kind}/{action}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMergePolicyRequest {
    /// `auto` or `review`.
    pub policy: String,
    /// Git provider logins that must approve (review policy).
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Approving reviews needed, 1 to 10 (review policy; default 1, at least the number of reviewers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<i64>,
}

/// Answer to a webhook delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookResult {
    /// `handled`, `duplicate` or `ignored`.
    pub result: String,
    /// The order whose pull request it is about (`handled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Why it was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderTransition {
    pub state: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---------------------------------------------------------------- resources

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    pub id: String,
    pub tenant: String,
    pub kind: String,
    pub name: String,
    /// `pending`, `ready`, `failed` or `deleting`.
    pub status: String,
    pub url: Option<String>,
    /// Path of the resource file in the tenant repo.
    pub path: String,
    #[schema(value_type = BTreeMap<String, Value>)]
    pub spec: Value,
    pub order_id: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A resource in the cluster with what its composition made, as the status aggregator sees it
/// (`GET /api/v1/resources/{kind}/{name}/tree`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceNode {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Whether the aggregator has seen the object (a composed object may be referenced before it exists).
    pub observed: bool,
    /// The `Ready` condition; absent when the object has none (e.g. a DNSEndpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Crossplane's `Synced` condition (XRs and managed resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<bool>,
    /// Why it is not ready: the message of the first condition that is not True.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[schema(no_recursion)]
    pub children: Vec<ResourceNode>,
}

// ---------------------------------------------------------------- usage

/// What usage costs: a price per vCPU-second and per GiB-second of requested resources, as exact decimal
/// strings in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriceList {
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Price of one vCPU requested for one second, e.g. `"0.000024"`.
    pub vcpu_second: String,
    /// Price of one GiB of memory requested for one second, e.g. `"0.0000025"`.
    pub gib_second: String,
}

/// `GET /api/v1/usage`: the organisation's metered usage in `[from, to)`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// Organisation slug.
    pub tenant: String,
    /// Start of the window (RFC 3339, whole seconds, inclusive).
    pub from: String,
    /// End of the window (RFC 3339, whole seconds, exclusive).
    pub to: String,
    pub currency: String,
    pub price_list: PriceList,
    /// One entry per service that ran in the window, by kind and name.
    pub services: Vec<ServiceUsage>,
    pub total: UsageTotal,
}

/// What one service's pods requested over their running time in the window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceUsage {
    /// Catalog kind (`App`, `Database`).
    pub kind: String,
    pub name: String,
    /// Pods that ran in the window.
    pub pods: u64,
    /// Requested vCPUs × seconds running.
    pub vcpu_seconds: f64,
    /// Requested GiB of memory × seconds running.
    pub gib_seconds: f64,
    /// In the price list's currency, rounded to 6 decimal places.
    pub cost: f64,
}

/// Sums over all services; `cost` is the sum of the services' rounded costs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageTotal {
    pub vcpu_seconds: f64,
    pub gib_seconds: f64,
    pub cost: f64,
}

/// Order states in the order they are reached (the terminal failures are not in the sequence).
pub const ORDER_STATES: [&str; 5] = ["accepted", "pr_open", "merged", "applied", "ready"];

/// Whether `state` is at or beyond `target` on the happy path.
pub fn order_state_reached(state: &str, target: &str) -> bool {
    let pos = |s: &str| ORDER_STATES.iter().position(|x| *x == s);
    matches!((pos(state), pos(target)), (Some(a), Some(b)) if a >= b)
}

/// Whether an order in `state` will not move any more.
pub fn order_state_is_terminal(state: &str) -> bool {
    matches!(state, "ready" | "failed" | "rejected" | "superseded")
}

// ---------------------------------------------------------------- audit

/// One entry of the audit log (`GET /api/v1/audit`): every mutating call, accepted or refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub id: String,
    /// When the call was answered (RFC 3339, UTC).
    pub at: String,
    /// Who: the key's user, with whom a front end acted for (`ops@acme.example for user:default/jane`).
    pub actor: Option<String>,
    pub method: String,
    pub path: String,
    /// What, e.g. `orders.create`, `orders.approve`, `auth.api-keys.create`.
    pub action: String,
    /// The HTTP status of the answer: the result.
    pub status: u16,
    /// What it acted on (`App/shop order/…`).
    pub target: Option<String>,
    /// Why a call was refused.
    pub detail: Option<String>,
    /// From where: the peer address the server saw.
    pub source: Option<String>,
}
