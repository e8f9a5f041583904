//! The watches: one kube-rs `watcher` over the CustomResourceDefinitions of the `maxcloud.dev` group (so a
//! catalog kind installed later is picked up without a restart), one per catalog kind found there, and one
//! per kind the compositions composed (found in the XRs' `resourceRefs`, resolved by discovery, started on
//! first sight). No polling: every change arrives as a watch event; `default_backoff` re-establishes a watch
//! after an API-server outage, and the watcher's re-list then replays every object — and tells, by what it no
//! longer lists, what was deleted meanwhile — so the recorded states and the tree converge.
//!
//! With metering on, one more watcher follows the pods labelled with a catalog kind; each pod's interval is
//! recorded (an idempotent upsert), a deleted pod's interval is ended, and after every (re-)list the pods the
//! store still has running but the list no longer has (deleted while the watch was down) are ended then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use maxcloud_store::{PodUsage, Recorded, Store};
use tokio::sync::{mpsc, Mutex};

use crate::derive::{observe, NAMESPACE_PREFIX};
use crate::metering;
use crate::tree::{resource_refs, summarize, ObjKey, Tree};

/// Label Crossplane puts on every composed object (the XR's name).
const COMPOSITE_LABEL: &str = "crossplane.io/composite";

/// The API group of the catalog's composite resources.
pub const CATALOG_GROUP: &str = "maxcloud.dev";

/// What the aggregator tells the rest of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A managed resource's state as observed; `changed` when its status or URL is new (a service event was
    /// logged); `order` is set when an order moved because of it.
    Observed {
        tenant_id: String,
        kind: String,
        name: String,
        status: String,
        url: Option<String>,
        message: Option<String>,
        changed: bool,
        order: Option<(String, String)>,
    },
    /// An object of a catalog kind that no order created and no other XR composed (kubectl, Terraform).
    Unmanaged { tenant: String, kind: String, name: String, status: String },
    /// A managed resource's object is gone from the cluster; `order` names its delete order, now done.
    Deleted { tenant_id: Option<String>, kind: String, name: String, order: Option<(String, String)> },
    /// Flux applied a revision of the tenant's repository that contains the order's merge commit.
    Applied { tenant_id: String, order_id: String, kind: String, name: String, revision: String },
}

/// Whether commit `ancestor` is contained in commit `descendant` of tenant `slug`'s repository (git ancestry;
/// the order service's repositories answer it).
pub type Ancestry = Arc<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

/// Name of the tenant's Flux Kustomization (gitops/tenant/sync.yaml.j2).
pub const TENANT_KUSTOMIZATION: &str = "maxcloud-tenant";

/// Watches the catalog kinds in a cluster and records what it sees in the store.
#[derive(Clone)]
pub struct Aggregator {
    client: Client,
    store: Store,
    watching: Arc<Mutex<HashSet<String>>>,
    ancestry: Option<Ancestry>,
    tree: Tree,
    /// Composed kinds to start watching (`apiVersion`, kind), handled by `run`.
    composed: Option<mpsc::UnboundedSender<(String, String)>>,
    metering: bool,
}

impl Aggregator {
    pub fn new(client: Client, store: Store) -> Aggregator {
        Aggregator {
            client,
            store,
            watching: Arc::default(),
            ancestry: None,
            tree: Tree::default(),
            composed: None,
            metering: false,
        }
    }

    /// The resource trees this aggregator keeps current (share it with the API before `run`).
    pub fn tree(&self) -> Tree {
        self.tree.clone()
    }

    /// Also watch the tenants' Flux Kustomizations and mark merged orders `applied` once the revision Flux
    /// last applied contains their merge commit (`ancestry(slug, applied_commit, merge_commit)`).
    pub fn with_applied(mut self, ancestry: Ancestry) -> Aggregator {
        self.ancestry = Some(ancestry);
        self
    }

    /// Also watch the pods of the tenants' services and record their requests and running time (metering).
    pub fn with_metering(mut self) -> Aggregator {
        self.metering = true;
        self
    }

    /// Runs until `events` is closed or the CRD watch ends (watch errors are retried with backoff, never
    /// returned). Each catalog kind gets its own task.
    pub async fn run(mut self, events: mpsc::Sender<Event>) {
        let (composed_tx, mut composed_rx) = mpsc::unbounded_channel();
        self.composed = Some(composed_tx);
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let mut stream = watcher(crds, watcher::Config::default()).default_backoff().applied_objects().boxed();
        // Dropping the set (when `run` ends or is cancelled) aborts every watch.
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(ancestry) = self.ancestry.clone() {
            tasks.spawn(self.clone().watch_kustomizations(ancestry, events.clone()));
        }
        if self.metering {
            tasks.spawn(self.clone().watch_pods());
        }
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                Some((api_version, kind)) = composed_rx.recv() => {
                    tasks.spawn(self.clone().watch_composed(api_version, kind));
                    continue;
                }
            };
            let Some(next) = next else { break };
            let crd = match next {
                Ok(crd) => crd,
                // default_backoff re-establishes the watch (API-server restarts); keep going.
                Err(e) => {
                    tracing::warn!(error = %e, "CRD watch error");
                    continue;
                }
            };
            if crd.spec.group != CATALOG_GROUP || events.is_closed() {
                continue;
            }
            let established = crd
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            let Some(version) = crd.spec.versions.iter().find(|v| v.storage).or(crd.spec.versions.first()) else {
                continue;
            };
            let kind = crd.spec.names.kind.clone();
            if !established || !self.watching.lock().await.insert(kind.clone()) {
                continue;
            }
            let gvk = GroupVersionKind::gvk(CATALOG_GROUP, &version.name, &kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
            tracing::info!(kind = %kind, "watching catalog kind");
            tasks.spawn(self.clone().watch_kind(resource, events.clone()));
        }
        tasks.shutdown().await;
    }

    async fn watch_kind(self, resource: ApiResource, events: mpsc::Sender<Event>) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
        // The objects of the current (re-)list, to tell what was deleted while the watch was down.
        let mut listed: Option<HashSet<ObjKey>> = None;
        loop {
            let alive = match stream.next().await {
                Some(Ok(watcher::Event::Init)) => {
                    listed = Some(HashSet::new());
                    true
                }
                Some(Ok(watcher::Event::InitApply(obj))) => {
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(ObjKey::of(&resource.api_version, &resource.kind, &obj));
                    }
                    self.applied_xr(&resource, &obj, &events).await
                }
                Some(Ok(watcher::Event::Apply(obj))) => self.applied_xr(&resource, &obj, &events).await,
                Some(Ok(watcher::Event::Delete(obj))) => {
                    let key = ObjKey::of(&resource.api_version, &resource.kind, &obj);
                    self.tree.remove(&key);
                    self.deleted(&resource.kind, &key.namespace, &key.name, &events).await
                }
                Some(Ok(watcher::Event::InitDone)) => match listed.take() {
                    Some(listed) => self.relisted(&resource, &listed, &events).await,
                    None => true,
                },
                // default_backoff retries; the error is only worth a line in the log.
                Some(Err(e)) => {
                    tracing::warn!(kind = %resource.kind, error = %e, "watch error");
                    true
                }
                None => false,
            };
            if !alive {
                return;
            }
        }
    }

    /// An XR was created or changed: into the tree (starting watches on kinds it composed that are new here),
    /// then into the store.
    async fn applied_xr(&self, resource: &ApiResource, obj: &DynamicObject, events: &mpsc::Sender<Event>) -> bool {
        let refs = resource_refs(obj);
        for r in &refs {
            if r.api_version.split('/').next() != Some(CATALOG_GROUP) {
                self.ensure_composed_watch(&r.api_version, &r.kind).await;
            }
        }
        let key = ObjKey::of(&resource.api_version, &resource.kind, obj);
        self.tree.set_xr(key, summarize(obj), refs, crate::derive::is_nested(obj));
        self.handle(&resource.kind, obj, events).await
    }

    async fn ensure_composed_watch(&self, api_version: &str, kind: &str) {
        let id = format!("{api_version}/{kind}");
        if let Some(tx) = &self.composed {
            if self.watching.lock().await.insert(id) {
                let _ = tx.send((api_version.to_string(), kind.to_string()));
            }
        }
    }

    /// After a (re-)list of a catalog kind: forget what is no longer there, and finish the delete orders whose
    /// objects went while the watch was down.
    async fn relisted(&self, resource: &ApiResource, listed: &HashSet<ObjKey>, events: &mpsc::Sender<Event>) -> bool {
        self.tree.retain_kind(&resource.api_version, &resource.kind, listed);
        let open = match self.store.open_deletes(&resource.kind).await {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(kind = %resource.kind, error = %e, "cannot read open delete orders");
                return !events.is_closed();
            }
        };
        for (slug, name) in open {
            let namespace = format!("{NAMESPACE_PREFIX}{slug}");
            let present = listed.iter().any(|k| k.namespace == namespace && k.name == name);
            if !present && !self.deleted(&resource.kind, &namespace, &name, events).await {
                return false;
            }
        }
        !events.is_closed()
    }

    /// An XR is gone: its merged delete order, if any, is done.
    async fn deleted(&self, kind: &str, namespace: &str, name: &str, events: &mpsc::Sender<Event>) -> bool {
        let Some(slug) = namespace.strip_prefix(NAMESPACE_PREFIX) else { return !events.is_closed() };
        let order = match self.store.record_deleted(slug, kind, name).await {
            Ok(order) => order,
            Err(e) => {
                tracing::error!(kind, name, error = %e, "cannot record a deletion");
                return !events.is_closed();
            }
        };
        let (tenant_id, order) = match order {
            Some((tenant_id, order_id)) => (Some(tenant_id), Some((order_id, "ready".to_string()))),
            None => (None, None),
        };
        let event = Event::Deleted { tenant_id, kind: kind.to_string(), name: name.to_string(), order };
        events.send(event).await.is_ok()
    }

    /// Watches one composed kind (only objects carrying Crossplane's composite label) into the tree. The kind
    /// is resolved by discovery; when it is not served (yet), the next XR naming it tries again.
    async fn watch_composed(self, api_version: String, kind: String) {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let resource = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((resource, _)) => resource,
            Err(e) => {
                tracing::warn!(%api_version, %kind, error = %e, "cannot resolve a composed kind");
                self.watching.lock().await.remove(&format!("{api_version}/{kind}"));
                return;
            }
        };
        tracing::info!(%api_version, %kind, "watching composed kind");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let config = watcher::Config::default().labels(COMPOSITE_LABEL);
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut listed: Option<HashSet<ObjKey>> = None;
        while let Some(next) = stream.next().await {
            match next {
                Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(obj)) => {
                    let key = ObjKey::of(&api_version, &kind, &obj);
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(key.clone());
                    }
                    self.tree.set(key, summarize(&obj));
                }
                Ok(watcher::Event::Apply(obj)) => self.tree.set(ObjKey::of(&api_version, &kind, &obj), summarize(&obj)),
                Ok(watcher::Event::Delete(obj)) => self.tree.remove(&ObjKey::of(&api_version, &kind, &obj)),
                Ok(watcher::Event::InitDone) => {
                    if let Some(listed) = listed.take() {
                        self.tree.retain_kind(&api_version, &kind, &listed);
                    }
                }
                Err(e) => tracing::warn!(%kind, error = %e, "composed watch error"),
            }
        }
    }

    async fn watch_pods(self) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let config = watcher::Config::default().labels(metering::LABEL_KIND);
        let mut stream = watcher(api, config).default_backoff().boxed();
        // What was last recorded per pod uid (unchanged pods are not written again), and the uids of a (re-)list
        // in progress.
        let mut recorded: HashMap<String, PodUsage> = HashMap::new();
        let mut listed: Option<HashSet<String>> = None;
        while let Some(next) = stream.next().await {
            match next {
                Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let (Some(listed), Some(uid)) = (listed.as_mut(), pod.metadata.uid.clone()) {
                        listed.insert(uid);
                    }
                    self.meter(metering::usage(&pod), &mut recorded).await;
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(listed) = listed.take() {
                        self.end_unlisted(&listed, &mut recorded).await;
                    }
                }
                Ok(watcher::Event::Apply(pod)) => self.meter(metering::usage(&pod), &mut recorded).await,
                Ok(watcher::Event::Delete(pod)) => {
                    self.meter(metering::deleted(&pod, now_s()), &mut recorded).await;
                    if let Some(uid) = &pod.metadata.uid {
                        recorded.remove(uid);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pod watch error"),
            }
        }
    }

    /// Records a pod's interval unless it is what was recorded last.
    async fn meter(&self, usage: Option<PodUsage>, recorded: &mut HashMap<String, PodUsage>) {
        let Some(usage) = usage else { return };
        if recorded.get(&usage.uid) == Some(&usage) {
            return;
        }
        match self.store.record_pod_usage(&usage).await {
            Ok(true) => {
                recorded.insert(usage.uid.clone(), usage);
            }
            Ok(false) => tracing::debug!(tenant = %usage.tenant, pod = %usage.pod, "pod of an unknown tenant"),
            Err(e) => tracing::error!(pod = %usage.pod, error = %e, "cannot record pod usage"),
        }
    }

    /// Ends, now, the intervals of pods the store has running that a complete list no longer contains.
    async fn end_unlisted(&self, listed: &HashSet<String>, recorded: &mut HashMap<String, PodUsage>) {
        recorded.retain(|uid, _| listed.contains(uid));
        let gone: Vec<String> = match self.store.running_pods().await {
            Ok(running) => running.into_iter().filter(|uid| !listed.contains(uid)).collect(),
            Err(e) => return tracing::error!(error = %e, "cannot read running pods"),
        };
        if gone.is_empty() {
            return;
        }
        match self.store.end_pods(&gone, now_s()).await {
            Ok(n) => tracing::info!(pods = n, "ended the intervals of pods deleted while the watch was down"),
            Err(e) => tracing::error!(error = %e, "cannot end the intervals of deleted pods"),
        }
    }

    async fn watch_kustomizations(self, ancestry: Ancestry, events: mpsc::Sender<Event>) {
        let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "kustomizations");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let config = watcher::Config::default().fields(&format!("metadata.name={TENANT_KUSTOMIZATION}"));
        let mut stream = watcher(api, config).default_backoff().applied_objects().boxed();
        while let Some(next) = stream.next().await {
            let k = match next {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "Kustomization watch error");
                    continue;
                }
            };
            let namespace = k.metadata.namespace.as_deref().unwrap_or("");
            let Some(slug) = namespace.strip_prefix(crate::derive::NAMESPACE_PREFIX) else { continue };
            // Flux reports `<branch>@sha1:<commit>`.
            let Some(revision) = k.data["status"]["lastAppliedRevision"].as_str() else { continue };
            let Some(commit) = revision.rsplit_once(':').map(|(_, c)| c.to_string()) else { continue };
            if !self.applied(slug, &commit, revision, &ancestry, &events).await {
                return;
            }
        }
    }

    /// Marks the tenant's merged orders contained in `commit` as applied; false once nobody listens any more.
    async fn applied(
        &self,
        slug: &str,
        commit: &str,
        revision: &str,
        ancestry: &Ancestry,
        events: &mpsc::Sender<Event>,
    ) -> bool {
        let waiting = match self.store.merged_awaiting_apply(slug).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(tenant = slug, error = %e, "cannot read merged orders");
                return !events.is_closed();
            }
        };
        // Git ancestry runs off the async threads (git2 blocks).
        let (ancestry, owned_slug, owned_commit) = (ancestry.clone(), slug.to_string(), commit.to_string());
        let contained = tokio::task::spawn_blocking(move || {
            waiting
                .into_iter()
                .filter(|(_, merge_commit)| ancestry(&owned_slug, &owned_commit, merge_commit))
                .map(|(id, _)| id)
                .collect::<Vec<String>>()
        })
        .await
        .unwrap_or_default();
        if contained.is_empty() {
            return !events.is_closed();
        }
        match self.store.record_applied(&contained, revision).await {
            Ok(moved) => {
                for (tenant_id, order_id, kind, name) in moved {
                    let event = Event::Applied { tenant_id, order_id, kind, name, revision: revision.to_string() };
                    if events.send(event).await.is_err() {
                        return false;
                    }
                }
                true
            }
            Err(e) => {
                tracing::error!(tenant = slug, error = %e, "cannot record applied orders");
                !events.is_closed()
            }
        }
    }

    /// Records one observed object; false once nobody listens any more.
    async fn handle(&self, kind: &str, obj: &DynamicObject, events: &mpsc::Sender<Event>) -> bool {
        let Some(obs) = observe(kind, obj) else {
            return !events.is_closed();
        };
        let event = match self.store.record_observation(&obs).await {
            Ok(Recorded::Resource { tenant_id, changed, order }) => Event::Observed {
                tenant_id,
                kind: obs.kind,
                name: obs.name,
                status: obs.status,
                url: obs.url,
                message: obs.message,
                changed,
                order,
            },
            // A Workspace's nested XRs belong to it; only objects nobody ordered or composed are unmanaged.
            Ok(Recorded::Unmanaged) if crate::derive::is_nested(obj) => return !events.is_closed(),
            Ok(Recorded::Deleting) => return !events.is_closed(),
            Ok(Recorded::Unmanaged) => {
                Event::Unmanaged { tenant: obs.tenant, kind: obs.kind, name: obs.name, status: obs.status }
            }
            Err(e) => {
                tracing::error!(kind, name = %obs.name, error = %e, "cannot record an observation");
                return !events.is_closed();
            }
        };
        events.send(event).await.is_ok()
    }
}

/// Seconds since the Unix epoch.
fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
