//! `maxcloud-bench aggregator`: the status aggregator against a real kube-apiserver (crates/testenv) holding
//! `--xrs` App XRs (the CRD Crossplane derives from xrds/app.yaml) and three composed Knative Services per XR.
//! Printed:
//! - initial sync: aggregator start -> every XR observed and recorded in the store;
//! - the process's RSS before and after (the aggregator runs in this process; its watch caches and the store);
//! - cluster change -> event latency p50/p99: the status of `--changes` XRs is patched (8 at a time) and the
//!   time from the patch's response to the aggregator's event is measured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{stream, StreamExt};
use hdrhistogram::Histogram;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use maxcloud_status::{Aggregator, Event};
use maxcloud_store::Store;
use maxcloud_testenv::tools::{catalog_crd, crd_set};
use maxcloud_testenv::ControlPlane;
use serde_json::{json, Value};
use tokio::sync::mpsc;

fn rss_mib() -> f64 {
    maxcloud_testenv::process::rss_kib(std::process::id()).unwrap_or(0) as f64 / 1024.0
}

async fn create_all(api: &Api<DynamicObject>, objects: Vec<Value>) -> anyhow::Result<()> {
    let results: Vec<_> = stream::iter(objects)
        .map(|o| async move {
            let obj: DynamicObject = serde_json::from_value(o)?;
            api.create(&PostParams::default(), &obj).await.map(|_| ()).map_err(anyhow::Error::from)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn run(xrs: usize, changes: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let cp = ControlPlane::start().await.context("control plane")?;
    println!("control plane ready in {:.1} s", cp.startup.as_secs_f64());
    let mut setup = vec![
        catalog_crd("app.yaml")?,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-bench"}}),
    ];
    setup.extend(
        serde_saphyr::from_multiple::<Value>(&crd_set("knative-serving", "KNATIVE_SERVING_VERSION")?)?
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition"),
    );
    cp.apply(setup).await.context("CRDs")?;
    let client = cp.client().await?;
    let app_ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("maxcloud.dev", "v1alpha1", "App"), "apps");
    let ksvc_ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"), "services");
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mc-bench", &app_ar);
    let ksvcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mc-bench", &ksvc_ar);

    let t = Instant::now();
    // Each XR names its three composed objects as Crossplane does (`spec.crossplane.resourceRefs`), so the
    // aggregator builds their trees and watches the composed kind.
    let app = |i: usize| {
        let refs: Vec<Value> = (3 * i..3 * i + 3)
            .map(|j| json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": format!("svc-{j}")}))
            .collect();
        json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App",
               "metadata": {"name": format!("app-{i}"), "namespace": "mc-bench", "labels": {"maxcloud.dev/tenant": "bench"}},
               "spec": {"image": "nginx:1.27", "crossplane": {"resourceRefs": refs}}})
    };
    create_all(&apps, (0..xrs).map(app).collect()).await.context("create XRs")?;
    let ksvc = |i: usize| {
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
               "metadata": {"name": format!("svc-{i}"), "namespace": "mc-bench",
                            "labels": {"crossplane.io/composite": format!("app-{}", i / 3)}},
               "spec": {"template": {"spec": {"containers": [{"image": "nginx:1.27"}]}}}})
    };
    create_all(&ksvcs, (0..3 * xrs).map(ksvc).collect()).await.context("create composed objects")?;
    println!("created {xrs} XRs and {} composed objects in {:.1} s", 3 * xrs, t.elapsed().as_secs_f64());

    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    store.migrate().await?;
    let rss_before = rss_mib();
    let (tx, mut rx) = mpsc::channel(65536);
    let t = Instant::now();
    let aggregator = Aggregator::new(client.clone(), store);
    let tree = aggregator.tree();
    let aggregator = tokio::spawn(aggregator.run(tx));
    let mut seen = 0usize;
    while seen < xrs {
        match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
            Ok(Some(_)) => seen += 1,
            Ok(None) => bail!("the aggregator stopped"),
            Err(_) => bail!("initial sync stalled at {seen} of {xrs}"),
        }
    }
    let xrs_synced = t.elapsed();
    // Then the composed objects: every XR's tree complete.
    while tree.len() < 4 * xrs {
        if t.elapsed() > Duration::from_secs(120) {
            bail!("tree sync stalled at {} of {} objects", tree.len(), 4 * xrs);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sync = t.elapsed();
    println!(
        "initial sync: XRs recorded after {:.2} s; trees complete ({} objects) after {:.2} s",
        xrs_synced.as_secs_f64(),
        tree.len(),
        sync.as_secs_f64()
    );
    let rss_after = rss_mib();
    println!(
        "initial sync: {xrs} XRs observed and recorded, {} composed objects in their trees, in {:.2} s; process RSS \
         {:.0} MiB before, {:.0} MiB after (+{:.0} MiB)",
        3 * xrs,
        sync.as_secs_f64(),
        rss_before,
        rss_after,
        rss_after - rss_before
    );

    // Change -> event latency.
    let mut hist = Histogram::<u64>::new(3)?;
    let patched: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let crossplane = PatchParams::apply("crossplane").force();
    let step = (xrs / changes.max(1)).max(1);
    let names: Vec<String> = (0..changes.min(xrs)).map(|i| format!("app-{}", i * step)).collect();
    let receiver = tokio::spawn(async move {
        let mut got = HashMap::new();
        while got.len() < names_len(changes, xrs) {
            match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some(Event::Unmanaged { name, status, .. })) if status == "ready" => {
                    got.insert(name, Instant::now());
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        got
    });
    let patch_apps = apps.clone();
    let patched_in = patched.clone();
    stream::iter(names.clone())
        .map(|name| {
            let (api, pp, patched) = (patch_apps.clone(), crossplane.clone(), patched_in.clone());
            async move {
                let body = json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App", "status": {
                    "url": format!("https://{name}.example"),
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Available",
                                    "lastTransitionTime": "2026-11-21T08:00:00Z"}]}});
                let result = api.patch_status(&name, &pp, &Patch::Apply(&body)).await;
                if result.is_ok() {
                    if let Ok(mut p) = patched.lock() {
                        p.insert(name, Instant::now());
                    }
                }
                result.map(|_| ())
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<(), _>>()?;
    let got = receiver.await?;
    let patched = patched.lock().map(|p| p.clone()).unwrap_or_default();
    for (name, at) in &got {
        if let Some(sent) = patched.get(name) {
            // An event can arrive before the patch call returns: count that as 0.
            hist.record(at.saturating_duration_since(*sent).as_micros() as u64)?;
        }
    }
    println!(
        "change -> event: {} of {} changes observed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        got.len(),
        names.len(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    aggregator.abort();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn names_len(changes: usize, xrs: usize) -> usize {
    changes.min(xrs)
}
