//! `maxcloud orders [show|approve|reject]` and the generic `maxcloud order KIND NAME`.

use std::time::Duration;

use anyhow::Result;
use maxcloud_api_model::{CreateOrderRequest, EstimateRequest, Order, PriceEstimate};
use serde_json::Value;

use super::wait::follow_order;
use super::Ctx;
use crate::cli::{Action, OrderArgs};
use crate::client::{segment, ApiError};
use crate::output::{opt, print_doc, write_stdout, KeyValues, Table};
use crate::params::build_params;

fn order_path(id: &str) -> String {
    format!("/api/v1/orders/{}", segment(id))
}

pub async fn list(ctx: &Ctx, limit: Option<u32>, pending: bool) -> Result<()> {
    let mut query = Vec::new();
    if let Some(n) = limit {
        query.push(format!("limit={n}"));
    }
    if pending {
        query.push("review=pending".to_string());
    }
    let path = match query.is_empty() {
        true => "/api/v1/orders".to_string(),
        false => format!("/api/v1/orders?{}", query.join("&")),
    };
    let orders: Vec<Order> = ctx.client.get(&path).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &orders);
    }
    if pending {
        if orders.is_empty() {
            eprintln!("no orders wait for a review");
        }
        let mut table = Table::new(["ID", "ACTION", "KIND", "NAME", "REVIEW", "REQUESTER", "PULL REQUEST"]);
        for o in &orders {
            let pr = o.pull_request.as_ref();
            table.row([
                o.id.clone(),
                o.action.clone(),
                o.kind.clone(),
                o.name.clone(),
                pr.and_then(|p| p.review_state.clone()).unwrap_or_else(|| "pending".into()),
                o.requester.clone(),
                pr.map(pr_link).unwrap_or_else(|| "(opening)".into()),
            ]);
        }
        return write_stdout(&table.render());
    }
    let mut table = Table::new(["ID", "STATE", "ACTION", "KIND", "NAME", "PR", "CREATED"]);
    for o in &orders {
        table.row([
            o.id.clone(),
            o.state.clone(),
            o.action.clone(),
            o.kind.clone(),
            o.name.clone(),
            o.pull_request.as_ref().map(pr_link).unwrap_or_default(),
            o.created_at.clone(),
        ]);
    }
    write_stdout(&table.render())
}

/// The pull request's page on the Git provider, else `#N`.
fn pr_link(pr: &maxcloud_api_model::PullRequest) -> String {
    pr.url.clone().unwrap_or_else(|| format!("#{}", pr.number))
}

/// Human view of one order: summary, pull request, history.
pub fn order_details(o: &Order) -> String {
    let mut kv = KeyValues::new();
    kv.add("id", &o.id)
        .add("state", &o.state)
        .add("action", &o.action)
        .add("kind", &o.kind)
        .add("name", &o.name)
        .add("tenant", &o.tenant)
        .add("requester", &o.requester)
        .add("path", &o.path)
        .add("resource", &o.resource_id);
    if let Some(key) = &o.idempotency_key {
        kv.add("idempotency key", key);
    }
    if let Some(err) = &o.error {
        kv.add("error", err);
    }
    kv.add("created", &o.created_at).add("updated", &o.updated_at);
    if let Some(pr) = &o.pull_request {
        kv.add("pull request", format!("#{} {}", pr.number, pr.title));
        if let Some(url) = &pr.url {
            kv.add("  url", url);
        }
        kv.add("  state", &pr.state).add("  merge policy", &pr.merge_policy);
        if let Some(review) = &pr.review_state {
            let by =
                if pr.reviewed_by.is_empty() { String::new() } else { format!(" ({})", pr.reviewed_by.join(", ")) };
            kv.add("  review", format!("{}{by}", review.replace('_', " ")));
        }
        if let Some(n) = pr.required_approvals {
            let who = if pr.required_reviewers.is_empty() {
                String::new()
            } else {
                format!(", including {}", pr.required_reviewers.join(", "))
            };
            kv.add("  required", format!("{n} approval{}{who}", if n == 1 { "" } else { "s" }));
        }
        kv.add("  branch", &pr.branch)
            .add("  head commit", &pr.head_commit)
            .add("  merge commit", opt(pr.merge_commit.as_deref()));
    }
    let mut out = kv.render();
    if !o.history.is_empty() {
        let mut table = Table::new(["STATE", "AT", "MESSAGE"]);
        for t in &o.history {
            table.row([t.state.clone(), t.at.clone(), t.message.clone().unwrap_or_default()]);
        }
        out.push_str("\nhistory:\n");
        for line in table.render().lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    if o.parameters.as_object().is_some_and(|m| !m.is_empty()) {
        out.push_str("\nparameters:\n");
        let json = serde_json::to_string_pretty(&o.parameters).unwrap_or_default();
        for line in json.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub async fn show(ctx: &Ctx, id: &str) -> Result<()> {
    let order: Order = ctx.client.get(&order_path(id)).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &order);
    }
    write_stdout(&order_details(&order))
}

pub async fn approve(ctx: &Ctx, id: &str) -> Result<()> {
    review(ctx, id, "approve", "approved", Value::Object(Default::default())).await
}

pub async fn reject(ctx: &Ctx, id: &str, reason: Option<&str>) -> Result<()> {
    let body = match reason {
        Some(r) => serde_json::json!({ "reason": r }),
        None => Value::Object(Default::default()),
    };
    review(ctx, id, "reject", "rejected", body).await
}

/// `POST /orders/{id}/{verb}` and print the result.
async fn review(ctx: &Ctx, id: &str, verb: &str, done: &str, body: Value) -> Result<()> {
    let order: Order = ctx.client.post(&format!("{}/{verb}", order_path(id)), &body).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &order);
    }
    let mut kv = KeyValues::new();
    kv.add(done, &order.id).add("state", &order.state);
    if let Some(pr) = &order.pull_request {
        kv.add("pull request", format!("{} ({})", pr_link(pr), pr.state));
    }
    write_stdout(&kv.render())
}

pub async fn order(ctx: &Ctx, args: OrderArgs) -> Result<()> {
    let parameters = if args.action == Action::Delete && args.file.is_none() && args.set.is_empty() {
        None
    } else {
        Some(build_params(args.file.as_deref(), &args.set)?)
    };
    // The price before ordering (types whose XRD names what they request); --dry-run stops here.
    if args.action != Action::Delete {
        let body = EstimateRequest { parameters: parameters.clone() };
        let path = format!("/api/v1/catalog/{}/estimate", segment(&args.kind));
        match ctx.client.post::<_, PriceEstimate>(&path, &body).await {
            Ok(estimate) if args.dry_run && ctx.json_or_yaml() => return print_doc(ctx.format, &estimate),
            Ok(estimate) if args.dry_run => return write_stdout(&format!("estimate: {}\n", estimate.summary)),
            Ok(estimate) if !ctx.json_or_yaml() => eprintln!("estimate: {}", estimate.summary),
            Ok(_) => {}
            // No price for this type: nothing to show, the order decides.
            Err(ApiError::Api { status, .. }) if status == reqwest::StatusCode::NOT_FOUND && !args.dry_run => {}
            Err(e) => return Err(e.into()),
        }
    } else if args.dry_run {
        anyhow::bail!("--dry-run shows the price of a create or update; a delete has none");
    }
    let req = CreateOrderRequest {
        action: Some(args.action.as_str().to_string()),
        kind: args.kind,
        name: args.name,
        parameters,
    };
    let headers: Vec<(&str, &str)> = match &args.idempotency_key {
        Some(key) => vec![("Idempotency-Key", key.as_str())],
        None => vec![],
    };
    let resp = ctx.client.post_full::<_, Order>("/api/v1/orders", &req, &headers).await?;
    let mut order = resp.body;
    if resp.status == reqwest::StatusCode::OK && !ctx.json_or_yaml() {
        eprintln!("order {} already exists for this idempotency key", order.id);
    }
    if args.wait.wait {
        order = follow_order(ctx, &order.id, Duration::from_secs(args.wait.timeout)).await?;
    }
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &order);
    }
    let mut kv = KeyValues::new();
    kv.add("order", &order.id)
        .add("state", &order.state)
        .add("action", &order.action)
        .add("kind", &order.kind)
        .add("name", &order.name)
        .add("path", &order.path);
    if let Some(pr) = &order.pull_request {
        kv.add("pull request", format!("{} ({}, {})", pr_link(pr), pr.state, pr.merge_policy));
    }
    write_stdout(&kv.render())
}
