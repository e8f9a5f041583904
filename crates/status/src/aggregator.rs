//! The watches: one kube-rs `watcher` over the CustomResourceDefinitions of the `maxcloud.dev` group (so a
//! catalog kind installed later is picked up without a restart), and one per catalog kind found there. No
//! polling: every change arrives as a watch event; `default_backoff` re-establishes a watch after an API-server
//! outage, and the watcher's re-list then replays every object, so the recorded states converge.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use maxcloud_store::{Recorded, Store};
use tokio::sync::{mpsc, Mutex};

use crate::derive::observe;

/// The API group of the catalog's composite resources.
pub const CATALOG_GROUP: &str = "maxcloud.dev";

/// What the aggregator tells the rest of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A managed resource's state as observed; `order` is set when an order moved because of it.
    Observed {
        tenant_id: String,
        kind: String,
        name: String,
        status: String,
        url: Option<String>,
        message: Option<String>,
        order: Option<(String, String)>,
    },
    /// An object of a catalog kind that no order created (kubectl, Terraform, or a Workspace's nested XR).
    Unmanaged { tenant: String, kind: String, name: String, status: String },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("watch: {0}")]
    Watch(#[from] watcher::Error),
}

/// Watches the catalog kinds in a cluster and records what it sees in the store.
#[derive(Clone)]
pub struct Aggregator {
    client: Client,
    store: Store,
    watching: Arc<Mutex<HashSet<String>>>,
}

impl Aggregator {
    pub fn new(client: Client, store: Store) -> Aggregator {
        Aggregator { client, store, watching: Arc::default() }
    }

    /// Runs until `events` is closed or the CRD watch ends (watch errors are retried with backoff, never
    /// returned). Each catalog kind gets its own task.
    pub async fn run(self, events: mpsc::Sender<Event>) -> Result<(), Error> {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let mut stream = watcher(crds, watcher::Config::default()).default_backoff().applied_objects().boxed();
        let mut tasks = tokio::task::JoinSet::new();
        while let Some(next) = stream.next().await {
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
        Ok(())
    }

    async fn watch_kind(self, resource: ApiResource, events: mpsc::Sender<Event>) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let mut stream = watcher(api, watcher::Config::default()).default_backoff().applied_objects().boxed();
        loop {
            match stream.next().await {
                Some(Ok(obj)) => {
                    if !self.handle(&resource.kind, &obj, &events).await {
                        return;
                    }
                }
                // default_backoff retries; the error is only worth a line in the log.
                Some(Err(e)) => tracing::warn!(kind = %resource.kind, error = %e, "watch error"),
                None => return,
            }
        }
    }

    /// Records one observed object; false once nobody listens any more.
    async fn handle(&self, kind: &str, obj: &DynamicObject, events: &mpsc::Sender<Event>) -> bool {
        let Some(obs) = observe(kind, obj) else {
            return !events.is_closed();
        };
        let event = match self.store.record_observation(&obs).await {
            Ok(Recorded::Resource { tenant_id, order }) => Event::Observed {
                tenant_id,
                kind: obs.kind,
                name: obs.name,
                status: obs.status,
                url: obs.url,
                message: obs.message,
                order,
            },
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
