//! The aggregator against a real kube-apiserver: XRs of the catalog kinds (installed as the CRDs Crossplane
//! derives from xrds/) are watched; their status moves resources and merged orders in the store; unmanaged
//! objects are reported; a kind installed later is picked up; states converge across an API-server restart.

mod common;

use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use maxcloud_status::{Aggregator, Event};
use maxcloud_store::{Accepted, NewOrder, NewPullRequest};
use maxcloud_testenv::tools::catalog_crd;
use maxcloud_testenv::ControlPlane;
use serde_json::{json, Value};
use tokio::sync::mpsc;

fn crd_of(xrd: &str) -> Value {
    catalog_crd(xrd).unwrap_or_else(|e| panic!("{e}"))
}

async fn next_event(rx: &mut mpsc::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("aggregator stopped while waiting for {what}"),
            Err(_) => panic!("no event for {what} within 30 s"),
        }
    }
}

fn order(tenant: &str, name: &str) -> NewOrder {
    NewOrder {
        id: format!("ord-{name}"),
        tenant_id: tenant.into(),
        action: "create".into(),
        kind: "App".into(),
        name: name.into(),
        parameters: r#"{"image":"nginx:1.27"}"#.into(),
        requester: "ops@example.com".into(),
        idempotency_key: None,
        request_hash: None,
        path: format!("apps/{name}.yaml"),
        merge_policy: "auto".into(),
        reviewers: Vec::new(),
        required_approvals: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_reaches_the_store_and_converges_across_restarts() {
    let mut cp = ControlPlane::start().await.expect("control plane");
    cp.apply(vec![
        crd_of("app.yaml"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-acme"}}),
    ])
    .await
    .expect("App CRD");

    // The order service's view: tenant acme with a merged order for App web.
    let dir = tempfile::tempdir().unwrap();
    let (store, tenant_id) = common::store_with_acme(dir.path()).await;
    let Accepted::Created(web) = store.accept_order(order(&tenant_id, "web")).await.unwrap() else { panic!() };
    let pr = NewPullRequest {
        branch: "b".into(),
        head_commit: "c1".into(),
        title: "t".into(),
        body: "b".into(),
        ..Default::default()
    };
    store.record_merged(&web, pr, "c1", None).await.unwrap();

    let (tx, mut rx) = mpsc::channel(256);
    let aggregator = tokio::spawn(Aggregator::new(cp.client().await.unwrap(), store.clone()).run(tx));

    // Flux applies the committed object; the composition has not made anything ready yet.
    let client = cp.client().await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("maxcloud.dev", "v1alpha1", "App"), "apps");
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mc-acme", &ar);
    let ssa = PatchParams::apply("flux").force();
    let object = |name: &str, labels: Value| {
        json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App",
               "metadata": {"name": name, "namespace": "mc-acme", "labels": labels},
               "spec": {"image": "nginx:1.27"}})
    };
    let labels = json!({"maxcloud.dev/tenant": "acme", "maxcloud.dev/order-id": web.id});
    apps.patch("web", &ssa, &Patch::Apply(object("web", labels))).await.unwrap();
    next_event(
        &mut rx,
        "web progressing",
        |e| matches!(e, Event::Observed { name, status, .. } if name == "web" && status == "progressing"),
    )
    .await;

    // Crossplane reports it ready with its URL: the order becomes ready, the resource carries the URL.
    let status = |ready: &str, url: Option<&str>, message: Option<&str>| {
        let mut status = json!({"conditions": [
            {"type": "Ready", "status": ready, "reason": "Available", "lastTransitionTime": "2026-11-21T08:00:00Z"},
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-11-21T08:00:00Z"}]});
        if let Some(url) = url {
            status["url"] = url.into();
        }
        if let Some(message) = message {
            status["message"] = message.into();
        }
        json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App", "status": status})
    };
    let crossplane = PatchParams::apply("crossplane").force();
    apps.patch_status("web", &crossplane, &Patch::Apply(status("True", Some("https://web.mc-acme.example"), None)))
        .await
        .unwrap();
    let ready = next_event(
        &mut rx,
        "web ready",
        |e| matches!(e, Event::Observed { name, status, .. } if name == "web" && status == "ready"),
    )
    .await;
    assert_eq!(
        ready,
        Event::Observed {
            tenant_id: tenant_id.clone(),
            kind: "App".into(),
            name: "web".into(),
            status: "ready".into(),
            url: Some("https://web.mc-acme.example".into()),
            message: None,
            changed: true,
            order: Some((web.id.clone(), "ready".into())),
        }
    );
    assert_eq!(store.order(&tenant_id, &web.id).await.unwrap().unwrap().state, "ready");
    let row = store.resource(&tenant_id, &web.resource_id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.url.as_deref()), ("ready", Some("https://web.mc-acme.example")));

    // A Workspace's nested App (controlled by the Workspace XR) is part of it, not unmanaged; something created
    // with kubectl is reported as unmanaged and changes nothing in the store.
    cp.apply(vec![crd_of("workspace.yaml")]).await.unwrap();
    let ws_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("maxcloud.dev", "v1alpha1", "Workspace"),
        "workspaces",
    );
    let workspaces: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mc-acme", &ws_ar);
    let ws = json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "cloud", "namespace": "mc-acme"}, "spec": {"application": "nextcloud"}});
    let deadline = Instant::now() + Duration::from_secs(20);
    let ws = loop {
        match workspaces.patch("cloud", &ssa, &Patch::Apply(&ws)).await {
            Ok(ws) => break ws,
            Err(e) => assert!(Instant::now() < deadline, "Workspace kind not served: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut inner = object("inner", json!({}));
    inner["metadata"]["ownerReferences"] = json!([{"apiVersion": "maxcloud.dev/v1alpha1", "kind": "Workspace",
        "name": "cloud", "uid": ws.metadata.uid.clone().unwrap(), "controller": true}]);
    apps.patch("inner", &ssa, &Patch::Apply(inner)).await.unwrap();
    apps.patch("handmade", &ssa, &Patch::Apply(object("handmade", json!({})))).await.unwrap();
    let mut before = Vec::new();
    loop {
        let e = next_event(&mut rx, "handmade unmanaged", |_| true).await;
        if matches!(&e, Event::Unmanaged { name, .. } if name == "handmade") {
            break;
        }
        before.push(e);
    }
    assert!(
        !before.iter().any(|e| matches!(e, Event::Unmanaged { name, .. } if name == "inner")),
        "a nested XR is not unmanaged: {before:?}"
    );

    // A kind installed after the aggregator started is watched too.
    cp.apply(vec![crd_of("dnsrecord.yaml")]).await.unwrap();
    let dns_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("maxcloud.dev", "v1alpha1", "DNSRecord"),
        "dnsrecords",
    );
    let dns: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mc-acme", &dns_ar);
    let record = json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "DNSRecord",
        "metadata": {"name": "www", "namespace": "mc-acme"},
        "spec": {"name": "www", "type": "A", "targets": ["203.0.113.10"]}});
    let deadline = Instant::now() + Duration::from_secs(20);
    while dns.patch("www", &ssa, &Patch::Apply(&record)).await.is_err() {
        assert!(Instant::now() < deadline, "DNSRecord kind not served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    next_event(&mut rx, "DNSRecord seen", |e| matches!(e, Event::Unmanaged { kind, .. } if kind == "DNSRecord")).await;

    // The API server goes away; meanwhile nothing can change. After the restart a change made then still
    // arrives (the watch is re-established and re-lists).
    cp.stop_apiserver();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cp.restart_apiserver().await.expect("restart");
    let client = cp.client().await.unwrap();
    let apps: Api<DynamicObject> = Api::namespaced_with(client, "mc-acme", &ar);
    apps.patch_status("web", &crossplane, &Patch::Apply(status("False", None, Some("revision failed")))).await.unwrap();
    next_event(&mut rx, "web progressing after restart", |e| {
        matches!(e, Event::Observed { name, status, message, .. }
            if name == "web" && status == "progressing" && message.as_deref() == Some("revision failed"))
    })
    .await;
    let row = store.resource(&tenant_id, &web.resource_id).await.unwrap().unwrap();
    assert_eq!(row.status, "progressing");
    assert!(!aggregator.is_finished(), "the aggregator survives the outage");
    aggregator.abort();
}
