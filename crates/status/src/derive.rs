//! From an XR as the cluster reports it to the service state users see. Pure: no I/O.

use kube::api::DynamicObject;
use maxcloud_store::Observation;
use serde_json::Value;

/// Label with the tenant slug on every object the order service writes.
pub const LABEL_TENANT: &str = "maxcloud.dev/tenant";
/// Label with the id of the order that last wrote the object.
pub const LABEL_ORDER_ID: &str = "maxcloud.dev/order-id";
/// Prefix of tenant namespaces (`mc-<slug>`).
pub const NAMESPACE_PREFIX: &str = "mc-";

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Whether the XR was composed by another catalog XR (a Workspace's nested App, Database, DNSRecord): it is
/// part of its owner, not a resource someone created by hand.
pub fn is_nested(obj: &DynamicObject) -> bool {
    obj.metadata.owner_references.as_ref().is_some_and(|refs| {
        refs.iter().any(|r| r.controller == Some(true) && r.api_version.starts_with("maxcloud.dev/"))
    })
}

/// The service state of an XR of `kind`:
/// - `ready` when Crossplane's `Ready` condition is True (every composed resource is ready);
/// - `failed` when the composition cannot be reconciled (`Synced` False) or the composition reports a terminal
///   failure of what it composed (`status.failed: true`, e.g. a Knative Service with `Ready=False`), with the
///   message from there;
/// - `progressing` otherwise, with the composition's `status.message` (what it is waiting for).
///
/// The tenant comes from the `maxcloud.dev/tenant` label, else from the `mc-<slug>` namespace; objects in
/// other namespaces belong to no tenant and give `None`.
pub fn observe(kind: &str, obj: &DynamicObject) -> Option<Observation> {
    let labels = obj.metadata.labels.as_ref();
    let namespace = obj.metadata.namespace.as_deref().unwrap_or("");
    let tenant = labels
        .and_then(|l| l.get(LABEL_TENANT).cloned())
        .or_else(|| namespace.strip_prefix(NAMESPACE_PREFIX).map(str::to_string))?;
    // A label can claim any tenant; only the tenant's own namespace counts.
    if namespace != format!("{NAMESPACE_PREFIX}{tenant}") {
        return None;
    }
    let name = obj.metadata.name.clone()?;
    let order_id = labels.and_then(|l| l.get(LABEL_ORDER_ID).cloned());
    let status = &obj.data["status"];
    let ready = condition(status, "Ready");
    let synced = condition(status, "Synced");
    let (state, message) = if ready.is_some_and(|c| c["status"] == "True") {
        ("ready", None)
    } else if let Some(c) = synced.filter(|c| c["status"] == "False") {
        ("failed", text(&c["message"]).or_else(|| text(&c["reason"])))
    } else if status["failed"] == true {
        ("failed", text(&status["message"]))
    } else {
        ("progressing", text(&status["message"]).or_else(|| ready.and_then(|c| text(&c["message"]))))
    };
    Some(Observation {
        tenant,
        kind: kind.to_string(),
        name,
        status: state.to_string(),
        url: text(&status["url"]),
        message,
        order_id,
        served: served(status),
    })
}

/// The revision fields of an XR status (the App's), as JSON text; `None` when it has none.
fn served(status: &Value) -> Option<String> {
    let mut out = serde_json::Map::new();
    for key in ["latestRevision", "latestReadyRevision", "traffic"] {
        if let Some(v) = status.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_string(), v.clone());
        }
    }
    (!out.is_empty()).then(|| Value::Object(out).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn xr(namespace: &str, labels: Value, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "maxcloud.dev/v1alpha1", "kind": "App",
            "metadata": {"name": "web", "namespace": namespace, "labels": labels},
            "spec": {"image": "nginx"}, "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn revision_fields_of_the_status_are_kept_as_served() {
        let labels = json!({"maxcloud.dev/tenant": "acme"});
        let status = json!({"url": "https://web.example", "latestRevision": "web-r2", "latestReadyRevision": "web-r1",
            "traffic": [{"revision": "web-r1", "percent": 100}], "message": "x"});
        let obs = observe("App", &xr("mc-acme", labels.clone(), status)).unwrap();
        let served: Value = serde_json::from_str(obs.served.as_deref().unwrap()).unwrap();
        assert_eq!(
            served,
            json!({"latestRevision": "web-r2", "latestReadyRevision": "web-r1",
                   "traffic": [{"revision": "web-r1", "percent": 100}]})
        );
        let bare = observe("App", &xr("mc-acme", labels, json!({"url": "https://web.example"}))).unwrap();
        assert_eq!(bare.served, None);
    }

    #[test]
    fn ready_failed_progressing() {
        let labels = json!({"maxcloud.dev/tenant": "acme", "maxcloud.dev/order-id": "o1"});
        let ready = observe(
            "App",
            &xr(
                "mc-acme",
                labels.clone(),
                json!({"url": "https://web.example", "conditions": [{"type": "Ready", "status": "True"}]}),
            ),
        )
        .unwrap();
        assert_eq!(
            (ready.tenant.as_str(), ready.status.as_str(), ready.url.as_deref(), ready.order_id.as_deref()),
            ("acme", "ready", Some("https://web.example"), Some("o1"))
        );
        let unsynced = observe(
            "App",
            &xr(
                "mc-acme",
                labels.clone(),
                json!({"conditions": [
                    {"type": "Synced", "status": "False", "reason": "ReconcileError", "message": "cannot compose: boom"},
                    {"type": "Ready", "status": "False", "reason": "Creating"}
                ]}),
            ),
        )
        .unwrap();
        assert_eq!((unsynced.status.as_str(), unsynced.message.as_deref()), ("failed", Some("cannot compose: boom")));
        let knative_failed =
            observe("App", &xr("mc-acme", labels.clone(), json!({"failed": true, "message": "image not found"})))
                .unwrap();
        assert_eq!(
            (knative_failed.status.as_str(), knative_failed.message.as_deref()),
            ("failed", Some("image not found"))
        );
        let waiting = observe(
            "App",
            &xr(
                "mc-acme",
                labels,
                json!({"message": "waiting for the Knative Service to be created",
                       "conditions": [{"type": "Ready", "status": "False", "message": "Unready resources: service"}]}),
            ),
        )
        .unwrap();
        assert_eq!(
            (waiting.status.as_str(), waiting.message.as_deref()),
            ("progressing", Some("waiting for the Knative Service to be created"))
        );
    }

    #[test]
    fn nested_xrs_are_recognised_by_their_controller() {
        let mut nested = xr("mc-acme", json!({}), json!({}));
        assert!(!is_nested(&nested));
        nested.metadata.owner_references = Some(vec![serde_json::from_value(json!({
            "apiVersion": "maxcloud.dev/v1alpha1", "kind": "Workspace", "name": "cloud", "uid": "u1", "controller": true
        }))
        .unwrap()]);
        assert!(is_nested(&nested));
    }

    #[test]
    fn tenant_from_label_or_namespace_but_only_in_its_own_namespace() {
        let no_label = observe("App", &xr("mc-shop", json!({}), json!({}))).unwrap();
        assert_eq!((no_label.tenant.as_str(), no_label.order_id), ("shop", None));
        assert!(observe("App", &xr("default", json!({}), json!({}))).is_none(), "not a tenant namespace");
        let spoofed = xr("mc-evil", json!({"maxcloud.dev/tenant": "victim"}), json!({}));
        assert!(observe("App", &spoofed).is_none(), "a label cannot move an object into another tenant");
    }
}
