//! Following an order until it settles (`--wait`).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use maxcloud_api_model::{order_state_is_terminal, order_state_reached, Order, ResourceNode};
use reqwest::{header::HeaderMap, Method};

use super::Ctx;
use crate::client::segment;

/// Poll interval of `--wait`.
pub const POLL: Duration = Duration::from_millis(200);

/// Response header the server sets (`X-Maxcloud-Cluster: none`) when no cluster is connected, so an order
/// cannot get beyond `merged`.
pub const CLUSTER_HEADER: &str = "x-maxcloud-cluster";

pub fn no_cluster(headers: &HeaderMap) -> bool {
    headers.get(CLUSTER_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
}

/// The stderr progress line for a state change.
pub fn state_line(order: &Order) -> String {
    let mut line = format!("order {}: {}", order.id, order.state);
    if order.state == "pr_open" {
        if let Some(pr) = &order.pull_request {
            match (pr.merge_policy.as_str(), &pr.url) {
                // On a Git hosting provider the review happens on the pull request.
                ("review", Some(url)) => {
                    let state = pr.review_state.as_deref().unwrap_or("pending").replace('_', " ");
                    line.push_str(&format!(" (review {state}: {url})"));
                }
                ("review", None) => line.push_str(&format!(" (awaiting review: maxcloud orders approve {})", order.id)),
                _ => {}
            }
        }
    }
    line
}

/// Why a failed order failed: its error, else the last history message.
pub fn failure_reason(order: &Order) -> Option<String> {
    order
        .error
        .clone()
        .or_else(|| order.history.iter().rev().find_map(|t| t.message.clone()))
        .filter(|m| !m.trim().is_empty())
}

/// Whether polling should stop: `Some(Ok)` on success, `Some(Err)` on a failed order, `None` to go on.
pub fn settle(order: &Order, headers: &HeaderMap) -> Option<Result<()>> {
    match order.state.as_str() {
        "ready" => Some(Ok(())),
        s if order_state_is_terminal(s) => {
            let reason = failure_reason(order).map(|r| format!(": {r}")).unwrap_or_default();
            Some(Err(anyhow::anyhow!("order {} {}{reason}", order.id, order.state)))
        }
        s if order_state_reached(s, "merged") && no_cluster(headers) => Some(Ok(())),
        _ => None,
    }
}

/// A resource's state in words: not created yet, not ready (with the reason), ready, or created (for objects
/// without a Ready condition).
pub fn node_state(node: &ResourceNode) -> String {
    match (node.observed, node.ready, node.synced) {
        (false, _, _) => "not created yet".to_string(),
        (_, _, Some(false)) | (_, Some(false), _) => {
            format!("not ready{}", node.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())
        }
        (_, Some(true), _) => "ready".to_string(),
        _ => "created".to_string(),
    }
}

/// The composed resources of a tree as `(key, line)` pairs, depth-first (the root itself excluded).
pub fn composed_lines(tree: &ResourceNode) -> Vec<(String, String)> {
    fn walk(node: &ResourceNode, depth: usize, out: &mut Vec<(String, String)>) {
        for child in &node.children {
            let state = node_state(child);
            let key = format!("{}/{}/{}", child.api_version, child.kind, child.name);
            out.push((key, format!("{}{} {}: {state}", "  ".repeat(depth + 1), child.kind, child.name)));
            walk(child, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(tree, 0, &mut out);
    out
}

/// What `--wait` and `--watch` show on stderr: each order state once, each composed resource's state when it
/// changes, and — on a terminal — a spinner while nothing changes.
struct Progress {
    tty: bool,
    spinner: usize,
    state: Option<String>,
    composed: std::collections::HashMap<String, String>,
}

impl Progress {
    fn new() -> Progress {
        use std::io::IsTerminal;
        Progress { tty: std::io::stderr().is_terminal(), spinner: 0, state: None, composed: Default::default() }
    }

    fn line(&mut self, text: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{text}");
    }

    fn order(&mut self, order: &Order) {
        if self.state.as_deref() != Some(order.state.as_str()) {
            self.line(&state_line(order));
            self.state = Some(order.state.clone());
        }
    }

    fn tree(&mut self, tree: &ResourceNode) {
        for (key, line) in composed_lines(tree) {
            if self.composed.get(&key) != Some(&line) {
                self.line(&line);
                self.composed.insert(key, line);
            }
        }
    }

    fn tick(&mut self) {
        if self.tty {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            self.spinner = (self.spinner + 1) % FRAMES.len();
            eprint!("\r{} {}", FRAMES[self.spinner], self.state.as_deref().unwrap_or(""));
        }
    }

    fn done(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Polls `GET /api/v1/orders/{id}` every 200 ms, printing each state change to stderr — and, once the order is
/// merged into a cluster, its composed resources as they appear and become ready — until the order is ready,
/// failed, or merged on a server without a cluster; errors on failure or after `timeout`.
pub async fn follow_order(ctx: &Ctx, id: &str, timeout: Duration) -> Result<Order> {
    let started = Instant::now();
    let path = format!("/api/v1/orders/{}", segment(id));
    let mut progress = Progress::new();
    loop {
        let resp = ctx.client.request_full::<Order>(Method::GET, &path, None, &[]).await?;
        let order = resp.body;
        progress.order(&order);
        if order_state_reached(&order.state, "merged") && !no_cluster(&resp.headers) && order.action != "delete" {
            let tree_path = format!("/api/v1/resources/{}/{}/tree", segment(&order.kind), segment(&order.name));
            // Best effort: the order's outcome does not depend on it.
            if let Ok(Some(tree)) = ctx.client.get_opt::<ResourceNode>(&tree_path).await {
                progress.tree(&tree);
            }
        }
        match settle(&order, &resp.headers) {
            Some(result) => {
                progress.done();
                return result.map(|()| order);
            }
            None => progress.tick(),
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            progress.done();
            bail!("timed out after {}s waiting for order {} (state: {})", timeout.as_secs(), order.id, order.state);
        }
        tokio::time::sleep(POLL.min(timeout - elapsed)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxcloud_api_model::{OrderTransition, PullRequest};
    use reqwest::header::HeaderValue;

    fn order(state: &str) -> Order {
        Order {
            id: "ord_1".into(),
            tenant: "acme".into(),
            action: "create".into(),
            kind: "App".into(),
            name: "shop".into(),
            parameters: serde_json::json!({}),
            state: state.into(),
            requester: "a@example.com".into(),
            idempotency_key: None,
            resource_id: "res_1".into(),
            path: "apps/shop.yaml".into(),
            pull_request: None,
            error: None,
            created_at: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-01T00:00:00Z".into(),
            history: vec![],
        }
    }

    #[test]
    fn settles_on_ready_failure_and_merged_without_cluster() {
        let none = HeaderMap::new();
        let mut no_cl = HeaderMap::new();
        no_cl.insert("X-Maxcloud-Cluster", HeaderValue::from_static("none"));
        assert!(matches!(settle(&order("ready"), &none), Some(Ok(()))));
        assert!(settle(&order("pr_open"), &no_cl).is_none());
        assert!(settle(&order("merged"), &none).is_none());
        assert!(matches!(settle(&order("merged"), &no_cl), Some(Ok(()))));
        assert!(matches!(settle(&order("applied"), &no_cl), Some(Ok(()))));
        let mut failed = order("failed");
        failed.history.push(OrderTransition {
            state: "failed".into(),
            at: "t".into(),
            message: Some("image pull".into()),
        });
        let err = settle(&failed, &no_cl).unwrap().unwrap_err().to_string();
        assert_eq!(err, "order ord_1 failed: image pull");
        let err = settle(&order("rejected"), &none).unwrap().unwrap_err().to_string();
        assert_eq!(err, "order ord_1 rejected");
    }

    #[test]
    fn composed_resources_one_line_each_with_their_state() {
        let node = |kind: &str, name: &str, observed: bool, ready: Option<bool>, message: Option<&str>| ResourceNode {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            namespace: "mc-acme".into(),
            observed,
            ready,
            synced: None,
            message: message.map(str::to_string),
            children: vec![],
        };
        let mut app = node("App", "web", true, Some(false), None);
        app.children = vec![
            node("Service", "web", true, Some(false), Some("RevisionMissing")),
            node("DNSEndpoint", "web-www", true, None, None),
            node("DomainMapping", "www.acme.example", false, None, None),
        ];
        let lines: Vec<String> = composed_lines(&app).into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines,
            [
                "  Service web: not ready: RevisionMissing",
                "  DNSEndpoint web-www: created",
                "  DomainMapping www.acme.example: not created yet"
            ]
        );
        assert_eq!(node_state(&node("App", "web", true, Some(true), None)), "ready");
    }

    #[test]
    fn review_hint_on_pr_open() {
        let mut o = order("pr_open");
        assert_eq!(state_line(&o), "order ord_1: pr_open");
        o.pull_request = Some(PullRequest {
            number: 1,
            branch: "b".into(),
            state: "open".into(),
            merge_policy: "review".into(),
            head_commit: "c".into(),
            merge_commit: None,
            title: "t".into(),
            body: "b".into(),
            url: None,
            review_state: Some("pending".into()),
            reviewed_by: vec![],
            required_reviewers: vec![],
            required_approvals: Some(1),
        });
        assert_eq!(state_line(&o), "order ord_1: pr_open (awaiting review: maxcloud orders approve ord_1)");
        let pr = o.pull_request.as_mut().unwrap();
        pr.url = Some("https://git.example/t/acme/pulls/3".into());
        pr.review_state = Some("changes_requested".into());
        assert_eq!(
            state_line(&o),
            "order ord_1: pr_open (review changes requested: https://git.example/t/acme/pulls/3)"
        );
    }
}
