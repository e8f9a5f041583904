//! `sync`: merge → applied through Flux, Receiver-triggered. A real kube-apiserver with Flux's source-,
//! kustomize- and notification-controller; the order service in-process with the status aggregator; one tenant
//! onboarded as the platform does it, its GitRepository at the production interval (10 minutes), so only the
//! order service's call to the tenant's Receiver can make a sync fast. `--orders` App orders are placed one
//! after another; for each, the time from `merged` to `applied` (Flux's last applied revision contains the
//! merge commit, as the aggregator sees it) is measured on the order service's event bus.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use maxcloud_server::{start, ClusterAccess, Config};
use maxcloud_testenv::flux::{onboard_tenant, tenant_onboarding, TenantSecrets};
use maxcloud_testenv::tools::catalog_crd;
use maxcloud_testenv::{ControlPlane, Flux};
use serde_json::{json, Value};

const WEBHOOK_TOKEN: &str = "bench-webhook-token-0123456789abcdef";

pub async fn run(orders: usize) -> anyhow::Result<()> {
    let cp = ControlPlane::start().await.context("control plane")?;
    let flux = Flux::start(&cp).await.context("Flux")?;
    cp.apply(vec![catalog_crd("app.yaml")?]).await.context("App CRD")?;
    let dir = tempfile::tempdir()?;
    let config = Config {
        flux_receiver: Some((flux.receiver_url(), WEBHOOK_TOKEN.into())),
        cluster: Some(ClusterAccess::Kubeconfig(cp.kubeconfig.clone())),
        ..Config::embedded(dir.path().join("data"))
    };
    let running = start(&config).await?;
    let base = format!("http://{}/api/v1", running.addr);
    let http = reqwest::Client::new();
    let (key, slug) = crate::register_org(&http, &base, "ops@sync.example", "Sync").await?;
    let token: Value =
        http.post(format!("{base}/auth/git-tokens")).bearer_auth(&key).json(&json!({})).send().await?.json().await?;
    let token = token["token"].as_str().context("git token")?;
    // The order service commits the onboarding in the background at registration.
    let platform = config.data_dir.join("repos/platform.git");
    let docs = loop {
        match tenant_onboarding(&platform, &slug, None) {
            Ok(docs) if !docs.is_empty() => break docs,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let tenant = running.orders.store().tenant_by_slug(&slug).await?.context("tenant")?;
    let identity = running.orders.tenant_key(&tenant).await?.identity();
    let secrets = TenantSecrets { git_token: token, webhook_token: WEBHOOK_TOKEN, sops_identity: &identity };
    onboard_tenant(&cp, docs, Some(secrets), Duration::from_secs(60)).await.context("onboarding")?;

    let mut events = running.orders.subscribe();
    let mut hist = Histogram::<u64>::new(3)?;
    for i in 0..orders {
        let order: Value = http
            .post(format!("{base}/orders"))
            .bearer_auth(&key)
            .json(&json!({"kind": "App", "name": format!("app-{i}"), "parameters": {"image": "nginx:1.27"}}))
            .send()
            .await?
            .json()
            .await?;
        let id = order["id"].as_str().with_context(|| format!("order: {order}"))?.to_string();
        let mut merged = None;
        let applied = loop {
            let update = match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                Ok(Ok(maxcloud_orders::Announcement::Order(update))) => update,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => bail!("event bus: {e}"),
                Err(_) => bail!("order {i} not applied within 60 s (merged: {})", merged.is_some()),
            };
            if update.order_id != id {
                continue;
            }
            match update.state.as_str() {
                "merged" => merged = Some(Instant::now()),
                "applied" => break Instant::now(),
                "failed" => bail!("order {i} failed"),
                _ => {}
            }
        };
        let merged = merged.context("applied before merged")?;
        hist.record(applied.duration_since(merged).as_micros() as u64)?;
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "merge -> applied (Receiver-triggered, GitRepository interval 10m), {orders} orders: p50 {:.0} ms, p90 {:.0} ms, \
         max {:.0} ms",
        ms(0.5),
        ms(0.9),
        hist.max() as f64 / 1000.0
    );
    Ok(())
}
