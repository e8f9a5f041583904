//! The order service with Gitea as its Git hosting provider: a real Gitea (built from its Go module, see
//! `scripts/testbin.sh`) on loopback, the order service in-process, webhooks delivered by Gitea itself.
//!
//! The order service acts as the bot user `maxcloud-bot` (an owner of the organisation `tenants`); the Gitea admin
//! and the user `reviewer` play the humans.

use std::time::Duration;

use maxcloud_forge::{webhook, ForgeKind};
use maxcloud_server::{Config, ForgeAuth, ForgeConfig, Running};
use maxcloud_testenv::Gitea;
use maxcloud_tests::orders::{db, history, place, wait_for};
use maxcloud_tests::{git, Api};
use reqwest::Method;
use serde_json::{json, Value};

const ORG: &str = "tenants";
const SECRET: &str = "webhook-s3cret";

struct Env {
    gitea: Gitea,
    bot_token: String,
    reviewer_token: String,
    tmp: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let gitea = Gitea::start().await.expect("start Gitea");
        gitea.create_org(ORG).await.unwrap();
        let bot_token = gitea.create_user("maxcloud-bot").await.unwrap();
        let reviewer_token = gitea.create_user("reviewer").await.unwrap();
        // The bot owns the organisation's repositories (creates them, protects main, merges).
        let (_, teams) =
            gitea.api(Method::GET, &format!("/orgs/{ORG}/teams"), gitea.admin_token(), None).await.unwrap();
        let owners =
            teams.as_array().unwrap().iter().find(|t| t["name"] == "Owners").expect("Owners team")["id"].clone();
        let (status, body) = gitea
            .api(Method::PUT, &format!("/teams/{owners}/members/maxcloud-bot"), gitea.admin_token(), None)
            .await
            .unwrap();
        assert_eq!(status, 204, "{body}");
        Env { gitea, bot_token, reviewer_token, tmp: tempfile::tempdir().unwrap() }
    }

    fn config(&self, poll: Duration) -> Config {
        let mut config = Config::embedded(self.tmp.path().join("data"));
        config.forge = Some(ForgeConfig {
            kind: ForgeKind::Gitea,
            url: self.gitea.base_url(),
            owner: ORG.into(),
            auth: ForgeAuth::Token(self.bot_token.clone()),
            webhook_secret: Some(SECRET.into()),
            poll_interval: poll,
            flux_read_token: None,
        });
        config
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.gitea.api(method, path, token, body.as_ref()).await.unwrap()
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, self.gitea.admin_token(), body).await
    }
}

fn api_of(running: &Running) -> Api {
    Api { http: reqwest::Client::new(), base: format!("http://{}", running.addr), key: None }
}

async fn wait_state(api: &Api, id: &str, state: &str) -> Value {
    wait_for(api, id, state, Duration::from_secs(30), |o| o["state"] == state).await
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_become_pull_requests_on_gitea() {
    let env = Env::start().await;
    let running = maxcloud_server::start(&env.config(Duration::from_secs(3600))).await.unwrap();
    let api = api_of(&running);
    let (key, slug) = api.register("ops@acme.example", "Acme").await;
    let api = api.with_key(&key);
    let repo = format!("/repos/{ORG}/{slug}");

    // Gitea delivers the organisation's pull request events to the order service.
    let hook = json!({
        "type": "gitea",
        "active": true,
        "events": ["pull_request", "pull_request_review", "pull_request_sync"],
        "config": {"url": format!("http://{}/api/v1/webhooks/gitea", running.addr), "content_type": "json", "secret": SECRET},
    });
    let (status, body) = env.admin(Method::POST, &format!("/orgs/{ORG}/hooks"), Some(hook)).await;
    assert_eq!(status, 201, "{body}");

    // --- An App (auto-merge): repository created with its README, PR opened, labelled, merged by the bot.
    let web = place(&api, json!({"kind": "App", "name": "web", "parameters": {"image": "nginx:1.27"}})).await;
    let order = wait_state(&api, &web, "merged").await;
    let pr = &order["pull_request"];
    let number = pr["number"].as_i64().unwrap();
    assert_eq!(pr["url"], format!("{}/{ORG}/{slug}/pulls/{number}", env.gitea.base_url()), "{order:#}");
    let (status, r) = env.admin(Method::GET, &repo, None).await;
    assert_eq!((status, r["private"].as_bool(), r["default_branch"].as_str()), (200, Some(true), Some("main")), "{r}");
    let (_, forge_pr) = env.admin(Method::GET, &format!("{repo}/pulls/{number}"), None).await;
    assert_eq!(forge_pr["merged"], true);
    assert_eq!(forge_pr["merge_commit_sha"], pr["merge_commit"], "the order records Gitea's merge commit");
    // (Its head branch is deleted after the merge, so Gitea names the head refs/pull/N/head now.)
    assert_eq!(forge_pr["head"]["sha"], pr["head_commit"]);
    assert_eq!(forge_pr["title"], pr["title"]);
    // The body: who and what, the parameters, the diff against main, the estimated monthly price.
    let body = forge_pr["body"].as_str().unwrap();
    for part in [
        "| Requested by | ops@acme.example |",
        "### Parameters",
        "image: nginx:1.27",
        "### Change against `main`",
        "--- /dev/null\n+++ b/apps/web.yaml",
        "| Estimated price | EUR 0.00–",
        "(0–10 instances of 1 vCPU, 512 MiB;",
    ] {
        assert!(body.contains(part), "PR body lacks {part:?}:\n{body}");
    }
    let labels: Vec<&str> = forge_pr["labels"].as_array().unwrap().iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(labels, ["action/create", "kind/app"], "{forge_pr:#}");
    let (status, _) = env.admin(Method::GET, &format!("{repo}/contents/apps/web.yaml?ref=main"), None).await;
    assert_eq!(status, 200, "the App is on main");
    let (status, _) = env.admin(Method::GET, &format!("{repo}/contents/README.md?ref=main"), None).await;
    assert_eq!(status, 200, "the README skeleton is on main");
    let (status, _) = env.admin(Method::GET, &format!("{repo}/branches/order%2F{web}"), None).await;
    assert_eq!(status, 404, "the merged branch is deleted");
    let (status, protection) = env.admin(Method::GET, &format!("{repo}/branch_protections/main"), None).await;
    assert_eq!((status, protection["required_approvals"].as_i64()), (200, Some(1)), "{protection}");
    // The local mirror has the merge commit (Flux's applied revision is checked against it).
    let mirror = env.tmp.path().join("data/repos").join(format!("{slug}.git"));
    assert_eq!(git(&mirror, &["rev-parse", "main"]).trim(), pr["merge_commit"].as_str().unwrap());

    // The reviewer may review the tenant's repository (write access makes the approval count).
    env.gitea.add_collaborator(ORG, &slug, "reviewer", "write").await.unwrap();
    let reviewer = |method: Method, path: String, body: Option<Value>| {
        let env = &env;
        async move { env.call(method, &path, &env.reviewer_token, body).await }
    };

    // --- A Database needs review: changes requested, then approved on Gitea → the order service merges.
    let orders_db = place(&api, db("orders-db")).await;
    let order = wait_state(&api, &orders_db, "pr_open").await;
    assert_eq!(order["pull_request"]["review_state"], "pending");
    let n = order["pull_request"]["number"].as_i64().unwrap();
    let (status, body) = api.post(&format!("/orders/{orders_db}/approve"), &json!({})).await;
    assert_eq!(status, 409, "approved on the pull request, not through the API: {body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(order["pull_request"]["url"].as_str().unwrap()),
        "{body}"
    );
    let (_, pending) = api.get("/orders?review=pending").await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");

    let (status, body) = reviewer(
        Method::POST,
        format!("{repo}/pulls/{n}/reviews"),
        Some(json!({"event": "REQUEST_CHANGES", "body": "use a larger instance"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let order = wait_for(&api, &orders_db, "changes requested", Duration::from_secs(20), |o| {
        o["pull_request"]["review_state"] == "changes_requested"
    })
    .await;
    assert_eq!(order["state"], "pr_open");
    assert_eq!(order["pull_request"]["reviewed_by"], json!(["reviewer"]));
    let (status, body) =
        reviewer(Method::POST, format!("{repo}/pulls/{n}/reviews"), Some(json!({"event": "APPROVED"}))).await;
    assert_eq!(status, 200, "{body}");
    let order = wait_state(&api, &orders_db, "merged").await;
    assert!(history(&order).contains("approved by reviewer on the pull request"), "{}", history(&order));
    assert_eq!(order["pull_request"]["review_state"], "approved");
    let (status, _) = env.admin(Method::GET, &format!("{repo}/contents/databases/orders-db.yaml?ref=main"), None).await;
    assert_eq!(status, 200);

    // --- Closed without merging by a human → rejected; nothing reaches main; the resource is gone.
    let closed = place(&api, db("closed-db")).await;
    let n = wait_state(&api, &closed, "pr_open").await["pull_request"]["number"].as_i64().unwrap();
    let (status, body) = env.admin(Method::PATCH, &format!("{repo}/pulls/{n}"), Some(json!({"state": "closed"}))).await;
    assert_eq!(status, 201, "{body}");
    let order = wait_state(&api, &closed, "rejected").await;
    assert!(order["error"].as_str().unwrap().contains("closed without merging"), "{order:#}");
    let (_, resources) = api.get("/resources?kind=Database").await;
    assert!(!resources.to_string().contains("closed-db"), "{resources}");

    // --- Merged by a human on Gitea (an admin, past the protection) → merged, who merged it recorded.
    let human = place(&api, db("human-db")).await;
    let n = wait_state(&api, &human, "pr_open").await["pull_request"]["number"].as_i64().unwrap();
    let merge = json!({"Do": "merge", "force_merge": true});
    let (status, body) = env.admin(Method::POST, &format!("{repo}/pulls/{n}/merge"), Some(merge)).await;
    assert_eq!(status, 200, "{body}");
    let order = wait_state(&api, &human, "merged").await;
    assert!(history(&order).contains("merged by maxcloud-admin on the Git provider"), "{}", history(&order));

    // --- A human pushes to the order's branch: the order fails with the reason, the PR and the commit stay.
    let pushed = place(&api, db("pushed-db")).await;
    let order = wait_state(&api, &pushed, "pr_open").await;
    let n = order["pull_request"]["number"].as_i64().unwrap();
    let work = env.tmp.path().join("work");
    let authed =
        env.gitea.clone_url(ORG, &slug).replace("http://", &format!("http://reviewer:{}@", env.reviewer_token));
    git(env.tmp.path(), &["clone", "-q", "--branch", &format!("order/{pushed}"), &authed, work.to_str().unwrap()]);
    std::fs::write(work.join("databases/pushed-db.yaml"), "# edited by hand\n").unwrap();
    git(&work, &["-c", "user.name=R", "-c", "user.email=r@example.com", "commit", "-qam", "hand edit"]);
    git(&work, &["push", "-q", "origin", &format!("order/{pushed}")]);
    let human_head = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    let order = wait_state(&api, &pushed, "failed").await;
    let error = order["error"].as_str().unwrap();
    assert!(error.contains("was changed on the Git provider") && error.contains(&human_head[..12]), "{error}");
    let (_, forge_pr) = env.admin(Method::GET, &format!("{repo}/pulls/{n}"), None).await;
    assert_eq!(
        (forge_pr["state"].as_str(), forge_pr["head"]["sha"].as_str()),
        (Some("open"), Some(human_head.as_str()))
    );
    assert_eq!(
        api.get(&format!("/orders/{pushed}")).await.1["parameters"]["deletionProtection"],
        false,
        "nothing lost"
    );

    // --- A newer order supersedes one in review: its PR is closed on Gitea with a comment naming the newer one.
    let first = place(&api, db("cache-db")).await;
    let n_first = wait_state(&api, &first, "pr_open").await["pull_request"]["number"].as_i64().unwrap();
    let newer = place(
        &api,
        json!({"kind": "Database", "name": "cache-db", "action": "update", "parameters": {"deletionProtection": false, "instances": 2}}),
    )
    .await;
    assert_eq!(api.get(&format!("/orders/{first}")).await.1["state"], "superseded");
    let n_newer = wait_state(&api, &newer, "pr_open").await["pull_request"]["number"].as_i64().unwrap();
    assert_ne!(n_first, n_newer);
    let (_, old_pr) = env.admin(Method::GET, &format!("{repo}/pulls/{n_first}"), None).await;
    assert_eq!(old_pr["state"], "closed");
    let (_, comments) = env.admin(Method::GET, &format!("{repo}/issues/{n_first}/comments"), None).await;
    assert!(comments.to_string().contains(&format!("Superseded by order `{newer}`")), "{comments}");

    // --- Rejected through the API: the PR is closed on Gitea with the reason.
    let (status, body) = api.post(&format!("/orders/{newer}/reject"), &json!({"reason": "not this quarter"})).await;
    assert_eq!(status, 200, "{body}");
    let (_, forge_pr) = env.admin(Method::GET, &format!("{repo}/pulls/{n_newer}"), None).await;
    assert_eq!(forge_pr["state"], "closed");
    let (_, comments) = env.admin(Method::GET, &format!("{repo}/issues/{n_newer}/comments"), None).await;
    assert!(comments.to_string().contains("not this quarter"), "{comments}");

    // --- The cluster's verdict goes back to the PR: a commit status on the merge commit and a comment.
    let order = api.get(&format!("/orders/{web}")).await.1;
    let merge_commit = order["pull_request"]["merge_commit"].as_str().unwrap().to_string();
    running.orders.report_outcome(&web, "ready", Some("https://web.acme.example"), None).await.unwrap();
    let (_, statuses) = env.admin(Method::GET, &format!("{repo}/statuses/{merge_commit}"), None).await;
    let status = &statuses.as_array().unwrap()[0];
    assert_eq!(
        (status["context"].as_str(), status["status"].as_str()),
        (Some("maxcloud/App/web"), Some("success")),
        "{statuses}"
    );
    assert_eq!(status["target_url"], "https://web.acme.example");
    let (_, comments) = env.admin(Method::GET, &format!("{repo}/issues/{number}/comments"), None).await;
    assert!(comments.to_string().contains("is ready at https://web.acme.example"), "{comments}");

    // --- Webhook deliveries: only correctly signed ones count, a replay is a no-op, other events are ignored.
    let hooks = format!("http://{}/api/v1/webhooks/gitea", running.addr);
    let payload = json!({"action": "synchronized", "number": n_newer, "pull_request": {"number": n_newer, "head": {"ref": format!("order/{newer}")}},
        "repository": {"name": slug, "owner": {"login": ORG}}})
    .to_string();
    let send = |delivery: &str, event: &str, signature: Option<String>, body: String| {
        let mut req = reqwest::Client::new()
            .post(&hooks)
            .header("X-Gitea-Delivery", delivery)
            .header("X-Gitea-Event", event)
            .header("Content-Type", "application/json");
        if let Some(sig) = signature {
            req = req.header("X-Gitea-Signature", sig);
        }
        async move {
            let resp = req.body(body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let good = webhook::sign(ForgeKind::Gitea, SECRET.as_bytes(), payload.as_bytes());
    let bad = webhook::sign(ForgeKind::Gitea, b"guess", payload.as_bytes());
    let (s, body) = send("t-1", "pull_request", Some(bad), payload.clone()).await;
    assert_eq!((s, body["error"]["message"].as_str().map(|m| m.contains("signature"))), (401, Some(true)), "{body}");
    let (s, _) = send("t-1", "pull_request", None, payload.clone()).await;
    assert_eq!(s, 401, "unsigned");
    let (s, body) = send("t-1", "pull_request", Some(good.clone()), payload.clone()).await;
    assert_eq!((s, body["result"].as_str()), (200, Some("handled")), "{body}");
    let (s, body) = send("t-1", "pull_request", Some(good.clone()), payload.clone()).await;
    assert_eq!((s, body["result"].as_str()), (200, Some("duplicate")), "a replay: {body}");
    let push = json!({"ref": "refs/heads/main", "repository": {"name": slug, "owner": {"login": ORG}}}).to_string();
    let sig = webhook::sign(ForgeKind::Gitea, SECRET.as_bytes(), push.as_bytes());
    let (s, body) = send("t-2", "push", Some(sig), push).await;
    assert_eq!((s, body["result"].as_str()), (202, Some("ignored")), "{body}");
    let (s, body) = api.post("/webhooks/github", &json!({})).await;
    assert_eq!(s, 404, "no GitHub provider here: {body}");
    // The deliveries are audit-logged like every mutating call.
    let store = &running.store;
    let audit = store.audit_log(None, 1000).await.unwrap();
    assert!(
        audit.iter().any(|e| e.entry.path.ends_with("/webhooks/gitea") && e.entry.status == 401),
        "refused deliveries are audited"
    );

    // One pull request per order, whatever happened.
    let (_, all) = env.admin(Method::GET, &format!("{repo}/pulls?state=all&limit=50"), None).await;
    let mut heads: Vec<&str> = all.as_array().unwrap().iter().map(|p| p["head"]["ref"].as_str().unwrap()).collect();
    let count = heads.len();
    heads.sort();
    heads.dedup();
    assert_eq!(heads.len(), count, "a branch with two pull requests: {heads:?}");
    assert_eq!(count, 7, "{heads:?}");
    running.stop().await.unwrap();
}

/// Without webhooks the order service polls; revoked credentials and an unknown organisation leave orders waiting
/// with the reason (nothing lost); after a restart with working credentials they go on, never with a second PR.
#[tokio::test(flavor = "multi_thread")]
async fn polling_restarts_and_refused_credentials() {
    let env = Env::start().await;
    let config = env.config(Duration::from_secs(1));
    let running = maxcloud_server::start(&config).await.unwrap();
    let api = api_of(&running);
    let (key, slug) = api.register("ops@beta.example", "Beta").await;
    let api = api.with_key(&key);
    let repo = format!("/repos/{ORG}/{slug}");

    // No webhook is configured on Gitea: the approval is found by polling.
    let ledger = place(&api, db("ledger-db")).await;
    let n = wait_state(&api, &ledger, "pr_open").await["pull_request"]["number"].as_i64().unwrap();
    env.gitea.add_collaborator(ORG, &slug, "reviewer", "write").await.unwrap();
    let (status, body) = env
        .call(
            Method::POST,
            &format!("{repo}/pulls/{n}/reviews"),
            &env.reviewer_token,
            Some(json!({"event": "APPROVED"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let order = wait_state(&api, &ledger, "merged").await;
    assert!(history(&order).contains("approved by reviewer"), "{}", history(&order));
    let audit = running.store.audit_log(None, 1000).await.unwrap();
    assert!(!audit.iter().any(|e| e.entry.path.contains("webhooks")), "no webhook was involved");

    // The bot's credentials stop working: the order waits, saying why.
    let (status, body) = env
        .admin(
            Method::PATCH,
            "/admin/users/maxcloud-bot",
            Some(json!({"login_name": "maxcloud-bot", "source_id": 0, "prohibit_login": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let web = place(&api, json!({"kind": "App", "name": "web", "parameters": {"image": "nginx:1.27"}})).await;
    let order = wait_for(&api, &web, "the reason", Duration::from_secs(20), |o| o["error"].is_string()).await;
    assert_eq!(order["state"], "accepted", "{order:#}");
    let error = order["error"].as_str().unwrap();
    assert!(error.starts_with("waiting for the Git provider: access denied"), "{error}");
    running.stop().await.unwrap();

    // Credentials back, server restarted: the order goes on, with one pull request.
    let (status, body) = env
        .admin(
            Method::PATCH,
            "/admin/users/maxcloud-bot",
            Some(json!({"login_name": "maxcloud-bot", "source_id": 0, "prohibit_login": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let running = maxcloud_server::start(&config).await.unwrap();
    let api = Api { base: format!("http://{}", running.addr), ..api };
    wait_state(&api, &web, "merged").await;
    let (_, all) = env.admin(Method::GET, &format!("{repo}/pulls?state=all&limit=50"), None).await;
    assert_eq!(all.as_array().unwrap().len(), 2, "one PR per order: {all:#}");
    running.stop().await.unwrap();

    // An organisation that does not exist on Gitea: the order waits with the forge's answer.
    let mut config = env.config(Duration::from_secs(3600));
    config.data_dir = env.tmp.path().join("other");
    if let Some(forge) = config.forge.as_mut() {
        forge.owner = "no-such-org".into();
    }
    let running = maxcloud_server::start(&config).await.unwrap();
    let api = api_of(&running);
    let (key, _) = api.register("ops@gamma.example", "Gamma").await;
    let api = api.with_key(&key);
    let id = place(&api, json!({"kind": "App", "name": "web", "parameters": {"image": "nginx:1.27"}})).await;
    let order = wait_for(&api, &id, "the reason", Duration::from_secs(20), |o| o["error"].is_string()).await;
    assert_eq!(order["state"], "accepted");
    assert!(order["error"].as_str().unwrap().contains("no-such-org"), "{order:#}");
    running.stop().await.unwrap();
}
