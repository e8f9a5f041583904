//! The order API beyond the walkthrough: review and approval, idempotency, live events, the OpenAPI
//! document, Git read tokens, metered usage, and the whole server on PostgreSQL.

use std::time::Duration;

use futures::StreamExt;
use maxcloud_store::Store;
use maxcloud_tests::sse::{states_of, Frame};
use maxcloud_tests::{bin, cli, cli_command, git, order_ids_on_main, workspace_root, Api, Options, Server};
use serde_json::{json, Value};

fn review_xrds(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("xrds");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(workspace_root().join("xrds/app.yaml"), dir.join("app.yaml")).unwrap();
    std::fs::copy(workspace_root().join("tests/fixtures/xrds-review/widget.yaml"), dir.join("widget.yaml")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn review_required_orders_wait_for_approval() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        Options { xrds_dir: Some(review_xrds(tmp.path())), ..Default::default() },
    );
    let api = Api::new(&server);
    let (key, slug) = api.register("a@example.com", "Review Co").await;
    let api = api.with_key(&key);
    let repo = server.repo_dir(&slug);

    let (status, body) = api.post("/orders", &json!({"kind": "widget", "name": "w1", "parameters": {"size": 7}})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("parameters.size")),
        "the fixture's CEL rule: {body}"
    );

    let (status, order) =
        api.post("/orders", &json!({"kind": "widget", "name": "w1", "parameters": {"size": 3}})).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_string();
    let order = api.wait_order(&id, "pr_open", Duration::from_secs(20)).await;
    assert_eq!(order["pull_request"]["state"], "open");
    assert_eq!(order["pull_request"]["merge_policy"], "review");
    assert!(git(&repo, &["branch", "--list", &format!("order/{id}")]).contains(&id), "the PR branch exists");
    assert!(!git(&repo, &["ls-tree", "-r", "--name-only", "main"]).contains("widgets/w1.yaml"), "not merged yet");
    // A newer order on the resource supersedes the one in review: its PR is closed, its branch deleted, and the
    // newer one (still a create, since w1 never reached main) waits for review instead.
    let (status, newer) = api
        .post("/orders", &json!({"action": "update", "kind": "Widget", "name": "w1", "parameters": {"size": 4}}))
        .await;
    assert_eq!(status, 201, "{newer}");
    assert_eq!(newer["action"], "create", "{newer}");
    let old = id;
    let id = newer["id"].as_str().unwrap().to_string();
    let (_, superseded) = api.get(&format!("/orders/{old}")).await;
    assert_eq!(superseded["state"], "superseded", "{superseded}");
    assert_eq!(superseded["pull_request"]["state"], "closed");
    assert!(superseded["error"].as_str().unwrap().contains(&id), "{superseded}");
    assert!(git(&repo, &["branch", "--list", &format!("order/{old}")]).trim().is_empty(), "superseded branch deleted");
    api.wait_order(&id, "pr_open", Duration::from_secs(20)).await;
    let (_, pending) = api.get("/orders?review=pending").await;
    let pending: Vec<&str> = pending.as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(pending, [id.as_str()], "pending reviews");
    assert_eq!(api.get("/orders?review=all").await.0, 400);

    // main moves on meanwhile (an auto-merged App), so the approved PR is regenerated on the new main.
    let (status, app) =
        api.post("/orders", &json!({"kind": "App", "name": "web", "parameters": {"image": "nginx"}})).await;
    assert_eq!(status, 201);
    api.wait_order(app["id"].as_str().unwrap(), "merged", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.get(&format!("/orders/{id}")).await.1["state"], "pr_open", "still waiting for review");

    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = cli(&home, &server, &["--api-key", &key, "orders", "approve", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let order = api.wait_order(&id, "merged", Duration::from_secs(20)).await;
    assert_eq!(order["state"], "merged");
    let notes: Vec<String> =
        order["history"].as_array().unwrap().iter().filter_map(|h| h["message"].as_str().map(String::from)).collect();
    assert!(notes.iter().any(|n| n.contains("approved by a@example.com")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("regenerated")), "{notes:?}");
    let files = git(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(files.contains("widgets/w1.yaml") && files.contains("apps/web.yaml"), "{files}");
    assert!(git(&repo, &["show", "main:widgets/w1.yaml"]).contains("size: 4"), "the newer order's parameters");
    assert_eq!(order["pull_request"]["review_state"], "approved");
    assert_eq!(order["pull_request"]["reviewed_by"], json!(["a@example.com"]));
    assert_eq!(order_ids_on_main(&repo).len(), 2);
    assert!(git(&repo, &["rev-list", "--merges", "main"]).trim().is_empty(), "linear history");

    let (status, _) = api.post(&format!("/orders/{id}/approve"), &json!({})).await;
    assert_eq!(status, 409, "approving twice");

    // A rejected PR is closed: nothing reaches main, the branch is gone, the name is free again.
    let (status, order) =
        api.post("/orders", &json!({"kind": "Widget", "name": "w2", "parameters": {"size": 2}})).await;
    assert_eq!(status, 201, "{order}");
    let w2 = order["id"].as_str().unwrap().to_string();
    api.wait_order(&w2, "pr_open", Duration::from_secs(20)).await;
    let out = cli(&home, &server, &["--api-key", &key, "orders", "reject", &w2, "--reason", "not needed"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, order) = api.get(&format!("/orders/{w2}")).await;
    assert_eq!((order["state"].as_str(), order["error"].as_str()), (Some("rejected"), Some("not needed")));
    assert_eq!(order["pull_request"]["state"], "closed");
    assert!(git(&repo, &["branch", "--list", &format!("order/{w2}")]).trim().is_empty(), "branch deleted");
    assert!(!git(&repo, &["ls-tree", "-r", "--name-only", "main"]).contains("widgets/w2.yaml"));
    assert_eq!(api.post(&format!("/orders/{w2}/reject"), &json!({})).await.0, 409, "rejecting twice");
    assert_eq!(api.post(&format!("/orders/{w2}/approve"), &json!({})).await.0, 409, "approving a rejected order");
    let (status, _) = api.post(&format!("/orders/{w2}/reject"), &json!({"reason": 5})).await;
    assert_eq!(status, 422, "reason must be a string");
    let (_, resources) = api.get("/resources?kind=Widget").await;
    assert_eq!(resources.as_array().unwrap().len(), 1, "only w1: {resources}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_replays_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server);
    let (key, slug) = api.register("a@example.com", "Idem").await;
    let api = api.with_key(&key);
    let body = json!({"kind": "App", "name": "shop", "parameters": {"image": "nginx"}});
    let send = |body: serde_json::Value| {
        let api = api.clone();
        async move {
            api.send(api.req(reqwest::Method::POST, "/orders").header("Idempotency-Key", "retry-1").json(&body)).await
        }
    };
    let (s1, first) = send(body.clone()).await;
    let (s2, second) = send(body.clone()).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["id"], second["id"]);
    let (s3, third) = send(json!({"kind": "App", "name": "shop", "parameters": {"image": "httpd"}})).await;
    assert_eq!((s3, third["error"]["field"].as_str()), (409, Some("Idempotency-Key")), "{third}");
    api.wait_order(first["id"].as_str().unwrap(), "merged", Duration::from_secs(20)).await;
    assert_eq!(order_ids_on_main(&server.repo_dir(&slug)).len(), 1, "one commit for the replayed order");
    assert_eq!(api.get("/orders").await.1.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_reports_order_states() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server);
    let (key, _) = api.register("a@example.com", "Events").await;
    let api = api.with_key(&key);
    let resp = api.req(reqwest::Method::GET, "/events").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut stream = resp.bytes_stream();
    let (status, order) =
        api.post("/orders", &json!({"kind": "App", "name": "live", "parameters": {"image": "nginx"}})).await;
    assert_eq!(status, 201);
    let id = order["id"].as_str().unwrap().to_string();
    let mut seen = String::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("\"merged\"") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("merged event within 20s");
    assert!(seen.contains("event: order"), "{seen}");
    assert!(seen.contains(&id) && seen.contains("\"accepted\"") && seen.contains("\"merged\""), "{seen}");
    // Without a key there is no stream.
    assert_eq!(Api::new(&server).get("/events").await.0, 401);
}

/// Reads SSE frames until `done`; fails after 20 s.
async fn read_events(resp: reqwest::Response, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
    let frames = maxcloud_tests::sse::read_events(resp, Duration::from_secs(20), &done).await;
    assert!(done(&frames), "events within 20 s: {frames:?}");
    frames
}

#[tokio::test(flavor = "multi_thread")]
async fn events_missed_while_disconnected_are_replayed_with_last_event_id() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server);
    let (key, _) = api.register("r@example.com", "Replay").await;
    let api = api.with_key(&key);
    let resp = api.req(reqwest::Method::GET, "/events").send().await.unwrap();
    let (status, first) =
        api.post("/orders", &json!({"kind": "App", "name": "one", "parameters": {"image": "nginx"}})).await;
    assert_eq!(status, 201);
    let first_id = first["id"].as_str().unwrap().to_string();
    let seen = read_events(resp, |f| f.iter().any(|(_, _, d)| d.contains(&first_id) && d.contains("\"merged\""))).await;
    let last_id = seen.last().unwrap().1.clone();
    assert!(!last_id.is_empty(), "events carry ids: {seen:?}");

    // Disconnected: two more orders settle meanwhile.
    let mut missed = Vec::new();
    for name in ["two", "three"] {
        let (_, o) = api.post("/orders", &json!({"kind": "App", "name": name, "parameters": {"image": "nginx"}})).await;
        let id = o["id"].as_str().unwrap().to_string();
        api.wait_order(&id, "merged", Duration::from_secs(20)).await;
        missed.push(id);
    }
    let resp = api.req(reqwest::Method::GET, "/events").header("Last-Event-ID", &last_id).send().await.unwrap();
    let replayed = read_events(resp, |f| f.iter().filter(|(_, _, d)| d.contains("\"merged\"")).count() >= 2).await;
    for id in &missed {
        assert_eq!(states_of(&replayed, id), ["accepted", "pr_open", "merged"], "{id} once per state: {replayed:?}");
    }
    assert!(replayed.iter().all(|(_, _, d)| !d.contains(&first_id)), "nothing seen before is repeated");
    let ids: Vec<&String> = replayed.iter().map(|(_, id, _)| id).collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "ids are unique");

    // The log is in the store: the server is killed, orders settle after its restart, and a client that
    // comes back with its last id gets exactly what it missed.
    let last_id = replayed.last().unwrap().1.clone();
    drop(server);
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server).with_key(&key);
    let (_, o) = api.post("/orders", &json!({"kind": "App", "name": "four", "parameters": {"image": "nginx"}})).await;
    let four = o["id"].as_str().unwrap().to_string();
    api.wait_order(&four, "merged", Duration::from_secs(20)).await;
    let resp = api.req(reqwest::Method::GET, "/events").header("Last-Event-ID", &last_id).send().await.unwrap();
    let after_restart = read_events(resp, |f| f.iter().any(|(_, _, d)| d.contains("\"merged\""))).await;
    assert!(after_restart.iter().all(|(_, _, d)| d.contains(four.as_str())), "only the new order: {after_restart:?}");
    assert_eq!(states_of(&after_restart, &four), ["accepted", "pr_open", "merged"], "{after_restart:?}");

    // An id this server cannot place: the client is told to re-read.
    for bogus in ["1-1", "nonsense", "999999999"] {
        let resp = api.req(reqwest::Method::GET, "/events").header("Last-Event-ID", bogus).send().await.unwrap();
        let frames = read_events(resp, |f| !f.is_empty()).await;
        assert_eq!(frames[0].0, "lagged", "{bogus}: {frames:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_catalog_and_health() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server);
    let health: serde_json::Value =
        reqwest::get(format!("{}/healthz", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    assert_eq!(reqwest::get(format!("{}/readyz", server.url)).await.unwrap().status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", server.url)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("maxcloud_orders{state=\"merged\"} 0") && metrics.contains("maxcloud_tenants 0"),
        "{metrics}"
    );
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/register",
        "/api/v1/services",
        "/api/v1/services/{id}",
        "/api/v1/orders",
        "/api/v1/orders/{id}/approve",
        "/api/v1/catalog",
        "/api/v1/resources",
        "/api/v1/usage",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("Order").is_some());
    // Every operation has its own operationId: generated clients (the Backstage plugin's types) need it.
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} of {method} {path} is not unique");
        }
    }
    let (status, catalog) = api.get("/catalog").await;
    assert_eq!(status, 200);
    let app = catalog.as_array().unwrap().iter().find(|e| e["kind"] == "App").expect("App in the catalog");
    assert_eq!(app["api_version"], "maxcloud.dev/v1alpha1");
    assert_eq!(app["schema"]["properties"]["scaling"]["properties"]["maxScale"]["default"], 10);
    assert!(app["rules"].as_array().unwrap().iter().any(|r| r["rule"].as_str().unwrap().contains("minScale")));
    // Prices: the defaults' estimate on the entry, any parameters' estimate before ordering.
    assert_eq!(app["price"]["currency"], "EUR");
    assert_eq!(app["price"]["monthly_min"], "0.00", "an App scales to zero");
    assert!(app["price"]["summary"].as_str().unwrap().contains("0–10 instances of 1 vCPU, 512 MiB"), "{app}");
    let dns = catalog.as_array().unwrap().iter().find(|e| e["kind"] == "DNSRecord").unwrap();
    assert!(dns.get("price").is_none(), "a type that requests nothing has no price: {dns}");
    let params = json!({"parameters": {"image": "nginx", "scaling": {"minScale": 1, "maxScale": 2},
        "resources": {"cpu": "250m", "memory": "256Mi"}}});
    let (status, estimate) = api.post("/catalog/App/estimate", &params).await;
    assert_eq!(status, 200, "{estimate}");
    assert_eq!((estimate["monthly_min"].as_str(), estimate["monthly_max"].as_str()), (Some("17.41"), Some("34.82")));
    let (status, error) =
        api.post("/catalog/apps/estimate", &json!({"parameters": {"scaling": {"maxScale": 0}}})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "parameters.image");
    assert_eq!(
        error["error"]["fields"],
        json!([{"field": "parameters.image", "message": "is required"},
            {"field": "parameters.scaling.maxScale", "message": "must be greater than or equal to 1"}])
    );
    assert_eq!(api.post("/catalog/App/estimate", &json!({"parameters": []})).await.1["error"]["field"], "parameters");
    assert_eq!(api.post("/catalog/App/estimate", &json!({"params": {}})).await.0, 400);
    assert_eq!(api.post("/catalog/nope/estimate", &json!({})).await.0, 404);
    assert_eq!(api.post("/catalog/DNSRecord/estimate", &json!({"parameters": {}})).await.0, 422);
    assert_eq!(api.get("/catalog/apps").await.0, 200);
    assert_eq!(api.get("/catalog/nope").await.0, 404);
    assert_eq!(api.get("/no-such-thing").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn git_read_token_clones_only_its_repo() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server);
    let (key, slug) = api.register("a@example.com", "Flux Co").await;
    let (_, other) = api.register("b@example.com", "Other Co").await;
    let api = api.with_key(&key);
    let (status, token) = api.post("/auth/git-tokens", &json!({})).await;
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("mcg_"));
    let url =
        |slug: &str| server.url.replacen("http://", &format!("http://flux:{token}@"), 1) + &format!("/git/{slug}.git");
    git(tmp.path(), &["clone", "-q", &url(&slug), "mine"]);
    assert!(tmp.path().join("mine/README.md").exists());
    let denied = maxcloud_tests::git_output(tmp.path(), &["clone", "-q", &url(&other), "theirs"]);
    assert!(!denied.status.success(), "a token opens only its own tenant's repo");
    // A Git token is no API key.
    assert_eq!(Api::new(&server).with_key(&token).get("/services").await.0, 401);
}

/// Metered usage: what the aggregator recorded about pods (written to the server's database here; the metering
/// itself runs against a real API server in crates/status/tests/metering.rs) comes back per service, exactly,
/// priced by the configured price list; an organisation sees only its own; the CLI shows the same.
#[tokio::test(flavor = "multi_thread")]
async fn usage_is_metered_per_service_and_priced() {
    let tmp = tempfile::tempdir().unwrap();
    let prices = tmp.path().join("prices.yaml");
    std::fs::write(&prices, "currency: CHF\nvcpu_second: 0.00003\ngib_second: '0.000004'\n").unwrap();
    let price_env = vec![("MAXCLOUD_PRICE_LIST".to_string(), prices.display().to_string())];
    let server = Server::start(&tmp.path().join("data"), Options { env: price_env, ..Default::default() });
    let anon = Api::new(&server);
    let (key, slug) = anon.register("u@example.com", "Usage Co").await;
    let (other_key, _) = anon.register("o@example.com", "Other Co").await;

    const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const MI: i64 = 1 << 20;
    maxcloud_tests::record_pod_usage(
        &server,
        &slug,
        &[
            ("p1", "App", "web", 500, 256 * MI, T, Some(T + 3600)),
            ("p2", "App", "web", 250, 512 * MI, T + 1800, None),
            ("p3", "Database", "shop-db", 1000, 1024 * MI, T, Some(T + 90)),
        ],
    )
    .await;

    // The first hour of 2026: web 500m/256Mi × 3600 s + 250m/512Mi × 1800 s, shop-db 1 vCPU/1Gi × 90 s.
    let expected = json!({
        "tenant": slug, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z", "currency": "CHF",
        "price_list": {"currency": "CHF", "vcpu_second": "0.00003", "gib_second": "0.000004"},
        "services": [
            // 2250 × 0.00003 + 1800 × 0.000004
            {"kind": "App", "name": "web", "pods": 2, "vcpu_seconds": 2250.0, "gib_seconds": 1800.0, "cost": 0.0747},
            // 90 × 0.00003 + 90 × 0.000004
            {"kind": "Database", "name": "shop-db", "pods": 1, "vcpu_seconds": 90.0, "gib_seconds": 90.0, "cost": 0.00306},
        ],
        "total": {"vcpu_seconds": 2340.0, "gib_seconds": 1890.0, "cost": 0.07776},
    });
    let api = anon.with_key(&key);
    let (status, usage) = api.get("/usage?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z").await;
    assert_eq!((status, &usage), (200, &expected));
    // The same window with an offset (an encoded '+') and fractions of a second.
    let (status, same) = api.get("/usage?from=2026-01-01T01:00:00.4%2B01:00&to=2026-01-01T01:00:00Z").await;
    assert_eq!((status, &same), (200, &expected));
    // Clipped: the minute from 00:01 to 00:02.
    let (_, minute) = api.get("/usage?from=2026-01-01T00:01:00Z&to=2026-01-01T00:02:00Z").await;
    assert_eq!(minute["services"][0]["vcpu_seconds"], 30.0);
    assert_eq!(minute["services"][1]["vcpu_seconds"], 30.0);
    // By default: this month up to now.
    let (status, default) = api.get("/usage").await;
    assert_eq!(status, 200, "{default}");
    assert!(default["from"].as_str().unwrap().ends_with("-01T00:00:00Z"), "{default}");
    // Another organisation sees none of it.
    let (status, theirs) = anon.with_key(&other_key).get("/usage?from=2026-01-01T00:00:00Z").await;
    assert_eq!(status, 200);
    assert_eq!(theirs["services"], json!([]));
    assert_eq!(theirs["total"], json!({"vcpu_seconds": 0.0, "gib_seconds": 0.0, "cost": 0.0}));

    // The CLI: the same document with -o json, a table otherwise.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let window = ["usage", "--from", "2026-01-01", "--to", "2026-01-01T01:00:00Z"];
    let out = cli_command(&home, &server, Some(&key)).args(["-o", "json"]).args(window).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), expected);
    let out = cli_command(&home, &server, Some(&key)).args(window).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("prices:        CHF 0.00003 per vCPU-second, 0.000004 per GiB-second"), "{table}");
    let rows: Vec<Vec<&str>> =
        table.lines().skip_while(|l| !l.starts_with("KIND")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows,
        [
            vec!["KIND", "NAME", "PODS", "VCPU-SECONDS", "GIB-SECONDS", "COST", "(CHF)"],
            vec!["App", "web", "2", "2250.000", "1800.000", "0.074700"],
            vec!["Database", "shop-db", "1", "90.000", "90.000", "0.003060"],
            vec!["TOTAL", "2340.000", "1890.000", "0.077760"],
        ]
    );
    // Bad times are refused before any request (nothing listens at this URL), naming the flag.
    for (args, flag) in [
        (vec!["usage", "--from", "soon"], "--from"),
        (vec!["usage", "--to", "2026-02-30"], "--to"),
        (vec!["usage", "--from", "2026-02-01", "--to", "2026-01-01"], "--to"),
    ] {
        let out = cli_command(&home, &server, Some(&key))
            .args(["--api-url", "http://127.0.0.1:9"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(flag) && !stderr.contains("127.0.0.1:9"),
            "{args:?}: {stderr}"
        );
    }

    // A price list that cannot be used stops the server at start-up, naming the field.
    std::fs::write(&prices, "currency: CHF\nvcpu_second: free\ngib_second: 0.1\n").unwrap();
    let out = std::process::Command::new(bin("maxcloud-server"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data2"))
        .arg("--price-list")
        .arg(&prices)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("vcpu_second") && stderr.contains("free"), "{stderr}");
}

/// The whole server on PostgreSQL: concurrent orders end up on main exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn server_runs_on_postgres() {
    let db = maxcloud_tests::postgres_database("mc_e2e");
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options { database_url: Some(db), ..Default::default() });
    assert!(!tmp.path().join("data/maxcloud.db").exists(), "no SQLite file when DATABASE_URL is set");
    let api = Api::new(&server);
    let (key, slug) = api.register("pg@example.com", "Postgres Shop").await;
    let api = api.with_key(&key);
    let ids: Vec<String> = futures::future::join_all((0..20).map(|i| {
        let api = api.clone();
        async move {
            let (status, order) = api
                .post("/orders", &json!({"kind": "App", "name": format!("pg-{i}"), "parameters": {"image": "nginx"}}))
                .await;
            assert_eq!(status, 201, "{order}");
            order["id"].as_str().unwrap().to_string()
        }
    }))
    .await;
    for id in &ids {
        assert_eq!(api.wait_order(id, "merged", Duration::from_secs(30)).await["state"], "merged");
    }
    assert_eq!(order_ids_on_main(&server.repo_dir(&slug)).len(), 20);
    assert_eq!(api.get("/services").await.1.as_array().unwrap().len(), 20);
}

/// A front end acting with one key for many people (the Backstage plugin) names the person: the order, its pull
/// request and the audit log record both; a malformed name is refused before anything is stored.
#[tokio::test(flavor = "multi_thread")]
async fn on_behalf_of_is_recorded_beside_the_key_user() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let (key, slug) = Api::new(&server).register("portal@example.com", "Portal Co").await;
    let api = Api::new(&server).with_key(&key);
    let order = json!({"kind": "App", "name": "shop", "parameters": {"image": "nginx:1.27"}});
    let too_long = "u".repeat(201);
    let (status, body) = api
        .send(api.req(reqwest::Method::POST, "/orders").header("x-maxcloud-on-behalf-of", &too_long).json(&order))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "x-maxcloud-on-behalf-of");
    assert_eq!(api.get("/orders").await.1, json!([]), "nothing stored");

    let (status, placed) = api
        .send(
            api.req(reqwest::Method::POST, "/orders")
                .header("x-maxcloud-on-behalf-of", "user:default/jane")
                .json(&order),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(placed["requester"], "portal@example.com for user:default/jane");
    let merged = api.wait_order(placed["id"].as_str().unwrap(), "merged", Duration::from_secs(20)).await;
    assert!(
        merged["pull_request"]["body"].as_str().unwrap().contains("portal@example.com for user:default/jane"),
        "{merged}"
    );
    let store = Store::connect(&server.sqlite_url()).await.unwrap();
    let tenant = store.tenant_by_slug(&slug).await.unwrap().unwrap();
    let audit = store.audit_log(Some(&tenant.id), 100).await.unwrap();
    assert!(
        audit.iter().any(|e| e.entry.path == "/orders"
            && e.entry.status == 201
            && e.entry.actor.as_deref() == Some("portal@example.com for user:default/jane")),
        "{audit:?}"
    );
    assert!(audit.iter().any(|e| e.entry.status == 400 && e.entry.actor.as_deref() == Some("portal@example.com")));
    // Without the header the key's user alone is the requester.
    let (_, plain) =
        api.post("/orders", &json!({"kind": "App", "name": "other", "parameters": {"image": "nginx"}})).await;
    assert_eq!(plain["requester"], "portal@example.com");
}
