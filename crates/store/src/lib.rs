//! Persistence for max-cloud: tenants, users, memberships, API keys, Git read tokens, orders (the outbox),
//! order events, pull requests, resources, the audit log and metered pod usage.
//!
//! One code path serves both databases through sqlx's `Any` driver: SQLite (the embedded default, a file
//! in the data directory) and PostgreSQL (`DATABASE_URL=postgres://…`). The SQL is written to be portable
//! (text ids, BIGINT microsecond timestamps, `$n` placeholders, which SQLite accepts too), so the same
//! migrations and the same test suite run on both.
//!
//! SQLite allows one writer at a time; rather than letting concurrent writers collide on `SQLITE_BUSY`,
//! the store serialises its own write transactions on SQLite with an async mutex.

mod audit;
mod db;
mod domains;
mod forges;
mod invites;
mod keys;
mod model;
mod observed;
mod oidc;
mod orders;
mod resources;
mod sops_keys;
mod tenants;
mod usage;

pub use audit::AuditQuery;
pub use domains::DomainClaim;
pub use forges::{MergePolicyRow, ReviewUpdate};
pub use invites::{Invite, InviteInfo, InviteRefused, Joined, Member, Revoked};
pub use observed::{Observation, Recorded};
pub use oidc::{OidcLogin, OidcUser};
pub use orders::{Accepted, Logged, LoggedEvent, OrderDetails, Outcome};
pub use sops_keys::SealedKey;
pub use tenants::{NewKey, Registration};
pub use usage::{PodUsage, ServiceUsage, GIB};

pub use db::{now_us, Backend, DbLock, Store};
pub use model::*;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; `field` names the clashing input.
    #[error("{message}")]
    Conflict { field: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A state transition that the current state does not allow.
    #[error("{0}")]
    InvalidState(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}
