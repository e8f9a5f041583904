//! The GitHub mock itself: Git over smart HTTP with GitHub's token auth, pull requests that follow the repositories,
//! real merge commits, webhook deliveries, faults, and the well-formedness check.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Router;
use http::Method;
use maxcloud_testenv::github::{Fault, GitHubMock, Mode, OWNER, PAT};
use serde_json::{json, Value};

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("run git")
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The clone URL with `x-access-token:<token>@`.
fn authed(mock: &GitHubMock, repo: &str, token: &str) -> String {
    mock.clone_url(repo).replace("http://", &format!("http://x-access-token:{token}@"))
}

/// An API call with GitHub's headers.
async fn call(mock: &GitHubMock, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", mock.api_url))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "max-cloud-order-service")
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// (headers, body) of each delivery received.
type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook receiver.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    async fn take(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
        got.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
        "ok"
    }
    let app = Router::new().fallback(take).with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn git_over_http_with_tokens_and_pull_requests_that_follow_it() {
    let mock = GitHubMock::start(Mode::Token).await;
    let (url, got) = receiver().await;
    mock.set_webhook(&url, "s3cret");
    let (status, repo) = call(
        &mock,
        Method::POST,
        &format!("/orgs/{OWNER}/repos"),
        PAT,
        Some(json!({"name": "t", "description": "T", "private": true, "auto_init": false})),
    )
    .await;
    assert_eq!(status, 201, "{repo}");
    assert_eq!(repo["clone_url"], mock.clone_url("t"));
    assert_eq!(repo["size"], 0);

    // Clone, commit and push with x-access-token and the token; wrong credentials are refused with 401.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("t");
    git_ok(work.path(), &["clone", "-q", &authed(&mock, "t", PAT), dir.to_str().unwrap()]);
    std::fs::write(dir.join("README.md"), "# t\n").unwrap();
    git_ok(&dir, &["add", "."]);
    git_ok(&dir, &["commit", "-qm", "first"]);
    git_ok(&dir, &["push", "-q", "origin", "HEAD:main"]);
    let main = git_ok(&dir, &["rev-parse", "HEAD"]);
    assert_eq!(mock.branch("t", "main"), Some(main.clone()));
    let out = git(&dir, &["push", &authed(&mock, "t", "ghp_wrong"), "HEAD:refs/heads/other"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Authentication failed"), "{out:?}");
    let out = git(work.path(), &["ls-remote", &mock.clone_url("t")]);
    assert!(!out.status.success(), "no anonymous reads of a private repository");
    let git_requests = mock.git_requests();
    assert!(git_requests.iter().any(|g| g.service == "git-receive-pack" && g.status == 200));
    assert!(git_requests.iter().any(|g| g.password.as_deref() == Some("ghp_wrong") && g.status == 401));
    assert!(mock.check().iter().any(|p| p.contains("the password is no token GitHub issued")));
    mock.with(|s| s.git_requests.retain(|g| g.password.as_deref() != Some("ghp_wrong")));

    // A branch and its pull request; a push to the branch moves the head (synchronize).
    git_ok(&dir, &["checkout", "-qb", "feature"]);
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    git_ok(&dir, &["add", "."]);
    git_ok(&dir, &["commit", "-qm", "a"]);
    git_ok(&dir, &["push", "-q", "origin", "feature"]);
    let first = git_ok(&dir, &["rev-parse", "HEAD"]);
    let body = json!({"title": "Feature", "head": "feature", "base": "main", "body": "b"});
    let (status, pr) = call(&mock, Method::POST, "/repos/acme/t/pulls", PAT, Some(body.clone())).await;
    assert_eq!(
        (status, pr["head"]["sha"].as_str(), pr["mergeable"].as_bool()),
        (201, Some(first.as_str()), Some(true))
    );
    let (status, again) = call(&mock, Method::POST, "/repos/acme/t/pulls", PAT, Some(body)).await;
    assert_eq!(status, 422, "{again}");
    std::fs::write(dir.join("a.txt"), "a2\n").unwrap();
    git_ok(&dir, &["commit", "-qam", "a2"]);
    git_ok(&dir, &["push", "-q", "origin", "feature"]);
    let second = git_ok(&dir, &["rev-parse", "HEAD"]);
    assert_eq!(mock.pull("t", 1).head_sha, second);

    // main moves with a conflicting change: not mergeable, the merge is refused (405).
    mock.commit("t", "main", &[("a.txt", Some("main's a\n"))], "conflict");
    let (_, pr) = call(&mock, Method::GET, "/repos/acme/t/pulls/1", PAT, None).await;
    assert_eq!((pr["mergeable"].as_bool(), pr["mergeable_state"].as_str()), (Some(false), Some("dirty")));
    let merge = json!({"sha": second, "merge_method": "merge"});
    let (status, _) = call(&mock, Method::PUT, "/repos/acme/t/pulls/1/merge", PAT, Some(merge.clone())).await;
    assert_eq!(status, 405);
    mock.commit("t", "main", &[("a.txt", None)], "resolve");
    // The head moved from the sha asked for: 409.
    let (status, _) = call(
        &mock,
        Method::PUT,
        "/repos/acme/t/pulls/1/merge",
        PAT,
        Some(json!({"sha": first, "merge_method": "merge"})),
    )
    .await;
    assert_eq!(status, 409);
    // A human approves and merges: a merge commit with two parents on main.
    mock.review("t", 1, "alice", "APPROVED");
    let commit = mock.merge_pull("t", 1, "alice").unwrap();
    assert_eq!(mock.branch("t", "main"), Some(commit.clone()));
    git_ok(&dir, &["fetch", "-q", "origin"]);
    let parents = git_ok(&dir, &["rev-list", "--parents", "-n", "1", "origin/main"]);
    assert_eq!(parents.split_whitespace().count(), 3, "{parents}");
    assert!(parents.ends_with(&second));
    let pr = mock.pull("t", 1);
    assert_eq!((pr.merged, pr.merged_by.as_deref(), pr.merge_commit_sha), (true, Some("alice"), Some(commit)));

    // Deliveries, in order, signed.
    mock.settle(Duration::from_secs(5)).await;
    let deliveries = mock.deliveries();
    let seen: Vec<(String, String)> = deliveries.iter().map(|d| (d.event.clone(), d.action.clone())).collect();
    let expected = [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request_review", "submitted"),
        ("pull_request", "closed"),
    ];
    assert_eq!(seen, expected.map(|(e, a)| (e.to_string(), a.to_string())));
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    for ((headers, body), d) in received.iter().zip(&deliveries) {
        assert_eq!(headers["x-github-delivery"], d.id.as_str());
        assert_eq!(headers["x-github-event"], d.event.as_str());
        let signature = maxcloud_testenv::github::signature("s3cret", body.as_bytes());
        assert_eq!(headers["x-hub-signature-256"], signature.as_str());
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["pull_request"]["number"], 1);
        assert_eq!(payload["pull_request"]["head"]["ref"], "feature");
        assert_eq!(
            (payload["repository"]["name"].as_str(), payload["repository"]["owner"]["login"].as_str()),
            (Some("t"), Some(OWNER))
        );
    }
    let closed: Value = serde_json::from_str(&received[3].1).unwrap();
    assert_eq!(closed["pull_request"]["merged"], true);

    // Replay: the same delivery id and body again. Off: recorded, not sent.
    let (status, _) = mock.redeliver(&deliveries[0].id).await;
    assert_eq!(status, 200);
    assert_eq!(got.lock().unwrap()[4].0["x-github-delivery"], deliveries[0].id.as_str());
    mock.set_deliveries(false);
    mock.commit("t", "feature", &[("b.txt", Some("b\n"))], "b");
    let n = mock.open_pull("t", "feature", "main", "Again");
    mock.close_pull("t", n, "bob");
    mock.settle(Duration::from_secs(5)).await;
    assert_eq!(got.lock().unwrap().len(), 5);
    assert_eq!(mock.deliveries().len(), 6);
    assert!(mock.deliveries()[4..].iter().all(|d| !d.queued));
    mock.assert_well_formed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_tokens_cannot_push_and_faults_hit_their_route() {
    let mock = GitHubMock::start(Mode::App).await;
    mock.add_repo("t");
    mock.commit("t", "main", &[("README.md", Some("# t\n"))], "first");
    // An App token, exchanged with a JWT.
    let jwt_free = call(&mock, Method::POST, "/app/installations/77/access_tokens", "not-a-jwt", None).await;
    assert_eq!(jwt_free.0, 401);
    assert!(!mock.check().is_empty(), "a bad JWT is a finding");
    mock.with(|s| s.violations.clear());
    mock.clear_requests();
    mock.with(|s| s.tokens.push(("ghs_test".into(), time::OffsetDateTime::now_utc() + Duration::from_secs(600))));

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("t");
    git_ok(work.path(), &["clone", "-q", &authed(&mock, "t", "ghs_test"), dir.to_str().unwrap()]);
    std::fs::write(dir.join("x"), "x\n").unwrap();
    git_ok(&dir, &["add", "."]);
    git_ok(&dir, &["commit", "-qm", "x"]);
    mock.revoke(Some("ghs_test"));
    let out = git(&dir, &["push", "origin", "HEAD:refs/heads/x"]);
    assert!(!out.status.success(), "a revoked token pushes nothing");
    assert_eq!(mock.branch("t", "x"), None);
    let (status, _) = call(&mock, Method::GET, "/repos/acme/t", "ghs_test", None).await;
    assert_eq!(status, 401);

    // Faults on a Git route and on an API route (with a wildcard), in order, then the real answers.
    mock.with(|s| s.tokens.push(("ghs_two".into(), time::OffsetDateTime::now_utc() + Duration::from_secs(600))));
    mock.fault(Fault::before(Method::POST, "/acme/*/git-receive-pack", 502, 1));
    let out = git(&dir, &["push", &authed(&mock, "t", "ghs_two"), "HEAD:refs/heads/x"]);
    assert!(!out.status.success());
    git_ok(&dir, &["push", "-q", &authed(&mock, "t", "ghs_two"), "HEAD:refs/heads/x"]);
    assert!(mock.branch("t", "x").is_some());

    mock.fault(Fault::before(Method::GET, "/repos/acme/*", 503, 2));
    mock.fault(Fault::secondary_rate_limit(Method::GET, "/repos/acme/*"));
    for expected in [503, 503, 429, 200] {
        assert_eq!(call(&mock, Method::GET, "/repos/acme/t", "ghs_two", None).await.0, expected);
    }
    mock.fault(Fault::rate_limit(Method::GET, "/repos/acme/t"));
    let resp = reqwest::Client::new()
        .get(format!("{}/repos/acme/t", mock.api_url))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "max-cloud-order-service")
        .bearer_auth("ghs_two")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    let reset: i64 = resp.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!((reset - time::OffsetDateTime::now_utc().unix_timestamp() - 1).abs() <= 1);

    // The answer of a pull request's creation lost after it was stored; an answer held back.
    mock.fault(Fault::after(Method::POST, "/repos/acme/*/pulls", 502));
    let body = json!({"title": "X", "head": "x", "base": "main"});
    assert_eq!(call(&mock, Method::POST, "/repos/acme/t/pulls", "ghs_two", Some(body)).await.0, 502);
    assert_eq!(mock.pulls_of("t", "x").len(), 1, "stored all the same");
    mock.fault(Fault::held(Method::GET, "/repos/acme/t/pulls/1", Duration::from_millis(300)));
    let started = std::time::Instant::now();
    assert_eq!(call(&mock, Method::GET, "/repos/acme/t/pulls/1", "ghs_two", None).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(mock.pending_faults().is_empty());

    // The check finds malformed requests: no GitHub headers, unknown routes, undocumented body fields.
    assert!(mock.check().is_empty(), "{:#?}", mock.check());
    let resp = reqwest::Client::new().get(format!("{}/repos/acme/t", mock.api_url)).bearer_auth("ghs_two").send().await;
    assert_eq!(resp.unwrap().status(), 400);
    let (status, _) =
        call(&mock, Method::POST, "/repos/acme/t/issues/1/comments", "ghs_two", Some(json!({"body": "x", "color": 1})))
            .await;
    assert_eq!(status, 201);
    let (status, _) = call(&mock, Method::GET, "/repos/acme/t/hooks", "ghs_two", None).await;
    assert_eq!(status, 404);
    let problems = mock.check().join("\n");
    assert!(problems.contains("Accept"), "{problems}");
    assert!(problems.contains("\"color\", not a field of this route"), "{problems}");
    assert!(problems.contains("GET /repos/acme/t/hooks: not a documented route"), "{problems}");
}
