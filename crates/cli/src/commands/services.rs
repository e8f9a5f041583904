//! `maxcloud deploy | list | status | delete | resources`: the typed App facade (`/api/v1/services`).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use maxcloud_api_model::{CreateServiceRequest, Order, Resource, ResourceNode, Service};
use reqwest::Method;
use serde::Serialize;

use super::wait::{follow_order, node_state, settle, state_line, POLL};
use super::Ctx;
use crate::cli::{DeleteArgs, DeployArgs};
use crate::client::{segment, ApiError};
use crate::output::{opt, print_doc, write_stdout, KeyValues, Table};
use crate::params::{parse_env, parse_secret_env};

fn service_path(id: &str) -> String {
    format!("/api/v1/services/{}", segment(id))
}

pub async fn deploy(ctx: &Ctx, args: DeployArgs) -> Result<()> {
    let env = parse_env(&args.env)?;
    let secret_env = parse_secret_env(&args.secret_env)?;
    let req = CreateServiceRequest {
        name: args.name,
        image: args.image,
        port: args.port,
        command: (!args.command.is_empty()).then_some(args.command),
        args: (!args.args.is_empty()).then_some(args.args),
        env_vars: (!env.is_empty()).then_some(env),
        secret_env: (!secret_env.is_empty()).then_some(secret_env),
        min_scale: args.min_scale,
        max_scale: args.max_scale,
        concurrency: args.concurrency,
        cpu: args.cpu,
        memory: args.memory,
        visibility: args.visibility.map(|v| v.as_str().to_string()),
        revision: args.revision,
        no_traffic: args.no_traffic,
        tag: args.tag,
    };
    // Deploying to an existing name redeploys it (an update order replacing its spec).
    let mut service: Service = match ctx.client.post("/api/v1/services", &req).await {
        Err(ApiError::Api { status, field: Some(field), .. })
            if status == reqwest::StatusCode::CONFLICT && field == "name" =>
        {
            // Flags given replace those settings; everything else keeps its current value.
            let existing = find_by_name(ctx, &req.name).await?;
            if !ctx.json_or_yaml() {
                eprintln!("{} exists: redeploying it", req.name);
            }
            ctx.client.patch(&service_path(&existing.id), &req).await?
        }
        other => other?,
    };
    if args.wait.wait {
        let order_id = service.order_id.clone().ok_or_else(|| {
            anyhow!("service {} was created, but the server returned no order id to wait for", service.name)
        })?;
        if !ctx.json_or_yaml() {
            eprintln!("deploying {} (order {order_id})", service.name);
        }
        follow_order(ctx, &order_id, Duration::from_secs(args.wait.timeout)).await?;
        service = ctx.client.get(&service_path(&service.id)).await?;
    }
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &service);
    }
    write_stdout(&service_details(&service, None))
}

fn service_details(s: &Service, order: Option<&Order>) -> String {
    let mut kv = KeyValues::new();
    kv.add("name", &s.name)
        .add("id", &s.id)
        .add("status", &s.status)
        .add("image", &s.image)
        .add("revision", opt(s.revision.as_deref()))
        .add("url", opt(s.url.as_deref()))
        .add("port", s.port.to_string())
        .add("scale", format!("{}..{}", s.min_scale, s.max_scale));
    if !s.command.is_empty() {
        kv.add("command", json_list(&s.command));
    }
    if !s.args.is_empty() {
        kv.add("args", json_list(&s.args));
    }
    if !s.env_vars.is_empty() {
        kv.add("env", s.env_vars.keys().cloned().collect::<Vec<_>>().join(", "));
    }
    if !s.secret_env.is_empty() {
        let refs: Vec<String> = s.secret_env.iter().map(|(var, r)| format!("{var}={}:{}", r.secret, r.key)).collect();
        kv.add("secret env", refs.join(", "));
    }
    kv.add("created", &s.created_at).add("updated", &s.updated_at);
    match (order, &s.order_id) {
        (Some(o), _) => {
            kv.add("order", format!("{} ({} {}, {})", o.id, o.action, o.kind, o.state));
            if let Some(pr) = &o.pull_request {
                kv.add("pull request", format!("#{} {} ({}, {})", pr.number, pr.title, pr.state, pr.merge_policy));
            }
            if let Some(err) = &o.error {
                kv.add("order error", err);
            }
        }
        (None, Some(id)) => {
            kv.add("order", id);
        }
        (None, None) => {}
    }
    kv.render()
}

/// Shows list elements unambiguously: `["sh", "-c"]`.
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| items.join(" "))
}

pub async fn list(ctx: &Ctx) -> Result<()> {
    let services: Vec<Service> = ctx.client.get("/api/v1/services").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &services);
    }
    let mut table = Table::new(["NAME", "STATUS", "IMAGE", "URL", "MIN", "MAX", "UPDATED"]);
    for s in &services {
        table.row([
            s.name.clone(),
            s.status.clone(),
            s.image.clone(),
            opt(s.url.as_deref()),
            s.min_scale.to_string(),
            s.max_scale.to_string(),
            s.updated_at.clone(),
        ]);
    }
    write_stdout(&table.render())
}

pub(crate) async fn find_by_name(ctx: &Ctx, name: &str) -> Result<Service> {
    let services: Vec<Service> = ctx.client.get("/api/v1/services").await?;
    services.into_iter().find(|s| s.name == name).ok_or_else(|| anyhow!("no service named \"{name}\""))
}

/// `maxcloud status NAME` in json/yaml: the service's fields plus its latest `order` (or null).
#[derive(Serialize)]
struct StatusView<'a> {
    #[serde(flatten)]
    service: &'a Service,
    order: Option<&'a Order>,
    /// What the service is made of in the cluster (absent without a cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<&'a ResourceNode>,
}

/// The resource tree as indented lines: kind, name, and its state (with the reason when not ready).
pub fn tree_lines(node: &ResourceNode) -> String {
    fn walk(node: &ResourceNode, depth: usize, out: &mut String) {
        let label = format!("{}{} {}", "  ".repeat(depth + 1), node.kind, node.name);
        out.push_str(&format!("{label:<48} {}\n", node_state(node)));
        for child in &node.children {
            walk(child, depth + 1, out);
        }
    }
    let mut out = String::from("resources:\n");
    walk(node, 0, &mut out);
    out
}

/// `maxcloud status NAME [--watch]`: with `watch` (a timeout in seconds) the service's latest order is followed
/// until it settles, its states printed to stderr as they change.
pub async fn status(ctx: &Ctx, name: &str, watch: Option<u64>) -> Result<()> {
    let mut service = find_by_name(ctx, name).await?;
    if let (Some(timeout), Some(order_id)) = (watch, service.order_id.clone()) {
        follow_order(ctx, &order_id, Duration::from_secs(timeout)).await?;
        service = find_by_name(ctx, name).await?;
    }
    let order: Option<Order> = match &service.order_id {
        Some(id) => ctx.client.get_opt(&format!("/api/v1/orders/{}", segment(id))).await?,
        None => None,
    };
    // Only with a cluster (503 without one); the service's state above does not depend on it.
    let tree_path = format!("/api/v1/resources/App/{}/tree", segment(&service.name));
    let tree: Option<ResourceNode> = ctx.client.get_opt(&tree_path).await.ok().flatten();
    if ctx.json_or_yaml() {
        let view = StatusView { service: &service, order: order.as_ref(), resources: tree.as_ref() };
        return print_doc(ctx.format, &view);
    }
    let mut text = service_details(&service, order.as_ref());
    if let Some(tree) = &tree {
        text.push_str(&tree_lines(tree));
    }
    write_stdout(&text)
}

/// `maxcloud delete NAME` in json/yaml.
#[derive(Serialize)]
struct DeleteView<'a> {
    id: &'a str,
    name: &'a str,
    /// `deleting` or `deleted`.
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
}

pub async fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let service = find_by_name(ctx, &args.name).await?;
    let path = service_path(&service.id);
    let placed = ctx.client.delete(&path).await?;
    let after: Option<Service> = ctx.client.get_opt(&path).await?;
    let order_id = placed.or_else(|| after.as_ref().and_then(|s| s.order_id.clone()));
    let mut gone = after.is_none() && order_id.is_none();

    if !gone && args.wait {
        if !ctx.json_or_yaml() {
            write_stdout(&deleting_line(&service.name, order_id.as_deref()))?;
        }
        let timeout = Duration::from_secs(args.timeout);
        match order_id.as_deref() {
            // The removal order is done when the cluster no longer has the service (merged without a cluster).
            Some(id) => {
                follow_order(ctx, id, timeout).await?;
            }
            None => wait_gone(ctx, &service, &path, None, timeout).await?,
        }
        gone = true;
    } else if after.is_none() {
        gone = true;
    }

    if ctx.json_or_yaml() {
        let view = DeleteView {
            id: &service.id,
            name: &service.name,
            status: if gone { "deleted" } else { "deleting" },
            order_id: order_id.as_deref(),
        };
        return print_doc(ctx.format, &view);
    }
    if gone {
        write_stdout(&format!("deleted {}\n", service.name))
    } else {
        write_stdout(&deleting_line(&service.name, order_id.as_deref()))
    }
}

fn deleting_line(name: &str, order_id: Option<&str>) -> String {
    match order_id {
        Some(id) => format!("deleting {name} (order {id})\n"),
        None => format!("deleting {name}\n"),
    }
}

/// Polls the service until it is 404, following its removal order's state on stderr.
async fn wait_gone(ctx: &Ctx, service: &Service, path: &str, order_id: Option<&str>, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last_state: Option<String> = None;
    loop {
        let status = match ctx.client.get_opt::<Service>(path).await? {
            None => return Ok(()),
            Some(s) => s.status,
        };
        if let Some(id) = order_id {
            let resp = ctx
                .client
                .request_full::<Order>(Method::GET, &format!("/api/v1/orders/{}", segment(id)), None, &[])
                .await?;
            let order = resp.body;
            if last_state.as_deref() != Some(order.state.as_str()) {
                eprintln!("{}", state_line(&order));
                last_state = Some(order.state.clone());
            }
            if let Some(Err(e)) = settle(&order, &resp.headers) {
                return Err(e);
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            bail!(
                "timed out after {}s waiting for service {} to be deleted (status: {status})",
                timeout.as_secs(),
                service.name
            );
        }
        tokio::time::sleep(POLL.min(timeout - elapsed)).await;
    }
}

pub async fn resources(ctx: &Ctx) -> Result<()> {
    let resources: Vec<Resource> = ctx.client.get("/api/v1/resources").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &resources);
    }
    let mut table = Table::new(["KIND", "NAME", "STATUS", "URL", "ORDER", "UPDATED"]);
    for r in &resources {
        table.row([
            r.kind.clone(),
            r.name.clone(),
            r.status.clone(),
            opt(r.url.as_deref()),
            r.order_id.clone(),
            r.updated_at.clone(),
        ]);
    }
    // With a cluster: what runs in the organisation's namespace without an order (kubectl, Terraform).
    let unmanaged: Vec<ResourceNode> = ctx.client.get("/api/v1/resources/unmanaged").await.unwrap_or_default();
    for n in &unmanaged {
        table.row([
            n.kind.clone(),
            n.name.clone(),
            format!("unmanaged, {}", node_state(n)),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    write_stdout(&table.render())
}
