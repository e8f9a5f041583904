//! Git hosting providers ("forges") behind one trait (DESIGN.md §4).
//!
//! The order service keeps each tenant's GitOps repository on a forge — GitHub (also GitHub Enterprise), or a
//! self-hosted Gitea/Forgejo — in one organisation, one repository per tenant named after the tenant's slug.
//! [`Forge`] is what the order worker needs from it: create the repository, open, inspect, label, merge and close
//! pull requests, read their reviews, comment, and set commit statuses. Git itself (fetch, commit, push) is not
//! here: the worker builds commits with git2 in a local mirror (`maxcloud-gitops`) and pushes over HTTPS with
//! [`Forge::git_auth`].
//!
//! Every implementation sends its requests through [`retry`]: 5xx answers and network errors are retried with
//! exponential backoff and full jitter, rate-limit answers (403/429 with `Retry-After` or an exhausted
//! `X-RateLimit-Remaining` and its `X-RateLimit-Reset`) wait until the limit resets. Webhook deliveries are
//! verified and read by [`webhook`].
//!
//! Implementations: [`github::GitHub`] (GitHub and GitHub Enterprise Server REST API, octocrab; token or GitHub
//! App authentication), [`gitea::Gitea`] (Gitea/Forgejo REST API v1, reqwest).

pub mod gitea;
pub mod github;
mod rest;
pub mod retry;
pub mod webhook;

use std::fmt;

pub use retry::RetryPolicy;

/// Which kind of forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForgeKind {
    GitHub,
    Gitea,
}

impl ForgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "github",
            ForgeKind::Gitea => "gitea",
        }
    }

    /// `github` or `gitea` (`forgejo` is Gitea's API).
    pub fn parse(text: &str) -> Option<ForgeKind> {
        match text {
            "github" => Some(ForgeKind::GitHub),
            "gitea" | "forgejo" => Some(ForgeKind::Gitea),
            _ => None,
        }
    }
}

impl fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of a forge call, after retries.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ForgeError {
    /// 404: the repository, pull request or branch does not exist (or the credentials cannot see it).
    #[error("not found: {0}")]
    NotFound(String),
    /// 401, or 403 that is not a rate limit: the credentials are wrong, revoked or lack a permission.
    #[error("access denied: {0}")]
    Denied(String),
    /// 409/405/422 on a write: the forge refused the change as it stands (not mergeable, head moved, exists).
    #[error("refused: {0}")]
    Refused(String),
    /// Still failing after the retries (5xx, network, a rate limit that resets too late).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An answer that does not have the documented shape.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

pub type Result<T, E = ForgeError> = std::result::Result<T, E>;

/// A tenant repository on the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// `owner/name`.
    pub full_name: String,
    /// HTTPS clone URL (what git2 pushes to and Flux pulls from).
    pub clone_url: String,
    /// The repository's page.
    pub html_url: String,
    pub default_branch: String,
    /// No commit yet.
    pub empty: bool,
}

/// State of a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    Open,
    Merged,
    /// Closed without merging.
    Closed,
}

impl PrState {
    pub fn as_str(self) -> &'static str {
        match self {
            PrState::Open => "open",
            PrState::Merged => "merged",
            PrState::Closed => "closed",
        }
    }
}

/// A pull request as the forge reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    /// The pull request's page.
    pub html_url: String,
    pub state: PrState,
    /// Head branch name (`order/<id>`).
    pub head_branch: String,
    /// Head commit.
    pub head_sha: String,
    /// Base branch name.
    pub base_branch: String,
    /// The commit the merge put on the base branch.
    pub merge_commit: Option<String>,
    /// Who merged or closed it, when the forge says.
    pub merged_by: Option<String>,
    pub title: String,
    pub body: String,
}

/// What to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest<'a> {
    pub head: &'a str,
    pub base: &'a str,
    pub title: &'a str,
    pub body: &'a str,
}

/// A label the order service puts on its pull requests (created in the repository when missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub name: String,
    /// `rrggbb`, no `#`.
    pub color: String,
    pub description: String,
}

/// One reviewer's current verdict on a pull request (their latest review that counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    ChangesRequested,
}

/// Reviews of a pull request, reduced to each reviewer's latest verdict on the current head. Reviews of an
/// older head (stale) or dismissed ones do not count; comments do not change a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviews {
    /// (reviewer login, verdict), sorted by login.
    pub verdicts: Vec<(String, Verdict)>,
}

impl Reviews {
    pub fn approvers(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter(|(_, v)| *v == Verdict::Approved).map(|(who, _)| who.as_str())
    }

    pub fn changes_requested_by(&self) -> impl Iterator<Item = &str> {
        self.verdicts.iter().filter(|(_, v)| *v == Verdict::ChangesRequested).map(|(who, _)| who.as_str())
    }

    /// Reduce reviews `(login, state, counts)` in the order they were submitted: the latest verdict of each
    /// reviewer wins; a review that does not count (stale, dismissed) or is only a comment changes nothing.
    pub fn reduce<'a>(reviews: impl IntoIterator<Item = (&'a str, Option<Verdict>)>) -> Reviews {
        let mut latest = std::collections::BTreeMap::new();
        for (who, verdict) in reviews {
            if let Some(v) = verdict {
                latest.insert(who.to_string(), v);
            }
        }
        Reviews { verdicts: latest.into_iter().collect() }
    }
}

/// Result of a merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Merged now (or it already was) with this commit on the base branch.
    Merged { commit: String },
    /// The forge will not merge it as it stands (conflict, head moved, required reviews missing).
    NotMergeable { reason: String },
}

/// State of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A commit status (one per `context` and commit, last write wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status<'a> {
    pub state: StatusState,
    pub context: &'a str,
    /// At most 140 characters (GitHub's limit; longer text is cut by the caller).
    pub description: &'a str,
    pub target_url: Option<&'a str>,
}

/// Branch protection of `main` for tenants whose policy needs review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Approving reviews needed before a human can merge (the order service, an admin, bypasses it for orders
    /// its policy auto-merges).
    pub required_approvals: u32,
}

/// Credentials for Git over HTTPS (basic auth).
#[derive(Clone, PartialEq, Eq)]
pub struct GitAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth").field("username", &self.username).finish_non_exhaustive()
    }
}

/// What the order service needs from a Git hosting service. Repositories are named by their name inside the
/// configured owner (organisation).
#[async_trait::async_trait]
pub trait Forge: Send + Sync + 'static {
    fn kind(&self) -> ForgeKind;

    /// The organisation (or user) that owns the tenant repositories.
    fn owner(&self) -> &str;

    /// The login the order service acts as (its own reviews and merges are not a human's).
    async fn login(&self) -> Result<String>;

    /// The repository, if it exists.
    async fn repo(&self, name: &str) -> Result<Option<Repo>>;

    /// Create an empty private repository (no initial commit; default branch `main`). A repository that exists
    /// already is returned as it is.
    async fn create_repo(&self, name: &str, description: &str) -> Result<Repo>;

    /// Protect `branch`: changes only through pull requests with the required approvals. Idempotent.
    async fn protect_branch(&self, repo: &str, branch: &str, protection: &Protection) -> Result<()>;

    /// Credentials for pushing to and fetching from the repositories (fresh: an App token is renewed before it
    /// expires).
    async fn git_auth(&self) -> Result<GitAuth>;

    /// The pull request whose head is `branch` (in any state), newest first if there are several.
    async fn find_pull_request(&self, repo: &str, branch: &str) -> Result<Option<PullRequest>>;

    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest<'_>) -> Result<PullRequest>;

    async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest>;

    /// Put `labels` on the pull request, creating missing ones in the repository.
    async fn add_labels(&self, repo: &str, number: u64, labels: &[Label]) -> Result<()>;

    async fn request_reviewers(&self, repo: &str, number: u64, reviewers: &[String]) -> Result<()>;

    async fn reviews(&self, repo: &str, number: u64) -> Result<Reviews>;

    /// Merge with a merge commit, only if the head is still `head_sha`. `bypass`: merge as an administrator
    /// even if branch protection's review requirement is not met (orders the policy auto-merges).
    async fn merge(&self, repo: &str, number: u64, head_sha: &str, message: &str, bypass: bool) -> Result<Merge>;

    /// Close without merging.
    async fn close(&self, repo: &str, number: u64) -> Result<()>;

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<()>;

    async fn set_status(&self, repo: &str, sha: &str, status: &Status<'_>) -> Result<()>;

    /// Delete a branch; a missing branch is fine.
    async fn delete_branch(&self, repo: &str, branch: &str) -> Result<()>;
}

/// Everything but RFC 3986's unreserved characters is encoded in a path segment.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode one path segment.
pub(crate) fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A branch name in a path: slashes stay (both forges' branch routes take the rest of the path), the parts are
/// encoded.
pub(crate) fn branch_path(branch: &str) -> String {
    branch.split('/').map(segment).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_keep_each_reviewers_latest_verdict() {
        let r = Reviews::reduce([
            ("bob", Some(Verdict::ChangesRequested)),
            ("alice", Some(Verdict::Approved)),
            ("bob", None),
            ("bob", Some(Verdict::Approved)),
            ("carol", Some(Verdict::ChangesRequested)),
        ]);
        assert_eq!(r.approvers().collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(r.changes_requested_by().collect::<Vec<_>>(), ["carol"]);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("order/0192-ab"), "order%2F0192-ab");
        assert_eq!(segment("a b"), "a%20b");
    }
}
