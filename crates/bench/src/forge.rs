//! `forge`: orders on a real Gitea (built from its Go module, `scripts/testbin.sh`), the order service in-process,
//! webhooks delivered by Gitea. Measured on the order service's event bus:
//! - an App (auto-merge): accepted → pr_open (repository fetched, commit built, branch pushed, PR opened and
//!   labelled) and accepted → merged (merged on Gitea, main fetched back), orders placed one after another;
//! - a Database (review): the reviewer's approval on Gitea → merged (webhook delivery, reviews read, merge).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use maxcloud_forge::ForgeKind;
use maxcloud_server::{start, Config, ForgeAuth, ForgeConfig};
use maxcloud_testenv::Gitea;
use reqwest::Method;
use serde_json::{json, Value};

const ORG: &str = "tenants";
const SECRET: &str = "bench-webhook-secret";

pub async fn run(orders: usize, reviews: usize) -> anyhow::Result<()> {
    let gitea = Gitea::start().await.context("Gitea")?;
    gitea.create_org(ORG).await?;
    let bot = gitea.create_user("maxcloud-bot").await?;
    let reviewer = gitea.create_user("reviewer").await?;
    let (_, teams) = gitea.api(Method::GET, &format!("/orgs/{ORG}/teams"), gitea.admin_token(), None).await?;
    let owners = teams.as_array().and_then(|t| t.iter().find(|t| t["name"] == "Owners")).context("Owners team")?;
    let path = format!("/teams/{}/members/maxcloud-bot", owners["id"]);
    gitea.api(Method::PUT, &path, gitea.admin_token(), None).await?;

    let dir = tempfile::tempdir()?;
    let mut config = Config::embedded(dir.path().join("data"));
    config.forge = Some(ForgeConfig {
        kind: ForgeKind::Gitea,
        url: gitea.base_url(),
        owner: ORG.into(),
        auth: ForgeAuth::Token(bot),
        webhook_secret: Some(SECRET.into()),
        poll_interval: Duration::from_secs(3600),
        flux_read_token: None,
    });
    let running = start(&config).await?;
    let base = format!("http://{}/api/v1", running.addr);
    let http = reqwest::Client::new();
    let (key, slug) = crate::register_org(&http, &base, "ops@bench.example", "Bench").await?;
    let hook = json!({
        "type": "gitea", "active": true, "events": ["pull_request", "pull_request_review"],
        "config": {"url": format!("http://{}/api/v1/webhooks/gitea", running.addr), "content_type": "json", "secret": SECRET},
    });
    gitea.api(Method::POST, &format!("/orgs/{ORG}/hooks"), gitea.admin_token(), Some(&hook)).await?;

    let mut events = running.orders.subscribe();
    let place = |body: Value| {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        async move {
            let order: Value =
                http.post(format!("{base}/orders")).bearer_auth(&key).json(&body).send().await?.json().await?;
            order["id"].as_str().map(str::to_string).with_context(|| format!("order: {order}"))
        }
    };

    // The first order also creates the repository; it is not counted.
    let first = place(json!({"kind": "App", "name": "warm-up", "parameters": {"image": "nginx:1.27"}})).await?;
    wait(&mut events, first, &["merged"]).await?;
    let (mut opened, mut merged) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    for i in 0..orders {
        let t0 = Instant::now();
        let id =
            place(json!({"kind": "App", "name": format!("app-{i}"), "parameters": {"image": "nginx:1.27"}})).await?;
        let at = wait(&mut events, id, &["pr_open", "merged"]).await?;
        opened.record((at[0] - t0).as_micros() as u64)?;
        merged.record((at[1] - t0).as_micros() as u64)?;
    }
    gitea.add_collaborator(ORG, &slug, "reviewer", "write").await?;
    let mut approval = Histogram::<u64>::new(3)?;
    for i in 0..reviews {
        let body = json!({"kind": "Database", "name": format!("db-{i}"), "parameters": {"deletionProtection": false}});
        let id = place(body).await?;
        wait(&mut events, id.clone(), &["pr_open"]).await?;
        let order: Value = http.get(format!("{base}/orders/{id}")).bearer_auth(&key).send().await?.json().await?;
        let n = order["pull_request"]["number"].as_i64().context("PR number")?;
        let t0 = Instant::now();
        let review = json!({"event": "APPROVED"});
        let (status, answer) = gitea
            .api(Method::POST, &format!("/repos/{ORG}/{slug}/pulls/{n}/reviews"), &reviewer, Some(&review))
            .await?;
        if status != 200 {
            bail!("review: {status} {answer}");
        }
        let at = wait(&mut events, id, &["merged"]).await?;
        approval.record((at[0] - t0).as_micros() as u64)?;
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("forge (Gitea {}, on loopback; the order service in-process on SQLite)", gitea.base_url());
    println!(
        "  App, accepted -> pr_open: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms ({} orders)",
        ms(&opened, 0.5),
        ms(&opened, 0.9),
        opened.max() as f64 / 1000.0,
        opened.len()
    );
    println!(
        "  App, accepted -> merged:  p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        ms(&merged, 0.5),
        ms(&merged, 0.9),
        merged.max() as f64 / 1000.0
    );
    println!(
        "  Database, approval on Gitea -> merged (webhook): p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms ({} orders)",
        ms(&approval, 0.5),
        ms(&approval, 0.9),
        approval.max() as f64 / 1000.0,
        approval.len()
    );
    running.stop().await?;
    Ok(())
}

/// Waits for order `id` to reach each of `states` in turn; the instants it did.
async fn wait(
    events: &mut tokio::sync::broadcast::Receiver<maxcloud_orders::Announcement>,
    id: String,
    states: &[&str],
) -> anyhow::Result<Vec<Instant>> {
    let mut at = Vec::new();
    while at.len() < states.len() {
        let update = match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Ok(maxcloud_orders::Announcement::Order(update))) => update,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => bail!("event bus: {e}"),
            Err(_) => bail!("order {id} did not reach {}", states[at.len()]),
        };
        if update.order_id == id && update.state == states[at.len()] {
            at.push(Instant::now());
        } else if update.order_id == id && matches!(update.state.as_str(), "failed" | "rejected") {
            bail!("order {id} {}", update.state);
        }
    }
    Ok(at)
}
