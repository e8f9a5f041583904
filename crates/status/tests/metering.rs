//! Metering against a real kube-apiserver: pods created with known requests, their status set through the
//! status subresource as a kubelet would (there is no kubelet or scheduler here), are metered by the aggregator
//! into exactly the expected vCPU-seconds and GiB-seconds per service; pods of no tenant service, unlabelled or
//! pending pods cost nothing; a deletion ends a pod's interval, also one that happened while nobody watched.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use maxcloud_status::Aggregator;
use maxcloud_store::{ServiceUsage, Store, GIB};
use maxcloud_testenv::ControlPlane;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const MI: u128 = 1 << 20;

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn rfc3339(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap().to_string()
}

fn pod(name: &str, labels: Value, cpu: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                 "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
    }))
    .unwrap()
}

fn service_labels(kind: &str, name: &str) -> Value {
    json!({"maxcloud.dev/kind": kind, "maxcloud.dev/name": name})
}

/// Creates the pod; the namespace's default ServiceAccount (which admission wants) may take a moment to appear.
async fn create(pods: &Api<Pod>, pod: &Pod) -> Pod {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match pods.create(&PostParams::default(), pod).await {
            Ok(created) => return created,
            Err(e) => assert!(Instant::now() < deadline, "cannot create pod: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sets the pod's status as the kubelet reports it: running since `started`, or finished at `finished`.
async fn kubelet_status(pods: &Api<Pod>, name: &str, started: i64, finished: Option<i64>) {
    let (phase, state) = match finished {
        None => ("Running", json!({"running": {"startedAt": rfc3339(started)}})),
        Some(f) => (
            "Succeeded",
            json!({"terminated": {"exitCode": 0, "startedAt": rfc3339(started), "finishedAt": rfc3339(f)}}),
        ),
    };
    let status = json!({"status": {"phase": phase, "startTime": rfc3339(started - 3),
        "containerStatuses": [{"name": "app", "image": "nginx:1.27", "imageID": "", "ready": finished.is_none(),
                               "restartCount": 0, "state": state}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.expect("pod status");
}

fn service(kind: &str, name: &str, pods: u64, cpu_milli_seconds: u128, memory_byte_seconds: u128) -> ServiceUsage {
    ServiceUsage { kind: kind.into(), name: name.into(), pods, cpu_milli_seconds, memory_byte_seconds }
}

/// Polls the store until `usage(from, to)` is `want`.
async fn usage_becomes(store: &Store, tenant: &str, from: i64, to: i64, want: &[ServiceUsage]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = store.usage(tenant, from, to).await.unwrap();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "usage in [{from}, {to}) stayed {got:#?}, expected {want:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until the pod's recorded interval has ended; returns its end.
async fn ended(store: &Store, tenant: &str, pod: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = store.pod_usages(tenant).await.unwrap();
        if let Some(end) = pods.iter().find(|p| p.pod == pod).and_then(|p| p.ended_at) {
            return end;
        }
        assert!(Instant::now() < deadline, "{pod} still running in the store: {pods:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_with_known_requests_and_running_times_produce_exactly_the_expected_usage() {
    let cp = ControlPlane::start().await.expect("control plane");
    cp.apply(vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-acme"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}),
    ])
    .await
    .expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let (store, tenant) = common::store_with_acme(dir.path()).await;

    let client = cp.client().await.unwrap();
    let (tx, _events) = mpsc::channel(256);
    let aggregator = tokio::spawn(Aggregator::new(client.clone(), store.clone()).with_metering().run(tx));

    // Whole seconds in the past, so that every window below is complete and the numbers exact.
    let t = now_s() - 10_000;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "mc-acme");
    create(&pods, &pod("web-1", service_labels("App", "web"), "500m", "256Mi")).await;
    create(&pods, &pod("web-2", service_labels("App", "web"), "0.25", "128Mi")).await;
    create(&pods, &pod("db-1", service_labels("Database", "shop-db"), "1", "1Gi")).await;
    create(&pods, &pod("unlabelled", json!({"app": "web"}), "4", "4Gi")).await;
    create(&pods, &pod("pending", service_labels("App", "web"), "8", "8Gi")).await;
    let elsewhere: Api<Pod> = Api::namespaced(client.clone(), "elsewhere");
    create(&elsewhere, &pod("foreign", service_labels("App", "web"), "2", "2Gi")).await;

    kubelet_status(&pods, "web-1", t, None).await;
    kubelet_status(&pods, "web-2", t + 1800, None).await;
    kubelet_status(&pods, "db-1", t, Some(t + 90)).await;
    kubelet_status(&pods, "unlabelled", t, None).await;
    kubelet_status(&elsewhere, "foreign", t, None).await;

    // One hour: web-1 500m/256Mi for 3600 s (1800 vCPU-s, 900 GiB-s) and web-2 250m/128Mi for 1800 s; db-1
    // 1 vCPU/1Gi for its 90 s. The unlabelled, pending and foreign pods cost nothing.
    let hour = [
        service("App", "web", 2, 500 * 3600 + 250 * 1800, 256 * MI * 3600 + 128 * MI * 1800),
        service("Database", "shop-db", 1, 1000 * 90, GIB * 90),
    ];
    usage_becomes(&store, &tenant, t, t + 3600, &hour).await;
    let usage = store.usage(&tenant, t, t + 3600).await.unwrap();
    assert_eq!((usage[0].vcpu_seconds(), usage[0].gib_seconds()), (1800.0 + 450.0, 900.0 + 225.0));
    assert_eq!((usage[1].vcpu_seconds(), usage[1].gib_seconds()), (90.0, 90.0));
    // Clipped to a window.
    let minute =
        [service("App", "web", 1, 500 * 60, 256 * MI * 60), service("Database", "shop-db", 1, 1000 * 30, GIB * 30)];
    assert_eq!(store.usage(&tenant, t + 60, t + 120).await.unwrap(), minute);
    assert!(store.usage(&tenant, t - 3600, t).await.unwrap().is_empty());

    // A pod that starts later is metered from its start.
    kubelet_status(&pods, "pending", t + 3000, None).await;
    let web = &hour[0];
    let with_late = [
        service("App", "web", 3, web.cpu_milli_seconds + 8000 * 600, web.memory_byte_seconds + 8 * GIB * 600),
        hour[1].clone(),
    ];
    usage_becomes(&store, &tenant, t, t + 3600, &with_late).await;

    // Deleting a running pod ends its interval at the deletion; the past is unchanged.
    let before = now_s();
    pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    let end = ended(&store, &tenant, "web-1").await;
    assert!((before..=now_s()).contains(&end), "web-1 ended at {end}, deleted between {before} and now");
    assert_eq!(store.usage(&tenant, t, t + 3600).await.unwrap(), with_late);

    // A pod deleted while the aggregator is not watching is ended by the next list.
    aggregator.abort();
    let _ = aggregator.await;
    let before = now_s();
    pods.delete("web-2", &DeleteParams::default()).await.unwrap();
    assert_eq!(store.pod_usages(&tenant).await.unwrap().iter().find(|p| p.pod == "web-2").unwrap().ended_at, None);
    let (tx, _events) = mpsc::channel(256);
    let aggregator = tokio::spawn(Aggregator::new(client.clone(), store.clone()).with_metering().run(tx));
    let end = ended(&store, &tenant, "web-2").await;
    assert!((before..=now_s()).contains(&end), "web-2 ended at {end}, deleted after {before}");
    let running: Vec<String> = store.running_pods().await.unwrap();
    assert_eq!(running.len(), 1, "only the late pod still runs: {running:?}");
    assert_eq!(store.usage(&tenant, t, t + 3600).await.unwrap(), with_late, "the replay changes nothing");
    aggregator.abort();
}
