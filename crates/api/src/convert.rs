//! Store rows -> wire types.

use std::collections::BTreeMap;

use maxcloud_api_model as m;
use maxcloud_store::{ApiKeyRow, OrderEvent, OrderRow, PullRequestRow, ResourceRow, Tenant, User};
use serde_json::Value;

/// RFC 3339 (UTC, microseconds) of a store timestamp.
pub fn ts(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub fn audit(row: &maxcloud_store::AuditRow) -> m::AuditRecord {
    let e = &row.entry;
    m::AuditRecord {
        id: row.id.clone(),
        at: ts(row.at),
        actor: e.actor.clone(),
        method: e.method.clone(),
        path: e.path.clone(),
        action: e.action.clone(),
        status: e.status,
        target: e.target.clone(),
        detail: e.detail.clone(),
        source: e.source.clone(),
    }
}

pub fn user(u: &User) -> m::User {
    m::User { id: u.id.clone(), email: u.email.clone(), created_at: ts(u.created_at) }
}

pub fn organization(t: &Tenant) -> m::Organization {
    m::Organization { id: t.id.clone(), name: t.name.clone(), slug: t.slug.clone(), created_at: ts(t.created_at) }
}

pub fn api_key(k: &ApiKeyRow) -> m::ApiKey {
    m::ApiKey {
        id: k.id.clone(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        created_at: ts(k.created_at),
        last_used_at: k.last_used_at.map(ts),
    }
}

pub fn order(tenant: &Tenant, o: &OrderRow, pr: Option<&PullRequestRow>, history: &[OrderEvent]) -> m::Order {
    m::Order {
        id: o.id.clone(),
        tenant: tenant.slug.clone(),
        action: o.action.clone(),
        kind: o.kind.clone(),
        name: o.name.clone(),
        parameters: serde_json::from_str(&o.parameters).unwrap_or(Value::Null),
        state: o.state.clone(),
        requester: o.requester.clone(),
        idempotency_key: o.idempotency_key.clone(),
        resource_id: o.resource_id.clone(),
        path: o.path.clone(),
        pull_request: pr.map(|p| m::PullRequest {
            number: p.number,
            branch: p.branch.clone(),
            state: p.state.clone(),
            merge_policy: p.merge_policy.clone(),
            head_commit: p.head_commit.clone(),
            merge_commit: p.merge_commit.clone(),
            title: p.title.clone(),
            body: p.body.clone(),
            url: p.url.clone(),
            review_state: p.review_state.clone(),
            reviewed_by: p.reviewed_by.clone(),
            required_reviewers: if o.merge_policy == "review" { o.reviewers.clone() } else { Vec::new() },
            required_approvals: (o.merge_policy == "review").then_some(o.required_approvals),
        }),
        error: o.error.clone(),
        created_at: ts(o.created_at),
        updated_at: ts(o.updated_at),
        history: history
            .iter()
            .map(|e| m::OrderTransition { state: e.state.clone(), at: ts(e.at), message: e.message.clone() })
            .collect(),
    }
}

pub fn resource(tenant: &Tenant, r: &ResourceRow) -> m::Resource {
    m::Resource {
        id: r.id.clone(),
        tenant: tenant.slug.clone(),
        kind: r.kind.clone(),
        name: r.name.clone(),
        status: r.status.clone(),
        url: r.url.clone(),
        path: r.path.clone(),
        spec: serde_json::from_str(&r.spec).unwrap_or(Value::Null),
        order_id: r.order_id.clone(),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
    }
}

/// The seed's service view of an `App` resource.
pub fn service(r: &ResourceRow) -> m::Service {
    let spec: Value = serde_json::from_str(&r.spec).unwrap_or(Value::Null);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let env_vars: BTreeMap<String, String> = spec["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str().unwrap_or("").to_string())))
                .collect()
        })
        .unwrap_or_default();
    m::Service {
        id: r.id.clone(),
        org_id: r.tenant_id.clone(),
        name: r.name.clone(),
        image: spec["image"].as_str().unwrap_or_default().to_string(),
        status: r.status.clone(),
        url: r.url.clone(),
        port: spec["port"].as_i64().unwrap_or(8080),
        command: strings(&spec["command"]),
        args: strings(&spec["args"]),
        env_vars,
        secret_env: spec["secretEnv"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        let secret = e["secretName"].as_str()?.to_string();
                        let key = e["key"].as_str()?.to_string();
                        Some((e["name"].as_str()?.to_string(), m::SecretKeyRef { secret, key }))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        min_scale: spec["scaling"]["minScale"].as_i64().unwrap_or(0),
        max_scale: spec["scaling"]["maxScale"].as_i64().unwrap_or(10),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
        order_id: Some(r.order_id.clone()),
        revision: spec["revision"].as_str().map(str::to_string),
    }
}
