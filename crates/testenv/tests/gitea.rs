//! A real Gitea (the pinned GITEA_VERSION) on loopback: the API answers with its version, the admin's token
//! authenticates, organizations, repositories and a second user with their own token can be created, Git over HTTP
//! takes a push, the second user approves a pull request, and a repository webhook reaches a loopback receiver
//! signed with `X-Gitea-Signature` = hex HMAC-SHA256 of the raw body.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use maxcloud_testenv::gitea::ADMIN_USER;
use maxcloud_testenv::tools::version;
use maxcloud_testenv::Gitea;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const HOOK_SECRET: &str = "hook-secret-0123456789";

/// One webhook delivery: headers and raw body.
type Delivery = (HeaderMap, Bytes);

/// A webhook receiver on a free loopback port: `POST /hook` answers 200 and forwards the delivery.
async fn hook_receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel::<Delivery>();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(tx): State<mpsc::UnboundedSender<Delivery>>, headers: HeaderMap, body: Bytes| async move {
                let _ = tx.send((headers, body));
                "ok"
            }),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the hook receiver");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// `git <args>` in `dir`, isolated from the machine's Git configuration; its trimmed stdout.
fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_serves_users_orgs_repos_git_reviews_and_signed_webhooks() {
    let started = Instant::now();
    let gitea = Gitea::start().await.expect("gitea starts");
    eprintln!("gitea {} ready in {:?}, RSS {:?} KiB", gitea.base_url(), gitea.startup, gitea.rss_kib());
    let admin = gitea.admin_token().to_string();
    let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let (gitea, path, token) = (&gitea, path.to_string(), token.to_string());
        async move { gitea.api(method, &path, &token, body.as_ref()).await.expect("API call") }
    };

    // The version endpoint answers without authentication, with the pinned version.
    let (status, answer) = call(Method::GET, "/version", "", None).await;
    assert_eq!(status, 200);
    assert_eq!(answer["version"], version("GITEA_VERSION").unwrap().trim_start_matches('v'), "{answer}");
    assert!(gitea.api_url().starts_with("http://127.0.0.1:") && gitea.api_url().ends_with("/api/v1"));

    // The admin token authenticates as the site admin; a wrong one and none are refused.
    let (status, me) = call(Method::GET, "/user", &admin, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["login"], ADMIN_USER);
    assert_eq!(gitea.admin_user(), ADMIN_USER);
    assert_eq!(me["is_admin"], true, "{me}");
    let (status, answer) = call(Method::GET, "/user", "0000000000000000000000000000000000000000", None).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer["message"].is_string(), "errors carry a message: {answer}");
    assert_eq!(call(Method::GET, "/user", "", None).await.0, 401);

    // An organization, once.
    let org = gitea.create_org("acme").await.expect("create org");
    assert_eq!(org["username"], "acme", "{org}");
    let (status, answer) = call(Method::GET, "/orgs/acme", &admin, None).await;
    assert_eq!((status, answer["username"].as_str()), (200, Some("acme")), "{answer}");
    assert!(gitea.create_org("acme").await.is_err(), "a second org acme is refused");

    // A repository of it, initialised on main.
    let repo = gitea.create_repo("acme", "widgets").await.expect("create repo");
    assert_eq!(repo["full_name"], "acme/widgets", "{repo}");
    assert_eq!(repo["default_branch"], "main", "{repo}");
    assert_eq!(repo["clone_url"], gitea.clone_url("acme", "widgets"), "{repo}");
    assert_eq!(repo["empty"], false, "{repo}");

    // A second, ordinary user with a token of their own.
    let reviewer = gitea.create_user("reviewer").await.expect("create user");
    let (status, me) = call(Method::GET, "/user", &reviewer, None).await;
    assert_eq!((status, me["login"].as_str(), me["is_admin"].as_bool()), (200, Some("reviewer"), Some(false)), "{me}");
    let (status, answer) = call(Method::GET, "/admin/users", &reviewer, None).await;
    assert_eq!(status, 403, "an ordinary user is no admin: {answer}");
    gitea.add_collaborator("acme", "widgets", "reviewer", "write").await.expect("add collaborator");
    let (status, answer) = call(Method::GET, "/repos/acme/widgets", &reviewer, None).await;
    assert_eq!((status, &answer["permissions"]["push"]), (200, &json!(true)), "{answer}");

    // A webhook to a loopback receiver.
    let (hook_url, mut deliveries) = hook_receiver().await;
    let hook = json!({
        "type": "gitea",
        "active": true,
        "branch_filter": "*",
        "events": ["push", "pull_request", "pull_request_review"],
        "config": {"url": hook_url, "content_type": "json", "secret": HOOK_SECRET},
    });
    let (status, answer) = call(Method::POST, "/repos/acme/widgets/hooks", &admin, Some(hook)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["config"]["url"], hook_url, "{answer}");

    // Git over HTTP: clone, commit on a branch, push (the token is the password).
    let work = tempfile::tempdir().expect("tempdir");
    let authed = gitea.clone_url("acme", "widgets").replacen("http://", &format!("http://{ADMIN_USER}:{admin}@"), 1);
    git(work.path(), work.path(), &["clone", "-q", &authed, "wc"]);
    let wc = work.path().join("wc");
    git(&wc, work.path(), &["checkout", "-q", "-b", "feature"]);
    std::fs::write(wc.join("hello.txt"), "hello\n").unwrap();
    git(&wc, work.path(), &["add", "hello.txt"]);
    git(&wc, work.path(), &["commit", "-q", "-m", "add hello"]);
    let sha = git(&wc, work.path(), &["rev-parse", "HEAD"]);
    git(&wc, work.path(), &["push", "-q", "origin", "feature"]);
    let (status, branch) = call(Method::GET, "/repos/acme/widgets/branches/feature", &admin, None).await;
    assert_eq!((status, branch["commit"]["id"].as_str()), (200, Some(sha.as_str())), "{branch}");

    // A pull request by the admin, approved by the reviewer.
    let pr = json!({"title": "Add hello", "body": "please", "head": "feature", "base": "main"});
    let (status, pr) = call(Method::POST, "/repos/acme/widgets/pulls", &admin, Some(pr)).await;
    assert_eq!(status, 201, "{pr}");
    assert_eq!((pr["number"].as_u64(), pr["state"].as_str()), (Some(1), Some("open")), "{pr}");
    assert_eq!(pr["head"]["sha"], sha.as_str(), "{pr}");
    let review = json!({"event": "APPROVED", "body": "lgtm"});
    let (status, review) = call(Method::POST, "/repos/acme/widgets/pulls/1/reviews", &reviewer, Some(review)).await;
    assert_eq!(status, 200, "{review}");
    assert_eq!((review["state"].as_str(), review["user"]["login"].as_str()), (Some("APPROVED"), Some("reviewer")));

    // Deliveries: the push of the branch, the opened pull request and the approval, each signed; in no fixed order.
    let mut seen: Vec<String> = Vec::new();
    let wanted = ["push refs/heads/feature", "pull_request opened", "pull_request_review_approved reviewed"];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((headers, body))) = tokio::time::timeout(left, deliveries.recv()).await else {
            panic!("deliveries seen {seen:?}, wanted {wanted:?}\n{}", gitea.logs_tail(30));
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let signature = hex::encode(mac.finalize().into_bytes());
        assert_eq!(header(&headers, "X-Gitea-Signature"), signature, "signature of {headers:?}");
        assert_eq!(header(&headers, "X-Hub-Signature-256"), format!("sha256={signature}"));
        assert_eq!(header(&headers, "Content-Type"), "application/json");
        assert!(!header(&headers, "X-Gitea-Delivery").is_empty(), "{headers:?}");
        let payload: Value = serde_json::from_slice(&body).expect("JSON payload");
        // X-Gitea-Event is the coarse event (`pull_request_approved` for an approval), X-Gitea-Event-Type the
        // hook event type (`pull_request_review_approved`).
        let event_type = header(&headers, "X-Gitea-Event-Type");
        let what = match event_type {
            "push" => {
                if payload["ref"] == "refs/heads/feature" {
                    assert_eq!(payload["after"], sha.as_str(), "{payload}");
                    assert_eq!(payload["repository"]["full_name"], "acme/widgets");
                }
                format!("push {}", payload["ref"].as_str().unwrap_or_default())
            }
            _ => format!("{event_type} {}", payload["action"].as_str().unwrap_or_default()),
        };
        match what.as_str() {
            "pull_request opened" => {
                assert_eq!(header(&headers, "X-Gitea-Event"), "pull_request");
                assert_eq!(payload["pull_request"]["head"]["sha"], sha.as_str(), "{payload}");
            }
            "pull_request_review_approved reviewed" => {
                assert_eq!(header(&headers, "X-Gitea-Event"), "pull_request_approved");
                assert_eq!(payload["sender"]["login"], "reviewer", "{payload}");
                assert_eq!(payload["review"]["type"], "pull_request_review_approved", "{payload}");
            }
            _ => {}
        }
        eprintln!("delivery: {what} ({} bytes)", body.len());
        seen.push(what);
    }
    eprintln!("gitea test done in {:?}", started.elapsed());
}
