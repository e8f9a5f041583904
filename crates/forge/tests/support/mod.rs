//! A local mock of the GitHub REST API endpoints `maxcloud_forge::github` uses, with GitHub's documented request
//! and answer shapes, served under GHES's `/api/v3` base path. It keeps state (repositories, branches, pull
//! requests, labels, reviews, statuses, comments, branch protection), checks every request (headers, JSON bodies,
//! credentials: a personal token, or an App JWT verified with the App's public key and the installation tokens it
//! issued) and records it; faults (5xx, rate limits) can be scripted before or after a request takes effect.

#![allow(dead_code)]

pub mod test_key;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State as AxumState};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use maxcloud_forge::github::{GitHub, GitHubAuth, GitHubConfig};
use maxcloud_forge::RetryPolicy;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const OWNER: &str = "acme";
pub const BASE_PATH: &str = "/api/v3";
pub const PAT: &str = "ghp_mockPersonalAccessToken0001";
pub const PAT_LOGIN: &str = "maxcloud-bot";
pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 77;
pub const APP_SLUG: &str = "max-cloud";
pub const WEB: &str = "https://github.example";

/// Fast retries for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

/// How the mock authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Authorization: Bearer PAT`, acting as `PAT_LOGIN` (an organisation owner).
    Token,
    /// A GitHub App: JWTs for `/app...`, installation tokens for the rest, acting as `max-cloud[bot]`.
    App,
}

/// One request as the mock saw it (path relative to the API base, without the query).
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

/// A scripted answer: the next `times` requests `method path` get `status` (with `headers`), before the
/// request takes effect, or after it did (the answer is lost on the way back).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub message: String,
    pub after: bool,
    pub times: u32,
}

impl Fault {
    pub fn before(method: Method, path: &str, status: u16, times: u32) -> Fault {
        Fault {
            method,
            path: path.to_string(),
            status,
            headers: Vec::new(),
            message: "Server Error".into(),
            after: false,
            times,
        }
    }

    pub fn after(method: Method, path: &str, status: u16) -> Fault {
        Fault { after: true, ..Fault::before(method, path, status, 1) }
    }

    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn message(mut self, message: &str) -> Fault {
        self.message = message.to_string();
        self
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
    pub head_sha: String,
    pub base: String,
    pub open: bool,
    pub merged: bool,
    pub merged_at: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub merged_by: Option<String>,
    pub user: String,
    pub labels: Vec<String>,
    pub requested_reviewers: Vec<String>,
    pub reviews: Vec<MockReview>,
}

#[derive(Debug, Clone, Default)]
pub struct MockRepo {
    pub name: String,
    pub description: String,
    pub private: bool,
    pub default_branch: String,
    /// Branch → head commit.
    pub branches: BTreeMap<String, String>,
    /// `size` as GitHub reports it, if not derived from the branches (GitHub updates it late).
    pub reported_size: Option<u64>,
    /// Branch → the protection request body.
    pub protection: BTreeMap<String, Value>,
    pub labels: Vec<MockLabel>,
    pub pulls: Vec<MockPull>,
    /// (sha, status request body)
    pub statuses: Vec<(String, Value)>,
    /// (issue number, comment body)
    pub comments: Vec<(u64, String)>,
    pub next_number: u64,
}

impl MockRepo {
    pub fn pull(&self, number: u64) -> &MockPull {
        self.pulls.iter().find(|p| p.number == number).expect("pull request")
    }

    fn pull_mut(&mut self, number: u64) -> Option<&mut MockPull> {
        self.pulls.iter_mut().find(|p| p.number == number)
    }
}

#[derive(Debug)]
pub struct State {
    pub mode: Mode,
    pub repos: BTreeMap<String, MockRepo>,
    pub requests: Vec<Recorded>,
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
    next_id: u64,
}

impl State {
    pub fn repo(&self, name: &str) -> &MockRepo {
        self.repos.get(name).expect("repository")
    }

    pub fn exchanges(&self) -> usize {
        self.tokens.len()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn sha(&mut self, what: &str) -> String {
        let n = self.id();
        format!("{:0>40}", format!("{n:x}{}", what.len()))
    }

    fn acting_login(&self) -> String {
        match self.mode {
            Mode::Token => PAT_LOGIN.to_string(),
            Mode::App => format!("{APP_SLUG}[bot]"),
        }
    }
}

struct Shared {
    state: Mutex<State>,
    public_key: DecodingKey,
}

/// The running mock.
pub struct MockGitHub {
    /// The API URL (GHES style: `http://127.0.0.1:<port>/api/v3`).
    pub api_url: String,
    shared: Arc<Shared>,
}

impl MockGitHub {
    pub async fn start(mode: Mode) -> MockGitHub {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode,
                repos: BTreeMap::new(),
                requests: Vec::new(),
                faults: Vec::new(),
                violations: Vec::new(),
                tokens: Vec::new(),
                revoked: Vec::new(),
                token_lifetime: Duration::from_secs(3600),
                exchange_delay: Duration::ZERO,
                jwt_claims: Vec::new(),
                admin: true,
                base_modified: 0,
                next_id: 0,
            }),
            public_key: DecodingKey::from_rsa_pem(test_key::TEST_APP_PUBLIC_KEY.as_bytes()).unwrap(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockGitHub { api_url: format!("http://{addr}{BASE_PATH}"), shared }
    }

    /// A provider for this mock, with the credentials of its mode.
    pub fn github(&self) -> GitHub {
        let auth = match self.with(|s| s.mode) {
            Mode::Token => GitHubAuth::Token(PAT.to_string()),
            Mode::App => GitHubAuth::App {
                app_id: APP_ID,
                installation_id: INSTALLATION_ID,
                private_key_pem: test_key::TEST_APP_PRIVATE_KEY.to_string(),
            },
        };
        GitHub::new(GitHubConfig { api_url: self.api_url.clone(), owner: OWNER.into(), auth, retry: fast_retry() })
            .unwrap()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.shared.state.lock().unwrap())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    pub fn clear_requests(&self) {
        self.with(|s| s.requests.clear())
    }

    pub fn fault(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault))
    }

    /// A repository (empty unless branches are pushed).
    pub fn add_repo(&self, name: &str) {
        self.with(|s| {
            s.repos.insert(
                name.to_string(),
                MockRepo {
                    name: name.to_string(),
                    private: true,
                    default_branch: "main".into(),
                    next_number: 1,
                    ..Default::default()
                },
            );
        })
    }

    /// Point `branch` at `sha` (a push); open pull requests from it follow.
    pub fn push(&self, repo: &str, branch: &str, sha: &str) {
        self.with(|s| {
            let r = s.repos.get_mut(repo).expect("repository");
            r.branches.insert(branch.to_string(), sha.to_string());
            for p in r.pulls.iter_mut().filter(|p| p.open && p.head == branch) {
                p.head_sha = sha.to_string();
            }
        })
    }

    /// A review submitted on `commit_id`.
    pub fn review(&self, repo: &str, number: u64, login: &str, state: &str, commit_id: &str) {
        self.with(|s| {
            let id = s.id();
            let r = s.repos.get_mut(repo).expect("repository");
            r.pull_mut(number).expect("pull request").reviews.push(MockReview {
                id,
                login: login.into(),
                state: state.into(),
                commit_id: commit_id.into(),
            });
        })
    }

    /// A pull request opened by someone else.
    pub fn open_pull(&self, repo: &str, head: &str, base: &str, title: &str) -> u64 {
        self.with(|s| {
            let head_sha = s.repo(repo).branches[head].clone();
            let r = s.repos.get_mut(repo).expect("repository");
            let number = r.next_number;
            r.next_number += 1;
            r.pulls.push(new_pull(number, title, None, head, &head_sha, base, "someone"));
            number
        })
    }
}

fn new_pull(
    number: u64,
    title: &str,
    body: Option<String>,
    head: &str,
    head_sha: &str,
    base: &str,
    user: &str,
) -> MockPull {
    MockPull {
        number,
        title: title.into(),
        body,
        head: head.into(),
        head_sha: head_sha.into(),
        base: base.into(),
        open: true,
        merged: false,
        merged_at: None,
        merge_commit_sha: None,
        merged_by: None,
        user: user.into(),
        labels: Vec::new(),
        requested_reviewers: Vec::new(),
        reviews: Vec::new(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Percent-decoding of a path segment.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Answer = (StatusCode, Value);

fn answer(status: u16, body: Value) -> Answer {
    (StatusCode::from_u16(status).unwrap(), body)
}

fn error(status: u16, message: &str) -> Answer {
    answer(status, json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }))
}

fn validation(errors: Value) -> Answer {
    answer(
        422,
        json!({ "message": "Validation Failed", "errors": errors, "documentation_url": "https://docs.github.com/rest" }),
    )
}

fn not_found() -> Answer {
    error(404, "Not Found")
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let query: HashMap<String, String> =
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default();
    let full_path = parts.uri.path().to_string();
    let mut violations = Vec::new();

    // Headers every request carries.
    let single = |name: &str| {
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        if values.len() == 1 {
            Some(values[0].to_string())
        } else {
            None
        }
    };
    if single("accept").as_deref() != Some("application/vnd.github+json") {
        violations
            .push(format!("{full_path}: Accept {:?}", parts.headers.get_all("accept").iter().collect::<Vec<_>>()));
    }
    if single("x-github-api-version").as_deref() != Some("2022-11-28") {
        violations.push(format!("{full_path}: X-GitHub-Api-Version missing or wrong"));
    }
    if single("user-agent").as_deref() != Some("max-cloud-order-service") {
        violations.push(format!(
            "{full_path}: User-Agent {:?}",
            parts.headers.get_all("user-agent").iter().collect::<Vec<_>>()
        ));
    }
    let json_body = if body.is_empty() {
        None
    } else {
        if single("content-type").as_deref() != Some("application/json") {
            violations.push(format!("{full_path}: a body without Content-Type: application/json"));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                violations.push(format!("{full_path}: body is not JSON: {e}"));
                None
            }
        }
    };
    if matches!(parts.method, Method::GET | Method::DELETE) && !body.is_empty() {
        violations.push(format!("{} {full_path}: a body", parts.method));
    }
    let path = match full_path.strip_prefix(BASE_PATH) {
        Some(p) => p.to_string(),
        None => {
            violations.push(format!("{full_path}: not under the API base {BASE_PATH}"));
            full_path.clone()
        }
    };
    let bearer = single("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));

    // An installation token exchange takes a while (outside the lock).
    let exchange = parts.method == Method::POST && path.starts_with("/app/installations/");
    if exchange {
        let delay = shared.state.lock().unwrap().exchange_delay;
        tokio::time::sleep(delay).await;
    }

    let mut guard = shared.state.lock().unwrap();
    let s = &mut *guard;
    let mut record = Recorded {
        method: parts.method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers.clone(),
        body: json_body.clone(),
        status: 0,
    };

    let (status, value, extra_headers) = if !violations.is_empty() {
        s.violations.extend(violations);
        let (status, value) = error(400, "Problems parsing JSON or headers");
        (status, value, Vec::new())
    } else if let Some(fault) = take_fault(s, &parts.method, &path, false) {
        let (status, value) = error(fault.status, &fault.message);
        (status, value, fault.headers)
    } else {
        let (status, value) = match authenticate(s, &shared.public_key, &path, bearer.as_deref()) {
            Err(e) => e,
            Ok(()) => route(s, &parts.method, &path, &query, json_body.as_ref()),
        };
        match take_fault(s, &parts.method, &path, true) {
            Some(fault) => {
                let (status, value) = error(fault.status, &fault.message);
                (status, value, fault.headers)
            }
            None => (status, value, Vec::new()),
        }
    };
    record.status = status.as_u16();
    s.requests.push(record);
    drop(guard);

    let mut response = if status == StatusCode::NO_CONTENT {
        Response::builder().status(status).body(Body::empty()).unwrap()
    } else {
        (status, [("content-type", "application/json; charset=utf-8")], value.to_string()).into_response()
    };
    for (name, value) in extra_headers {
        response.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

fn take_fault(s: &mut State, method: &Method, path: &str, after: bool) -> Option<Fault> {
    let i = s.faults.iter().position(|f| f.after == after && f.method == *method && f.path == path && f.times > 0)?;
    s.faults[i].times -= 1;
    let fault = s.faults[i].clone();
    if s.faults[i].times == 0 {
        s.faults.remove(i);
    }
    Some(fault)
}

/// Credentials: JWT for the App's own routes, else the personal token or a live installation token.
fn authenticate(s: &mut State, key: &DecodingKey, path: &str, bearer: Option<&str>) -> Result<(), Answer> {
    let Some(bearer) = bearer else {
        s.violations.push(format!("{path}: no Authorization: Bearer"));
        return Err(error(401, "Requires authentication"));
    };
    let app_route = path == "/app" || path.starts_with("/app/");
    match (s.mode, app_route) {
        (Mode::Token, false) if bearer == PAT => Ok(()),
        (Mode::Token, _) => Err(error(401, "Bad credentials")),
        (Mode::App, true) => match verify_jwt(key, bearer) {
            Ok(claims) => {
                s.jwt_claims.push(claims);
                Ok(())
            }
            Err(e) => {
                s.violations.push(format!("{path}: JWT rejected: {e}"));
                Err(error(401, &e))
            }
        },
        (Mode::App, false) => {
            let live = s.tokens.iter().any(|(t, expires)| t == bearer && *expires > now())
                && !s.revoked.iter().any(|t| t == bearer);
            if live {
                Ok(())
            } else {
                Err(error(401, "Bad credentials"))
            }
        }
    }
}

/// RS256 with the App's public key; `iss` the App id; `iat` in the past; `exp` ahead, at most 10 minutes after
/// `iat` (GitHub's rules).
fn verify_jwt(key: &DecodingKey, token: &str) -> Result<Value, String> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[APP_ID.to_string()]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, key, &validation).map_err(|e| format!("invalid JWT: {e}"))?;
    let claims = data.claims;
    if claims["iss"].as_str() != Some(APP_ID.to_string().as_str()) {
        return Err("'Issuer' claim ('iss') must be the App id as a string".into());
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("iat/exp are not numbers".into());
    };
    let now = now().unix_timestamp();
    if iat > now {
        return Err("'Issued at' claim ('iat') must be an Integer representing a time in the past".into());
    }
    if exp - iat > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    if exp <= now {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time".into());
    }
    Ok(claims)
}

fn str_field<'a>(body: Option<&'a Value>, name: &str) -> Option<&'a str> {
    body?.get(name)?.as_str()
}

fn repo_json(s: &State, r: &MockRepo) -> Value {
    let size = r.reported_size.unwrap_or(if r.branches.is_empty() { 0 } else { 42 });
    json!({
        "id": r.name.len() as u64 * 1000,
        "name": r.name,
        "full_name": format!("{OWNER}/{}", r.name),
        "owner": { "login": OWNER, "type": "Organization" },
        "private": r.private,
        "description": r.description,
        "html_url": format!("{WEB}/{OWNER}/{}", r.name),
        "clone_url": format!("{WEB}/{OWNER}/{}.git", r.name),
        "default_branch": r.default_branch,
        "size": size,
        "visibility": if r.private { "private" } else { "public" },
        "permissions": { "admin": s.admin, "push": true, "pull": true },
    })
}

fn user(login: &str) -> Value {
    json!({ "login": login, "type": if login.ends_with("[bot]") { "Bot" } else { "User" } })
}

/// A pull request: in full, or as a list item (`pull-request-simple`: no `merged`, `merged_by`, `mergeable`).
fn pull_json(repo: &MockRepo, p: &MockPull, full: bool) -> Value {
    let merge_commit_sha = match (&p.merge_commit_sha, p.open) {
        (Some(sha), _) => Value::from(sha.clone()),
        // GitHub reports the test merge commit of an open pull request here.
        (None, true) => Value::from(format!("{:0>40}", "7e57")),
        (None, false) => Value::Null,
    };
    let mut v = json!({
        "url": format!("https://api.example/repos/{OWNER}/{}/pulls/{}", repo.name, p.number),
        "id": 100_000 + p.number,
        "number": p.number,
        "state": if p.open { "open" } else { "closed" },
        "locked": false,
        "title": p.title,
        "user": user(&p.user),
        "body": p.body,
        "labels": p.labels.iter().map(|l| json!({ "name": l })).collect::<Vec<_>>(),
        "html_url": format!("{WEB}/{OWNER}/{}/pull/{}", repo.name, p.number),
        "merged_at": p.merged_at,
        "merge_commit_sha": merge_commit_sha,
        "requested_reviewers": p.requested_reviewers.iter().map(|r| user(r)).collect::<Vec<_>>(),
        "head": {
            "label": format!("{OWNER}:{}", p.head),
            "ref": p.head,
            "sha": p.head_sha,
            "repo": { "full_name": format!("{OWNER}/{}", repo.name) },
        },
        "base": {
            "label": format!("{OWNER}:{}", p.base),
            "ref": p.base,
            "sha": repo.branches.get(&p.base).cloned().unwrap_or_default(),
            "repo": { "full_name": format!("{OWNER}/{}", repo.name) },
        },
        "draft": false,
    });
    if full {
        v["merged"] = json!(p.merged);
        v["mergeable"] = json!(p.open);
        v["merged_by"] = p.merged_by.as_deref().map(user).unwrap_or(Value::Null);
        v["comments"] = json!(repo.comments.iter().filter(|(n, _)| *n == p.number).count());
    }
    v
}

fn label_json(l: &MockLabel) -> Value {
    json!({ "name": l.name, "color": l.color, "description": l.description, "default": false })
}

fn is_hex_color(c: &str) -> bool {
    c.len() == 6 && c.chars().all(|c| c.is_ascii_hexdigit())
}

/// The endpoints.
fn route(s: &mut State, method: &Method, path: &str, query: &HashMap<String, String>, body: Option<&Value>) -> Answer {
    let segments: Vec<String> = path.trim_start_matches('/').split('/').map(decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = method.as_str();
    match (m, seg.as_slice()) {
        ("GET", ["user"]) => answer(200, json!({ "login": PAT_LOGIN, "id": 1, "type": "User" })),
        ("GET", ["app"]) => answer(200, json!({ "id": APP_ID, "slug": APP_SLUG, "name": "max-cloud" })),
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            if *id != INSTALLATION_ID.to_string() {
                return not_found();
            }
            let n = s.tokens.len() + 1;
            let token = format!("ghs_mockInstallationToken{n:04}");
            let expires_at = now() + s.token_lifetime;
            s.tokens.push((token.clone(), expires_at));
            answer(
                201,
                json!({
                    "token": token,
                    "expires_at": timestamp(expires_at),
                    "permissions": { "contents": "write", "pull_requests": "write", "administration": "write" },
                    "repository_selection": "all",
                }),
            )
        }
        ("POST", ["orgs", org, "repos"]) => {
            if *org != OWNER {
                return not_found();
            }
            let (Some(name), Some(Value::Bool(private)), Some(Value::Bool(_)), Some(description)) = (
                str_field(body, "name"),
                body.and_then(|b| b.get("private")),
                body.and_then(|b| b.get("auto_init")),
                str_field(body, "description"),
            ) else {
                s.violations.push(format!("create repository: {body:?}"));
                return validation(json!([{ "resource": "Repository", "code": "missing_field", "field": "name" }]));
            };
            if s.repos.contains_key(name) {
                return answer(
                    422,
                    json!({
                        "message": "Repository creation failed.",
                        "errors": [{ "resource": "Repository", "code": "custom", "field": "name",
                                     "message": "name already exists on this account" }],
                        "documentation_url": "https://docs.github.com/rest/repos/repos#create-an-organization-repository",
                    }),
                );
            }
            let repo = MockRepo {
                name: name.into(),
                description: description.into(),
                private: *private,
                default_branch: "main".into(),
                next_number: 1,
                ..Default::default()
            };
            let v = repo_json(s, &repo);
            s.repos.insert(name.to_string(), repo);
            answer(201, v)
        }
        (_, ["repos", owner, name, rest @ ..]) => {
            if *owner != OWNER || !s.repos.contains_key(*name) {
                return not_found();
            }
            let name = name.to_string();
            repo_route(s, m, &name, rest, query, body)
        }
        _ => {
            s.violations.push(format!("unknown route {m} {path}"));
            not_found()
        }
    }
}

fn repo_route(
    s: &mut State,
    m: &str,
    name: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: Option<&Value>,
) -> Answer {
    let acting = s.acting_login();
    let admin = s.admin;
    let mode = s.mode;
    match (m, rest) {
        ("GET", []) => {
            let v = repo_json(s, s.repo(name));
            answer(200, v)
        }
        ("GET", ["labels"]) => {
            let r = s.repo(name);
            answer(200, Value::Array(r.labels.iter().map(label_json).collect()))
        }
        ("POST", ["labels"]) => {
            let (Some(label), Some(color)) = (str_field(body, "name"), str_field(body, "color")) else {
                s.violations.push(format!("create label: {body:?}"));
                return validation(json!([{ "resource": "Label", "code": "missing_field", "field": "name" }]));
            };
            if !is_hex_color(color) {
                s.violations.push(format!("label colour {color:?} is not rrggbb"));
                return validation(json!([{ "resource": "Label", "code": "invalid", "field": "color" }]));
            }
            let description = str_field(body, "description").unwrap_or("").to_string();
            let r = s.repos.get_mut(name).unwrap();
            if r.labels.iter().any(|l| l.name.eq_ignore_ascii_case(label)) {
                return validation(json!([{ "resource": "Label", "code": "already_exists", "field": "name" }]));
            }
            let l = MockLabel { name: label.into(), color: color.into(), description };
            let v = label_json(&l);
            r.labels.push(l);
            answer(201, v)
        }
        ("GET", ["branches", branch @ ..]) if !branch.is_empty() && branch.last() != Some(&"protection") => {
            let branch = branch.join("/");
            match s.repo(name).branches.get(&branch) {
                Some(sha) => answer(
                    200,
                    json!({ "name": branch, "commit": { "sha": sha }, "protected": s.repo(name).protection.contains_key(&branch) }),
                ),
                None => error(404, "Branch not found"),
            }
        }
        ("PUT", ["branches", branch @ .., "protection"]) if !branch.is_empty() => {
            let branch = branch.join("/");
            let Some(b) = body else {
                s.violations.push("protection without a body".into());
                return validation(json!([]));
            };
            let reviews = &b["required_pull_request_reviews"];
            let count = reviews["required_approving_review_count"].as_u64();
            let well_formed =
                ["required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions"]
                    .iter()
                    .all(|k| b.get(k).is_some())
                    && b["enforce_admins"].is_boolean()
                    && count.is_some_and(|c| c <= 6)
                    && reviews["dismiss_stale_reviews"].is_boolean();
            if !well_formed {
                s.violations.push(format!("protection body {b}"));
                return answer(422, json!({ "message": "Invalid request." }));
            }
            let r = s.repos.get_mut(name).unwrap();
            if !r.branches.contains_key(&branch) {
                return error(404, "Branch not found");
            }
            r.protection.insert(branch.clone(), b.clone());
            answer(
                200,
                json!({ "url": format!("https://api.example/repos/{OWNER}/{name}/branches/{branch}/protection"),
                                "required_pull_request_reviews": reviews, "enforce_admins": { "enabled": b["enforce_admins"] } }),
            )
        }
        ("DELETE", ["git", "refs", "heads", branch @ ..]) if !branch.is_empty() => {
            let branch = branch.join("/");
            let r = s.repos.get_mut(name).unwrap();
            if r.branches.remove(&branch).is_some() {
                answer(204, Value::Null)
            } else {
                error(422, "Reference does not exist")
            }
        }
        ("GET", ["pulls"]) => {
            let r = s.repo(name);
            let state = query.get("state").map(String::as_str).unwrap_or("open");
            let head = query.get("head").cloned();
            let mut pulls: Vec<&MockPull> = r
                .pulls
                .iter()
                .filter(|p| match state {
                    "open" => p.open,
                    "closed" => !p.open,
                    _ => true,
                })
                .filter(|p| head.as_ref().is_none_or(|h| *h == format!("{OWNER}:{}", p.head)))
                .collect();
            // Newest first (sort=created, direction=desc is the default).
            pulls.sort_by_key(|p| std::cmp::Reverse(p.number));
            if query.get("direction").map(String::as_str) == Some("asc") {
                pulls.reverse();
            }
            let per_page = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30usize);
            answer(200, Value::Array(pulls.iter().take(per_page).map(|p| pull_json(r, p, false)).collect()))
        }
        ("POST", ["pulls"]) => {
            let (Some(title), Some(head), Some(base)) =
                (str_field(body, "title"), str_field(body, "head"), str_field(body, "base"))
            else {
                s.violations.push(format!("create pull request: {body:?}"));
                return validation(json!([{ "resource": "PullRequest", "code": "missing_field", "field": "head" }]));
            };
            let text = str_field(body, "body").map(str::to_string);
            let r = s.repo(name);
            let Some(head_sha) = r.branches.get(head).cloned() else {
                return validation(json!([{ "resource": "PullRequest", "code": "invalid", "field": "head" }]));
            };
            if !r.branches.contains_key(base) {
                return validation(json!([{ "resource": "PullRequest", "code": "invalid", "field": "base" }]));
            }
            if r.pulls.iter().any(|p| p.open && p.head == head && p.base == base) {
                return validation(json!([{ "resource": "PullRequest", "code": "custom",
                    "message": format!("A pull request already exists for {OWNER}:{head}.") }]));
            }
            let r = s.repos.get_mut(name).unwrap();
            let number = r.next_number;
            r.next_number += 1;
            r.pulls.push(new_pull(number, title, text, head, &head_sha, base, &acting));
            let v = pull_json(r, r.pull(number), true);
            answer(201, v)
        }
        (_, ["pulls", n, more @ ..]) | (_, ["issues", n, more @ ..]) => {
            let Ok(number) = n.parse::<u64>() else { return not_found() };
            if !s.repo(name).pulls.iter().any(|p| p.number == number) {
                return not_found();
            }
            let issue = rest[0] == "issues";
            pull_route(s, m, name, number, issue, more, query, body, &acting, admin, mode)
        }
        ("POST", ["statuses", sha]) => {
            let state = str_field(body, "state");
            let context = str_field(body, "context");
            if !matches!(state, Some("error" | "failure" | "pending" | "success")) || context.is_none() {
                s.violations.push(format!("status body {body:?}"));
                return validation(json!([{ "resource": "Status", "code": "custom", "field": "state" }]));
            }
            let sha = sha.to_string();
            let r = s.repos.get_mut(name).unwrap();
            r.statuses.push((sha, body.cloned().unwrap()));
            let mut v = body.cloned().unwrap();
            v["id"] = json!(r.statuses.len());
            v["creator"] = user(&acting);
            answer(201, v)
        }
        _ => {
            s.violations.push(format!("unknown route {m} /repos/{OWNER}/{name}/{}", rest.join("/")));
            not_found()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pull_route(
    s: &mut State,
    m: &str,
    name: &str,
    number: u64,
    issue: bool,
    more: &[&str],
    query: &HashMap<String, String>,
    body: Option<&Value>,
    acting: &str,
    admin: bool,
    mode: Mode,
) -> Answer {
    match (m, issue, more) {
        ("GET", false, []) => {
            let r = s.repo(name);
            answer(200, pull_json(r, r.pull(number), true))
        }
        ("PATCH", false, []) => {
            let Some(state @ ("open" | "closed")) = str_field(body, "state") else {
                s.violations.push(format!("update pull request: {body:?}"));
                return validation(json!([{ "resource": "PullRequest", "code": "invalid", "field": "state" }]));
            };
            let r = s.repos.get_mut(name).unwrap();
            let p = r.pull_mut(number).unwrap();
            if !p.merged {
                p.open = state == "open";
            }
            let r = s.repo(name);
            answer(200, pull_json(r, r.pull(number), true))
        }
        ("PUT", false, ["merge"]) => {
            let (Some(sha), Some(method)) = (str_field(body, "sha"), str_field(body, "merge_method")) else {
                s.violations.push(format!("merge without sha or merge_method: {body:?}"));
                return validation(json!([]));
            };
            if !matches!(method, "merge" | "squash" | "rebase") {
                s.violations.push(format!("merge_method {method}"));
                return validation(json!([]));
            }
            let title = str_field(body, "commit_title").unwrap_or("").to_string();
            let r = s.repo(name);
            let p = r.pull(number);
            if !p.open {
                return error(405, "Pull Request is not mergeable");
            }
            if p.head_sha != sha {
                return error(409, "Head branch was modified. Review and try the merge again.");
            }
            if s.base_modified > 0 {
                s.base_modified -= 1;
                return error(405, "Base branch was modified. Review and try the merge again.");
            }
            if let Some(protection) = r.protection.get(&p.base) {
                let required = protection["required_pull_request_reviews"]["required_approving_review_count"]
                    .as_u64()
                    .unwrap_or(0);
                let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
                for review in p.reviews.iter().filter(|r| r.commit_id == p.head_sha) {
                    if matches!(review.state.as_str(), "APPROVED" | "CHANGES_REQUESTED") {
                        latest.insert(&review.login, &review.state);
                    }
                }
                let approvals = latest.values().filter(|s| **s == "APPROVED").count() as u64;
                let enforce_admins = protection["enforce_admins"].as_bool().unwrap_or(true);
                let bypass = match mode {
                    Mode::Token => admin && !enforce_admins,
                    Mode::App => protection["required_pull_request_reviews"]["bypass_pull_request_allowances"]["apps"]
                        .as_array()
                        .is_some_and(|apps| apps.iter().any(|a| a == APP_SLUG)),
                };
                if approvals < required && !bypass {
                    return error(
                        405,
                        &format!("At least {required} approving review is required by reviewers with write access."),
                    );
                }
            }
            let merge_sha = s.sha(&title);
            let r = s.repos.get_mut(name).unwrap();
            let base = r.pull(number).base.clone();
            r.branches.insert(base, merge_sha.clone());
            let p = r.pull_mut(number).unwrap();
            p.open = false;
            p.merged = true;
            p.merged_at = Some(timestamp(now()));
            p.merge_commit_sha = Some(merge_sha.clone());
            p.merged_by = Some(acting.to_string());
            answer(200, json!({ "sha": merge_sha, "merged": true, "message": "Pull Request successfully merged" }))
        }
        ("POST", false, ["requested_reviewers"]) => {
            let Some(reviewers) =
                body.and_then(|b| b["reviewers"].as_array()).filter(|a| a.iter().all(Value::is_string))
            else {
                s.violations.push(format!("requested_reviewers body {body:?}"));
                return validation(json!([]));
            };
            let reviewers: Vec<String> = reviewers.iter().map(|r| r.as_str().unwrap().to_string()).collect();
            let r = s.repos.get_mut(name).unwrap();
            let p = r.pull_mut(number).unwrap();
            for who in reviewers {
                if !p.requested_reviewers.contains(&who) {
                    p.requested_reviewers.push(who);
                }
            }
            let r = s.repo(name);
            answer(201, pull_json(r, r.pull(number), true))
        }
        ("GET", false, ["reviews"]) => {
            let per_page = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30usize).min(100);
            let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1usize).max(1);
            let reviews: Vec<Value> = s
                .repo(name)
                .pull(number)
                .reviews
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| {
                    json!({
                        "id": r.id,
                        "user": user(&r.login),
                        "body": "",
                        "state": r.state,
                        "commit_id": r.commit_id,
                        "submitted_at": timestamp(now()),
                        "author_association": "MEMBER",
                    })
                })
                .collect();
            answer(200, Value::Array(reviews))
        }
        ("POST", true, ["labels"]) => {
            let Some(names) = body.and_then(|b| b["labels"].as_array()).filter(|a| a.iter().all(Value::is_string))
            else {
                s.violations.push(format!("issue labels body {body:?}"));
                return validation(json!([]));
            };
            let names: Vec<String> = names.iter().map(|n| n.as_str().unwrap().to_string()).collect();
            let r = s.repos.get_mut(name).unwrap();
            for label in &names {
                // GitHub creates a label it does not know, in a default colour.
                if !r.labels.iter().any(|l| l.name.eq_ignore_ascii_case(label)) {
                    r.labels.push(MockLabel {
                        name: label.clone(),
                        color: "ededed".into(),
                        description: String::new(),
                    });
                }
                let p = r.pull_mut(number).unwrap();
                if !p.labels.contains(label) {
                    p.labels.push(label.clone());
                }
            }
            let r = s.repo(name);
            let labels = r.pull(number).labels.iter().filter_map(|n| r.labels.iter().find(|l| &l.name == n));
            answer(200, Value::Array(labels.map(label_json).collect()))
        }
        ("POST", true, ["comments"]) => {
            let Some(text) = str_field(body, "body") else {
                s.violations.push(format!("comment body {body:?}"));
                return validation(json!([]));
            };
            let text = text.to_string();
            let id = s.id();
            s.repos.get_mut(name).unwrap().comments.push((number, text.clone()));
            answer(201, json!({ "id": id, "body": text, "user": user(acting) }))
        }
        _ => {
            s.violations.push(format!("unknown route {m} on pull request {number}: {}", more.join("/")));
            not_found()
        }
    }
}
