//! Resilience of the way back: the order service (with its status aggregator) is killed and restarted, and the
//! kube-apiserver restarted, while orders are on their way to `ready`. The cluster changes while nobody watches;
//! after the restarts every order converges to the state the cluster reports, and a live-event client that
//! reconnects with `Last-Event-ID` gets every event it missed, in order, exactly once.

use std::time::Duration;

use maxcloud_testenv::ControlPlane;
use maxcloud_tests::cluster::{apply_committed, set_status};
use maxcloud_tests::platform::catalog_crds;
use maxcloud_tests::sse::{read_events, states_of, Frame};
use maxcloud_tests::{Api, Options, Server};
use serde_json::{json, Value};

const ORDERS: usize = 6;

fn ready(name: &str) -> Value {
    json!({"url": format!("https://{name}.acme.apps.maxcloud.example"), "ready": true,
           "conditions": [{"type": "Ready", "status": "True", "reason": "Available",
                           "lastTransitionTime": "2026-11-21T08:00:00Z"}]})
}

fn start(data: &std::path::Path, cp: &ControlPlane) -> Server {
    let env = vec![("MAXCLOUD_KUBECONFIG".into(), cp.kubeconfig.display().to_string())];
    Server::start(data, Options { env, ..Default::default() })
}

fn last_id(frames: &[Frame]) -> String {
    frames.last().map(|f| f.1.clone()).expect("at least one event")
}

#[tokio::test(flavor = "multi_thread")]
async fn states_and_events_survive_killed_servers_and_api_server_restarts() {
    let mut cp = ControlPlane::start().await.expect("control plane");
    let mut setup = catalog_crds();
    setup.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-acme"}}));
    cp.apply(setup).await.expect("catalog CRDs");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = start(&data, &cp);
    let (key, slug) = Api::new(&server).register("ops@acme.example", "Acme").await;
    let api = Api::new(&server).with_key(&key);
    let events = api.req(reqwest::Method::GET, "/events").send().await.expect("SSE");

    let mut orders = Vec::new();
    let mut objects = Vec::new();
    for i in 0..ORDERS {
        let name = format!("app-{i}");
        let (status, order) =
            api.post("/orders", &json!({"kind": "App", "name": name, "parameters": {"image": "nginx:1.27"}})).await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().expect("id").to_string();
        api.wait_order(&id, "merged", Duration::from_secs(20)).await;
        objects.push(apply_committed(&cp, &server.repo_dir(&slug), &format!("apps/{name}.yaml")).await);
        orders.push(id);
    }
    // Two become ready while everything runs.
    for object in &objects[..2] {
        set_status(&cp, object, ready(object["metadata"]["name"].as_str().expect("name"))).await;
    }
    let first = read_events(events, Duration::from_secs(30), |f| {
        orders[..2].iter().all(|id| states_of(f, id).last().is_some_and(|s| s == "ready"))
    })
    .await;
    for id in &orders[..2] {
        assert_eq!(states_of(&first, id), ["accepted", "pr_open", "merged", "ready"], "{first:?}");
    }

    // The order service is killed mid-stream (its SSE client is cut off). Two more become ready meanwhile, and
    // the API server restarts under the stopped watches.
    drop(server);
    let resume_from = last_id(&first);
    for object in &objects[2..4] {
        set_status(&cp, object, ready(object["metadata"]["name"].as_str().expect("name"))).await;
    }
    cp.restart_apiserver().await.expect("API server restarts");
    let server = start(&data, &cp);
    let api = Api::new(&server).with_key(&key);
    // What happened while it was down is recorded from the watches' initial lists.
    for id in &orders[2..4] {
        api.wait_order(id, "ready", Duration::from_secs(30)).await;
    }
    // The API server restarts again under the running aggregator; the last two become ready afterwards.
    cp.restart_apiserver().await.expect("API server restarts again");
    for object in &objects[4..] {
        set_status(&cp, object, ready(object["metadata"]["name"].as_str().expect("name"))).await;
    }
    for id in &orders[4..] {
        api.wait_order(id, "ready", Duration::from_secs(60)).await;
    }

    // The client reconnects (to the restarted server) with the last id it saw: it gets exactly what it missed.
    let resp =
        api.req(reqwest::Method::GET, "/events").header("Last-Event-ID", &resume_from).send().await.expect("SSE");
    let missed = read_events(resp, Duration::from_secs(30), |f| {
        orders.iter().all(|id| states_of(f, id).last().is_some_and(|s| s == "ready"))
    })
    .await;
    assert!(missed.iter().all(|(event, _, _)| event != "lagged"), "no lag: {missed:?}");
    for (i, id) in orders.iter().enumerate() {
        let all: Vec<String> = states_of(&first, id).into_iter().chain(states_of(&missed, id)).collect();
        assert_eq!(all, ["accepted", "pr_open", "merged", "ready"], "order {i}, each state once: {first:?} {missed:?}");
    }
    // Each service's move to ready was streamed once too (`service` events), with its URL.
    for i in 0..ORDERS {
        let name = format!("app-{i}");
        let ready: Vec<Value> = first
            .iter()
            .chain(&missed)
            .filter(|(event, _, _)| event == "service")
            .filter_map(|(_, _, d)| serde_json::from_str::<Value>(d).ok())
            .filter(|d| d["name"] == name.as_str() && d["status"] == "ready")
            .collect();
        assert_eq!(ready.len(), 1, "{name}: {first:?} {missed:?}");
        assert_eq!(ready[0]["url"], format!("https://{name}.acme.apps.maxcloud.example"));
    }
    let ids: Vec<i64> = first.iter().chain(&missed).map(|(_, id, _)| id.parse().expect("numeric id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, no duplicates: {ids:?}");

    // And the services converged to what the cluster says.
    let (_, services) = api.get("/services").await;
    let services = services.as_array().expect("list");
    assert_eq!(services.len(), ORDERS);
    for s in services {
        let expected = format!("https://{}.acme.apps.maxcloud.example", s["name"].as_str().expect("name"));
        assert_eq!((s["status"].as_str(), s["url"].as_str()), (Some("ready"), Some(expected.as_str())), "{s}");
    }
}
