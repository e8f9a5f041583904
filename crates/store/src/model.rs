//! Rows as the store hands them out. Timestamps are microseconds since the Unix epoch.

use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    /// `admin` or `member`; anything else is `None`.
    pub fn from_name(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Who is calling: resolved from an API key.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Tenant,
    pub user: User,
    pub role: Role,
    pub key: ApiKeyRow,
    /// The person a front end acting with this key (the Backstage plugin) says it acts for, e.g.
    /// `user:default/jane`: recorded beside the key's user as requester and in the audit log, never used to
    /// decide what the call may do.
    pub on_behalf_of: Option<String>,
}

/// An order to store (state `accepted`).
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub tenant_id: String,
    pub action: String,
    pub kind: String,
    pub name: String,
    /// The defaulted parameters as JSON text (empty object for deletes).
    pub parameters: String,
    pub requester: String,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub path: String,
    pub merge_policy: String,
    /// Forge logins that must approve (review policy; empty: anyone with write access).
    pub reviewers: Vec<String>,
    /// Approving reviews needed (review policy).
    pub required_approvals: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: String,
    pub tenant_id: String,
    pub action: String,
    pub kind: String,
    pub name: String,
    pub parameters: String,
    pub state: String,
    pub requester: String,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub resource_id: String,
    pub path: String,
    pub merge_policy: String,
    pub approved: bool,
    pub error: Option<String>,
    /// Forge logins that must approve (review policy; empty: anyone with write access).
    pub reviewers: Vec<String>,
    /// Approving reviews needed (review policy).
    pub required_approvals: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub state: String,
    pub at: i64,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRow {
    pub id: String,
    pub tenant_id: String,
    pub order_id: String,
    pub number: i64,
    pub branch: String,
    pub state: String,
    pub merge_policy: String,
    pub head_commit: String,
    pub merge_commit: Option<String>,
    pub title: String,
    pub body: String,
    /// The pull request's page on the forge (`None` for the local provider).
    pub url: Option<String>,
    /// `pending`, `approved` or `changes_requested` for orders that need review.
    pub review_state: Option<String>,
    /// Who approved or asked for changes (forge logins, or the approver of a local PR).
    pub reviewed_by: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A pull request to record as opened.
#[derive(Debug, Clone, Default)]
pub struct NewPullRequest {
    pub branch: String,
    pub head_commit: String,
    pub title: String,
    pub body: String,
    /// The forge's number (`None`: the local provider numbers its PRs per tenant).
    pub number: Option<i64>,
    /// The pull request's page on the forge.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub name: String,
    pub status: String,
    pub url: Option<String>,
    pub spec: String,
    pub path: String,
    pub order_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub tenant_id: Option<String>,
    pub actor: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// The peer address the call came from (`203.0.113.7`), when the server knows it.
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub entry: AuditEntry,
}

pub(crate) fn tenant(row: &AnyRow, p: &str) -> sqlx::Result<Tenant> {
    Ok(Tenant {
        id: row.try_get(format!("{p}id").as_str())?,
        slug: row.try_get(format!("{p}slug").as_str())?,
        name: row.try_get(format!("{p}name").as_str())?,
        created_at: row.try_get(format!("{p}created_at").as_str())?,
    })
}

pub(crate) fn user(row: &AnyRow, p: &str) -> sqlx::Result<User> {
    Ok(User {
        id: row.try_get(format!("{p}id").as_str())?,
        email: row.try_get(format!("{p}email").as_str())?,
        created_at: row.try_get(format!("{p}created_at").as_str())?,
    })
}

pub(crate) fn role(s: &str) -> Role {
    Role::parse(s)
}

pub(crate) fn api_key(row: &AnyRow, p: &str) -> sqlx::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: row.try_get(format!("{p}id").as_str())?,
        tenant_id: row.try_get(format!("{p}tenant_id").as_str())?,
        user_id: row.try_get(format!("{p}user_id").as_str())?,
        name: row.try_get(format!("{p}name").as_str())?,
        prefix: row.try_get(format!("{p}prefix").as_str())?,
        created_at: row.try_get(format!("{p}created_at").as_str())?,
        last_used_at: row.try_get(format!("{p}last_used_at").as_str())?,
        revoked_at: row.try_get(format!("{p}revoked_at").as_str())?,
    })
}

pub(crate) const ORDER_COLUMNS: &str = "id, tenant_id, action, kind, name, parameters, state, requester, \
    idempotency_key, request_hash, resource_id, path, merge_policy, approved, error, reviewers, required_approvals, \
    created_at, updated_at";

pub(crate) fn order(row: &AnyRow) -> sqlx::Result<OrderRow> {
    Ok(OrderRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        action: row.try_get("action")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        parameters: row.try_get("parameters")?,
        state: row.try_get("state")?,
        requester: row.try_get("requester")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        resource_id: row.try_get("resource_id")?,
        path: row.try_get("path")?,
        merge_policy: row.try_get("merge_policy")?,
        approved: row.try_get::<i64, _>("approved")? != 0,
        error: row.try_get("error")?,
        reviewers: split_list(&row.try_get::<String, _>("reviewers")?),
        required_approvals: row.try_get("required_approvals")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) const PR_COLUMNS: &str = "id, tenant_id, order_id, number, branch, state, merge_policy, head_commit, \
    merge_commit, title, body, url, review_state, reviewed_by, created_at, updated_at";

pub(crate) fn pull_request(row: &AnyRow) -> sqlx::Result<PullRequestRow> {
    Ok(PullRequestRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        order_id: row.try_get("order_id")?,
        number: row.try_get("number")?,
        branch: row.try_get("branch")?,
        state: row.try_get("state")?,
        merge_policy: row.try_get("merge_policy")?,
        head_commit: row.try_get("head_commit")?,
        merge_commit: row.try_get("merge_commit")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        url: row.try_get("url")?,
        review_state: row.try_get("review_state")?,
        reviewed_by: split_list(&row.try_get::<Option<String>, _>("reviewed_by")?.unwrap_or_default()),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) const RESOURCE_COLUMNS: &str =
    "id, tenant_id, kind, name, status, url, spec, path, order_id, created_at, updated_at";

pub(crate) fn resource(row: &AnyRow) -> sqlx::Result<ResourceRow> {
    Ok(ResourceRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        url: row.try_get("url")?,
        spec: row.try_get("spec")?,
        path: row.try_get("path")?,
        order_id: row.try_get("order_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A comma-separated list column.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
