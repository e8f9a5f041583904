//! The in-memory resource tree: each XR with the objects its composition made (`spec.crossplane.resourceRefs`)
//! and their conditions, kept current by the watches. Nested XRs (a Workspace's App) are nodes too, so the
//! tree goes all the way down. Held in memory only: after a restart the watches' initial lists rebuild it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::api::DynamicObject;
use serde_json::Value;

/// Depth guard against reference cycles (a Workspace nests one level; anything deeper is a bug).
const MAX_DEPTH: usize = 8;

/// One object in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// What the tree keeps of an object: its conditions, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The `Ready` condition (`None`: the object has none, e.g. a DNSEndpoint).
    pub ready: Option<bool>,
    /// Crossplane's `Synced` condition, on XRs and managed resources.
    pub synced: Option<bool>,
    /// The first message of a condition that is not True (why it is not ready).
    pub message: Option<String>,
}

/// A node of a rendered tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: ObjKey,
    /// `None`: referenced by its XR but not (yet) seen in the cluster.
    pub summary: Option<Summary>,
    pub children: Vec<Node>,
}

#[derive(Default)]
struct Inner {
    /// XR -> what it composed.
    refs: HashMap<ObjKey, Vec<ObjKey>>,
    /// Every watched object's summary (XRs and composed objects).
    summaries: HashMap<ObjKey, Summary>,
    /// XRs composed by another XR (a Workspace's App): parts of it, not resources of their own.
    nested: std::collections::HashSet<ObjKey>,
}

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct Tree {
    inner: Arc<RwLock<Inner>>,
}

fn bool_status(c: &Value) -> Option<bool> {
    match c["status"].as_str()? {
        "True" => Some(true),
        "False" => Some(false),
        _ => None,
    }
}

/// Conditions summed up: Ready, Synced, and the message of the first condition that is not True.
pub fn summarize(obj: &DynamicObject) -> Summary {
    let conditions = obj.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let find = |t: &str| conditions.iter().find(|c| c["type"] == t);
    let message = conditions
        .iter()
        .filter(|c| c["status"] != "True")
        .find_map(|c| c["message"].as_str().filter(|m| !m.is_empty()).map(str::to_string));
    Summary { ready: find("Ready").and_then(bool_status), synced: find("Synced").and_then(bool_status), message }
}

/// The objects an XR's composition made, from `spec.crossplane.resourceRefs` (Crossplane v2; namespaced XRs'
/// refs may leave the namespace out: it is the XR's own), without Secrets.
pub fn resource_refs(obj: &DynamicObject) -> Vec<ObjKey> {
    let namespace = obj.metadata.namespace.clone().unwrap_or_default();
    let Some(refs) = obj.data["spec"]["crossplane"]["resourceRefs"].as_array() else { return Vec::new() };
    refs.iter()
        // Secrets (a registry's pull secret) stay out of the tree: the aggregator has no read access to Secrets,
        // by design.
        .filter(|r| !(r["apiVersion"] == "v1" && r["kind"] == "Secret"))
        .filter_map(|r| {
            Some(ObjKey {
                api_version: r["apiVersion"].as_str()?.to_string(),
                kind: r["kind"].as_str()?.to_string(),
                namespace: r["namespace"].as_str().map_or_else(|| namespace.clone(), str::to_string),
                name: r["name"].as_str()?.to_string(),
            })
        })
        .collect()
}

impl ObjKey {
    pub fn of(api_version: &str, kind: &str, obj: &DynamicObject) -> ObjKey {
        ObjKey {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            name: obj.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl Tree {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an XR (its summary, what it composed, and whether another XR composed it).
    pub fn set_xr(&self, key: ObjKey, summary: Summary, refs: Vec<ObjKey>, nested: bool) {
        let mut inner = self.write();
        if nested {
            inner.nested.insert(key.clone());
        } else {
            inner.nested.remove(&key);
        }
        inner.summaries.insert(key.clone(), summary);
        inner.refs.insert(key, refs);
    }

    /// The trees of the XRs of one namespace that no other XR composed, ordered by kind and name.
    pub fn top_level(&self, namespace: &str) -> Vec<Node> {
        let inner = self.read();
        let mut keys: Vec<&ObjKey> =
            inner.refs.keys().filter(|k| k.namespace == namespace && !inner.nested.contains(*k)).collect();
        keys.sort();
        keys.into_iter().map(|k| render(&inner, k, 0)).collect()
    }

    /// Records a composed object.
    pub fn set(&self, key: ObjKey, summary: Summary) {
        self.write().summaries.insert(key, summary);
    }

    /// Forgets a deleted object (and, for an XR, its references).
    pub fn remove(&self, key: &ObjKey) {
        let mut inner = self.write();
        inner.summaries.remove(key);
        inner.refs.remove(key);
        inner.nested.remove(key);
    }

    /// Forgets every object of one kind that is not in `keep` (after a watch's re-list: what was deleted
    /// while the watch was down).
    pub fn retain_kind(&self, api_version: &str, kind: &str, keep: &std::collections::HashSet<ObjKey>) {
        let mut inner = self.write();
        let gone = |k: &ObjKey| k.api_version == api_version && k.kind == kind && !keep.contains(k);
        inner.summaries.retain(|k, _| !gone(k));
        inner.refs.retain(|k, _| !gone(k));
        inner.nested.retain(|k| !gone(k));
    }

    /// The tree under an XR, if the XR is known.
    pub fn get(&self, root: &ObjKey) -> Option<Node> {
        let inner = self.read();
        inner.summaries.get(root)?;
        Some(render(&inner, root, 0))
    }

    /// How many objects the tree holds (XRs and composed).
    pub fn len(&self) -> usize {
        self.read().summaries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn render(inner: &Inner, key: &ObjKey, depth: usize) -> Node {
    let children = if depth >= MAX_DEPTH {
        Vec::new()
    } else {
        let mut refs = inner.refs.get(key).cloned().unwrap_or_default();
        refs.sort();
        refs.iter().map(|k| render(inner, k, depth + 1)).collect()
    };
    Node { key: key.clone(), summary: inner.summaries.get(key).cloned(), children }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn renders_xr_composed_and_nested_with_conditions() {
        let tree = Tree::default();
        let ws = obj(json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "team", "namespace": "mc-acme"},
            "spec": {"crossplane": {"resourceRefs": [
                {"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App", "name": "team-app"},
                {"apiVersion": "maxcloud.dev/v1alpha1", "kind": "Database", "name": "team-db"},
                {"apiVersion": "v1", "kind": "Secret", "name": "team-pull"}]}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "message": "Unready resources: team-db"},
                                      {"type": "Synced", "status": "True"}]}}));
        let ws_key = ObjKey::of("maxcloud.dev/v1alpha1", "Workspace", &ws);
        tree.set_xr(ws_key.clone(), summarize(&ws), resource_refs(&ws), false);
        let app = obj(json!({"apiVersion": "maxcloud.dev/v1alpha1", "kind": "App",
            "metadata": {"name": "team-app", "namespace": "mc-acme"},
            "spec": {"crossplane": {"resourceRefs": [
                {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "team-app"}]}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        tree.set_xr(ObjKey::of("maxcloud.dev/v1alpha1", "App", &app), summarize(&app), resource_refs(&app), true);
        let ksvc = obj(json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "team-app", "namespace": "mc-acme"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        tree.set(ObjKey::of("serving.knative.dev/v1", "Service", &ksvc), summarize(&ksvc));

        let root = tree.get(&ws_key).unwrap();
        let s = root.summary.clone().unwrap();
        assert_eq!(
            (s.ready, s.synced, s.message.as_deref()),
            (Some(false), Some(true), Some("Unready resources: team-db"))
        );
        assert_eq!(root.children.len(), 2);
        let app_node = &root.children[0];
        assert_eq!(app_node.key.kind, "App");
        assert_eq!(app_node.children[0].key.kind, "Service");
        assert_eq!(app_node.children[0].summary.as_ref().unwrap().ready, Some(true));
        // The database is referenced but not seen yet.
        assert_eq!(root.children[1].key.name, "team-db");
        assert!(root.children[1].summary.is_none());

        // Only the Workspace is a resource of its own in the namespace; its App is part of it.
        let top: Vec<String> = tree.top_level("mc-acme").into_iter().map(|n| n.key.name).collect();
        assert_eq!(top, ["team"]);
        assert!(tree.top_level("mc-other").is_empty());

        // Deleted while the watch was down: gone after the re-list.
        tree.retain_kind("serving.knative.dev/v1", "Service", &Default::default());
        assert!(tree.get(&ws_key).unwrap().children[0].children[0].summary.is_none());
        assert!(tree.get(&ObjKey { name: "nope".into(), ..ws_key }).is_none());
    }
}
