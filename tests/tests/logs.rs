//! Service logs (issue 7, part 2): `GET /api/v1/services/{id}/logs` (SSE, `tail`, `follow`) and `maxcloud logs`,
//! read through a real kube-apiserver's pod log API with the order service acting as the Helm chart's
//! ServiceAccount (its RBAC on `pods/log`). No kubelet can run here: the node side is emulated
//! ([`maxcloud_testenv::Kubelet`]: a Node object whose kubelet endpoint is an HTTPS server of the test), everything
//! between is the API server's own proxying. Lines of every revision arrive in time order, only the App's user
//! container, never another tenant's or another App's pods; following picks up new lines and new revisions.

use std::time::{Duration, Instant};

use maxcloud_testenv::{ControlPlane, Kubelet};
use maxcloud_tests::cluster::install_server_identity;
use maxcloud_tests::logs::{assert_bad_queries_refused, follower, read_logs};
use maxcloud_tests::{cli_command, Api, Options, Server};
use serde_json::{json, Value};

const NODE: &str = "node-1";

/// A pod of App `app` (revision `revision`) on the emulated node, as Knative would run it.
fn pod(ns: &str, name: &str, app: &str, revision: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {
            "maxcloud.dev/kind": "App", "maxcloud.dev/name": app, "serving.knative.dev/revision": revision}},
        "spec": {"nodeName": NODE, "containers": [
            {"name": "user-container", "image": "nginx:1.27"},
            {"name": "queue-proxy", "image": "knative/queue:1.20"},
        ]},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_every_revision_through_the_pod_log_api() {
    let cp = ControlPlane::start().await.expect("control plane");
    let tmp = tempfile::tempdir().unwrap();
    let kubelet = Kubelet::start(&cp, NODE, tmp.path()).await.expect("emulated kubelet");
    let (kubeconfig, _) = install_server_identity(&cp).await;
    let server = Server::start(
        &tmp.path().join("data"),
        Options { env: vec![("MAXCLOUD_KUBECONFIG".into(), kubeconfig.display().to_string())], ..Default::default() },
    );
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@alpha.example", "Alpha").await;
    let (other_key, other_slug) = anon.register("eve@beta.example", "Beta").await;
    let (api, other) = (anon.with_key(&key), anon.with_key(&other_key));
    let (ns, other_ns) = (format!("mc-{slug}"), format!("mc-{other_slug}"));
    let (status, shop) = api.post("/services", &json!({"name": "shop", "image": "nginx:1.27"})).await;
    assert_eq!(status, 201, "{shop}");
    let (status, theirs) = other.post("/services", &json!({"name": "shop", "image": "nginx:1.27"})).await;
    assert_eq!(status, 201, "{theirs}");
    let shop_logs = format!("/services/{}/logs", shop["id"].as_str().unwrap());

    let namespaces =
        [&ns, &other_ns].map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}));
    cp.apply(namespaces.to_vec()).await.unwrap();
    cp.apply(vec![
        pod(&ns, "shop-r1-pod", "shop", "shop-r1"),
        pod(&ns, "shop-r2-pod", "shop", "shop-r2"),
        pod(&ns, "blog-pod", "blog", "blog-r1"),
        pod(&other_ns, "shop-theirs", "shop", "shop-r1"),
    ])
    .await
    .unwrap();
    for (pod, container, line) in [
        ("shop-r1-pod", "user-container", "r1: started"),
        ("shop-r1-pod", "queue-proxy", "queue-proxy noise"),
        ("shop-r1-pod", "user-container", "r1: GET /"),
        ("blog-pod", "user-container", "blog: other app"),
        ("shop-r2-pod", "user-container", "r2: started"),
        ("shop-r2-pod", "user-container", "r2: GET /cart"),
    ] {
        kubelet.write(&ns, pod, container, line);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kubelet.write(&other_ns, "shop-theirs", "user-container", "beta: secret business");

    // All revisions, in time order, the user container only.
    let (status, lines, _) = read_logs(&api, &shop_logs).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(texts, ["r1: started", "r1: GET /", "r2: started", "r2: GET /cart"], "{lines:?}");
    assert_eq!(lines[0]["revision"], "shop-r1");
    assert_eq!(lines[3]["revision"], "shop-r2");
    assert_eq!(lines[3]["pod"], "shop-r2-pod");
    assert!(lines.iter().all(|l| l["container"] == "user-container" && l["time"].as_str().unwrap().ends_with('Z')));
    // tail: the last N lines overall.
    let (_, lines, _) = read_logs(&api, &format!("{shop_logs}?tail=3")).await;
    let texts: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(texts, ["r1: GET /", "r2: started", "r2: GET /cart"]);
    // The API server proxied to the node with the parameters a kubelet understands.
    let proxied = kubelet.requests();
    assert!(
        proxied.iter().any(|r| r.starts_with(&format!("/containerLogs/{ns}/shop-r2-pod/user-container?"))
            && r.contains("tailLines=3")
            && r.contains("timestamps=true")),
        "{proxied:?}"
    );

    // The other tenant's service of the same name: only its own pod.
    let (_, lines, _) = read_logs(&other, &format!("/services/{}/logs", theirs["id"].as_str().unwrap())).await;
    assert_eq!(lines.iter().map(|l| l["line"].as_str().unwrap()).collect::<Vec<_>>(), ["beta: secret business"]);

    // The CLI.
    let home = tmp.path().join("home");
    let out = cli_command(&home, &server, Some(&key)).args(["logs", "shop", "--tail", "2"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 2, "{stdout}");
    assert!(
        printed[0].ends_with("shop-r2 | r2: started") && printed[1].ends_with("shop-r2 | r2: GET /cart"),
        "{stdout}"
    );
    assert!(!stdout.contains("beta") && !stdout.contains("noise") && !stdout.contains("blog"), "{stdout}");

    // Following: new lines of a running revision and of a revision that starts later, as they are printed.
    let (mut follow, mut rx) = follower(&home, &server, &key, "shop");
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> (Value, Duration) {
        let started = Instant::now();
        let line = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.ok().flatten();
        (line.unwrap_or_else(|| panic!("no followed line within 20 s")), started.elapsed())
    }
    assert_eq!(next(&mut rx).await.0["line"], "r2: GET /cart", "the tail first");
    // Give the follower time to open the node streams, then print.
    tokio::time::sleep(Duration::from_millis(500)).await;
    kubelet.write(&ns, "shop-r2-pod", "user-container", "r2: POST /checkout");
    let (line, latency) = next(&mut rx).await;
    assert_eq!((line["line"].as_str(), line["revision"].as_str()), (Some("r2: POST /checkout"), Some("shop-r2")));
    eprintln!("printed → on the follower's stdout: {latency:?}");
    cp.apply(vec![pod(&ns, "shop-r3-pod", "shop", "shop-r3")]).await.unwrap();
    let mut seen = None;
    for _ in 0..100 {
        kubelet.write(&ns, "shop-r3-pod", "user-container", "r3: started");
        if let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            seen = Some(line);
            break;
        }
    }
    let line = seen.expect("a line of the new revision");
    assert_eq!((line["line"].as_str(), line["revision"].as_str()), (Some("r3: started"), Some("shop-r3")));
    kubelet.write(&other_ns, "shop-theirs", "user-container", "beta: more business");
    kubelet.write(&ns, "blog-pod", "user-container", "blog: more");
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(line) = rx.try_recv() {
        assert_eq!(line["pod"].as_str().map(|p| p.starts_with("shop-r")), Some(true), "{line}");
    }
    follow.kill().unwrap();
    follow.wait().unwrap();

    // Bad input is refused by name; another tenant's service is not found; nothing is written.
    assert_bad_queries_refused(&api, &shop_logs).await;
    assert_eq!(read_logs(&other, &shop_logs).await.0, 404, "another tenant's service");
    assert_eq!(read_logs(&api, "/services/no-such-id/logs").await.0, 404);
    assert_eq!(read_logs(&anon, &shop_logs).await.0, 401);
    let out = cli_command(&home, &server, Some(&key)).args(["logs", "nope"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = cli_command(&home, &server, Some(&key)).args(["logs", "shop", "--tail", "0"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--tail"));

    // Without a cluster there are no logs to read: said so.
    let plain = Server::start(&tmp.path().join("plain"), Options::default());
    let anon = Api::new(&plain);
    let (key, _) = anon.register("ops@plain.example", "Plain").await;
    let api = anon.with_key(&key);
    let (_, svc) = api.post("/services", &json!({"name": "shop", "image": "nginx:1.27"})).await;
    let (status, _, body) = read_logs(&api, &format!("/services/{}/logs", svc["id"].as_str().unwrap())).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no cluster"), "{body}");
}
