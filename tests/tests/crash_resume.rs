//! Crash resume: the server dies at any step between accepting orders and recording their merge; after
//! a restart every accepted order has exactly one PR and exactly one commit on main.

use std::collections::HashSet;
use std::time::Duration;

use maxcloud_tests::{order_ids_on_main, Api, Options, Server};
use serde_json::json;

async fn place(api: &Api, n: usize, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, order) = api
            .post("/orders", &json!({"kind": "App", "name": format!("{prefix}-{i}"), "parameters": {"image": "nginx"}}))
            .await;
        assert_eq!(status, 201, "{order}");
        ids.push(order["id"].as_str().unwrap().to_string());
    }
    ids
}

async fn assert_exactly_once(server: &Server, api: &Api, slug: &str, ids: &[String]) {
    for id in ids {
        let order = api.wait_order(id, "merged", Duration::from_secs(30)).await;
        assert_eq!(order["state"], "merged", "{order}");
        assert_eq!(order["pull_request"]["state"], "merged");
    }
    let (_, orders) = api.get("/orders?limit=1000").await;
    let numbers: Vec<i64> =
        orders.as_array().unwrap().iter().map(|o| o["pull_request"]["number"].as_i64().unwrap()).collect();
    let unique: HashSet<_> = numbers.iter().collect();
    assert_eq!(unique.len(), numbers.len(), "one PR per order, no duplicate numbers: {numbers:?}");
    assert_eq!(numbers.len(), ids.len());
    let on_main = order_ids_on_main(&server.repo_dir(slug));
    assert_eq!(on_main.len(), ids.len(), "exactly one commit per order on main: {on_main:?}");
    let on_main: HashSet<_> = on_main.into_iter().collect();
    for id in ids {
        assert!(on_main.contains(id), "order {id} has its commit on main");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_accept_and_pr() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, Options { no_worker: true, ..Default::default() });
    let api = Api::new(&server);
    let (key, slug) = api.register("a@example.com", "Crash Test").await;
    let api = api.with_key(&key);
    let ids = place(&api, 12, "app").await;
    for id in &ids {
        assert_eq!(api.get(&format!("/orders/{id}")).await.1["state"], "accepted");
    }
    server.kill9();

    let server = Server::start(&data, Options::default());
    let api = Api::new(&server).with_key(&key);
    assert_exactly_once(&server, &api, &slug, &ids).await;
}

/// Abort inside the worker at each Git/store step, restart, and check nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread")]
async fn aborted_at_every_worker_step() {
    for failpoint in ["before_git:1", "after_git:1", "after_record:1"] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let server = Server::start(&data, Options { no_worker: true, ..Default::default() });
        let api = Api::new(&server);
        let (key, slug) = api.register("a@example.com", "Crash Test").await;
        let ids = place(&api.with_key(&key), 6, "app").await;
        server.kill9();

        // The worker resumes the stored orders at start-up and aborts at the failpoint.
        let server = Server::start(&data, Options { failpoint: Some(failpoint.into()), ..Default::default() });
        let status = server.wait_exit(Duration::from_secs(30));
        assert!(!status.success(), "{failpoint}: the process aborted");

        let server = Server::start(&data, Options::default());
        let api = Api::new(&server).with_key(&key);
        assert_exactly_once(&server, &api, &slug, &ids).await;
    }
}
