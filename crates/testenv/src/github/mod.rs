//! A local mock of GitHub (Enterprise Server) for tests: the REST endpoints `maxcloud_forge::github` uses, Git over
//! smart HTTP, and webhook deliveries — on loopback, with state kept in memory and real bare repositories on disk.
//!
//! - REST API under GHES's base path `/api/v3`, with GitHub's documented request and answer shapes: repositories,
//!   branches, branch protection, pull requests, labels, reviewers, reviews, merges, comments, commit statuses, the
//!   authenticated user, the App and its installation tokens. Credentials are checked: a personal token
//!   ([`Mode::Token`]), or an App JWT verified with the App's public key ([`test_key`]) and the installation
//!   tokens it issued ([`Mode::App`]); revoked or expired tokens get 401.
//! - Git smart HTTP at `http://127.0.0.1:PORT/{owner}/{repo}.git` (the `clone_url` of the repository answers), run
//!   by `git http-backend` through [`maxcloud_gitops::http_backend`] on bare repositories in a temporary
//!   directory. Basic auth as GitHub takes it: user `x-access-token`, password a token that is valid now.
//! - Pull requests follow the repositories: opening one reads its head branch's commit, a push moves the head of
//!   the open pull requests of that branch, a merge writes a real merge commit (two parents, merge method
//!   `merge`) with git2 on the base branch, `mergeable` is false and the merge answers 405 when the merge would
//!   conflict, and a head that moved from the `sha` asked for answers 409.
//! - "Human" actions for tests: reviews, closing, merging, pushing to a branch, opening a pull request.
//! - Webhook deliveries (`pull_request`: opened, closed, synchronize; `pull_request_review`: submitted) signed with
//!   `X-Hub-Signature-256`, to a URL set by the test; they can be switched off (to test polling) and replayed.
//! - Fault injection ([`Fault`]): 5xx answers, rate limits, answers lost after the request took effect, answers
//!   held back — on any route, API or Git.
//! - Every request is recorded ([`Recorded`], [`GitRecorded`]); [`GitHubMock::check`] says whether all of them were
//!   well-formed (documented route, GitHub's headers, credentials of the right kind, JSON bodies with the documented
//!   fields).
//!
//! Everything here is for tests only: the App key in [`test_key`] is public.

mod api;
mod check;
mod git;
mod hooks;
pub mod test_key;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, Method};
use jsonwebtoken::DecodingKey;
use serde_json::Value;
use time::OffsetDateTime;

pub use check::{documented, Route, ROUTES};
pub use hooks::{signature, Delivery};

/// The organisation holding the repositories (its login, as GitHub spells it; requests may spell it in any case).
pub const OWNER: &str = "acme";
/// The API's base path (GitHub Enterprise Server's).
pub const BASE_PATH: &str = "/api/v3";
/// The personal access token of [`Mode::Token`].
pub const PAT: &str = "ghp_mockPersonalAccessToken0001";
/// Who the personal access token belongs to (an owner of the organisation).
pub const PAT_LOGIN: &str = "maxcloud-bot";
pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 77;
/// The App acts as `max-cloud[bot]`.
pub const APP_SLUG: &str = "max-cloud";
/// The user name GitHub takes with a token for Git over HTTP.
pub const GIT_USERNAME: &str = "x-access-token";

/// How the mock authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Authorization: Bearer PAT`, acting as `PAT_LOGIN` (an organisation owner).
    Token,
    /// A GitHub App: JWTs for `/app...`, installation tokens for the rest, acting as `max-cloud[bot]`.
    App,
}

/// One API request as the mock saw it (path relative to the API base, without the query).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Option<Value>,
    pub status: u16,
}

impl Recorded {
    pub fn bearer(&self) -> &str {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
    }

    pub fn is(&self, method: &Method, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// One Git smart HTTP request.
#[derive(Debug, Clone)]
pub struct GitRecorded {
    pub method: Method,
    /// `/{owner}/{repo}.git/info/refs`, `.../git-upload-pack` or `.../git-receive-pack`.
    pub path: String,
    /// `git-upload-pack` (fetch) or `git-receive-pack` (push).
    pub service: String,
    /// Basic auth, if sent.
    pub username: Option<String>,
    pub password: Option<String>,
    pub status: u16,
}

/// A scripted answer for the next `times` requests `method path` (`path` relative to the API base for the API,
/// `/{owner}/{repo}.git/...` for Git; a `*` segment matches any one segment): an error before the request takes
/// effect, or after it did (the answer is lost on the way back); or the real answer, held back for a while.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    pub path: String,
    /// The answer's status; `None`: the real answer (with `delay`).
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub message: String,
    /// After the request took effect.
    pub after: bool,
    pub times: u32,
    /// How long the answer is held back.
    pub delay: Duration,
    /// A primary rate limit: `X-RateLimit-Reset` is this many seconds after the answer is sent.
    pub reset_in: Option<u64>,
}

impl Fault {
    /// `times` answers `status` before the request takes effect.
    pub fn before(method: Method, path: &str, status: u16, times: u32) -> Fault {
        Fault {
            method,
            path: path.to_string(),
            status: Some(status),
            headers: Vec::new(),
            message: "Server Error".into(),
            after: false,
            times,
            delay: Duration::ZERO,
            reset_in: None,
        }
    }

    /// The request takes effect, its answer is replaced by `status` (lost on the way back).
    pub fn after(method: Method, path: &str, status: u16) -> Fault {
        Fault { after: true, ..Fault::before(method, path, status, 1) }
    }

    /// GitHub's primary rate limit: 403, `X-RateLimit-Remaining: 0`, reset 1 s after the answer.
    pub fn rate_limit(method: Method, path: &str) -> Fault {
        Fault {
            reset_in: Some(1),
            ..Fault::before(method, path, 403, 1)
                .header("x-ratelimit-limit", "5000")
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-used", "5000")
                .header("x-ratelimit-resource", "core")
                .message("API rate limit exceeded for installation ID 77.")
        }
    }

    /// GitHub's secondary rate limit: 429 with `Retry-After: 1`.
    pub fn secondary_rate_limit(method: Method, path: &str) -> Fault {
        Fault::before(method, path, 429, 1)
            .header("retry-after", "1")
            .message("You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
    }

    /// The request takes effect, its (real) answer is held back for `delay`.
    pub fn held(method: Method, path: &str, delay: Duration) -> Fault {
        Fault { status: None, after: true, delay, ..Fault::before(method, path, 0, 1) }
    }

    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn message(mut self, message: &str) -> Fault {
        self.message = message.to_string();
        self
    }

    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method != method || self.times == 0 {
            return false;
        }
        let pattern: Vec<&str> = self.path.split('/').collect();
        let path: Vec<&str> = path.split('/').collect();
        pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, s)| *p == "*" || p == s)
    }
}

#[derive(Debug, Clone)]
pub struct MockLabel {
    pub name: String,
    pub color: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct MockReview {
    pub id: u64,
    pub login: String,
    pub state: String,
    pub commit_id: String,
}

#[derive(Debug, Clone)]
pub struct MockPull {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    /// The head branch's commit (followed while open, kept once closed).
    pub head_sha: String,
    pub base: String,
    pub open: bool,
    pub merged: bool,
    pub merged_at: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub merged_by: Option<String>,
    pub closed_by: Option<String>,
    pub user: String,
    pub labels: Vec<String>,
    pub requested_reviewers: Vec<String>,
    pub reviews: Vec<MockReview>,
}

/// A repository's metadata; its branches and commits are in the bare repository on disk
/// ([`GitHubMock::repo_dir`]).
#[derive(Debug, Clone, Default)]
pub struct MockRepo {
    pub name: String,
    pub description: String,
    pub private: bool,
    pub default_branch: String,
    /// `size` as GitHub reports it, if not derived from the branches (GitHub updates it late).
    pub reported_size: Option<u64>,
    /// Branch → the protection request body.
    pub protection: BTreeMap<String, Value>,
    pub labels: Vec<MockLabel>,
    pub pulls: Vec<MockPull>,
    /// (sha, status request body)
    pub statuses: Vec<(String, Value)>,
    /// (issue number, author, comment body)
    pub comments: Vec<(u64, String, String)>,
    pub next_number: u64,
}

impl MockRepo {
    pub fn pull(&self, number: u64) -> &MockPull {
        self.pulls.iter().find(|p| p.number == number).expect("pull request")
    }

    pub(crate) fn pull_mut(&mut self, number: u64) -> Option<&mut MockPull> {
        self.pulls.iter_mut().find(|p| p.number == number)
    }

    /// The comments on issue or pull request `number`.
    pub fn comments_on(&self, number: u64) -> Vec<String> {
        self.comments.iter().filter(|(n, _, _)| *n == number).map(|(_, _, body)| body.clone()).collect()
    }
}

/// Where webhook deliveries go.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

#[derive(Debug)]
pub struct State {
    pub mode: Mode,
    pub repos: BTreeMap<String, MockRepo>,
    pub requests: Vec<Recorded>,
    pub git_requests: Vec<GitRecorded>,
    pub faults: Vec<Fault>,
    /// Everything the mock found wrong with a request.
    pub violations: Vec<String>,
    /// Installation tokens issued: (token, expires_at).
    pub tokens: Vec<(String, OffsetDateTime)>,
    /// Tokens revoked before their expiry.
    pub revoked: Vec<String>,
    /// Lifetime of the installation tokens issued.
    pub token_lifetime: Duration,
    /// How long an exchange takes (to overlap concurrent callers).
    pub exchange_delay: Duration,
    /// Claims of every JWT accepted.
    pub jwt_claims: Vec<Value>,
    /// The token user is an administrator (bypasses branch protection unless `enforce_admins`).
    pub admin: bool,
    /// The next merges answer 405 "Base branch was modified".
    pub base_modified: u32,
    /// Where deliveries go (`None`: nowhere; they are still recorded).
    pub webhook: Option<WebhookTarget>,
    /// Deliveries are sent (off: recorded only, as if the hook were inactive).
    pub deliveries_enabled: bool,
    /// Every delivery, in the order the events happened.
    pub deliveries: Vec<Delivery>,
    pub(crate) root: PathBuf,
    pub(crate) web_url: String,
    pub(crate) outbox: tokio::sync::mpsc::UnboundedSender<usize>,
    next_id: u64,
}

impl State {
    pub fn repo(&self, name: &str) -> &MockRepo {
        self.repos.get(name).expect("repository")
    }

    pub fn exchanges(&self) -> usize {
        self.tokens.len()
    }

    /// The bare repository of `name`.
    pub fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join(OWNER).join(format!("{name}.git"))
    }

    /// The branch's commit.
    pub fn tip(&self, repo: &str, branch: &str) -> Option<String> {
        git::tip(&self.repo_dir(repo), branch)
    }

    /// Every branch and its commit.
    pub fn branches(&self, repo: &str) -> BTreeMap<String, String> {
        git::branches(&self.repo_dir(repo))
    }

    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn acting_login(&self) -> String {
        match self.mode {
            Mode::Token => PAT_LOGIN.to_string(),
            Mode::App => format!("{APP_SLUG}[bot]"),
        }
    }

    /// Whether `token` is valid now (the personal token, or a live installation token).
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        match self.mode {
            Mode::Token => token == PAT,
            Mode::App => {
                self.tokens.iter().any(|(t, expires)| t == token && *expires > api::now())
                    && !self.revoked.iter().any(|t| t == token)
            }
        }
    }

    pub(crate) fn take_fault(&mut self, method: &Method, path: &str, after: bool) -> Option<Fault> {
        let i = self.faults.iter().position(|f| f.after == after && f.matches(method, path))?;
        self.faults[i].times -= 1;
        let fault = self.faults[i].clone();
        if self.faults[i].times == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) public_key: DecodingKey,
    /// One push at a time (the refs before and after a push are compared).
    pub(crate) push_lock: tokio::sync::Mutex<()>,
    pub(crate) http: reqwest::Client,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running mock. Stops when dropped.
pub struct GitHubMock {
    /// The API URL (GHES style: `http://127.0.0.1:<port>/api/v3`).
    pub api_url: String,
    /// The web (and Git) URL: `http://127.0.0.1:<port>`.
    pub web_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    sender: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for GitHubMock {
    fn drop(&mut self) {
        self.server.abort();
        self.sender.abort();
    }
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path();
    if !path.starts_with(BASE_PATH) && path.contains(".git/") {
        git::handle(shared, request).await
    } else {
        api::handle(shared, request).await
    }
}

impl GitHubMock {
    /// Start on a free loopback port, with no repository.
    pub async fn start(mode: Mode) -> GitHubMock {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(dir.path().join(OWNER)).expect("owner directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let web_url = format!("http://{addr}");
        let (outbox, inbox) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode,
                repos: BTreeMap::new(),
                requests: Vec::new(),
                git_requests: Vec::new(),
                faults: Vec::new(),
                violations: Vec::new(),
                tokens: Vec::new(),
                revoked: Vec::new(),
                token_lifetime: Duration::from_secs(3600),
                exchange_delay: Duration::ZERO,
                jwt_claims: Vec::new(),
                admin: true,
                base_modified: 0,
                webhook: None,
                deliveries_enabled: true,
                deliveries: Vec::new(),
                root: dir.path().to_path_buf(),
                web_url: web_url.clone(),
                outbox,
                next_id: 0,
            }),
            public_key: DecodingKey::from_rsa_pem(test_key::TEST_APP_PUBLIC_KEY.as_bytes()).expect("test key"),
            push_lock: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client"),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let sender = tokio::spawn(hooks::send_forever(shared.clone(), inbox));
        GitHubMock { api_url: format!("{web_url}{BASE_PATH}"), web_url, shared, server, sender, _dir: dir }
    }

    pub fn mode(&self) -> Mode {
        self.with(|s| s.mode)
    }

    /// The App's private key (PEM), for a client of [`Mode::App`].
    pub fn app_private_key(&self) -> &'static str {
        test_key::TEST_APP_PRIVATE_KEY
    }

    /// `http://127.0.0.1:<port>/{owner}/{repo}.git`.
    pub fn clone_url(&self, repo: &str) -> String {
        format!("{}/{OWNER}/{repo}.git", self.web_url)
    }

    /// `http://127.0.0.1:<port>/{owner}/{repo}`.
    pub fn html_url(&self, repo: &str) -> String {
        format!("{}/{OWNER}/{repo}", self.web_url)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.shared.lock())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    pub fn git_requests(&self) -> Vec<GitRecorded> {
        self.with(|s| s.git_requests.clone())
    }

    /// Forget the requests recorded so far (API and Git).
    pub fn clear_requests(&self) {
        self.with(|s| {
            s.requests.clear();
            s.git_requests.clear();
        })
    }

    pub fn fault(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault))
    }

    /// Faults not used up yet.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.with(|s| s.faults.clone())
    }

    /// The bare repository of `repo` on disk.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.with(|s| s.repo_dir(repo))
    }

    /// A copy of the repository's metadata.
    pub fn repo(&self, repo: &str) -> MockRepo {
        self.with(|s| s.repo(repo).clone())
    }

    /// A copy of a pull request.
    pub fn pull(&self, repo: &str, number: u64) -> MockPull {
        self.with(|s| s.repo(repo).pull(number).clone())
    }

    /// The pull requests whose head is `branch`.
    pub fn pulls_of(&self, repo: &str, branch: &str) -> Vec<MockPull> {
        self.with(|s| s.repo(repo).pulls.iter().filter(|p| p.head == branch).cloned().collect())
    }

    /// The branch's commit.
    pub fn branch(&self, repo: &str, branch: &str) -> Option<String> {
        self.with(|s| s.tip(repo, branch))
    }

    pub fn branches(&self, repo: &str) -> BTreeMap<String, String> {
        self.with(|s| s.branches(repo))
    }

    /// A repository (empty until something is pushed or committed).
    pub fn add_repo(&self, name: &str) {
        self.with(|s| api::create_repo(s, name, "", true))
    }

    /// Revoke an installation token (or every token issued so far with `None`): API calls and Git with it get 401.
    pub fn revoke(&self, token: Option<&str>) {
        self.with(|s| {
            let all: Vec<String> = s.tokens.iter().map(|(t, _)| t.clone()).collect();
            match token {
                Some(t) => s.revoked.push(t.to_string()),
                None => s.revoked.extend(all),
            }
        })
    }

    // --- What people do on GitHub.

    /// Someone pushes a commit to `branch` writing `files` (`None`: delete) with `message`; a new branch starts
    /// from the default branch. Open pull requests from the branch follow (`synchronize`). Returns the commit.
    pub fn commit(&self, repo: &str, branch: &str, files: &[(&str, Option<&str>)], message: &str) -> String {
        self.with(|s| {
            let dir = s.repo_dir(repo);
            let before = git::branches(&dir);
            let sha = git::commit_files(&dir, branch, files, message, "octocat").expect("commit");
            api::after_push(s, repo, &before, "octocat");
            sha
        })
    }

    /// Someone points `branch` at `sha` (a force-push; the commit must exist).
    pub fn set_branch(&self, repo: &str, branch: &str, sha: &str) {
        self.with(|s| {
            let dir = s.repo_dir(repo);
            let before = git::branches(&dir);
            git::set_branch(&dir, branch, sha).expect("set branch");
            api::after_push(s, repo, &before, "octocat");
        })
    }

    /// A pull request opened by `login`.
    pub fn open_pull(&self, repo: &str, head: &str, base: &str, title: &str) -> u64 {
        self.with(|s| api::open_pull(s, repo, head, base, title, None, "someone").expect("open pull request"))
    }

    /// `login` submits a review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) of the pull request's current head.
    pub fn review(&self, repo: &str, number: u64, login: &str, state: &str) -> u64 {
        let head = self.pull(repo, number).head_sha;
        self.review_on(repo, number, login, state, &head)
    }

    /// A review submitted on `commit_id` (an older head makes it stale).
    pub fn review_on(&self, repo: &str, number: u64, login: &str, state: &str, commit_id: &str) -> u64 {
        self.with(|s| api::submit_review(s, repo, number, login, state, commit_id))
    }

    /// `login` closes the pull request without merging.
    pub fn close_pull(&self, repo: &str, number: u64, login: &str) {
        self.with(|s| api::close_pull(s, repo, number, login))
    }

    /// `login` merges the pull request (merge commit, as an administrator: past the branch protection). Returns
    /// the merge commit, or why not.
    pub fn merge_pull(&self, repo: &str, number: u64, login: &str) -> Result<String, String> {
        self.with(|s| {
            let p = s.repo(repo).pull(number).clone();
            if !p.open {
                return Err("Pull Request is not mergeable".into());
            }
            let title = format!("Merge pull request #{number} from {OWNER}/{}", p.head);
            api::merge_pull(s, repo, number, &title, &p.title, login)
        })
    }

    // --- Webhooks.

    /// Send deliveries to `url`, signed with `secret`.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        self.with(|s| s.webhook = Some(WebhookTarget { url: url.to_string(), secret: secret.to_string() }))
    }

    /// Switch deliveries on or off (off: events are recorded, not sent).
    pub fn set_deliveries(&self, on: bool) {
        self.with(|s| s.deliveries_enabled = on)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with(|s| s.deliveries.clone())
    }

    /// Wait until every delivery queued so far was answered (or failed); panics after `timeout`.
    pub async fn settle(&self, timeout: Duration) {
        let start = tokio::time::Instant::now();
        loop {
            let queued = self.with(|s| s.deliveries.iter().filter(|d| d.queued && d.status.is_none()).count());
            if queued == 0 {
                return;
            }
            assert!(start.elapsed() < timeout, "{queued} webhook deliveries still unanswered after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Send delivery `id` again, as it was (same `X-GitHub-Delivery`, body and signature): GitHub's "Redeliver".
    /// Returns the answer's status and body.
    pub async fn redeliver(&self, id: &str) -> (u16, String) {
        let (delivery, target) = self.with(|s| {
            let d = s.deliveries.iter().find(|d| d.id == id).cloned().expect("delivery");
            (d, s.webhook.clone().expect("a webhook target"))
        });
        hooks::post(&self.shared.http, &target, &delivery).await
    }

    // --- Checks.

    /// Everything wrong with the requests recorded so far: what the mock refused as malformed, and every request
    /// that is not a documented route, lacks GitHub's headers, has credentials of the wrong kind, or a body
    /// without its documented fields; Git requests without `x-access-token` and an issued token.
    pub fn check(&self) -> Vec<String> {
        self.with(|s| check::problems(s))
    }

    /// Panics with [`GitHubMock::check`]'s findings, if any.
    pub fn assert_well_formed(&self) {
        let problems = self.check();
        assert!(problems.is_empty(), "malformed requests to the GitHub mock:\n{}", problems.join("\n"));
    }
}
