//! Order helpers shared by the provider suites: place an order, wait for a state or any condition, read the
//! history.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::Api;

/// Place an order; its id (panics unless 201).
pub async fn place(api: &Api, body: Value) -> String {
    let (status, order) = api.post("/orders", &body).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_string()
}

/// Poll the order until `pred` holds; panics with the order after `timeout`.
pub async fn wait_for(api: &Api, id: &str, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, order) = api.get(&format!("/orders/{id}")).await;
        assert_eq!(status, 200, "{order}");
        if pred(&order) {
            return order;
        }
        assert!(start.elapsed() < timeout, "order {id}: waited {timeout:?} for {what}: {order:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The order's history as `state: message` lines.
pub fn history(order: &Value) -> String {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}: {}", h["state"].as_str().unwrap_or(""), h["message"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Database order (review policy by default).
pub fn db(name: &str) -> Value {
    json!({"kind": "Database", "name": name, "parameters": {"deletionProtection": false}})
}
