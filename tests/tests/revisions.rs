//! Revisions and traffic (issue 7, part 5): every `maxcloud deploy` names the revision it creates; `--no-traffic`
//! and `--tag` keep the shares and give the new revision its own URL; `maxcloud traffic` splits requests,
//! `maxcloud rollback` sends them back to an earlier revision, `--to-latest` to the newest. What lands on main is
//! the traffic block the App XRD accepts (validated through the catalog) and the real composition renders into the
//! Knative Service. Bad splits are refused by field and write nothing; another organisation's service ids answer 404
//! on every endpoint.

use std::path::Path;
use std::time::Duration;

use maxcloud_catalog::Catalog;
use maxcloud_testenv::ControlPlane;
use maxcloud_tests::cluster::{apply_committed, set_status};
use maxcloud_tests::platform::{catalog_crds, render_with, Functions};
use maxcloud_tests::{cli_command, git, workspace_root, Api, Options, Server};
use serde_json::{json, Value};

fn maxcloud(home: &Path, server: &Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = cli_command(home, server, Some(key)).args(args).output().expect("run maxcloud");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn json_out(home: &Path, server: &Server, key: &str, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = maxcloud(home, server, key, &all);
    assert!(ok, "maxcloud {args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("maxcloud {args:?} printed no JSON ({e}): {stdout}"))
}

/// The App on main, checked against the XRD the way the API server would (schema and CEL rules); its spec.
fn app_on_main(repo: &Path, catalog: &Catalog, name: &str) -> Value {
    let text = git(repo, &["show", &format!("main:apps/{name}.yaml")]);
    let app: Value = serde_saphyr::from_str(&text).unwrap();
    let spec = app["spec"].clone();
    let ty = catalog.get("App").unwrap();
    if let Err(errors) = ty.validate(&spec) {
        panic!("apps/{name}.yaml on main is not a valid App: {errors:?}\n{text}");
    }
    spec
}

/// (name, percent, tags) of each revision as `maxcloud revisions -o json` lists them.
fn shares(revisions: &Value) -> Vec<(String, i64, Vec<String>)> {
    revisions["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let tags = r["tags"].as_array().map(|t| t.iter().map(|s| s.as_str().unwrap().to_string()).collect());
            (r["name"].as_str().unwrap().to_string(), r["percent"].as_i64().unwrap(), tags.unwrap_or_default())
        })
        .collect()
}

fn s(name: &str, percent: i64, tags: &[&str]) -> (String, i64, Vec<String>) {
    (name.to_string(), percent, tags.iter().map(|t| t.to_string()).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_name_revisions_and_traffic_moves_between_them() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let catalog = Catalog::load_dir(&workspace_root().join("xrds")).unwrap();
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@rev.example", "Rev Shop").await;
    let (other_key, _) = anon.register("eve@other.example", "Other").await;
    let api = anon.with_key(&key);
    let other = anon.with_key(&other_key);
    let repo = server.repo_dir(&slug);

    // r1: the first deploy, all traffic to the latest.
    let svc = json_out(&home, &server, &key, &["deploy", "nginx:1.27", "--name", "shop", "--wait"]);
    assert_eq!(svc["revision"], "r1", "{svc}");
    let id = svc["id"].as_str().unwrap().to_string();
    let spec = app_on_main(&repo, &catalog, "shop");
    assert_eq!(spec["revision"], "r1");
    assert_eq!(spec["traffic"], json!([{"latestRevision": true, "percent": 100}]));

    // r2 without traffic, tagged canary: r1 keeps everything, r2 gets its own URL.
    let svc = json_out(
        &home,
        &server,
        &key,
        &["deploy", "nginx:1.28", "--name", "shop", "--no-traffic", "--tag", "canary", "--wait"],
    );
    assert_eq!(svc["revision"], "r2", "{svc}");
    let spec = app_on_main(&repo, &catalog, "shop");
    assert_eq!(spec["image"], "nginx:1.28");
    assert_eq!(
        spec["traffic"],
        json!([{"revision": "r1", "percent": 100}, {"revision": "r2", "percent": 0, "tag": "canary"}])
    );
    // Rendered by the real composition (crossplane composition render, the platform's functions as processes): the
    // Knative Service names the new revision and pins the traffic as ordered.
    let functions = Functions::start();
    let xr = tmp.path().join("shop-xr.yaml");
    std::fs::write(&xr, git(&repo, &["show", "main:apps/shop.yaml"])).unwrap();
    let root = workspace_root();
    let environment = root.join("tests/fixtures/platform/environment.yaml");
    let rendered = render_with(
        &xr,
        &root.join("compositions/app.yaml"),
        &root.join("xrds/app.yaml"),
        &functions,
        None,
        Some(&environment),
    );
    let ksvc = rendered.resource("service");
    assert_eq!(ksvc["spec"]["template"]["metadata"]["name"], "shop-r2");
    assert_eq!(
        ksvc["spec"]["traffic"],
        json!([{"revisionName": "shop-r1", "percent": 100}, {"revisionName": "shop-r2", "percent": 0, "tag": "canary"}])
    );
    drop(functions);
    let revs = json_out(&home, &server, &key, &["revisions", "shop"]);
    assert_eq!(shares(&revs), [s("r1", 100, &[]), s("r2", 0, &["canary"])], "{revs}");
    assert_eq!(revs["latest_revision"], "r2");
    assert_eq!(revs["revisions"][0]["image"], "nginx:1.27");
    assert_eq!(revs["revisions"][1]["image"], "nginx:1.28");
    assert_eq!(revs["revisions"][1]["full_name"], "shop-r2");
    assert_eq!(revs["revisions"][0]["order_state"], "merged");
    let (ok, table, err) = maxcloud(&home, &server, &key, &["revisions", "shop"]);
    assert!(ok, "{err}");
    assert!(table.contains("r2 (latest)") && table.contains("canary") && table.contains("traffic: r1=100%"), "{table}");

    // A split: 90/10.
    let revs = json_out(&home, &server, &key, &["traffic", "shop", "r1=90,r2=10", "--wait"]);
    assert_eq!(shares(&revs), [s("r1", 90, &[]), s("r2", 10, &[])], "{revs}");
    let spec = app_on_main(&repo, &catalog, "shop");
    assert_eq!(spec["traffic"], json!([{"revision": "r1", "percent": 90}, {"revision": "r2", "percent": 10}]));
    assert_eq!(spec["revision"], "r2", "a traffic change creates no revision");
    assert_eq!(spec["image"], "nginx:1.28");

    // Tags on a split, LATEST as a target.
    let revs = json_out(&home, &server, &key, &["traffic", "shop", "r1=50,LATEST=50", "--tag", "r1=stable", "--wait"]);
    assert_eq!(shares(&revs), [s("r1", 50, &["stable"]), s("r2", 50, &[])], "{revs}");
    assert_eq!(
        app_on_main(&repo, &catalog, "shop")["traffic"],
        json!([{"revision": "r1", "percent": 50, "tag": "stable"}, {"latestRevision": true, "percent": 50}])
    );

    // Rollback: everything to r1 again, the tag stays reachable.
    let revs = json_out(&home, &server, &key, &["rollback", "shop", "r1", "--wait"]);
    assert_eq!(shares(&revs), [s("r1", 100, &["stable"]), s("r2", 0, &[])], "{revs}");
    assert_eq!(
        app_on_main(&repo, &catalog, "shop")["traffic"],
        json!([{"revision": "r1", "percent": 100}, {"revision": "r1", "percent": 0, "tag": "stable"}])
    );

    // --to-latest: r2 takes over; a normal deploy then moves traffic to the new revision r3.
    let revs = json_out(&home, &server, &key, &["traffic", "shop", "--to-latest", "--wait"]);
    assert_eq!(shares(&revs), [s("r1", 0, &["stable"]), s("r2", 100, &[])], "{revs}");
    let svc =
        json_out(&home, &server, &key, &["deploy", "nginx:1.29", "--name", "shop", "--revision", "blue", "--wait"]);
    assert_eq!(svc["revision"], "blue");
    let revs = json_out(&home, &server, &key, &["revisions", "shop"]);
    assert_eq!(shares(&revs), [s("r1", 0, &["stable"]), s("r2", 0, &[]), s("blue", 100, &[])], "{revs}");
    // The next generated name counts past the ones in use.
    let svc = json_out(&home, &server, &key, &["deploy", "nginx:1.29", "--name", "shop", "--min-scale", "1", "--wait"]);
    assert_eq!(svc["revision"], "r3");

    // The generic order path (the portal's change form, prefilled from the spec): a change that keeps the revision
    // name in force gets the next generated name; a traffic-only change keeps it.
    let wait = Duration::from_secs(30);
    let mut params = app_on_main(&repo, &catalog, "shop");
    assert_eq!(params["revision"], "r3");
    params["image"] = json!("nginx:1.31");
    let (status, order) =
        api.post("/orders", &json!({"kind": "App", "action": "update", "name": "shop", "parameters": params})).await;
    assert_eq!((status, order["parameters"]["revision"].as_str()), (201, Some("r4")), "{order}");
    api.wait_order(order["id"].as_str().unwrap(), "merged", wait).await;
    let mut params = app_on_main(&repo, &catalog, "shop");
    params["traffic"] = json!([{"revision": "r3", "percent": 50}, {"latestRevision": true, "percent": 50}]);
    let (status, order) =
        api.post("/orders", &json!({"kind": "App", "action": "update", "name": "shop", "parameters": params})).await;
    assert_eq!((status, order["parameters"]["revision"].as_str()), (201, Some("r4")), "{order}");
    api.wait_order(order["id"].as_str().unwrap(), "merged", wait).await;
    let revs = json_out(&home, &server, &key, &["revisions", "shop"]);
    assert_eq!(revs["revisions"][4]["image"], "nginx:1.31", "{revs}");
    assert_eq!(
        (revs["revisions"][3]["percent"].as_i64(), revs["revisions"][4]["percent"].as_i64()),
        (Some(50), Some(50))
    );

    // Refusals: nothing is ordered, main does not move.
    let head = git(&repo, &["rev-parse", "main"]);
    let (_, orders_before) = api.get("/orders?limit=1000").await;
    let orders_before = orders_before.as_array().unwrap().len();
    let traffic = |body: Value| {
        let api = &api;
        let id = &id;
        async move { api.send(api.req(reqwest::Method::PUT, &format!("/services/{id}/traffic")).json(&body)).await }
    };
    let r = |rev: &str, p: i64| json!({"revision": rev, "percent": p});
    for (body, status, field) in [
        (json!({"targets": [r("r1", 90), r("r9", 10)]}), 422, "targets[1].revision"),
        (json!({"targets": [r("r1", 90), r("r2", 20)]}), 422, "targets"),
        (
            json!({"targets": [r("r1", 100), {"revision": "r2", "percent": 0, "tag": "x"}, {"revision": "r3", "percent": 0, "tag": "x"}]}),
            422,
            "targets[2].tag",
        ),
        (json!({"targets": [{"revision": "r1", "percent": 100, "tag": "Not_A_Label"}]}), 422, "targets[0].tag"),
        (json!({"targets": [{"revision": "r1", "latest_revision": true, "percent": 100}]}), 422, "targets[0]"),
        (json!({"targets": [{"percent": 100}]}), 422, "targets[0].revision"),
        (json!({"targets": [r("r1", 101)]}), 422, "targets[0].percent"),
        (json!({"targets": [r("r1", -5), r("r2", 105)]}), 422, "targets[0].percent"),
        (json!({"targets": [r("R1", 100)]}), 422, "targets[0].revision"),
        (json!({"targets": [r("r1", 50), r("r1", 50)]}), 422, "targets[1]"),
        (
            json!({"targets": [{"latest_revision": true, "percent": 50}, {"latest_revision": true, "percent": 50, "tag": "b"}]}),
            422,
            "targets",
        ),
        (json!({"targets": []}), 422, "targets"),
        (json!({"targets": [r("r1", 100)], "to_latest": true}), 422, "to_latest"),
        (json!({}), 422, "targets"),
        (json!({"targets": [r("r1", 100)], "weights": 1}), 400, "weights"),
        (json!({"targets": [{"revision": "r1", "percent": "all"}]}), 422, "targets[0].percent"),
    ] {
        let (got, err) = traffic(body.clone()).await;
        assert_eq!((got, err["error"]["field"].as_str()), (status, Some(field)), "{body}: {err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    }
    let raw = api.req(reqwest::Method::PUT, &format!("/services/{id}/traffic")).body("r1=100").send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 415);
    // A revision name used before is refused on deploy, as are malformed names and tags.
    for (body, status, field) in [
        (json!({"revision": "r1"}), 409, "revision"),
        (json!({"revision": "Blue"}), 422, "revision"),
        (json!({"revision": "x".repeat(31)}), 422, "revision"),
        (json!({"tag": "-canary"}), 422, "tag"),
    ] {
        let (got, err) = api.send(api.req(reqwest::Method::PATCH, &format!("/services/{id}")).json(&body)).await;
        assert_eq!((got, err["error"]["field"].as_str()), (status, Some(field)), "{body}: {err}");
    }
    let (got, err) = api.post("/services", &json!({"name": "fresh", "image": "nginx:1.27", "no_traffic": true})).await;
    assert_eq!((got, err["error"]["field"].as_str()), (422, Some("no_traffic")), "{err}");
    // The CLI checks its own arguments before sending anything.
    for (args, says) in [
        (vec!["traffic", "shop", "r1=abc"], "0 to 100"),
        (vec!["traffic", "shop", "r1"], "REVISION=PERCENT"),
        (vec!["traffic", "shop", "r1=100", "--to-latest"], "not both"),
        (vec!["traffic", "shop"], "--to-latest"),
        (vec!["traffic", "shop", "r1=100", "--tag", "canary"], "REVISION=TAG"),
        (vec!["rollback", "shop", "r9"], "no revision \"r9\""),
        (vec!["traffic", "shop", "r1=60,r9=40"], "targets[1].revision"),
        (vec!["revisions", "nope"], "no service named"),
    ] {
        let (ok, _, err) = maxcloud(&home, &server, &key, &args);
        assert!(!ok && err.starts_with("error: ") && err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(git(&repo, &["rev-parse", "main"]), head, "refusals moved main");
    let (_, orders_after) = api.get("/orders?limit=1000").await;
    assert_eq!(orders_after.as_array().unwrap().len(), orders_before, "refusals placed orders");

    // A retried deploy with the same idempotency key is the same order, not a new revision.
    let patch = |body: Value| {
        api.send(
            api.req(reqwest::Method::PATCH, &format!("/services/{id}"))
                .header("Idempotency-Key", "deploy-7")
                .json(&body),
        )
    };
    let (s1, first) = patch(json!({"image": "nginx:1.30"})).await;
    let (s2, again) = patch(json!({"image": "nginx:1.30"})).await;
    assert_eq!((s1, s2), (200, 200), "{first} {again}");
    assert_eq!(first["order_id"], again["order_id"]);
    assert_eq!((first["revision"].as_str(), again["revision"].as_str()), (Some("r5"), Some("r5")));

    // Without a key: 401 on both endpoints.
    assert_eq!(anon.get(&format!("/services/{id}/revisions")).await.0, 401);
    let body = json!({"to_latest": true});
    assert_eq!(anon.send(anon.req(reqwest::Method::PUT, &format!("/services/{id}/traffic")).json(&body)).await.0, 401);

    // Another organisation: every endpoint answers 404 for this service, and nothing changes.
    let head = git(&repo, &["rev-parse", "main"]);
    assert_eq!(other.get(&format!("/services/{id}/revisions")).await.0, 404);
    let (status, _) = other
        .send(other.req(reqwest::Method::PUT, &format!("/services/{id}/traffic")).json(&json!({"to_latest": true})))
        .await;
    assert_eq!(status, 404);
    let (ok, _, err) = maxcloud(&home, &server, &other_key, &["rollback", "shop", "r1"]);
    assert!(!ok && err.contains("no service named"), "{err}");
    assert_eq!(git(&repo, &["rev-parse", "main"]), head);

    // The endpoints are documented, each with its own operation id.
    let (_, doc) = api.get("/openapi.json").await;
    for (path, method) in [
        ("/api/v1/services/{id}/revisions", "get"),
        ("/api/v1/services/{id}/traffic", "put"),
        ("/api/v1/services/{id}/domains", "post"),
        ("/api/v1/services/{id}/domains", "get"),
        ("/api/v1/services/{id}/domains/{domain}/verify", "post"),
        ("/api/v1/services/{id}/domains/{domain}", "delete"),
    ] {
        assert!(doc["paths"][path][method]["operationId"].is_string(), "OpenAPI lacks {method} {path}");
    }
    for schema in ["Revisions", "Revision", "TrafficTarget", "SetTrafficRequest", "Domain", "AddDomainRequest"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "OpenAPI lacks the schema {schema}");
    }

    // The traffic changes are in the audit log under their own action.
    let (_, log) = api.get("/audit?action=services.traffic.update").await;
    let log = log.as_array().unwrap();
    assert!(log.iter().any(|e| e["status"] == 200), "{log:?}");
    assert!(log.iter().any(|e| e["status"] == 422), "{log:?}");
}

/// With a cluster connected, `maxcloud revisions` also shows what the cluster serves: the XR status the composition
/// writes (latest created and ready revision, traffic with the tags' URLs), as the status aggregator records it.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_reports_which_revisions_serve() {
    let cp = ControlPlane::start().await.expect("control plane");
    let mut setup = catalog_crds();
    setup.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-acme"}}));
    cp.apply(setup).await.expect("catalog CRDs");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let options = Options {
        env: vec![("MAXCLOUD_KUBECONFIG".into(), cp.kubeconfig.display().to_string())],
        ..Default::default()
    };
    let server = Server::start(&tmp.path().join("data"), options);
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@acme.example", "Acme").await;
    assert_eq!(slug, "acme");
    let api = anon.with_key(&key);
    let wait = Duration::from_secs(30);

    let (status, svc) = api.post("/services", &json!({"name": "shop", "image": "nginx:1.27"})).await;
    assert_eq!(status, 201, "{svc}");
    api.wait_order(svc["order_id"].as_str().unwrap(), "merged", wait).await;
    let id = svc["id"].as_str().unwrap().to_string();
    let body = json!({"image": "nginx:1.28", "no_traffic": true, "tag": "canary"});
    let (status, svc) = api.send(api.req(reqwest::Method::PATCH, &format!("/services/{id}")).json(&body)).await;
    assert_eq!((status, svc["revision"].as_str()), (200, Some("r2")), "{svc}");
    api.wait_order(svc["order_id"].as_str().unwrap(), "merged", wait).await;
    let (_, revs) = api.get(&format!("/services/{id}/revisions")).await;
    assert!(revs.get("cluster").is_none(), "nothing reported yet: {revs}");

    // "Flux" applies the committed App; "Crossplane" writes the status the composition derives from Knative's.
    let app = apply_committed(&cp, &server.repo_dir(&slug), "apps/shop.yaml").await;
    assert_eq!(app["spec"]["traffic"][1], json!({"revision": "r2", "percent": 0, "tag": "canary"}), "{app}");
    let canary_url = "https://canary-shop.mc-acme.apps.maxcloud.example";
    set_status(
        &cp,
        &app,
        json!({"url": "https://shop.mc-acme.apps.maxcloud.example", "ready": true,
               "latestRevision": "shop-r2", "latestReadyRevision": "shop-r2",
               "traffic": [{"revision": "shop-r1", "percent": 100},
                           {"revision": "shop-r2", "percent": 0, "tag": "canary", "url": canary_url}],
               "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-11-21T08:00:01Z"}]}),
    )
    .await;
    let started = std::time::Instant::now();
    let cluster = loop {
        let (_, revs) = api.get(&format!("/services/{id}/revisions")).await;
        if let Some(c) = revs.get("cluster") {
            break c.clone();
        }
        assert!(started.elapsed() < wait, "the cluster's status never reached the API: {revs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        cluster,
        json!({"latest_created": "r2", "latest_ready": "r2", "traffic": [
            {"revision": "r1", "percent": 100},
            {"revision": "r2", "percent": 0, "tag": "canary", "url": canary_url}]})
    );
    let (ok, table, err) = maxcloud(&home, &server, &key, &["revisions", "shop"]);
    assert!(ok, "{err}");
    assert!(
        table.contains(&format!(
            "cluster: latest ready r2, latest created r2, serving r1=100%, r2=0% (canary {canary_url})"
        )),
        "{table}"
    );
}
