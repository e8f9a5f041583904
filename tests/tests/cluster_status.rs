//! The server's status aggregator against a real API server: an order merged by the order service, its committed
//! object applied as Flux applies it, and the status Crossplane writes, reach the API: the order becomes `ready`
//! (or `failed` with the message), `/api/v1/services` shows the status and URL, `/readyz` says the cluster is
//! connected.

use std::time::Duration;

use maxcloud_testenv::ControlPlane;
use maxcloud_tests::cluster::{apply_committed, set_status};
use maxcloud_tests::platform::catalog_crds;
use maxcloud_tests::{finish, spawn_cli, Api, Options, Server};
use serde_json::{json, Value};

fn conditions(ready: &str, synced: &str, message: &str) -> Value {
    json!([
        {"type": "Ready", "status": ready, "reason": "Creating", "lastTransitionTime": "2026-11-21T08:00:00Z"},
        {"type": "Synced", "status": synced, "reason": "ReconcileError", "message": message, "lastTransitionTime": "2026-11-21T08:00:00Z"}
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_become_ready_or_failed_from_what_the_cluster_reports() {
    let cp = ControlPlane::start().await.expect("control plane");
    let mut setup = catalog_crds();
    setup.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-acme"}}));
    cp.apply(setup).await.expect("catalog CRDs");

    let tmp = tempfile::tempdir().expect("tempdir");
    let options = Options {
        env: vec![("MAXCLOUD_KUBECONFIG".into(), cp.kubeconfig.display().to_string())],
        ..Default::default()
    };
    let server = Server::start(&tmp.path().join("data"), options);
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@example.com", "Acme").await;
    assert_eq!(slug, "acme");
    let api = anon.with_key(&key);
    let resp = api.req(reqwest::Method::GET, "/catalog").send().await.expect("catalog");
    assert_eq!(resp.headers()["x-maxcloud-cluster"], "connected", "the API says a cluster is connected");

    // A service deployed through the facade, merged, applied by "Flux", made ready by "Crossplane".
    let (status, svc) = api.post("/services", &json!({"name": "web", "image": "nginx:1.27"})).await;
    assert_eq!(status, 201, "{svc}");
    let order_id = svc["order"]["id"].as_str().or(svc["order_id"].as_str()).map(str::to_string);
    let (_, orders) = api.get("/orders").await;
    let order_id = order_id.unwrap_or_else(|| orders[0]["id"].as_str().expect("order id").to_string());
    api.wait_order(&order_id, "merged", Duration::from_secs(20)).await;
    let repo = server.repo_dir(&slug);
    let web = apply_committed(&cp, &repo, "apps/web.yaml").await;
    set_status(&cp, &web, json!({"conditions": conditions("False", "True", ""), "message": "waiting for the Knative Service to be created"})).await;
    set_status(
        &cp,
        &web,
        json!({"url": "https://web.mc-acme.apps.maxcloud.example", "ready": true,
               "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-11-21T08:00:01Z"}]}),
    )
    .await;
    let order = api.wait_order(&order_id, "ready", Duration::from_secs(30)).await;
    assert_eq!(order["state"], "ready", "{order}");
    let (_, services) = api.get("/services").await;
    let web_svc = services.as_array().expect("list").iter().find(|s| s["name"] == "web").expect("web listed").clone();
    assert_eq!(web_svc["status"], "ready", "{web_svc}");
    assert_eq!(web_svc["url"], "https://web.mc-acme.apps.maxcloud.example");

    // `maxcloud deploy --wait` follows a deployment through merged and applied to ready and prints the URL.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let deploy =
        spawn_cli(&home, &server, &key, &["deploy", "nginx:1.27", "--name", "shop", "--wait", "--timeout", "60"]);
    let (_, listed) = api.get("/orders").await;
    let mut shop_order = String::new();
    for _ in 0..200 {
        let (_, orders) = api.get("/orders").await;
        if let Some(o) = orders.as_array().and_then(|l| l.iter().find(|o| o["name"] == "shop")) {
            shop_order = o["id"].as_str().expect("id").to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!shop_order.is_empty(), "the CLI placed an order: {listed}");
    api.wait_order(&shop_order, "merged", Duration::from_secs(20)).await;
    let shop = apply_committed(&cp, &repo, "apps/shop.yaml").await;
    set_status(
        &cp,
        &shop,
        json!({"url": "https://shop.mc-acme.apps.maxcloud.example", "ready": true,
               "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-11-21T08:00:02Z"}]}),
    )
    .await;
    let (ok, stdout, stderr) = finish(deploy).await;
    assert!(ok, "deploy --wait failed:\n{stderr}\n{stdout}");
    assert!(stderr.contains("deploying shop") && stderr.contains(": ready"), "progress shown:\n{stderr}");
    assert!(stdout.contains("https://shop.mc-acme.apps.maxcloud.example"), "ends with the URL:\n{stdout}");

    // `maxcloud status NAME --watch` follows a service whose image cannot run: it ends with the error.
    let (status, svc) = api.post("/services", &json!({"name": "api", "image": "nginx:1.27"})).await;
    assert_eq!(status, 201, "{svc}");
    let watch = spawn_cli(&home, &server, &key, &["status", "api", "--watch", "--timeout", "60"]);
    let (_, orders) = api.get("/orders").await;
    let api_order = orders.as_array().and_then(|l| l.iter().find(|o| o["name"] == "api")).expect("order")["id"]
        .as_str()
        .expect("id")
        .to_string();
    api.wait_order(&api_order, "merged", Duration::from_secs(20)).await;
    let api_xr = apply_committed(&cp, &repo, "apps/api.yaml").await;
    set_status(
        &cp,
        &api_xr,
        json!({"failed": true, "message": "Revision api-00001 failed: ImagePullBackOff", "ready": false,
               "conditions": conditions("False", "True", "")}),
    )
    .await;
    let (ok, _, stderr) = finish(watch).await;
    assert!(!ok, "a failed service makes --watch fail:\n{stderr}");
    assert!(stderr.contains("ImagePullBackOff"), "the error names the cause:\n{stderr}");

    // An App created behind the order service's back (kubectl) is listed as unmanaged, with its state; the
    // ordered ones are not.
    cp.apply(vec![json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App",
        "metadata": {"name": "handmade", "namespace": "mc-acme"}, "spec": {"image": "nginx:1.27"}})])
        .await
        .expect("kubectl apply");
    let mut unmanaged = json!(null);
    for _ in 0..100 {
        let (status, list) = api.get("/resources/unmanaged").await;
        assert_eq!(status, 200, "{list}");
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            unmanaged = list;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> =
        unmanaged.as_array().expect("unmanaged listed").iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["handmade"], "{unmanaged}");
    let (_, stdout, _) = finish(spawn_cli(&home, &server, &key, &["resources"])).await;
    assert!(stdout.lines().any(|l| l.contains("handmade") && l.contains("unmanaged")), "{stdout}");
    assert_eq!(Api::new(&server).get("/resources/unmanaged").await.0, 401);

    // An impossible composition: Crossplane cannot reconcile the XR; the order fails with Crossplane's message.
    let (status, order) =
        api.post("/orders", &json!({"kind": "App", "name": "broken", "parameters": {"image": "nginx:1.27"}})).await;
    assert_eq!(status, 201, "{order}");
    let broken_id = order["id"].as_str().expect("id").to_string();
    api.wait_order(&broken_id, "merged", Duration::from_secs(20)).await;
    let broken = apply_committed(&cp, &repo, "apps/broken.yaml").await;
    set_status(
        &cp,
        &broken,
        json!({"conditions": conditions("False", "False", "cannot compose resources: pipeline step \"render\" returned a fatal result")}),
    )
    .await;
    let order = api.wait_order(&broken_id, "failed", Duration::from_secs(30)).await;
    assert_eq!(order["state"], "failed", "{order}");
    let error = order["error"].as_str().or(order["message"].as_str()).unwrap_or_default().to_string();
    let history = order["history"].to_string();
    assert!(
        error.contains("cannot compose resources") || history.contains("cannot compose resources"),
        "the failure carries Crossplane's message: {order}"
    );
}
