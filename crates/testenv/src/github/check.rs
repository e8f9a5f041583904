//! Whether the recorded requests were well-formed: GitHub's documented routes, headers, credentials and body
//! fields (REST API version 2022-11-28).

use serde_json::Value;

use super::{Mode, Recorded, State, GIT_USERNAME, PAT};

/// A documented route: method, path pattern (`{}` one segment, `{..}` one or more: a branch with slashes), the
/// body fields it needs and those it takes (`None`: no body).
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub required: &'static [&'static str],
    pub allowed: Option<&'static [&'static str]>,
}

const fn route(method: &'static str, pattern: &'static str) -> Route {
    Route { method, pattern, required: &[], allowed: None }
}

const fn with_body(
    method: &'static str,
    pattern: &'static str,
    required: &'static [&'static str],
    allowed: &'static [&'static str],
) -> Route {
    Route { method, pattern, required, allowed: Some(allowed) }
}

/// The routes a client of the mock may call.
pub const ROUTES: &[Route] = &[
    route("GET", "/user"),
    route("GET", "/app"),
    // The body (repositories, permissions to narrow the token to) is optional.
    route("POST", "/app/installations/{}/access_tokens"),
    with_body(
        "POST",
        "/orgs/{}/repos",
        &["name"],
        &[
            "name",
            "description",
            "homepage",
            "private",
            "visibility",
            "has_issues",
            "has_projects",
            "has_wiki",
            "is_template",
            "team_id",
            "auto_init",
            "gitignore_template",
            "license_template",
            "allow_squash_merge",
            "allow_merge_commit",
            "allow_rebase_merge",
            "allow_auto_merge",
            "delete_branch_on_merge",
        ],
    ),
    route("GET", "/repos/{}/{}"),
    route("GET", "/repos/{}/{}/branches/{..}"),
    with_body(
        "PUT",
        "/repos/{}/{}/branches/{..}/protection",
        &["required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions"],
        &[
            "required_status_checks",
            "enforce_admins",
            "required_pull_request_reviews",
            "restrictions",
            "required_linear_history",
            "allow_force_pushes",
            "allow_deletions",
            "block_creations",
            "required_conversation_resolution",
            "lock_branch",
            "allow_fork_syncing",
        ],
    ),
    route("GET", "/repos/{}/{}/pulls"),
    with_body(
        "POST",
        "/repos/{}/{}/pulls",
        &["head", "base"],
        &["title", "head", "head_repo", "base", "body", "maintainer_can_modify", "draft", "issue"],
    ),
    route("GET", "/repos/{}/{}/pulls/{}"),
    with_body("PATCH", "/repos/{}/{}/pulls/{}", &[], &["title", "body", "state", "base", "maintainer_can_modify"]),
    with_body("PUT", "/repos/{}/{}/pulls/{}/merge", &[], &["commit_title", "commit_message", "sha", "merge_method"]),
    with_body("POST", "/repos/{}/{}/pulls/{}/requested_reviewers", &[], &["reviewers", "team_reviewers"]),
    route("GET", "/repos/{}/{}/pulls/{}/reviews"),
    route("GET", "/repos/{}/{}/labels"),
    with_body("POST", "/repos/{}/{}/labels", &["name"], &["name", "color", "description"]),
    with_body("POST", "/repos/{}/{}/issues/{}/labels", &["labels"], &["labels"]),
    with_body("POST", "/repos/{}/{}/issues/{}/comments", &["body"], &["body"]),
    with_body("POST", "/repos/{}/{}/statuses/{}", &["state"], &["state", "target_url", "description", "context"]),
    route("DELETE", "/repos/{}/{}/git/refs/heads/{..}"),
];

/// Fields `required_pull_request_reviews` of a branch protection takes.
const REVIEW_FIELDS: &[&str] = &[
    "dismissal_restrictions",
    "dismiss_stale_reviews",
    "require_code_owner_reviews",
    "required_approving_review_count",
    "require_last_push_approval",
    "bypass_pull_request_allowances",
];

fn matches(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"{..}"), Some(_)) => (1..=path.len()).any(|n| matches(&pattern[1..], &path[n..])),
        (Some(p), Some(s)) => (*p == "{}" || p == s) && !s.is_empty() && matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn find(method: &str, path: &str) -> Option<&'static Route> {
    let path: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    ROUTES.iter().find(|r| {
        let pattern: Vec<&str> = r.pattern.trim_start_matches('/').split('/').collect();
        r.method == method && matches(&pattern, &path)
    })
}

/// Whether `method path` (relative to the API base) is a documented route.
pub fn documented(method: &str, path: &str) -> bool {
    find(method, path).is_some()
}

fn header(r: &Recorded, name: &str) -> Vec<String> {
    r.headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("<not text>").to_string()).collect()
}

fn body_problems(route: &Route, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(allowed) = route.allowed else {
        return vec!["a body on a route that takes none".into()];
    };
    let Some(object) = body.as_object() else {
        return vec![format!("body {body} is not an object")];
    };
    for field in route.required {
        if !object.contains_key(*field) {
            out.push(format!("body lacks {field:?}"));
        }
    }
    for field in object.keys() {
        if !allowed.contains(&field.as_str()) {
            out.push(format!("body has {field:?}, not a field of this route"));
        }
    }
    if object.is_empty() {
        out.push("empty body".into());
    }
    if let Some(reviews) = object.get("required_pull_request_reviews").and_then(Value::as_object) {
        for field in reviews.keys() {
            if !REVIEW_FIELDS.contains(&field.as_str()) {
                out.push(format!("required_pull_request_reviews has {field:?}"));
            }
        }
        if let Some(bypass) = reviews.get("bypass_pull_request_allowances").and_then(Value::as_object) {
            for (field, value) in bypass {
                let strings = value.as_array().is_some_and(|a| a.iter().all(Value::is_string));
                if !["users", "teams", "apps"].contains(&field.as_str()) || !strings {
                    out.push(format!("bypass_pull_request_allowances.{field} = {value}"));
                }
            }
        }
    }
    out
}

/// Everything wrong with the requests in `s`.
pub(crate) fn problems(s: &State) -> Vec<String> {
    let mut out: Vec<String> = s.violations.iter().map(|v| format!("refused: {v}")).collect();
    let issued = |token: &str| match s.mode {
        Mode::Token => token == PAT,
        Mode::App => s.tokens.iter().any(|(t, _)| t == token),
    };
    for r in &s.requests {
        let what = format!("{} {}", r.method, r.path);
        let mut problem = |p: String| out.push(format!("{what}: {p}"));
        let Some(route) = find(r.method.as_str(), &r.path) else {
            problem("not a documented route".into());
            continue;
        };
        for (name, value) in [
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
            ("user-agent", "max-cloud-order-service"),
        ] {
            if header(r, name) != [value] {
                problem(format!("{name}: {:?}, not once {value:?}", header(r, name)));
            }
        }
        if header(r, "authorization").len() != 1 {
            problem(format!("{} Authorization headers", header(r, "authorization").len()));
        }
        let app_route = r.path == "/app" || r.path.starts_with("/app/");
        match (s.mode, app_route) {
            (Mode::Token, _) if r.bearer() != PAT => problem("not the personal access token".into()),
            (Mode::App, true) => match jsonwebtoken::decode_header(r.bearer()) {
                Ok(h) if h.alg == jsonwebtoken::Algorithm::RS256 => {}
                Ok(h) => problem(format!("JWT signed with {:?}", h.alg)),
                Err(e) => problem(format!("not a JWT: {e}")),
            },
            (Mode::App, false) if !issued(r.bearer()) => problem("not an issued installation token".into()),
            _ => {}
        }
        match &r.body {
            Some(body) => {
                if header(r, "content-type") != ["application/json"] {
                    problem(format!("a body with Content-Type {:?}", header(r, "content-type")));
                }
                for p in body_problems(route, body) {
                    problem(p);
                }
            }
            None => {
                if !header(r, "content-type").is_empty() {
                    problem("Content-Type without a body".into());
                }
                if !route.required.is_empty() {
                    problem("no body".into());
                }
            }
        }
    }
    for g in &s.git_requests {
        let what = format!("Git {} {}", g.method, g.path);
        match (&g.username, &g.password) {
            // libgit2 and git ask without credentials first and answer the 401's challenge (or meet an injected
            // server error before any challenge).
            (None, None) if g.status == 401 || g.status >= 500 => {}
            (None, None) => out.push(format!("{what}: no credentials, answered {}", g.status)),
            (Some(user), Some(password)) => {
                if user != GIT_USERNAME {
                    out.push(format!("{what}: user {user:?}, not {GIT_USERNAME}"));
                }
                if !issued(password) {
                    out.push(format!("{what}: the password is no token GitHub issued"));
                }
            }
            _ => out.push(format!("{what}: malformed basic auth")),
        }
    }
    out
}
