//! The REST endpoints: request checks, credentials, faults, routes, and the state changes shared with the
//! "human" actions of [`super::GitHubMock`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    git, hooks, MockLabel, MockPull, MockRepo, MockReview, Mode, Recorded, Shared, State, APP_ID, APP_SLUG, BASE_PATH,
    INSTALLATION_ID, OWNER, PAT_LOGIN,
};

pub(crate) fn now() -> OffsetDateTime {
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

pub(crate) type Answer = (StatusCode, Value);

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

pub(crate) async fn handle(shared: Arc<Shared>, request: Request) -> Response {
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
        let delay = shared.lock().exchange_delay;
        tokio::time::sleep(delay).await;
    }

    let (status, value, extra_headers, delay) = {
        let mut guard = shared.lock();
        let s = &mut *guard;
        let mut record = Recorded {
            method: parts.method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: parts.headers.clone(),
            body: json_body.clone(),
            status: 0,
        };
        let mut delay = std::time::Duration::ZERO;
        let (status, value, extra_headers) = if !violations.is_empty() {
            s.violations.extend(violations);
            let (status, value) = error(400, "Problems parsing JSON or headers");
            (status, value, Vec::new())
        } else if let Some(fault) = s.take_fault(&parts.method, &path, false) {
            fault_answer(&fault)
        } else {
            let (status, value) = match authenticate(s, &shared.public_key, &path, bearer.as_deref()) {
                Err(e) => e,
                Ok(()) => route(s, &parts.method, &path, &query, json_body.as_ref()),
            };
            match s.take_fault(&parts.method, &path, true) {
                Some(fault) => {
                    delay = fault.delay;
                    if fault.status.is_some() {
                        fault_answer(&fault)
                    } else {
                        (status, value, Vec::new())
                    }
                }
                None => (status, value, Vec::new()),
            }
        };
        record.status = status.as_u16();
        s.requests.push(record);
        (status, value, extra_headers, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

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

/// A fault's answer: GitHub's error body, its headers, and a rate limit's reset computed now.
fn fault_answer(fault: &super::Fault) -> (StatusCode, Value, Vec<(String, String)>) {
    let (status, value) = error(fault.status.unwrap_or(500), &fault.message);
    let mut headers = fault.headers.clone();
    if let Some(secs) = fault.reset_in {
        headers.push(("x-ratelimit-reset".into(), (now().unix_timestamp() as u64 + secs).to_string()));
    }
    (status, value, headers)
}

/// Credentials: JWT for the App's own routes, else the personal token or a live installation token.
fn authenticate(s: &mut State, key: &DecodingKey, path: &str, bearer: Option<&str>) -> Result<(), Answer> {
    let Some(bearer) = bearer else {
        s.violations.push(format!("{path}: no Authorization: Bearer"));
        return Err(error(401, "Requires authentication"));
    };
    let app_route = path == "/app" || path.starts_with("/app/");
    match (s.mode, app_route) {
        (Mode::Token, false) if s.token_valid(bearer) => Ok(()),
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
        (Mode::App, false) if s.token_valid(bearer) => Ok(()),
        (Mode::App, false) => Err(error(401, "Bad credentials")),
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

pub(crate) fn repo_json(s: &State, r: &MockRepo) -> Value {
    let has_commits = !s.branches(&r.name).is_empty();
    let size = r.reported_size.unwrap_or(if has_commits { 42 } else { 0 });
    json!({
        "id": r.name.len() as u64 * 1000,
        "name": r.name,
        "full_name": format!("{OWNER}/{}", r.name),
        "owner": { "login": OWNER, "type": "Organization" },
        "private": r.private,
        "description": r.description,
        "html_url": format!("{}/{OWNER}/{}", s.web_url, r.name),
        "clone_url": format!("{}/{OWNER}/{}.git", s.web_url, r.name),
        "default_branch": r.default_branch,
        "size": size,
        "visibility": if r.private { "private" } else { "public" },
        "permissions": { "admin": s.admin, "push": true, "pull": true },
    })
}

pub(crate) fn user(login: &str) -> Value {
    json!({ "login": login, "type": if login.ends_with("[bot]") { "Bot" } else { "User" } })
}

/// A pull request: in full, or as a list item (`pull-request-simple`: no `merged`, `merged_by`, `mergeable`).
pub(crate) fn pull_json(s: &State, repo: &MockRepo, p: &MockPull, full: bool) -> Value {
    let dir = s.repo_dir(&repo.name);
    let mergeable = p.open && git::mergeable(&dir, &p.base, &p.head_sha);
    let merge_commit_sha = match (&p.merge_commit_sha, p.open) {
        (Some(sha), _) => Value::from(sha.clone()),
        // GitHub reports the test merge commit of an open pull request here.
        (None, true) => Value::from(format!("{:0>40}", "7e57")),
        (None, false) => Value::Null,
    };
    let mut v = json!({
        "url": format!("{}{BASE_PATH}/repos/{OWNER}/{}/pulls/{}", s.web_url, repo.name, p.number),
        "id": 100_000 + p.number,
        "number": p.number,
        "state": if p.open { "open" } else { "closed" },
        "locked": false,
        "title": p.title,
        "user": user(&p.user),
        "body": p.body,
        "labels": p.labels.iter().map(|l| json!({ "name": l })).collect::<Vec<_>>(),
        "html_url": format!("{}/{OWNER}/{}/pull/{}", s.web_url, repo.name, p.number),
        "merged_at": p.merged_at,
        "merge_commit_sha": merge_commit_sha,
        "requested_reviewers": p.requested_reviewers.iter().map(|r| user(r)).collect::<Vec<_>>(),
        "head": {
            "label": format!("{OWNER}:{}", p.head),
            "ref": p.head,
            "sha": p.head_sha,
            "repo": { "name": repo.name, "full_name": format!("{OWNER}/{}", repo.name) },
        },
        "base": {
            "label": format!("{OWNER}:{}", p.base),
            "ref": p.base,
            "sha": s.tip(&repo.name, &p.base).unwrap_or_default(),
            "repo": { "name": repo.name, "full_name": format!("{OWNER}/{}", repo.name) },
        },
        "draft": false,
    });
    if full {
        v["merged"] = json!(p.merged);
        v["mergeable"] = json!(if p.open { Value::from(mergeable) } else { Value::Null });
        v["mergeable_state"] = json!(match (p.open, mergeable) {
            (false, _) => "unknown",
            (true, true) => "clean",
            (true, false) => "dirty",
        });
        v["merged_by"] = p.merged_by.as_deref().map(user).unwrap_or(Value::Null);
        v["comments"] = json!(repo.comments_on(p.number).len());
    }
    v
}

fn label_json(l: &MockLabel) -> Value {
    json!({ "name": l.name, "color": l.color, "description": l.description, "default": false })
}

fn is_hex_color(c: &str) -> bool {
    c.len() == 6 && c.chars().all(|c| c.is_ascii_hexdigit())
}

// --- State changes (API and "human" actions alike).

/// A repository and its empty bare repository on disk.
pub(crate) fn create_repo(s: &mut State, name: &str, description: &str, private: bool) {
    git::init_bare(&s.repo_dir(name)).expect("bare repository");
    s.repos.insert(
        name.to_string(),
        MockRepo {
            name: name.into(),
            description: description.into(),
            private,
            default_branch: "main".into(),
            next_number: 1,
            ..Default::default()
        },
    );
}

/// After branches changed (a push, a branch deleted): open pull requests from a moved branch follow it
/// (`synchronize`), those whose branch is gone are closed.
pub(crate) fn after_push(s: &mut State, repo: &str, before: &BTreeMap<String, String>, sender: &str) {
    let after = s.branches(repo);
    let mut events = Vec::new();
    let r = s.repos.get_mut(repo).expect("repository");
    for p in r.pulls.iter_mut().filter(|p| p.open) {
        match (before.get(&p.head), after.get(&p.head)) {
            (Some(old), Some(new)) if old != new => {
                p.head_sha = new.clone();
                events.push((p.number, "synchronize", json!({ "before": old, "after": new })));
            }
            (_, None) => {
                p.open = false;
                p.closed_by = Some(sender.to_string());
                events.push((p.number, "closed", json!({})));
            }
            _ => {}
        }
    }
    for (number, action, extra) in events {
        hooks::emit(s, repo, number, "pull_request", action, sender, extra);
    }
}

/// A pull request from `head` into `base`, opened by `login`: GitHub's 422 answers for a missing branch, a
/// duplicate, or nothing to merge.
pub(crate) fn open_pull(
    s: &mut State,
    repo: &str,
    head: &str,
    base: &str,
    title: &str,
    body: Option<String>,
    login: &str,
) -> Result<u64, Answer> {
    let dir = s.repo_dir(repo);
    let Some(head_sha) = s.tip(repo, head) else {
        return Err(validation(json!([{ "resource": "PullRequest", "code": "invalid", "field": "head" }])));
    };
    let Some(base_sha) = s.tip(repo, base) else {
        return Err(validation(json!([{ "resource": "PullRequest", "code": "invalid", "field": "base" }])));
    };
    if s.repo(repo).pulls.iter().any(|p| p.open && p.head == head && p.base == base) {
        return Err(validation(json!([{ "resource": "PullRequest", "code": "custom",
            "message": format!("A pull request already exists for {OWNER}:{head}.") }])));
    }
    if git::contains(&dir, &base_sha, &head_sha) {
        return Err(validation(json!([{ "resource": "PullRequest", "code": "custom",
            "message": format!("No commits between {base} and {head}") }])));
    }
    let r = s.repos.get_mut(repo).expect("repository");
    let number = r.next_number;
    r.next_number += 1;
    r.pulls.push(MockPull {
        number,
        title: title.into(),
        body,
        head: head.into(),
        head_sha,
        base: base.into(),
        open: true,
        merged: false,
        merged_at: None,
        merge_commit_sha: None,
        merged_by: None,
        closed_by: None,
        user: login.into(),
        labels: Vec::new(),
        requested_reviewers: Vec::new(),
        reviews: Vec::new(),
    });
    hooks::emit(s, repo, number, "pull_request", "opened", login, json!({}));
    Ok(number)
}

pub(crate) fn submit_review(s: &mut State, repo: &str, number: u64, login: &str, state: &str, commit_id: &str) -> u64 {
    let id = s.id();
    let review = MockReview { id, login: login.into(), state: state.into(), commit_id: commit_id.into() };
    let r = s.repos.get_mut(repo).expect("repository");
    r.pull_mut(number).expect("pull request").reviews.push(review.clone());
    let payload = json!({ "review": review_json(&review) });
    hooks::emit(s, repo, number, "pull_request_review", "submitted", login, payload);
    id
}

fn review_json(r: &MockReview) -> Value {
    json!({
        "id": r.id,
        "user": user(&r.login),
        "body": "",
        "state": r.state,
        "commit_id": r.commit_id,
        "submitted_at": timestamp(now()),
        "author_association": "MEMBER",
    })
}

/// Close an open pull request without merging.
pub(crate) fn close_pull(s: &mut State, repo: &str, number: u64, login: &str) {
    let r = s.repos.get_mut(repo).expect("repository");
    let p = r.pull_mut(number).expect("pull request");
    if !p.open {
        return;
    }
    p.open = false;
    p.closed_by = Some(login.to_string());
    hooks::emit(s, repo, number, "pull_request", "closed", login, json!({}));
}

/// Merge with a merge commit `title` + `message` by `login`. Returns the merge commit, or why not.
pub(crate) fn merge_pull(
    s: &mut State,
    repo: &str,
    number: u64,
    title: &str,
    message: &str,
    login: &str,
) -> Result<String, String> {
    let p = s.repo(repo).pull(number).clone();
    let text = if message.is_empty() { title.to_string() } else { format!("{title}\n\n{message}") };
    let sha = git::merge(&s.repo_dir(repo), &p.base, &p.head_sha, &text, login).map_err(|e| match e {
        git::MergeRefusal::Conflict => "Pull Request is not mergeable".to_string(),
        git::MergeRefusal::Missing(m) => format!("cannot merge: {m}"),
    })?;
    let r = s.repos.get_mut(repo).expect("repository");
    let p = r.pull_mut(number).expect("pull request");
    p.open = false;
    p.merged = true;
    p.merged_at = Some(timestamp(now()));
    p.merge_commit_sha = Some(sha.clone());
    p.merged_by = Some(login.to_string());
    p.closed_by = Some(login.to_string());
    hooks::emit(s, repo, number, "pull_request", "closed", login, json!({}));
    Ok(sha)
}

// --- Routes.

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
            if !org.eq_ignore_ascii_case(OWNER) {
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
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return validation(json!([{ "resource": "Repository", "code": "invalid", "field": "name" }]));
            }
            let (name, description, private) = (name.to_string(), description.to_string(), *private);
            create_repo(s, &name, &description, private);
            let v = repo_json(s, s.repo(&name));
            answer(201, v)
        }
        (_, ["repos", owner, name, rest @ ..]) => {
            if !owner.eq_ignore_ascii_case(OWNER) || !s.repos.contains_key(*name) {
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
            match s.tip(name, &branch) {
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
            if s.tip(name, &branch).is_none() {
                return error(404, "Branch not found");
            }
            let r = s.repos.get_mut(name).unwrap();
            r.protection.insert(branch.clone(), b.clone());
            let url = format!("{}{BASE_PATH}/repos/{OWNER}/{name}/branches/{branch}/protection", s.web_url);
            answer(
                200,
                json!({ "url": url, "required_pull_request_reviews": reviews,
                        "enforce_admins": { "enabled": b["enforce_admins"] } }),
            )
        }
        ("DELETE", ["git", "refs", "heads", branch @ ..]) if !branch.is_empty() => {
            let branch = branch.join("/");
            let dir = s.repo_dir(name);
            let before = s.branches(name);
            if s.repo(name).protection.contains_key(&branch) {
                return error(422, "Cannot delete this protected branch");
            }
            if git::delete_branch(&dir, &branch) {
                after_push(s, name, &before, &acting);
                answer(204, Value::Null)
            } else {
                error(422, "Reference does not exist")
            }
        }
        ("GET", ["pulls"]) => {
            let r = s.repo(name);
            let state = query.get("state").map(String::as_str).unwrap_or("open");
            // `owner:branch`; logins are case-insensitive.
            let head = query.get("head").map(|h| match h.split_once(':') {
                Some((owner, branch)) if owner.eq_ignore_ascii_case(OWNER) => branch.to_string(),
                _ => format!("\0{h}"),
            });
            let mut pulls: Vec<&MockPull> = r
                .pulls
                .iter()
                .filter(|p| match state {
                    "open" => p.open,
                    "closed" => !p.open,
                    _ => true,
                })
                .filter(|p| head.as_ref().is_none_or(|h| *h == p.head))
                .collect();
            // Newest first (sort=created, direction=desc is the default).
            pulls.sort_by_key(|p| std::cmp::Reverse(p.number));
            if query.get("direction").map(String::as_str) == Some("asc") {
                pulls.reverse();
            }
            let per_page = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30usize);
            answer(200, Value::Array(pulls.iter().take(per_page).map(|p| pull_json(s, r, p, false)).collect()))
        }
        ("POST", ["pulls"]) => {
            let (Some(title), Some(head), Some(base)) =
                (str_field(body, "title"), str_field(body, "head"), str_field(body, "base"))
            else {
                s.violations.push(format!("create pull request: {body:?}"));
                return validation(json!([{ "resource": "PullRequest", "code": "missing_field", "field": "head" }]));
            };
            // `head` may be `owner:branch`.
            let head = match head.split_once(':') {
                Some((owner, branch)) if owner.eq_ignore_ascii_case(OWNER) => branch.to_string(),
                _ => head.to_string(),
            };
            let (title, base) = (title.to_string(), base.to_string());
            let text = str_field(body, "body").map(str::to_string);
            match open_pull(s, name, &head, &base, &title, text, &acting) {
                Ok(number) => {
                    let r = s.repo(name);
                    answer(201, pull_json(s, r, r.pull(number), true))
                }
                Err(e) => e,
            }
        }
        (_, ["pulls", n, more @ ..]) | (_, ["issues", n, more @ ..]) => {
            let Ok(number) = n.parse::<u64>() else { return not_found() };
            if !s.repo(name).pulls.iter().any(|p| p.number == number) {
                return not_found();
            }
            let issue = rest[0] == "issues";
            pull_route(s, m, name, number, issue, more, query, body, &acting)
        }
        ("POST", ["statuses", sha]) => {
            let state = str_field(body, "state");
            let context = str_field(body, "context");
            if !matches!(state, Some("error" | "failure" | "pending" | "success")) || context.is_none() {
                s.violations.push(format!("status body {body:?}"));
                return validation(json!([{ "resource": "Status", "code": "custom", "field": "state" }]));
            }
            if !git::has_commit(&s.repo_dir(name), sha) {
                return validation(json!([{ "resource": "Status", "code": "custom",
                    "message": format!("No commit found for SHA: {sha}") }]));
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
) -> Answer {
    match (m, issue, more) {
        ("GET", false, []) => {
            let r = s.repo(name);
            answer(200, pull_json(s, r, r.pull(number), true))
        }
        ("PATCH", false, []) => {
            let Some(state @ ("open" | "closed")) = str_field(body, "state") else {
                s.violations.push(format!("update pull request: {body:?}"));
                return validation(json!([{ "resource": "PullRequest", "code": "invalid", "field": "state" }]));
            };
            let p = s.repo(name).pull(number).clone();
            match (state, p.open, p.merged) {
                ("closed", true, _) => close_pull(s, name, number, acting),
                ("open", false, false) => {
                    let Some(head) = s.tip(name, &p.head) else {
                        return validation(json!([{ "resource": "PullRequest", "code": "custom",
                            "message": "state cannot be changed. The head branch was deleted." }]));
                    };
                    let r = s.repos.get_mut(name).unwrap();
                    let p = r.pull_mut(number).unwrap();
                    p.open = true;
                    p.head_sha = head;
                    p.closed_by = None;
                    hooks::emit(s, name, number, "pull_request", "reopened", acting, json!({}));
                }
                _ => {}
            }
            let r = s.repo(name);
            answer(200, pull_json(s, r, r.pull(number), true))
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
            let p = s.repo(name).pull(number).clone();
            let title = str_field(body, "commit_title")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("Merge pull request #{number} from {OWNER}/{}", p.head));
            let message = str_field(body, "commit_message").map(str::to_string).unwrap_or_else(|| p.title.clone());
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
            if let Some(protection) = s.repo(name).protection.get(&p.base) {
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
                let bypass = match s.mode {
                    Mode::Token => s.admin && !enforce_admins,
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
            match merge_pull(s, name, number, &title, &message, acting) {
                Ok(sha) => {
                    answer(200, json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }))
                }
                Err(message) => error(405, &message),
            }
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
            answer(201, pull_json(s, r, r.pull(number), true))
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
                .map(review_json)
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
            s.repos.get_mut(name).unwrap().comments.push((number, acting.to_string(), text.clone()));
            answer(201, json!({ "id": id, "body": text, "user": user(acting) }))
        }
        _ => {
            s.violations.push(format!("unknown route {m} on pull request {number}: {}", more.join("/")));
            not_found()
        }
    }
}
