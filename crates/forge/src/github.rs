//! GitHub and GitHub Enterprise Server (REST API, version `2022-11-28`), with octocrab as the HTTP client.
//!
//! # Requests
//!
//! octocrab carries every request: an [`Octocrab`] built on our own hyper client (rustls on ring, the system's
//! CA roots) with [`BaseUriLayer`] for the API base (`https://api.github.com`, or `https://ghe.example/api/v3` on
//! GHES: the base path is kept) and no octocrab auth. Each request is an `http::Request` sent with
//! [`Octocrab::execute`], with the headers set here: `Authorization: Bearer <token>`,
//! `Accept: application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`,
//! `User-Agent: max-cloud-order-service`, and `Content-Type: application/json` on bodies. octocrab's typed
//! calls (`octocrab.pulls(..)`, `get`/`post` ...) are not used because their errors drop the answer's headers,
//! and [`RetryPolicy`] needs `Retry-After`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` to wait for a rate
//! limit; its default builder is not used because it appends `User-Agent: octocrab` to every request (a second
//! value next to ours). Answers are read whole and deserialized into small structs holding only the documented
//! fields we read (octocrab's models require many more).
//!
//! # Authentication
//!
//! - A token (personal access token of a machine user, or any installation token): sent as is; Git over HTTPS
//!   uses `x-access-token` and the token.
//! - A GitHub App installation: a JWT signed here (RS256, `iat` = now − 60 s against clock drift, `exp` =
//!   now + 9 min, `iss` = the App id) is exchanged with `POST /app/installations/{id}/access_tokens` for an
//!   installation token (valid one hour). The token is cached and renewed when it has less than 5 minutes left
//!   (so a token handed to `git push` by [`Forge::git_auth`] outlives the push); concurrent callers share one
//!   renewal. A 401 answer drops the cached token and the call is repeated once with a fresh one. The App acts as
//!   `<app-slug>[bot]` (the slug from `GET /app`).
//!
//! # Behaviour
//!
//! - Empty repository: GitHub's repository has no `empty` flag. `size` (KiB) is updated asynchronously after a
//!   push, so `size > 0` is trusted as "has commits" and `size == 0` is confirmed by looking the default branch
//!   up (`GET /repos/{o}/{r}/branches/{branch}`, 404 on an empty repository).
//! - Branch protection (`PUT .../branches/{b}/protection`) needs the branch: protect after the first push.
//!   `enforce_admins` is false, so a repository administrator (the machine user of a token) merges past the
//!   review requirement; a GitHub App is no administrator, so for App credentials the App's slug is put in
//!   `bypass_pull_request_allowances.apps`.
//! - Merge (`PUT .../pulls/{n}/merge` with `sha` and `merge_method: merge`): GitHub has no per-request bypass
//!   flag, the `bypass` argument is therefore not sent. Whoever may bypass the protection (above) always does:
//!   for review-gated orders the caller checks [`Forge::reviews`] before asking for the merge. 405 (not
//!   mergeable: reviews missing, conflict, already merged) re-reads the pull request: merged is a success (a
//!   retried merge whose first answer was lost, too); "Base branch was modified" is retried for a few seconds;
//!   409 (head moved from `sha`) is not mergeable.
//! - Reviews: a review counts only if its `commit_id` is the pull request's current head (fetched first):
//!   approvals of an older head are stale, as with "dismiss stale reviews"; `DISMISSED`, `COMMENTED` and
//!   `PENDING` reviews carry no verdict.
//! - Retried writes: a POST whose answer was lost (5xx, network) may have been done. Creating a pull request
//!   again answers 422 "A pull request already exists for owner:branch": the existing one is returned. A
//!   repository is read back after 422, a label that exists is fine, a missing ref on delete is fine, labels,
//!   reviewers, statuses and protection are idempotent. A comment may be posted twice in that case.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{Mutex, OnceCell};

use crate::rest::{self, Rest};
use crate::retry::{short, Response, RetryPolicy};
use crate::{
    branch_path, segment, Forge, ForgeError, ForgeKind, GitAuth, Label, Merge, NewPullRequest, PrState, Protection,
    PullRequest, Repo, Result, Reviews, Status, Verdict,
};

/// The API of github.com.
pub const GITHUB_API: &str = "https://api.github.com";

/// The REST API version requested.
pub const API_VERSION: &str = "2022-11-28";

/// Our `User-Agent` (GitHub rejects requests without one).
pub const USER_AGENT_VALUE: &str = "max-cloud-order-service";

/// The media type GitHub recommends.
const MEDIA_TYPE: &str = "application/vnd.github+json";

/// Git over HTTPS username for tokens.
const GIT_USERNAME: &str = "x-access-token";

/// An installation token with less left than this is renewed.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The App JWT's `iat` is this far in the past (clock drift, as GitHub recommends).
const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// The App JWT's `exp` is this far in the future (GitHub allows at most 10 minutes).
const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);

/// One try of a request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a merge retries "Base branch was modified".
const MERGE_RACE_WAIT: Duration = Duration::from_secs(5);

/// Page size of lists (GitHub's maximum).
const PER_PAGE: usize = 100;

/// Route prefixes of the requests sent here (see [`GitHub::new`]).
const ROUTE_ROOTS: [&str; 4] = ["/repos/", "/orgs/", "/user", "/app/"];

/// Credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum GitHubAuth {
    /// A personal access token (fine-grained or classic) of the user the service acts as.
    Token(String),
    /// A GitHub App installed on the organisation; `private_key_pem` is the App's private key as GitHub hands it
    /// out (PEM, PKCS#1 or PKCS#8).
    App { app_id: u64, installation_id: u64, private_key_pem: String },
}

impl std::fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitHubAuth::Token(_) => f.write_str("Token(..)"),
            GitHubAuth::App { app_id, installation_id, .. } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Where and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfig {
    /// The REST API: [`GITHUB_API`], or `https://<host>/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// The organisation holding the tenant repositories.
    pub owner: String,
    pub auth: GitHubAuth,
    pub retry: RetryPolicy,
}

impl GitHubConfig {
    /// github.com with the default retries.
    pub fn new(owner: &str, auth: GitHubAuth) -> GitHubConfig {
        GitHubConfig { api_url: GITHUB_API.to_string(), owner: owner.to_string(), auth, retry: RetryPolicy::default() }
    }
}

/// GitHub (or GitHub Enterprise Server) and the organisation holding the tenant repositories.
#[derive(Clone)]
pub struct GitHub {
    api_url: String,
    owner: String,
    octocrab: Octocrab,
    retry: RetryPolicy,
    auth: Arc<Auth>,
    login: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").field("api", &self.api_url).field("owner", &self.owner).finish_non_exhaustive()
    }
}

enum Auth {
    Token(String),
    App(App),
}

struct App {
    app_id: u64,
    installation_id: u64,
    key: EncodingKey,
    /// The current installation token; the lock is held while it is renewed.
    token: Mutex<Option<InstallationToken>>,
}

struct InstallationToken {
    token: String,
    expires_at: OffsetDateTime,
}

#[derive(Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl App {
    /// A JWT authenticating as the App.
    fn jwt(&self) -> Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            iat: now - JWT_BACKDATE.as_secs() as i64,
            exp: now + JWT_LIFETIME.as_secs() as i64,
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| ForgeError::Protocol(format!("signing the GitHub App JWT: {e}")))
    }
}

impl GitHub {
    /// A client for `config`. Fails on an API URL that is not absolute, an empty token or a private key that is
    /// not an RSA key in PEM. Call it inside the Tokio runtime that uses it: octocrab spawns its request queue
    /// there.
    pub fn new(config: GitHubConfig) -> Result<GitHub> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ForgeError::Protocol("the GitHub client is created outside of a Tokio runtime".into()));
        }
        let api_url = config.api_url.trim_end_matches('/').to_string();
        let base: Uri =
            api_url.parse().map_err(|e| ForgeError::Protocol(format!("GitHub API URL {api_url:?}: {e}")))?;
        if base.scheme().is_none() || base.authority().is_none() {
            return Err(ForgeError::Protocol(format!("GitHub API URL {api_url:?} is not absolute")));
        }
        // octocrab's BaseUriLayer does not prefix the base path to a request path that already starts with it;
        // refuse a base path that is a prefix of one of our routes rather than send requests elsewhere.
        let base_path = base.path().trim_end_matches('/');
        if !base_path.is_empty() && ROUTE_ROOTS.iter().any(|root| root.starts_with(base_path)) {
            return Err(ForgeError::Protocol(format!(
                "GitHub API URL {api_url:?}: its path {base_path:?} is the start of an API route"
            )));
        }
        let auth = match config.auth {
            GitHubAuth::Token(token) if token.trim().is_empty() => {
                return Err(ForgeError::Protocol("GitHub token is empty".into()))
            }
            GitHubAuth::Token(token) => Auth::Token(token.trim().to_string()),
            GitHubAuth::App { app_id, installation_id, private_key_pem } => Auth::App(App {
                app_id,
                installation_id,
                key: EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
                    .map_err(|e| ForgeError::Protocol(format!("GitHub App private key: {e}")))?,
                token: Mutex::new(None),
            }),
        };
        Ok(GitHub {
            octocrab: client(base)?,
            api_url,
            owner: config.owner,
            retry: config.retry,
            auth: Arc::new(auth),
            login: Arc::new(OnceCell::new()),
        })
    }

    fn repo_path(&self, repo: &str) -> String {
        format!("/repos/{}/{}", segment(&self.owner), segment(repo))
    }

    /// The token for API calls and Git (an App's installation token, renewed when it runs out).
    async fn token(&self) -> Result<String> {
        let app = match &*self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::App(app) => app,
        };
        let mut current = app.token.lock().await;
        if let Some(t) = current.as_ref() {
            if t.expires_at - OffsetDateTime::now_utc() > REFRESH_MARGIN {
                return Ok(t.token.clone());
            }
        }
        let fresh = self.installation_token(app).await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    /// Exchange the App's JWT for an installation token.
    async fn installation_token(&self, app: &App) -> Result<InstallationToken> {
        #[derive(Deserialize)]
        struct Answer {
            token: String,
            expires_at: String,
        }
        let path = format!("/app/installations/{}/access_tokens", app.installation_id);
        let what = format!("POST {path}");
        let resp = self.send_with(&app.jwt()?, Method::POST, &path, None).await?;
        let answer: Answer = rest::parse(&what, &check(&what, resp)?)?;
        let expires_at = OffsetDateTime::parse(&answer.expires_at, &Rfc3339)
            .map_err(|e| ForgeError::Protocol(format!("{what}: expires_at {:?}: {e}", answer.expires_at)))?;
        tracing::debug!(installation = app.installation_id, %expires_at, "GitHub installation token renewed");
        Ok(InstallationToken { token: answer.token, expires_at })
    }

    /// Drop the cached installation token if it is `token` (rejected with 401).
    async fn forget(&self, token: &str) {
        if let Auth::App(app) = &*self.auth {
            let mut current = app.token.lock().await;
            if current.as_ref().is_some_and(|t| t.token == token) {
                *current = None;
            }
        }
    }

    /// One request with retries, as `bearer`; the answer whatever its status.
    async fn send_with(&self, bearer: &str, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let what = format!("{method} {path}");
        let body = match body {
            Some(v) => Some(bytes::Bytes::from(
                serde_json::to_vec(v).map_err(|e| ForgeError::Protocol(format!("{what}: {e}")))?,
            )),
            None => None,
        };
        let mut authorization = HeaderValue::from_str(&format!("Bearer {bearer}"))
            .map_err(|_| ForgeError::Protocol("the GitHub token is not a valid header value".into()))?;
        authorization.set_sensitive(true);
        self.retry
            .run(&what, || {
                let mut request = http::Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .header(AUTHORIZATION, authorization.clone())
                    .header(ACCEPT, MEDIA_TYPE)
                    .header("x-github-api-version", API_VERSION)
                    .header(USER_AGENT, USER_AGENT_VALUE);
                let payload = match &body {
                    Some(bytes) => {
                        request = request.header(CONTENT_TYPE, "application/json");
                        OctoBody::from(bytes.clone())
                    }
                    None => OctoBody::empty(),
                };
                let request = request.body(payload);
                async move {
                    let request = request.map_err(|e| e.to_string())?;
                    let exchange = async {
                        let resp = self.octocrab.execute(request).await.map_err(|e| describe(&e))?;
                        let (parts, body) = resp.into_parts();
                        let body = body.collect().await.map_err(|e| describe(&e))?.to_bytes();
                        Ok(Response { status: parts.status, headers: parts.headers, body })
                    };
                    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
                        .await
                        .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
                }
            })
            .await
    }

    /// One request with retries and the current token; the answer whatever its status. A 401 with an App token
    /// (revoked, or expired early) is repeated once with a fresh token.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let token = self.token().await?;
        let resp = self.send_with(&token, method.clone(), path, body).await?;
        if resp.status == StatusCode::UNAUTHORIZED && matches!(*self.auth, Auth::App(_)) {
            self.forget(&token).await;
            let token = self.token().await?;
            return self.send_with(&token, method, path, body).await;
        }
        Ok(resp)
    }

    /// All pages of a list.
    async fn list<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<Vec<T>> {
        let mut all = Vec::new();
        for page in 1.. {
            let page = if page == 1 { String::new() } else { format!("&page={page}") };
            let items: Vec<T> = self.json(Method::GET, &format!("{path}?per_page={PER_PAGE}{page}"), None).await?;
            let last = items.len() < PER_PAGE;
            all.extend(items);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Whether the branch exists.
    async fn branch_exists(&self, repo: &str, branch: &str) -> Result<bool> {
        let path = format!("{}/branches/{}", self.repo_path(repo), branch_path(branch));
        match self.call(Method::GET, &path, None).await {
            Ok(_) => Ok(true),
            Err(ForgeError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn to_repo(&self, name: &str, r: GhRepo) -> Result<Repo> {
        let default_branch = r.default_branch.filter(|b| !b.is_empty()).unwrap_or_else(|| "main".into());
        let empty = r.size == 0 && !self.branch_exists(name, &default_branch).await?;
        Ok(Repo { full_name: r.full_name, clone_url: r.clone_url, html_url: r.html_url, default_branch, empty })
    }

    /// The App's slug (`GET /app`, as the App).
    async fn app_slug(&self, app: &App) -> Result<String> {
        #[derive(Deserialize)]
        struct GhApp {
            slug: String,
        }
        let what = "GET /app";
        let resp = self.send_with(&app.jwt()?, Method::GET, "/app", None).await?;
        let answer: GhApp = rest::parse(what, &check(what, resp)?)?;
        Ok(answer.slug)
    }
}

/// octocrab on a hyper client: HTTPS (rustls with ring; the system's roots, else Mozilla's) or plain HTTP, the
/// API base applied by octocrab's [`BaseUriLayer`], no default headers, no octocrab auth.
fn client(base: Uri) -> Result<Octocrab> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "no system CA certificates, using Mozilla's roots for GitHub");
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .map_err(|e| ForgeError::Protocol(format!("TLS setup: {e}")))?
        }
    };
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = tls.https_or_http().enable_http1().wrap_connector(http);
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, OctoBody>(connector);
    OctocrabBuilder::new_empty()
        .with_service(hyper)
        .with_layer(&BaseUriLayer::new(base))
        .with_auth(AuthState::None)
        .build()
        .map_err(|e: Infallible| match e {})
}

/// An error and its sources, for messages.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// [`rest::check`] with GitHub's error bodies.
fn check(what: &str, resp: Response) -> Result<Response> {
    rest::check(what, resp, error_message)
}

/// GitHub's error body is `{"message", "documentation_url", "errors"?}`; `errors` holds objects
/// (`{"resource", "field", "code", "message"?}`) or strings.
fn error_message(resp: &Response) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&resp.body) else {
        return short(&resp.text());
    };
    let Some(message) = body.get("message").and_then(Value::as_str) else {
        return short(&resp.text());
    };
    let details: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            e => match e.get("message").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None => {
                    let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                    format!("{}.{} {}", field("resource"), field("field"), field("code"))
                }
            },
        })
        .collect();
    if details.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", details.join("; "))
    }
}

#[derive(Deserialize)]
struct GhRepo {
    full_name: String,
    clone_url: String,
    html_url: String,
    #[serde(default)]
    default_branch: Option<String>,
    /// KiB; 0 for an empty repository (and, for a while, after the first push).
    #[serde(default)]
    size: u64,
}

#[derive(Deserialize)]
struct GhUser {
    login: String,
}

#[derive(Deserialize)]
struct GhBranchRef {
    #[serde(rename = "ref")]
    branch: String,
    #[serde(default)]
    sha: String,
}

/// A pull request, in full (`GET .../pulls/{n}`) or as a list item (no `merged`, no `merged_by`).
#[derive(Deserialize)]
struct GhPull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    /// Also set on open pull requests (the test merge): only meaningful once merged.
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    merged_by: Option<GhUser>,
    head: GhBranchRef,
    base: GhBranchRef,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
}

impl GhPull {
    fn is_merged(&self) -> bool {
        self.merged.unwrap_or(self.merged_at.is_some())
    }
}

impl From<GhPull> for PullRequest {
    fn from(p: GhPull) -> PullRequest {
        let merged = p.is_merged();
        let state = match (merged, p.state.as_str()) {
            (true, _) => PrState::Merged,
            (false, "open") => PrState::Open,
            _ => PrState::Closed,
        };
        PullRequest {
            number: p.number,
            html_url: p.html_url,
            state,
            head_branch: p.head.branch,
            head_sha: p.head.sha,
            base_branch: p.base.branch,
            merge_commit: p.merge_commit_sha.filter(|s| !s.is_empty() && merged),
            merged_by: p.merged_by.map(|u| u.login),
            title: p.title,
            body: p.body.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct GhReview {
    user: Option<GhUser>,
    state: String,
    #[serde(default)]
    commit_id: Option<String>,
}

#[derive(Deserialize)]
struct GhLabel {
    name: String,
}

#[async_trait::async_trait]
impl Forge for GitHub {
    fn kind(&self) -> ForgeKind {
        ForgeKind::GitHub
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    async fn login(&self) -> Result<String> {
        let login = self
            .login
            .get_or_try_init(|| async {
                match &*self.auth {
                    Auth::Token(_) => Ok(self.json::<GhUser>(Method::GET, "/user", None).await?.login),
                    Auth::App(app) => Ok(format!("{}[bot]", self.app_slug(app).await?)),
                }
            })
            .await?;
        Ok(login.clone())
    }

    async fn repo(&self, name: &str) -> Result<Option<Repo>> {
        match self.json::<GhRepo>(Method::GET, &self.repo_path(name), None).await {
            Ok(r) => Ok(Some(self.to_repo(name, r).await?)),
            Err(ForgeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_repo(&self, name: &str, description: &str) -> Result<Repo> {
        let body = json!({
            "name": name,
            "description": description,
            "private": true,
            "auto_init": false,
        });
        let path = format!("/orgs/{}/repos", segment(&self.owner));
        match self.json::<GhRepo>(Method::POST, &path, Some(&body)).await {
            Ok(r) => Ok(Repo {
                full_name: r.full_name,
                clone_url: r.clone_url,
                html_url: r.html_url,
                default_branch: r.default_branch.filter(|b| !b.is_empty()).unwrap_or_else(|| "main".into()),
                empty: true,
            }),
            // "name already exists on this account": created before (perhaps by a try whose answer was lost).
            Err(ForgeError::Refused(m)) if m.contains(" 422 ") => self.repo(name).await?.ok_or(ForgeError::Refused(m)),
            Err(e) => Err(e),
        }
    }

    async fn protect_branch(&self, repo: &str, branch: &str, protection: &Protection) -> Result<()> {
        let mut reviews = json!({
            "required_approving_review_count": protection.required_approvals,
            "dismiss_stale_reviews": true,
        });
        if matches!(*self.auth, Auth::App(_)) {
            let login = self.login().await?;
            let slug = login.strip_suffix("[bot]").unwrap_or(&login);
            reviews["bypass_pull_request_allowances"] = json!({ "apps": [slug] });
        }
        let body = json!({
            "required_status_checks": null,
            "enforce_admins": false,
            "required_pull_request_reviews": reviews,
            "restrictions": null,
        });
        let path = format!("{}/branches/{}/protection", self.repo_path(repo), branch_path(branch));
        self.call(Method::PUT, &path, Some(&body)).await?;
        Ok(())
    }

    async fn git_auth(&self) -> Result<GitAuth> {
        Ok(GitAuth { username: GIT_USERNAME.to_string(), password: self.token().await? })
    }

    async fn find_pull_request(&self, repo: &str, branch: &str) -> Result<Option<PullRequest>> {
        let head = format!("{}:{branch}", self.owner);
        let path = format!(
            "{}/pulls?head={}&state=all&sort=created&direction=desc&per_page=10",
            self.repo_path(repo),
            segment(&head)
        );
        let pulls: Vec<GhPull> = self.json(Method::GET, &path, None).await?;
        match pulls.into_iter().next() {
            // List items have no `merged_by`: read a merged one in full.
            Some(p) if p.is_merged() => Ok(Some(self.pull_request(repo, p.number).await?)),
            Some(p) => Ok(Some(p.into())),
            None => Ok(None),
        }
    }

    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest<'_>) -> Result<PullRequest> {
        let body = json!({ "title": pr.title, "head": pr.head, "base": pr.base, "body": pr.body });
        let path = format!("{}/pulls", self.repo_path(repo));
        match self.json::<GhPull>(Method::POST, &path, Some(&body)).await {
            Ok(p) => Ok(p.into()),
            // "A pull request already exists for owner:branch": opened before, perhaps by a try whose answer was
            // lost (GitHub does not deduplicate POSTs).
            Err(ForgeError::Refused(m)) if m.contains(" 422 ") && m.contains("already exists") => {
                match self.find_pull_request(repo, pr.head).await? {
                    Some(existing) if existing.state == PrState::Open && existing.base_branch == pr.base => {
                        Ok(existing)
                    }
                    _ => Err(ForgeError::Refused(m)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest> {
        let pull: GhPull = self.json(Method::GET, &format!("{}/pulls/{number}", self.repo_path(repo)), None).await?;
        Ok(pull.into())
    }

    async fn add_labels(&self, repo: &str, number: u64, labels: &[Label]) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        // Adding a missing label to an issue creates it in a default colour: create ours first.
        let existing: Vec<GhLabel> =
            self.json(Method::GET, &format!("{}/labels?per_page={PER_PAGE}", self.repo_path(repo)), None).await?;
        for label in labels.iter().filter(|l| !existing.iter().any(|e| e.name.eq_ignore_ascii_case(&l.name))) {
            let body = json!({
                "name": label.name,
                "color": label.color.trim_start_matches('#'),
                "description": label.description,
            });
            match self.call(Method::POST, &format!("{}/labels", self.repo_path(repo)), Some(&body)).await {
                // 422 already_exists: created meanwhile (or beyond the first page).
                Ok(_) | Err(ForgeError::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        let path = format!("{}/issues/{number}/labels", self.repo_path(repo));
        self.call(Method::POST, &path, Some(&json!({ "labels": names }))).await?;
        Ok(())
    }

    async fn request_reviewers(&self, repo: &str, number: u64, reviewers: &[String]) -> Result<()> {
        if reviewers.is_empty() {
            return Ok(());
        }
        let path = format!("{}/pulls/{number}/requested_reviewers", self.repo_path(repo));
        self.call(Method::POST, &path, Some(&json!({ "reviewers": reviewers }))).await?;
        Ok(())
    }

    async fn reviews(&self, repo: &str, number: u64) -> Result<Reviews> {
        let head = self.pull_request(repo, number).await?.head_sha;
        let reviews: Vec<GhReview> = self.list(&format!("{}/pulls/{number}/reviews", self.repo_path(repo))).await?;
        Ok(Reviews::reduce(reviews.iter().filter_map(|r| {
            let who = r.user.as_ref()?.login.as_str();
            let current = r.commit_id.as_deref() == Some(head.as_str());
            let verdict = match r.state.as_str() {
                "APPROVED" if current => Some(Verdict::Approved),
                "CHANGES_REQUESTED" if current => Some(Verdict::ChangesRequested),
                _ => None,
            };
            Some((who, verdict))
        })))
    }

    async fn merge(&self, repo: &str, number: u64, head_sha: &str, message: &str, _bypass: bool) -> Result<Merge> {
        #[derive(Deserialize)]
        struct Merged {
            sha: String,
        }
        let (title, body) = message.split_once("\n\n").unwrap_or((message, ""));
        let request = json!({
            "commit_title": title,
            "commit_message": body,
            "sha": head_sha,
            "merge_method": "merge",
        });
        let path = format!("{}/pulls/{number}/merge", self.repo_path(repo));
        let what = format!("PUT {path}");
        let deadline = tokio::time::Instant::now() + MERGE_RACE_WAIT;
        loop {
            let resp = self.send(Method::PUT, &path, Some(&request)).await?;
            if resp.status.is_success() {
                let merged: Merged = rest::parse(&what, &resp)?;
                return Ok(Merge::Merged { commit: merged.sha });
            }
            let message = error_message(&resp);
            match resp.status.as_u16() {
                405 if message.contains("Base branch was modified") && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                405 => {
                    // Already merged (by us, a lost answer, or a human) is a success.
                    let pr = self.pull_request(repo, number).await?;
                    return match (pr.state, pr.merge_commit) {
                        (PrState::Merged, Some(commit)) => Ok(Merge::Merged { commit }),
                        (PrState::Merged, None) => Err(ForgeError::Protocol(format!(
                            "pull request {number} is merged but has no merge commit"
                        ))),
                        _ => Ok(Merge::NotMergeable { reason: message }),
                    };
                }
                409 => return Ok(Merge::NotMergeable { reason: message }),
                _ => return Err(rest::error(&what, &resp, error_message(&resp))),
            }
        }
    }

    async fn close(&self, repo: &str, number: u64) -> Result<()> {
        crate::rest::close(self, repo, number).await
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<()> {
        crate::rest::comment(self, repo, number, body).await
    }

    async fn set_status(&self, repo: &str, sha: &str, status: &Status<'_>) -> Result<()> {
        crate::rest::set_status(self, repo, sha, status).await
    }

    async fn delete_branch(&self, repo: &str, branch: &str) -> Result<()> {
        let path = format!("{}/git/refs/heads/{}", self.repo_path(repo), branch_path(branch));
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) | Err(ForgeError::NotFound(_)) => Ok(()),
            Err(ForgeError::Refused(m)) if m.contains("Reference does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Rest for GitHub {
    fn repo_path(&self, repo: &str) -> String {
        GitHub::repo_path(self, repo)
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        GitHub::send(self, method, path, body).await
    }

    fn error_message(resp: &Response) -> String {
        error_message(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn errors_name_githubs_details() {
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom",
            "message":"A pull request already exists for acme:order/1."}],"documentation_url":"https://docs"}"#;
        let e = check("POST /x", answer(422, body)).unwrap_err();
        assert_eq!(
            e,
            ForgeError::Refused(
                "POST /x: 422 Validation Failed (A pull request already exists for acme:order/1.)".into()
            )
        );
        let body =
            r#"{"message":"Validation Failed","errors":[{"resource":"Label","code":"already_exists","field":"name"}]}"#;
        assert!(
            matches!(check("x", answer(422, body)), Err(ForgeError::Refused(m)) if m.contains("Label.name already_exists"))
        );
        assert!(matches!(check("x", answer(404, r#"{"message":"Not Found"}"#)), Err(ForgeError::NotFound(_))));
        assert!(matches!(check("x", answer(401, r#"{"message":"Bad credentials"}"#)), Err(ForgeError::Denied(_))));
        assert!(matches!(
            check("x", answer(403, r#"{"message":"Resource not accessible by integration"}"#)),
            Err(ForgeError::Denied(_))
        ));
        assert!(matches!(
            check("x", answer(403, r#"{"message":"You have exceeded a secondary rate limit."}"#)),
            Err(ForgeError::Unavailable(_))
        ));
        assert!(matches!(check("x", answer(400, "not json")), Err(ForgeError::Protocol(m)) if m.ends_with("not json")));
    }

    #[test]
    fn list_items_without_merged_read_merged_at() {
        let item = r#"{"number":3,"html_url":"h","state":"closed","merged_at":"2026-01-01T00:00:00Z",
            "merge_commit_sha":"m","head":{"ref":"order/1","sha":"a"},"base":{"ref":"main","sha":"b"},"title":"t","body":null}"#;
        let pr: PullRequest = serde_json::from_str::<GhPull>(item).unwrap().into();
        assert_eq!((pr.state, pr.merge_commit.as_deref(), pr.body.as_str()), (PrState::Merged, Some("m"), ""));
        let open = item
            .replace(r#""state":"closed","merged_at":"2026-01-01T00:00:00Z""#, r#""state":"open","merged_at":null"#);
        let pr: PullRequest = serde_json::from_str::<GhPull>(&open).unwrap().into();
        assert_eq!((pr.state, pr.merge_commit), (PrState::Open, None));
    }

    #[tokio::test]
    async fn api_urls_are_checked() {
        let config = |url: &str| GitHubConfig {
            api_url: url.into(),
            ..GitHubConfig::new("acme", GitHubAuth::Token("t".into()))
        };
        assert!(GitHub::new(config("https://api.github.com")).is_ok());
        assert!(GitHub::new(config("https://ghe.example/api/v3/")).is_ok());
        assert!(GitHub::new(config("/api/v3")).is_err());
        assert!(GitHub::new(config("https://ghe.example/re")).is_err());
        assert!(GitHub::new(GitHubConfig::new("acme", GitHubAuth::Token(" ".into()))).is_err());
        let app = GitHubAuth::App { app_id: 1, installation_id: 2, private_key_pem: "not a key".into() };
        assert!(
            matches!(GitHub::new(GitHubConfig::new("acme", app)), Err(ForgeError::Protocol(m)) if m.contains("private key"))
        );
    }
}
