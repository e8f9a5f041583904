//! The order service with GitHub as its Git hosting provider: the GitHub mock of `maxcloud_testenv::github` on
//! loopback (REST API under GHES's `/api/v3`, Git over smart HTTP on real bare repositories, webhook deliveries),
//! the order service in-process with GitHub App credentials (the mock's test key).
//!
//! The order service acts as the App `max-cloud[bot]`; the mock's human actions play the reviewers and the people
//! who close, merge or push on GitHub.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use maxcloud_forge::{webhook, ForgeKind};
use maxcloud_server::{Config, ForgeAuth, ForgeConfig, Running};
use maxcloud_testenv::github::{Fault, GitHubMock, Mode, APP_ID, APP_SLUG, GIT_USERNAME, INSTALLATION_ID, OWNER};
use maxcloud_tests::orders::{self, db, history, place};
use maxcloud_tests::{git, Api};
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "github-webhook-s3cret";
const BOT: &str = "max-cloud[bot]";

/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(15);

struct Env {
    mock: GitHubMock,
    tmp: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        Env { mock: GitHubMock::start(Mode::App).await, tmp: tempfile::tempdir().unwrap() }
    }

    fn config(&self, poll: Duration) -> Config {
        let mut config = Config::embedded(self.tmp.path().join("data"));
        config.forge = Some(ForgeConfig {
            kind: ForgeKind::GitHub,
            url: self.mock.api_url.clone(),
            owner: OWNER.into(),
            auth: ForgeAuth::GitHubApp {
                app_id: APP_ID,
                installation_id: INSTALLATION_ID,
                private_key_pem: self.mock.app_private_key().into(),
            },
            webhook_secret: Some(SECRET.into()),
            poll_interval: poll,
            flux_read_token: None,
        });
        config
    }

    /// Start the order service and point the mock's webhook at it.
    async fn serve(&self, config: &Config) -> (Running, Api) {
        let running = tokio::time::timeout(WAIT, maxcloud_server::start(config)).await.expect("start").unwrap();
        self.mock.set_webhook(&format!("http://{}/api/v1/webhooks/github", running.addr), SECRET);
        let api = Api { http: client(), base: format!("http://{}", running.addr), key: None };
        (running, api)
    }

    fn mirror(&self, slug: &str) -> std::path::PathBuf {
        self.tmp.path().join("data/repos").join(format!("{slug}.git"))
    }
}

/// An HTTP client whose every request is bounded.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// Stop the order service (bounded).
async fn stop(running: Running) {
    tokio::time::timeout(WAIT, running.stop()).await.expect("stop").unwrap();
}

/// Poll the order until `pred` holds; panics with the order after [`WAIT`].
async fn wait_for(api: &Api, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    orders::wait_for(api, id, what, WAIT, pred).await
}

async fn wait_state(api: &Api, id: &str, state: &str) -> Value {
    wait_for(api, id, state, |o| o["state"] == state).await
}

/// Wait until `pred` holds on the mock; panics after the bound.
async fn until(what: &str, pred: impl Fn() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < WAIT, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn app(name: &str) -> Value {
    json!({"kind": "App", "name": name, "parameters": {"image": "nginx:1.27"}})
}

fn number(order: &Value) -> u64 {
    order["pull_request"]["number"].as_u64().unwrap_or_else(|| panic!("no pull request number: {order:#}"))
}

/// The parents of `commit` in the bare repository `dir`.
fn parents(dir: &Path, commit: &str) -> Vec<String> {
    git(dir, &["rev-list", "--parents", "-n", "1", commit]).split_whitespace().skip(1).map(String::from).collect()
}

/// Exactly one pull request per order (by head branch); no branch but main and the orders' own, and none left by
/// the order service after it merged or closed a pull request.
fn assert_one_pull_request_per_order(mock: &GitHubMock, slug: &str, orders: &[&str]) {
    let repo = mock.repo(slug);
    for id in orders {
        let branch = format!("order/{id}");
        let pulls: Vec<u64> = repo.pulls.iter().filter(|p| p.head == branch).map(|p| p.number).collect();
        assert_eq!(pulls.len(), 1, "order {id}: pull requests {pulls:?}");
    }
    assert_eq!(repo.pulls.len(), orders.len(), "pull requests of no order: {:#?}", repo.pulls);
    let branches = mock.branches(slug);
    for branch in branches.keys() {
        assert!(branch == "main" || orders.iter().any(|id| *branch == format!("order/{id}")), "branch {branch}");
    }
    for p in repo.pulls.iter().filter(|p| p.closed_by.as_deref() == Some(BOT)) {
        assert!(!branches.contains_key(&p.head), "#{} was merged or closed by the App, its branch is left", p.number);
    }
}

/// A signed (or not) delivery to the order service: (status, body).
async fn deliver(running: &Running, id: &str, event: &str, signature: Option<String>, body: &str) -> (u16, Value) {
    let mut req = client()
        .post(format!("http://{}/api/v1/webhooks/github", running.addr))
        .header("X-GitHub-Delivery", id)
        .header("X-GitHub-Event", event)
        .header("Content-Type", "application/json");
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_become_pull_requests_on_github() {
    let env = Env::start().await;
    let mock = &env.mock;
    let (running, api) = env.serve(&env.config(Duration::from_secs(3600))).await;
    let (key, slug) = api.register("ops@acme.example", "Acme").await;
    let api = api.with_key(&key);

    // --- The first order: the repository is created in the organisation with its README on main, main is
    // protected, the PR opened, labelled and merged by the App with a merge commit.
    // (GitHub's answer to the merge comes after its webhook delivery of the merge.)
    mock.fault(Fault::held(Method::PUT, &format!("/repos/{OWNER}/{slug}/pulls/*/merge"), Duration::from_millis(500)));
    let web = place(&api, app("web")).await;
    let order = wait_state(&api, &web, "merged").await;
    // Merged by the order service itself, not "on the Git provider" by someone (the delivery came first).
    assert!(!history(&order).contains("on the Git provider"), "{}", history(&order));
    let pr_row = &order["pull_request"];
    let n = number(&order);
    let repo = mock.repo(&slug);
    assert!(repo.private);
    let protection = &repo.protection["main"];
    assert_eq!(protection["required_pull_request_reviews"]["required_approving_review_count"], 1, "{protection}");
    assert_eq!(
        protection["required_pull_request_reviews"]["bypass_pull_request_allowances"]["apps"],
        json!([APP_SLUG]),
        "the App may merge past the review requirement: {protection}"
    );
    let pulls = mock.pulls_of(&slug, &format!("order/{web}"));
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(pr.number, n);
    assert_eq!(pr_row["url"], format!("{}/pull/{n}", mock.html_url(&slug)));
    assert_eq!(pr_row["title"].as_str(), Some(pr.title.as_str()));
    assert_eq!(pr_row["body"].as_str(), pr.body.as_deref());
    assert_eq!((pr.head.as_str(), pr.base.as_str()), (format!("order/{web}").as_str(), "main"));
    assert!(pr.title.contains("web"), "{}", pr.title);
    assert!(pr.body.as_deref().is_some_and(|b| !b.is_empty()), "{pr:?}");
    let labels: BTreeSet<&str> = pr.labels.iter().map(String::as_str).collect();
    assert_eq!(labels, BTreeSet::from(["kind/app", "action/create"]));
    assert_eq!((pr.merged, pr.merged_by.as_deref(), pr.user.as_str()), (true, Some(BOT), BOT));
    let merge_commit = pr.merge_commit_sha.clone().unwrap();
    assert_eq!(pr_row["merge_commit"], merge_commit.as_str(), "the order records GitHub's merge commit");
    assert_eq!(pr_row["head_commit"], pr.head_sha.as_str());
    let forge_dir = mock.repo_dir(&slug);
    assert_eq!(mock.branch(&slug, "main"), Some(merge_commit.clone()));
    let readme = git(&forge_dir, &["rev-list", "--max-parents=0", "main"]).trim().to_string();
    assert_eq!(git(&forge_dir, &["ls-tree", "--name-only", &readme]).trim(), "README.md");
    assert_eq!(
        parents(&forge_dir, &merge_commit),
        [readme, pr.head_sha.clone()],
        "a merge commit: main's tip (the README) and the head"
    );
    assert!(git(&forge_dir, &["ls-tree", "-r", "--name-only", "main"]).contains("apps/web.yaml"));
    assert_eq!(mock.branch(&slug, &format!("order/{web}")), None, "the merged branch is deleted");
    // The local mirror has the merge commit (Flux's applied revision is checked against it).
    assert_eq!(git(&env.mirror(&slug), &["rev-parse", "main"]).trim(), merge_commit);

    // The App's token exchange used a valid JWT (the mock verifies it with the App's public key); every push
    // used x-access-token and an installation token.
    let (claims, tokens) = mock.with(|s| (s.jwt_claims.clone(), s.tokens.clone()));
    let app_id = APP_ID.to_string();
    assert!(!claims.is_empty() && claims.iter().all(|c| c["iss"] == app_id.as_str()), "{claims:?}");
    assert!(!tokens.is_empty());
    let pushes: Vec<_> = mock
        .git_requests()
        .into_iter()
        .filter(|g| g.service == "git-receive-pack" && g.method == Method::POST)
        .collect();
    assert!(pushes.len() >= 2, "README and the order's branch: {pushes:#?}");
    for push in &pushes {
        assert_eq!(push.username.as_deref(), Some(GIT_USERNAME));
        assert!(tokens.iter().any(|(t, _)| Some(t) == push.password.as_ref()), "{push:?}");
        assert_eq!(push.status, 200);
    }

    // --- A Database needs review (by `reviewer`, says the tenant's policy): changes requested, then approved on
    // GitHub → the order service merges.
    let policy = json!({"policy": "review", "reviewers": ["reviewer"]});
    let (status, body) = api.send(api.req(Method::PUT, "/policies/Database/create").json(&policy)).await;
    assert_eq!(status, 200, "{body}");
    let orders_db = place(&api, db("orders-db")).await;
    let order = wait_state(&api, &orders_db, "pr_open").await;
    assert_eq!(order["pull_request"]["review_state"], "pending");
    let n_db = number(&order);
    let pr = mock.pull(&slug, n_db);
    assert!(pr.open);
    assert_eq!(pr.requested_reviewers, ["reviewer"]);
    let (status, body) = api.post(&format!("/orders/{orders_db}/approve"), &json!({})).await;
    assert_eq!(status, 409, "approved on the pull request, not through the API: {body}");
    mock.review(&slug, n_db, "reviewer", "CHANGES_REQUESTED");
    let order =
        wait_for(&api, &orders_db, "changes requested", |o| o["pull_request"]["review_state"] == "changes_requested")
            .await;
    assert_eq!(order["state"], "pr_open");
    assert_eq!(order["pull_request"]["reviewed_by"], json!(["reviewer"]));
    mock.review(&slug, n_db, "reviewer", "APPROVED");
    let order = wait_state(&api, &orders_db, "merged").await;
    assert!(history(&order).contains("approved by reviewer on the pull request"), "{}", history(&order));
    assert_eq!(order["pull_request"]["review_state"], "approved");
    let pr = mock.pull(&slug, n_db);
    assert_eq!((pr.merged, pr.merged_by.as_deref()), (true, Some(BOT)));
    assert!(git(&forge_dir, &["ls-tree", "-r", "--name-only", "main"]).contains("databases/orders-db.yaml"));

    // --- Closed without merging by a human → rejected; nothing reaches main.
    let closed = place(&api, db("closed-db")).await;
    let n_closed = number(&wait_state(&api, &closed, "pr_open").await);
    mock.close_pull(&slug, n_closed, "alice");
    let order = wait_state(&api, &closed, "rejected").await;
    assert!(order["error"].as_str().unwrap().contains("closed without merging"), "{order:#}");
    assert!(!git(&forge_dir, &["ls-tree", "-r", "--name-only", "main"]).contains("closed-db"));

    // --- Merged by a human on GitHub (an administrator, past the protection) → merged, who merged it recorded.
    let human = place(&api, db("human-db")).await;
    let n_human = number(&wait_state(&api, &human, "pr_open").await);
    let human_merge = mock.merge_pull(&slug, n_human, "alice").unwrap();
    let order = wait_state(&api, &human, "merged").await;
    assert!(history(&order).contains("merged by alice on the Git provider"), "{}", history(&order));
    assert_eq!(order["pull_request"]["merge_commit"], human_merge.as_str());

    // --- A human pushes to the order's branch: the order fails naming the head; the PR and the commit stay.
    let pushed = place(&api, db("pushed-db")).await;
    let n_pushed = number(&wait_state(&api, &pushed, "pr_open").await);
    let branch = format!("order/{pushed}");
    let human_head =
        mock.commit(&slug, &branch, &[("databases/pushed-db.yaml", Some("# edited by hand\n"))], "hand edit");
    let order = wait_state(&api, &pushed, "failed").await;
    let error = order["error"].as_str().unwrap();
    assert!(error.contains("was changed on the Git provider") && error.contains(&human_head[..12]), "{error}");
    let pr = mock.pull(&slug, n_pushed);
    assert_eq!((pr.open, pr.head_sha.as_str()), (true, human_head.as_str()));
    assert_eq!(mock.branch(&slug, &branch), Some(human_head.clone()));

    // --- main moves under an approved order with a conflicting change: GitHub refuses the merge (405), the order
    // service rebuilds its commit on the new main, pushes it again and merges.
    let conflict = place(&api, db("conflict-db")).await;
    let order = wait_state(&api, &conflict, "pr_open").await;
    let n_conflict = number(&order);
    let first_head = order["pull_request"]["head_commit"].as_str().unwrap().to_string();
    let hand = mock.commit(&slug, "main", &[("databases/conflict-db.yaml", Some("# by hand on main\n"))], "by hand");
    assert!(!mock.pull(&slug, n_conflict).merged);
    mock.review(&slug, n_conflict, "reviewer", "APPROVED");
    let order = wait_state(&api, &conflict, "merged").await;
    let pr = mock.pull(&slug, n_conflict);
    assert_ne!(pr.head_sha, first_head, "rebuilt");
    assert_eq!(order["pull_request"]["head_commit"], pr.head_sha.as_str());
    assert_eq!(parents(&forge_dir, &pr.head_sha), std::slice::from_ref(&hand), "rebuilt on the new main");
    assert_eq!(parents(&forge_dir, pr.merge_commit_sha.as_deref().unwrap()), [hand, pr.head_sha.clone()]);
    let refused: Vec<u16> = mock
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.ends_with(&format!("/pulls/{n_conflict}/merge")))
        .map(|r| r.status)
        .collect();
    assert_eq!(refused, [405, 200]);

    // --- A newer order supersedes one in review: its PR is closed with a comment naming the newer one.
    let older = place(&api, db("cache-db")).await;
    let n_older = number(&wait_state(&api, &older, "pr_open").await);
    let newer = place(
        &api,
        json!({"kind": "Database", "name": "cache-db", "action": "update", "parameters": {"deletionProtection": false, "instances": 2}}),
    )
    .await;
    assert_eq!(api.get(&format!("/orders/{older}")).await.1["state"], "superseded");
    let n_newer = number(&wait_state(&api, &newer, "pr_open").await);
    assert_ne!(n_older, n_newer);
    until("the superseded PR closed", || !mock.pull(&slug, n_older).open).await;
    let comments = mock.repo(&slug).comments_on(n_older);
    assert!(comments.iter().any(|c| c.contains(&format!("Superseded by order `{newer}`"))), "{comments:?}");

    // --- Rejected through the API: the PR is closed with the reason as a comment.
    let (status, body) = api.post(&format!("/orders/{newer}/reject"), &json!({"reason": "not this quarter"})).await;
    assert_eq!(status, 200, "{body}");
    let pr = mock.pull(&slug, n_newer);
    assert!(!pr.open && !pr.merged, "{pr:?}");
    assert_eq!(pr.closed_by.as_deref(), Some(BOT));
    assert!(mock.repo(&slug).comments_on(n_newer).iter().any(|c| c.contains("not this quarter")));

    // --- The cluster's verdict goes back to the PR: a commit status on the merge commit and a comment.
    let report = running.orders.report_outcome(&web, "ready", Some("https://web.acme.example"), None);
    tokio::time::timeout(WAIT, report).await.expect("report").unwrap();
    let statuses: Vec<Value> =
        mock.repo(&slug).statuses.into_iter().filter(|(sha, _)| *sha == merge_commit).map(|(_, s)| s).collect();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        (statuses[0]["context"].as_str(), statuses[0]["state"].as_str(), statuses[0]["target_url"].as_str()),
        (Some("maxcloud/App/web"), Some("success"), Some("https://web.acme.example"))
    );
    let comments = mock.repo(&slug).comments_on(n);
    assert!(comments.iter().any(|c| c.contains("is ready at https://web.acme.example")), "{comments:?}");

    // --- Webhook deliveries: GitHub's own were all answered; only correctly signed ones count, a replay is a
    // no-op, other events are ignored.
    mock.settle(WAIT).await;
    let deliveries = mock.deliveries();
    assert!(deliveries.iter().all(|d| matches!(d.status, Some(200 | 202))), "{deliveries:#?}");
    assert!(deliveries.iter().any(|d| d.response.contains("handled")), "{deliveries:#?}");
    let review = deliveries.iter().find(|d| d.event == "pull_request_review").expect("a review delivery");
    let (status, body) = mock.redeliver(&review.id).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("duplicate"), "GitHub's redelivery keeps the delivery id: {body}");

    let payload = json!({"action": "synchronize", "number": n_newer,
        "pull_request": {"number": n_newer, "head": {"ref": format!("order/{newer}")}},
        "repository": {"name": slug, "owner": {"login": OWNER}}})
    .to_string();
    let good = webhook::sign(ForgeKind::GitHub, SECRET.as_bytes(), payload.as_bytes());
    let bad = webhook::sign(ForgeKind::GitHub, b"guess", payload.as_bytes());
    let (s, body) = deliver(&running, "t-1", "pull_request", Some(bad), &payload).await;
    assert_eq!((s, body["error"]["message"].as_str().map(|m| m.contains("signature"))), (401, Some(true)), "{body}");
    let (s, _) = deliver(&running, "t-1", "pull_request", None, &payload).await;
    assert_eq!(s, 401, "unsigned");
    let (s, body) = deliver(&running, "t-1", "pull_request", Some(good.clone()), &payload).await;
    assert_eq!((s, body["result"].as_str()), (200, Some("handled")), "{body}");
    let (s, body) = deliver(&running, "t-1", "pull_request", Some(good), &payload).await;
    assert_eq!((s, body["result"].as_str()), (200, Some("duplicate")), "a replay: {body}");
    let star = json!({"action": "created", "repository": {"name": slug, "owner": {"login": OWNER}}}).to_string();
    let sig = webhook::sign(ForgeKind::GitHub, SECRET.as_bytes(), star.as_bytes());
    let (s, body) = deliver(&running, "t-2", "star", Some(sig), &star).await;
    assert_eq!((s, body["result"].as_str()), (202, Some("ignored")), "{body}");
    let (s, body) = api.post("/webhooks/gitea", &json!({})).await;
    assert_eq!(s, 404, "no Gitea provider here: {body}");

    // One pull request per order, whatever happened; every request well-formed.
    let all = [&web, &orders_db, &closed, &human, &pushed, &conflict, &older, &newer].map(|s| s.as_str());
    assert_one_pull_request_per_order(mock, &slug, &all);
    mock.assert_well_formed();
    stop(running).await;
}

/// 5xx bursts, both kinds of rate limit and a lost answer along an order's way, then a restart while GitHub holds
/// back the answer to a pull request it opened: every order goes through with exactly one pull request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_and_a_restart_never_duplicate_pull_requests() {
    let env = Env::start().await;
    let mock = &env.mock;
    let config = env.config(Duration::from_secs(3600));
    let (running, api) = env.serve(&config).await;
    let (key, slug) = api.register("ops@beta.example", "Beta").await;
    let api = api.with_key(&key);
    let repo = format!("/repos/{OWNER}/{slug}");

    // Faults all along the first order's way (repository, README, protection, pull request, labels, merge).
    mock.fault(Fault::before(Method::POST, &format!("/app/installations/{INSTALLATION_ID}/access_tokens"), 502, 1));
    mock.fault(Fault::before(Method::GET, "/app", 500, 1));
    mock.fault(Fault::rate_limit(Method::GET, &repo));
    mock.fault(Fault::before(Method::POST, &format!("/orgs/{OWNER}/repos"), 503, 2));
    mock.fault(Fault::secondary_rate_limit(Method::PUT, &format!("{repo}/branches/main/protection")));
    mock.fault(Fault::before(Method::GET, &format!("{repo}/pulls"), 500, 2));
    // GitHub opens the pull request, its answer is lost: the retry must not open a second one.
    mock.fault(Fault::after(Method::POST, &format!("{repo}/pulls"), 502).message("Bad Gateway"));
    mock.fault(Fault::before(Method::POST, &format!("{repo}/labels"), 502, 1));
    mock.fault(Fault::before(Method::PUT, &format!("{repo}/pulls/*/merge"), 503, 2));
    let started = Instant::now();
    let web = place(&api, app("web")).await;
    let order = wait_state(&api, &web, "merged").await;
    assert!(mock.pending_faults().is_empty(), "every fault was hit: {:#?}", mock.pending_faults());
    assert!(started.elapsed() >= Duration::from_secs(2), "the rate limits were waited for: {:?}", started.elapsed());
    let statuses = |method: Method, path: &str| -> Vec<u16> {
        mock.requests().iter().filter(|r| r.method == method && r.path == path).map(|r| r.status).collect()
    };
    assert_eq!(statuses(Method::POST, &format!("{repo}/pulls")), [502, 422], "the retry found the one opened");
    assert_eq!(statuses(Method::GET, &repo)[..2], [403, 404]);
    assert_eq!(statuses(Method::PUT, &format!("{repo}/branches/main/protection")), [429, 200]);
    let pulls = mock.pulls_of(&slug, &format!("order/{web}"));
    assert_eq!(pulls.len(), 1);
    assert_eq!(order["pull_request"]["merge_commit"], pulls[0].merge_commit_sha.clone().unwrap().as_str());
    let labels: BTreeSet<&str> = pulls[0].labels.iter().map(String::as_str).collect();
    assert_eq!(labels, BTreeSet::from(["kind/app", "action/create"]));

    // --- A restart mid-flow, with work half done in two tenants: one order waits for its review; GitHub opens
    // another's pull request but holds back its answer; in the second tenant GitHub merges an order's pull request
    // and holds back that answer. Meanwhile the service is stopped and started again on the same data directory.
    let ledger = place(&api, db("ledger-db")).await;
    let n_ledger = number(&wait_state(&api, &ledger, "pr_open").await);
    let (key_b, slug_b) = api.register("ops@delta.example", "Delta").await;
    let api_b = api.with_key(&key_b);
    let hold = Duration::from_secs(3);
    mock.fault(Fault::held(Method::POST, &format!("{repo}/pulls"), hold));
    mock.fault(Fault::held(Method::PUT, &format!("/repos/{OWNER}/{slug_b}/pulls/*/merge"), hold));
    let web2 = place(&api, app("web2")).await;
    let web_b = place(&api_b, app("web")).await;
    let branch = format!("order/{web2}");
    let branch_b = format!("order/{web_b}");
    until("GitHub opened and merged", || {
        !mock.pulls_of(&slug, &branch).is_empty() && mock.pulls_of(&slug_b, &branch_b).first().is_some_and(|p| p.merged)
    })
    .await;
    let held_at = Instant::now();
    assert_eq!(api.get(&format!("/orders/{web2}")).await.1["state"], "accepted");
    assert_eq!(api_b.get(&format!("/orders/{web_b}")).await.1["state"], "pr_open");
    stop(running).await;
    let (running, api) = env.serve(&config).await;
    let api_b = api.with_key(&key_b);
    let api = api.with_key(&key);
    let order = wait_state(&api, &web2, "merged").await;
    assert_eq!(order["pull_request"]["number"], mock.pulls_of(&slug, &branch)[0].number);
    let order = wait_state(&api_b, &web_b, "merged").await;
    assert_eq!(
        order["pull_request"]["merge_commit"],
        mock.pulls_of(&slug_b, &branch_b)[0].merge_commit_sha.clone().unwrap().as_str()
    );
    assert!(!history(&order).contains("on the Git provider"), "the service's own merge: {}", history(&order));
    mock.review(&slug, n_ledger, "reviewer", "APPROVED");
    let order = wait_state(&api, &ledger, "merged").await;
    assert!(history(&order).contains("approved by reviewer on the pull request"), "{}", history(&order));
    // A third order after the restart, with a burst on the way.
    mock.fault(Fault::before(Method::POST, &format!("{repo}/pulls"), 502, 3));
    let web3 = place(&api, app("web3")).await;
    wait_state(&api, &web3, "merged").await;

    // The held answers reached the stopped service: nothing came of them.
    tokio::time::sleep((held_at + hold + Duration::from_millis(500)).saturating_duration_since(Instant::now())).await;
    assert!(mock.pending_faults().is_empty());
    assert_one_pull_request_per_order(mock, &slug, &[&web, &ledger, &web2, &web3]);
    assert_one_pull_request_per_order(mock, &slug_b, &[&web_b]);
    for id in [&web, &ledger, &web2, &web3] {
        let pr = &mock.pulls_of(&slug, &format!("order/{id}"))[0];
        assert_eq!((pr.merged, pr.merged_by.as_deref()), (true, Some(BOT)), "{pr:?}");
    }
    let merges = git(&mock.repo_dir(&slug), &["rev-list", "--merges", "main"]);
    assert_eq!(merges.lines().count(), 4, "one merge commit per order");
    assert_eq!(
        git(&env.mirror(&slug), &["rev-parse", "main"]).trim(),
        mock.branch(&slug, "main").unwrap(),
        "the local mirror follows main"
    );
    mock.assert_well_formed();
    stop(running).await;
}

/// Without webhook deliveries the order service polls: an approval and a close on GitHub are still picked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_are_polled_without_webhook_deliveries() {
    let env = Env::start().await;
    let mock = &env.mock;
    mock.set_deliveries(false);
    let (running, api) = env.serve(&env.config(Duration::from_secs(1))).await;
    let (key, slug) = api.register("ops@gamma.example", "Gamma").await;
    let api = api.with_key(&key);

    let ledger = place(&api, db("ledger-db")).await;
    let n = number(&wait_state(&api, &ledger, "pr_open").await);
    mock.review(&slug, n, "reviewer", "APPROVED");
    let order = wait_state(&api, &ledger, "merged").await;
    assert!(history(&order).contains("approved by reviewer on the pull request"), "{}", history(&order));

    let closed = place(&api, db("closed-db")).await;
    let n = number(&wait_state(&api, &closed, "pr_open").await);
    mock.close_pull(&slug, n, "alice");
    wait_state(&api, &closed, "rejected").await;

    let deliveries = mock.deliveries();
    assert!(!deliveries.is_empty() && deliveries.iter().all(|d| !d.queued), "nothing was delivered");
    let audit = running.store.audit_log(None, 1000).await.unwrap();
    assert!(!audit.iter().any(|e| e.entry.path.contains("webhooks")), "no webhook was involved");
    assert_one_pull_request_per_order(mock, &slug, &[&ledger, &closed]);
    mock.assert_well_formed();
    stop(running).await;
}

/// GitHub logins are case-insensitive: an organisation configured as `ACME` is GitHub's `acme`, and its webhook
/// deliveries (which spell the owner as GitHub does) are about tenant repositories all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_organisation_may_be_configured_in_another_case() {
    let env = Env::start().await;
    let mock = &env.mock;
    let mut config = env.config(Duration::from_secs(3600));
    if let Some(forge) = config.forge.as_mut() {
        forge.owner = OWNER.to_uppercase();
    }
    let (running, api) = env.serve(&config).await;
    let (key, slug) = api.register("ops@epsilon.example", "Epsilon").await;
    let api = api.with_key(&key);
    let ledger = place(&api, db("ledger-db")).await;
    let n = number(&wait_state(&api, &ledger, "pr_open").await);
    // No polling for an hour: only the delivery can bring the approval in.
    mock.review(&slug, n, "reviewer", "APPROVED");
    let order = wait_state(&api, &ledger, "merged").await;
    assert!(history(&order).contains("approved by reviewer on the pull request"), "{}", history(&order));
    mock.settle(WAIT).await;
    let review = mock.deliveries().into_iter().find(|d| d.event == "pull_request_review").unwrap();
    assert!(review.response.contains("handled"), "{review:?}");
    assert_one_pull_request_per_order(mock, &slug, &[&ledger]);
    mock.assert_well_formed();
    stop(running).await;
}

/// Git transfers that fail with a 5xx are tried again at once (backoff with jitter), not only at the next sweep.
#[tokio::test(flavor = "multi_thread")]
async fn failing_git_transfers_are_retried() {
    let env = Env::start().await;
    let mock = &env.mock;
    let (running, api) = env.serve(&env.config(Duration::from_secs(3600))).await;
    let (key, slug) = api.register("ops@delta.example", "Delta").await;
    let api = api.with_key(&key);
    let first = place(&api, json!({"kind": "App", "name": "web", "parameters": {"image": "nginx:1.27"}})).await;
    wait_state(&api, &first, "merged").await;

    let repo_git = format!("/{OWNER}/{slug}.git");
    mock.fault(Fault::before(Method::POST, &format!("{repo_git}/git-receive-pack"), 503, 2));
    mock.fault(Fault::before(Method::GET, &format!("{repo_git}/info/refs"), 502, 1));
    let started = Instant::now();
    let second = place(&api, json!({"kind": "App", "name": "api", "parameters": {"image": "nginx:1.27"}})).await;
    let order = wait_state(&api, &second, "merged").await;
    // The lane's sweep comes every 30 s: merged well before means the transfers were retried in place.
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(!history(&order).contains("waiting for the Git provider"), "{}", history(&order));
    let failed: Vec<u16> = mock.git_requests().iter().map(|r| r.status).filter(|s| *s >= 500).collect();
    assert_eq!(failed.len(), 3, "the injected failures were met: {failed:?}");
    assert_one_pull_request_per_order(mock, &slug, &[&first, &second]);
    mock.assert_well_formed();
    stop(running).await;
}
