//! Tenant GitOps repositories for max-cloud.
//!
//! Every tenant owns one bare Git repository (`<root>/<slug>.git`) written only by the order
//! service through git2 — never through a work tree. Layout on `main`:
//!
//! ```text
//! README.md                 rendered from gitops/README.md.j2
//! <plural>/<name>.yaml      one resource per file (apps/shop.yaml)
//! ```
//!
//! Every order is one commit touching exactly one file, made on branch `order/<order-id>` on top of
//! `main` ([`Repos::commit_order`]) and then merged ([`Repos::merge_order`]): fast-forward when main
//! did not move, otherwise the commit is regenerated from the order on top of the new main.
//! [`Repos::apply_batch`] does the same for a batch of orders of one tenant, writing all their
//! objects as one packfile and moving main once (call [`Repos::gc`] when [`Repos::pack_count`]
//! grows past about 50).
//! All reference updates are compare-and-swap, so a concurrent writer is never overwritten.
//!
//! Next to them, the platform repository (`<root>/platform.git`, see [`Repos::init_platform`] and
//! [`Repos::add_tenant_to_platform`]) holds one directory per tenant (`flux/tenants/<slug>/`) rendered from
//! the templates in `gitops/tenant/`: what the cluster's Flux applies to onboard the tenant.
//!
//! The repositories are served read-only over Git smart HTTP by [`http_backend`], which runs
//! `git http-backend` as a CGI program.
//!
//! All functions here are blocking (git2); call them from `tokio::task::spawn_blocking`.

mod batch;
pub mod http_backend;
mod pack;
mod platform;
mod remote;
mod repos;
mod status;
mod templates;
mod tree_edit;

pub use batch::{Applied, BatchItem};
pub use platform::{
    render_tenant, render_tenants_kustomization, PlatformCommit, RenderedFile, ServiceAccountRef, TenantContext,
    PLATFORM_REPO, TENANTS_DIR, TENANT_FLUX_NAME, TENANT_GIT_SECRET, TENANT_SOPS_SECRET, TENANT_WEBHOOK_SECRET,
};
pub use remote::{Rebased, RemoteAuth};
pub use repos::{branch_for, Change, Committed, MergeOutcome, Repos, Signature};
pub use status::{CommitState, CommitStatus, DESCRIPTION_MAX_CHARS, STATUS_NOTES_REF};
pub use templates::{
    render_commit_message, render_pr_body, render_pr_title, render_readme, unified_diff, OrderText, ReadmeContext,
    MAX_SUBJECT_CHARS,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A repository, reference, branch or object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change would not change anything on main (same content already there, or deleting a
    /// file that does not exist).
    #[error("no change: {0}")]
    NoChange(String),
    /// A reference moved concurrently, or exists with unexpected content.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A slug, path or branch name that is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Any other libgit2 error.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// Rendering a text template failed.
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    /// I/O error (file system, spawning `git http-backend`).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
