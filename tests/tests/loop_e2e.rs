//! The whole loop with every link live: `maxcloud deploy` → the order service's PR, merged → its call to the
//! tenant's Flux Receiver → Flux pulls the tenant repo over HTTP from the order service and applies the XR as the
//! tenant's ServiceAccount → Crossplane core composes it with the platform's functions → the test reports the
//! composed object's status as its controller would (Knative, CloudNativePG: no kubelet runs here) → the
//! server's status aggregator carries the outcome back to the order (`applied` → `ready` | `failed`), the
//! services API, the resource tree, the CLI, the live events and the Git history (a commit status on the merge
//! commit) — and a delete order makes Flux prune the XR, Crossplane's composed objects go with it, and the
//! delete order is done once the cluster no longer has it. The server watches the cluster as the ServiceAccount
//! the Helm chart installs, with exactly the chart's read-only rights.

use std::time::Duration;

use kube::api::{Api as KubeApi, DynamicObject, Patch, PatchParams};
use maxcloud_testenv::crossplane::api as kube_api;
use maxcloud_testenv::{ControlPlane, Crossplane, Flux};
use maxcloud_tests::cluster::{install_server_identity, onboard, Env, Tenant, WEBHOOK_TOKEN};
use maxcloud_tests::sse::{read_events, states_of};
use maxcloud_tests::{finish, spawn_cli};
use serde_json::{json, Value};

const KSVC: (&str, &str, &str) = ("serving.knative.dev", "v1", "Service");
const CNPG_CLUSTER: (&str, &str, &str) = ("postgresql.cnpg.io", "v1", "Cluster");
const APP: (&str, &str, &str) = ("maxcloud.dev", "v1alpha1", "App");
const DATABASE: (&str, &str, &str) = ("maxcloud.dev", "v1alpha1", "Database");
const TIMEOUT: Duration = Duration::from_secs(90);

/// Collects a running command's stderr lines as they come.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("piped stderr");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    lines
}

/// Sets the status of a composed object as its controller would.
async fn report(env: &Env, gvk: (&str, &str, &str), plural: &str, ns: &str, name: &str, status: Value) {
    let client = env.client().await;
    let api: KubeApi<DynamicObject> = kube_api(&client, &format!("{}/{}", gvk.0, gvk.1), gvk.2, plural, Some(ns));
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({ "status": status })))
        .await
        .unwrap_or_else(|e| panic!("status of {} {name}: {e}", gvk.2));
}

fn ready_conditions(extra: &[&str]) -> Value {
    let at = "2026-11-21T08:00:00Z";
    let mut c = vec![json!({"type": "Ready", "status": "True", "lastTransitionTime": at})];
    c.extend(extra.iter().map(|t| json!({"type": t, "status": "True", "lastTransitionTime": at})));
    Value::Array(c)
}

/// The order's merge commit and the commit statuses the order service set on it (`git notes`, as a user with a
/// clone would read them).
fn commit_statuses(env: &Env, t: &Tenant, order: &Value) -> Vec<Value> {
    let commit = order["pull_request"]["merge_commit"].as_str().unwrap_or_else(|| panic!("merge commit: {order}"));
    let repo = env.server.repo_dir(&t.slug);
    let out = maxcloud_tests::git_output(&repo, &["notes", "--ref=maxcloud-status", "show", commit]);
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("note of {commit} is JSON: {e}"))
}

async fn wait_commit_status(env: &Env, t: &Tenant, order: &Value, context: &str) -> Value {
    let (status, _) = env
        .wait_for(&format!("commit status {context}"), Duration::from_secs(30), || async {
            commit_statuses(env, t, order).into_iter().find(|s| s["context"] == context)
        })
        .await;
    status
}

/// Flux could pull because the server created the tenant's two Secrets (none was committed or made by the
/// test); it can read exactly those, no other Secret; minting the Git token was audit-logged.
async fn secrets_created_by_the_server(env: &Env, t: &Tenant, account: &str) {
    use k8s_openapi::api::core::v1::Secret;
    let admin = env.client().await;
    let secrets: KubeApi<Secret> = KubeApi::namespaced(admin, &t.ns);
    let webhook = secrets.get("maxcloud-webhook-token").await.expect("webhook Secret");
    assert_eq!(
        webhook.data.as_ref().and_then(|d| d.get("token")).map(|b| b.0.as_slice()),
        Some(WEBHOOK_TOKEN.as_bytes())
    );
    let git = secrets.get("maxcloud-git-token").await.expect("Git token Secret");
    assert_eq!(
        git.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/managed-by")).map(String::as_str),
        Some("maxcloud")
    );
    let password = String::from_utf8(git.data.as_ref().and_then(|d| d.get("password")).expect("password").0.clone())
        .expect("utf8");
    assert!(password.starts_with("mcg_"), "a Git read token");
    // The token is nowhere in Git.
    for repo in [env.server.repo_dir(&t.slug), env.server.data_dir.join("repos/platform.git")] {
        let out = maxcloud_tests::git_output(&repo, &["grep", "-q", &password, "main"]);
        assert!(!out.status.success(), "the token is committed in {}", repo.display());
    }
    // Least privilege: another Secret of the namespace is out of the server's reach.
    secrets
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}, "stringData": {"k": "v"}})).expect("Secret"),
        )
        .await
        .expect("create");
    let (namespace, name) = account.split_once('/').expect("namespace/name");
    let as_server = env.cp.client_as(&format!("system:serviceaccount:{namespace}:{name}")).await.expect("client");
    let theirs: KubeApi<Secret> = KubeApi::namespaced(as_server, &t.ns);
    assert!(theirs.get("maxcloud-git-token").await.is_ok(), "the server reads its own Secrets");
    let refused = theirs.get("other").await.expect_err("the server cannot read other Secrets");
    assert!(refused.to_string().contains("forbidden"), "{refused}");
    let store =
        maxcloud_store::Store::connect(&format!("sqlite://{}", env.server.data_dir.join("maxcloud.db").display()))
            .await
            .expect("store");
    let tenant = store.tenant_by_slug(&t.slug).await.expect("tenant").expect("tenant");
    let log = store.audit_log(Some(&tenant.id), 500).await.expect("audit log");
    assert!(log.iter().any(|e| e.entry.action == "flux.git-token.create" && e.entry.status == 201), "audited");
}

/// Approves an order that needs review (Database creates and deletes do) once its PR is open.
async fn approve(t: &Tenant, id: &str) {
    let review = t.api.wait_order(id, "pr_open", Duration::from_secs(30)).await;
    assert_eq!(review["pull_request"]["merge_policy"], "review", "a data service needs review: {review}");
    let (code, approved) = t.api.post(&format!("/orders/{id}/approve"), &json!({})).await;
    assert_eq!(code, 200, "{approved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_travel_the_whole_loop_and_back() {
    let cp = ControlPlane::start().await.expect("control plane");
    let flux = Flux::start(&cp).await.unwrap_or_else(|e| panic!("Flux: {e}"));
    let xp = Crossplane::start(&cp).await.unwrap_or_else(|e| panic!("Crossplane: {e}"));
    xp.install_platform(&cp).await.unwrap_or_else(|e| panic!("platform: {e}"));
    let tmp = tempfile::tempdir().expect("tempdir");
    // The server acts with the rights the Helm chart gives it, and no more: it creates each tenant's Flux
    // Secrets itself, through the Role the tenant's platform directory grants it.
    let (kubeconfig, account) = install_server_identity(&cp).await;
    let env = Env::start(cp, flux, tmp.path(), (&kubeconfig, Some(&account)));
    let anon = maxcloud_tests::Api::new(&env.server);
    let t = onboard(&env, &anon, "ops@acme.example", "Acme").await;
    let key = t.api.key.clone().expect("key");
    secrets_created_by_the_server(&env, &t, &account).await;
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let events = t.api.req(reqwest::Method::GET, "/events").send().await.expect("SSE");

    // 1. `maxcloud deploy --wait`: PR, merge, Flux, Crossplane composes the Knative Service.
    let mut deploy =
        spawn_cli(&home, &env.server, &key, &["deploy", "nginx:1.27", "--name", "shop", "--wait", "--timeout", "120"]);
    let progress = stderr_lines(&mut deploy);
    let (ksvc, composed_after) = env
        .wait_for("the Knative Service of App shop, composed by Crossplane", TIMEOUT, || async {
            env.get(KSVC, &t.ns, "shop").await
        })
        .await;
    eprintln!("deploy → Knative Service composed: {composed_after:?}");
    assert_eq!(ksvc["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27", "{ksvc}");
    let (_, orders) = t.api.get("/orders").await;
    let shop_order = orders.as_array().and_then(|l| l.iter().find(|o| o["name"] == "shop")).expect("order")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let applied = t.api.wait_order(&shop_order, "applied", Duration::from_secs(30)).await;
    assert!(["applied", "ready"].contains(&applied["state"].as_str().unwrap_or_default()), "{applied}");
    // Not ready while Knative has not reported — and `--wait` shows the composed Knative Service as such.
    let (_, svc) = t.api.get("/services").await;
    assert_ne!(svc[0]["status"], "ready", "{svc}");
    env.wait_for("deploy --wait to show the composed Knative Service", Duration::from_secs(30), || async {
        let shown = progress.lock().expect("lines").iter().any(|l| l.contains("Service shop: created"));
        shown.then_some(())
    })
    .await;
    let url = "https://shop.acme.apps.maxcloud.example";
    report(
        &env,
        KSVC,
        "services",
        &t.ns,
        "shop",
        json!({
            "observedGeneration": ksvc["metadata"]["generation"],
            "conditions": ready_conditions(&["ConfigurationsReady", "RoutesReady"]),
            "url": url, "latestReadyRevisionName": "shop-00001", "latestCreatedRevisionName": "shop-00001",
            "traffic": [{"revisionName": "shop-00001", "latestRevision": true, "percent": 100}],
        }),
    )
    .await;
    let (ok, stdout, _) = finish(deploy).await;
    let stderr = progress.lock().expect("lines").join("\n");
    assert!(ok, "deploy --wait failed:\n{stderr}\n{}", env.logs());
    assert!(stderr.contains(": applied") && stderr.contains(": ready"), "progress shown live:\n{stderr}");
    assert!(stderr.contains("Service shop: ready"), "and the Knative Service when it is ready:\n{stderr}");
    assert!(stdout.contains(url), "ends with the URL:\n{stdout}");
    let order = t.api.wait_order(&shop_order, "ready", Duration::from_secs(5)).await;
    let (shop, _) = env
        .wait_for("service shop to be ready with its URL", Duration::from_secs(30), || async {
            let (_, services) = t.api.get("/services").await;
            let shop = services.as_array().and_then(|l| l.iter().find(|s| s["name"] == "shop")).cloned()?;
            (shop["status"] == "ready").then_some(shop)
        })
        .await;
    assert_eq!(shop["url"].as_str(), Some(url), "{shop}");

    // The resource tree: the XR and what Crossplane composed, with conditions.
    let (tree, _) = env
        .wait_for("the tree of App shop to be ready", Duration::from_secs(30), || async {
            let (status, tree) = t.api.get("/resources/App/shop/tree").await;
            assert_eq!(status, 200, "{tree}");
            (tree["ready"] == true).then_some(tree)
        })
        .await;
    assert_eq!(
        (tree["kind"].as_str(), tree["ready"].as_bool(), tree["observed"].as_bool()),
        (Some("App"), Some(true), Some(true)),
        "{tree}"
    );
    let children = tree["children"].as_array().expect("children");
    assert!(
        children
            .iter()
            .any(|c| c["kind"] == "Service" && c["api_version"] == "serving.knative.dev/v1" && c["ready"] == true),
        "the Knative Service is in the tree: {tree}"
    );
    let (_, stdout, _) = finish(spawn_cli(&home, &env.server, &key, &["status", "shop"])).await;
    assert!(
        stdout.contains("resources:") && stdout.lines().any(|l| l.contains("Service shop") && l.contains("ready")),
        "{stdout}"
    );

    // The outcome is reported on the merge commit.
    let status = wait_commit_status(&env, &t, &order, "maxcloud/App/shop").await;
    assert_eq!(status["state"], "success", "{status}");
    assert_eq!(status["target_url"], url, "{status}");
    assert_eq!(status["order_id"], shop_order.as_str(), "{status}");

    // 2. Failure: Knative reports the revision failed; the order fails with Knative's message everywhere.
    let (code, broken) = t
        .api
        .post("/orders", &json!({"kind": "App", "name": "broken", "parameters": {"image": "ghcr.io/acme/nope:1"}}))
        .await;
    assert_eq!(code, 201, "{broken}");
    let broken_id = broken["id"].as_str().expect("id").to_string();
    let watch = spawn_cli(&home, &env.server, &key, &["status", "broken", "--watch", "--timeout", "120"]);
    let (bksvc, _) =
        env.wait_for("Knative Service broken", TIMEOUT, || async { env.get(KSVC, &t.ns, "broken").await }).await;
    let reason = "Revision \"broken-00001\" failed with message: Back-off pulling image \"ghcr.io/acme/nope:1\".";
    report(
        &env,
        KSVC,
        "services",
        &t.ns,
        "broken",
        json!({
            "observedGeneration": bksvc["metadata"]["generation"],
            "conditions": [{"type": "Ready", "status": "False", "reason": "RevisionMissing", "message": reason,
                            "lastTransitionTime": "2026-11-21T08:00:00Z"}],
        }),
    )
    .await;
    let failed = t.api.wait_order(&broken_id, "failed", TIMEOUT).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["error"].as_str().unwrap_or_default().contains("Back-off pulling image"), "{failed}");
    let (ok, _, stderr) = finish(watch).await;
    assert!(!ok && stderr.contains("Back-off pulling image"), "status --watch ends with the error:\n{stderr}");
    let status = wait_commit_status(&env, &t, &failed, "maxcloud/App/broken").await;
    assert_eq!(status["state"], "failure", "{status}");
    assert!(status["description"].as_str().unwrap_or_default().contains("Back-off pulling image"), "{status}");

    // 3. Delete: the PR removing the file is merged, Flux prunes the XR, Crossplane's composed objects go with
    // it, and the delete order is done when the cluster no longer has the App.
    let (ok, stdout, stderr) =
        finish(spawn_cli(&home, &env.server, &key, &["delete", "shop", "--wait", "--timeout", "120"])).await;
    assert!(ok, "delete --wait failed:\n{stderr}\n{}", env.logs());
    assert!(stdout.contains("deleted shop"), "{stdout}");
    assert!(env.get(APP, &t.ns, "shop").await.is_none(), "the App is gone when delete --wait returns");
    env.wait_for("the Knative Service of shop to be garbage-collected", TIMEOUT, || async {
        env.get(KSVC, &t.ns, "shop").await.is_none().then_some(())
    })
    .await;
    let (_, orders) = t.api.get("/orders").await;
    let delete_order = orders
        .as_array()
        .and_then(|l| l.iter().find(|o| o["name"] == "shop" && o["action"] == "delete"))
        .expect("delete order")
        .clone();
    assert_eq!(delete_order["state"], "ready", "{delete_order}");
    let status = wait_commit_status(&env, &t, &delete_order, "maxcloud/App/shop").await;
    assert_eq!(
        (status["state"].as_str(), status["description"].as_str()),
        (Some("success"), Some("deleted")),
        "{status}"
    );
    assert_eq!(t.api.get("/resources/App/shop/tree").await.0, 404, "a deleted resource has no tree");

    // 4. A Database: composed into a CloudNativePG Cluster; ready when CNPG reports it; deleted the same way.
    let (code, db) = t
        .api
        .post("/orders", &json!({"kind": "Database", "name": "orders-db", "parameters": {"deletionProtection": false}}))
        .await;
    assert_eq!(code, 201, "{db}");
    let db_id = db["id"].as_str().expect("id").to_string();
    approve(&t, &db_id).await;
    let (cluster, _) = env
        .wait_for("the CNPG Cluster of Database orders-db", TIMEOUT, || async {
            env.get(CNPG_CLUSTER, &t.ns, "orders-db").await
        })
        .await;
    report(&env, CNPG_CLUSTER, "clusters", &t.ns, "orders-db", json!({
        "observedGeneration": cluster["metadata"]["generation"],
        "phase": "Cluster in healthy state", "instances": 1, "readyInstances": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
                        "lastTransitionTime": "2026-11-21T08:00:00Z"}],
    }))
    .await;
    let ready = t.api.wait_order(&db_id, "ready", TIMEOUT).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    // Crossplane may report the XR unready once more from a reconcile that read the Cluster before its status
    // changed; the resource's status converges.
    env.wait_for("the Database resource and its tree to be ready", Duration::from_secs(30), || async {
        let (_, resources) = t.api.get("/resources?kind=Database").await;
        let (_, tree) = t.api.get("/resources/Database/orders-db/tree").await;
        let cluster_ready =
            tree["children"].as_array().is_some_and(|c| c.iter().any(|c| c["kind"] == "Cluster" && c["ready"] == true));
        (resources[0]["status"] == "ready" && tree["ready"] == true && cluster_ready).then_some(())
    })
    .await;
    assert_eq!(wait_commit_status(&env, &t, &ready, "maxcloud/Database/orders-db").await["state"], "success");
    let (code, del) =
        t.api.post("/orders", &json!({"kind": "Database", "name": "orders-db", "action": "delete"})).await;
    assert_eq!(code, 201, "{del}");
    let del_id = del["id"].as_str().expect("id").to_string();
    approve(&t, &del_id).await;
    let done = t.api.wait_order(&del_id, "ready", TIMEOUT).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert!(env.get(DATABASE, &t.ns, "orders-db").await.is_none());
    env.wait_for("the CNPG Cluster to be garbage-collected", TIMEOUT, || async {
        env.get(CNPG_CLUSTER, &t.ns, "orders-db").await.is_none().then_some(())
    })
    .await;

    // 5. Every state change reached the live event stream, in order, each once.
    let seen = read_events(events, TIMEOUT, |f| states_of(f, &del_id).last().is_some_and(|s| s == "ready")).await;
    for (order, expected) in [
        (&shop_order, vec!["accepted", "pr_open", "merged", "applied", "ready"]),
        (&broken_id, vec!["accepted", "pr_open", "merged", "applied", "failed"]),
        // Review orders: the approval is an event of its own (still `pr_open`, "approved by …").
        (&db_id, vec!["accepted", "pr_open", "pr_open", "merged", "applied", "ready"]),
        (&del_id, vec!["accepted", "pr_open", "pr_open", "merged", "applied", "ready"]),
    ] {
        let states = states_of(&seen, order);
        // `applied` is skipped when Crossplane reports the outcome before Flux reports the applied revision.
        let without_applied: Vec<&str> = expected.iter().copied().filter(|s| *s != "applied").collect();
        assert!(states == expected || states == without_applied, "events of order {order}: {seen:?}");
    }
    // And the services' status changes, as the cluster reported them.
    let services: Vec<Value> = seen
        .iter()
        .filter(|(event, _, _)| event == "service")
        .filter_map(|(_, _, d)| serde_json::from_str(d).ok())
        .collect();
    assert!(
        services.iter().any(|d| d["name"] == "shop" && d["status"] == "ready" && d["url"] == url),
        "service shop ready with its URL: {services:?}"
    );
    assert!(
        services.iter().any(|d| d["name"] == "broken"
            && d["status"] == "failed"
            && d["message"].as_str().is_some_and(|m| m.contains("Back-off pulling image"))),
        "service broken failed with Knative's message: {services:?}"
    );
    let ids: Vec<i64> = seen.iter().map(|(_, id, _)| id.parse().expect("numeric id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    eprintln!(
        "memory at the end (KiB): control plane {:?}; Crossplane and functions {:?}\n{}",
        env.cp.rss_kib(),
        xp.rss_kib(),
        env.flux.report()
    );
    drop(xp);
}
