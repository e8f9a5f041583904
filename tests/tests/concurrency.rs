//! 50 concurrent orders for one tenant: 50 files on main, 50 commits, none lost.

use std::time::Duration;

use maxcloud_tests::{git, order_ids_on_main, Api, Options, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_orders_one_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let api = Api::new(&server);
    let (key, slug) = api.register("a@example.com", "Busy Shop").await;
    let api = api.with_key(&key);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let body =
                    json!({"kind": "App", "name": format!("svc-{i}"), "parameters": {"image": format!("nginx:1.{i}")}});
                let (status, order) = api.post("/orders", &body).await;
                assert_eq!(status, 201, "{order}");
                order["id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let ids: Vec<String> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    for id in &ids {
        let order = api.wait_order(id, "merged", Duration::from_secs(60)).await;
        assert_eq!(order["state"], "merged", "{order}");
    }
    let repo = server.repo_dir(&slug);
    let files = git(&repo, &["ls-tree", "-r", "--name-only", "main", "apps/"]);
    assert_eq!(files.lines().count(), 50, "{files}");
    for i in 0..50 {
        assert!(files.lines().any(|f| f == format!("apps/svc-{i}.yaml")), "apps/svc-{i}.yaml on main");
    }
    let on_main = order_ids_on_main(&repo);
    assert_eq!(on_main.len(), 50);
    let mut sorted = on_main.clone();
    sorted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every order's commit is on main exactly once");
    // History is linear: every commit has one parent.
    let merges = git(&repo, &["rev-list", "--merges", "main"]);
    assert!(merges.trim().is_empty());
    let content = git(&repo, &["show", "main:apps/svc-7.yaml"]);
    assert!(content.contains("image: nginx:1.7"), "{content}");
}
