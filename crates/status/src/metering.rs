//! From a pod as the cluster reports it to the interval it is metered for. Pure: no I/O.
//!
//! Metered are the pods in a tenant namespace (`mc-<slug>`) labelled with the catalog kind and name of the
//! service they run for (`maxcloud.dev/kind`, `maxcloud.dev/name`; the compositions put them on the pod
//! templates). A pod costs its effective requests — what the scheduler reserves for it — for as long as it
//! runs: from its first container start to the last container's finish, or to its deletion.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use maxcloud_store::PodUsage;

use crate::derive::NAMESPACE_PREFIX;
use maxcloud_catalog::quantity;

/// Label with the catalog kind of the service a pod runs for (`App`, `Database`).
pub const LABEL_KIND: &str = "maxcloud.dev/kind";
/// Label with the name of the service (the XR) a pod runs for.
pub const LABEL_NAME: &str = "maxcloud.dev/name";

/// The metered interval of `pod`, or `None` when it is no tenant's service pod or has not started running
/// (pending and unscheduled pods cost nothing).
///
/// - Requests: per resource, the larger of the init containers' peak and the containers' sum (restartable
///   init containers, i.e. sidecars, count towards both as the scheduler counts them), plus the pod overhead;
///   pod-level requests replace the containers' when set. A container's missing request defaults to its limit.
/// - Start: the earliest container start (current or last state, init containers included); a running pod
///   that reports no container start yet counts from `status.startTime`.
/// - End: the latest container finish once every container terminated, else the deletion timestamp (the
///   earlier of both when both are there), else open.
pub fn usage(pod: &Pod) -> Option<PodUsage> {
    let meta = &pod.metadata;
    let namespace = meta.namespace.as_deref()?;
    let tenant = namespace.strip_prefix(NAMESPACE_PREFIX).filter(|t| !t.is_empty())?;
    let labels = meta.labels.as_ref()?;
    let (kind, name) = (labels.get(LABEL_KIND)?, labels.get(LABEL_NAME)?);
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let all_statuses = containers.iter().chain(status.init_container_statuses.iter().flatten());
    let started = all_statuses.flat_map(started_times).min().or_else(|| {
        (status.phase.as_deref() == Some("Running")).then(|| status.start_time.as_ref().map(seconds)).flatten()
    })?;
    let finished = (!containers.is_empty())
        .then(|| containers.iter().map(finished_time).collect::<Option<Vec<i64>>>())
        .flatten()
        .and_then(|times| times.into_iter().max());
    let deleted = meta.deletion_timestamp.as_ref().map(seconds);
    let ended = match (finished, deleted) {
        (Some(f), Some(d)) => Some(f.min(d)),
        (f, d) => f.or(d),
    };
    let requests = |resource: &str, scale: i32| effective_request(spec, resource, scale);
    Some(PodUsage {
        uid: meta.uid.clone()?,
        tenant: tenant.to_string(),
        kind: kind.clone(),
        name: name.clone(),
        namespace: namespace.to_string(),
        pod: meta.name.clone()?,
        cpu_millis: requests("cpu", 3),
        memory_bytes: requests("memory", 0),
        started_at: started,
        ended_at: ended,
    })
}

/// The interval of a pod that is gone: ended at its finish or deletion timestamp, else at `now` (seconds).
pub fn deleted(pod: &Pod, now: i64) -> Option<PodUsage> {
    usage(pod).map(|u| PodUsage { ended_at: Some(u.ended_at.unwrap_or(now).max(u.started_at)), ..u })
}

fn seconds(t: &Time) -> i64 {
    t.0.as_second()
}

/// Every start time a container reports: its current run and the one before.
fn started_times(s: &ContainerStatus) -> impl Iterator<Item = i64> + '_ {
    [s.state.as_ref(), s.last_state.as_ref()].into_iter().flatten().filter_map(|state| {
        let running = state.running.as_ref().and_then(|r| r.started_at.as_ref());
        let terminated = state.terminated.as_ref().and_then(|t| t.started_at.as_ref());
        running.or(terminated).map(seconds)
    })
}

/// When the container finished, if it has terminated.
fn finished_time(s: &ContainerStatus) -> Option<i64> {
    s.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(seconds)
}

/// `ceil(quantity × 10^scale)`; a quantity the API server accepted always parses, anything else counts 0.
fn amount(q: &Quantity, resource: &str, scale: i32) -> i64 {
    quantity::scaled(&q.0, scale).unwrap_or_else(|e| {
        tracing::warn!(resource, error = %e, "unusable quantity in a pod, metered as 0");
        0
    })
}

/// The request of `resource` in these requirements: the request, else the limit (which the API server would
/// have defaulted the request to).
fn requested(
    requests: Option<&BTreeMap<String, Quantity>>,
    limits: Option<&BTreeMap<String, Quantity>>,
    resource: &str,
    scale: i32,
) -> Option<i64> {
    let q = requests.and_then(|r| r.get(resource)).or_else(|| limits.and_then(|l| l.get(resource)))?;
    Some(amount(q, resource, scale))
}

fn container_request(c: &Container, resource: &str, scale: i32) -> i64 {
    let r = c.resources.as_ref();
    requested(r.and_then(|r| r.requests.as_ref()), r.and_then(|r| r.limits.as_ref()), resource, scale).unwrap_or(0)
}

/// What the scheduler reserves for the pod (Kubernetes' `PodRequests`).
fn effective_request(spec: &k8s_openapi::api::core::v1::PodSpec, resource: &str, scale: i32) -> i64 {
    let pod_level =
        spec.resources.as_ref().and_then(|r| requested(r.requests.as_ref(), r.limits.as_ref(), resource, scale));
    let containers = pod_level.unwrap_or_else(|| {
        let mut sidecars = 0i64;
        let mut init_peak = 0i64;
        for c in spec.init_containers.iter().flatten() {
            let request = container_request(c, resource, scale);
            if c.restart_policy.as_deref() == Some("Always") {
                sidecars = sidecars.saturating_add(request);
                init_peak = init_peak.max(sidecars);
            } else {
                init_peak = init_peak.max(sidecars.saturating_add(request));
            }
        }
        let regular =
            spec.containers.iter().fold(0i64, |sum, c| sum.saturating_add(container_request(c, resource, scale)));
        init_peak.max(regular.saturating_add(sidecars))
    });
    let overhead = spec.overhead.as_ref().and_then(|o| o.get(resource)).map_or(0, |q| amount(q, resource, scale));
    containers.saturating_add(overhead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn at(offset: i64) -> String {
        k8s_openapi::jiff::Timestamp::from_second(T + offset).unwrap().to_string()
    }

    fn pod(namespace: &str, labels: Value, spec: Value, status: Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": namespace, "uid": "uid-1", "labels": labels},
            "spec": spec, "status": status,
        }))
        .unwrap()
    }

    fn labels() -> Value {
        json!({"maxcloud.dev/kind": "App", "maxcloud.dev/name": "web"})
    }

    fn one_container(requests: Value, limits: Value) -> Value {
        json!({"containers": [{"name": "app", "image": "nginx", "resources": {"requests": requests, "limits": limits}}]})
    }

    fn running(since: i64) -> Value {
        json!({"phase": "Running", "startTime": at(since - 5),
               "containerStatuses": [{"name": "app", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0,
                                      "state": {"running": {"startedAt": at(since)}}}]})
    }

    fn terminated(started: i64, finished: i64) -> Value {
        json!({"name": "app", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0,
               "state": {"terminated": {"exitCode": 0, "startedAt": at(started), "finishedAt": at(finished)}}})
    }

    #[test]
    fn a_running_service_pod_is_metered_from_its_container_start() {
        let p =
            pod("mc-acme", labels(), one_container(json!({"cpu": "500m", "memory": "256Mi"}), json!({})), running(0));
        assert_eq!(
            usage(&p),
            Some(PodUsage {
                uid: "uid-1".into(),
                tenant: "acme".into(),
                kind: "App".into(),
                name: "web".into(),
                namespace: "mc-acme".into(),
                pod: "web-1".into(),
                cpu_millis: 500,
                memory_bytes: 256 << 20,
                started_at: T,
                ended_at: None,
            })
        );
    }

    #[test]
    fn only_started_service_pods_in_tenant_namespaces_count() {
        let spec = one_container(json!({"cpu": "1"}), json!({}));
        assert!(usage(&pod("default", labels(), spec.clone(), running(0))).is_none(), "not a tenant namespace");
        assert!(usage(&pod("mc-", labels(), spec.clone(), running(0))).is_none());
        assert!(usage(&pod("mc-acme", json!({"app": "web"}), spec.clone(), running(0))).is_none(), "no service labels");
        let kind_only = json!({"maxcloud.dev/kind": "App"});
        assert!(usage(&pod("mc-acme", kind_only, spec.clone(), running(0))).is_none());
        let pending = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]});
        assert!(usage(&pod("mc-acme", labels(), spec.clone(), pending)).is_none(), "pending costs nothing");
        let waiting = json!({"phase": "Pending", "startTime": at(0), "containerStatuses": [{"name": "app", "image": "nginx",
            "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert!(usage(&pod("mc-acme", labels(), spec.clone(), waiting)).is_none(), "pulling the image costs nothing");
        // Running, but the kubelet has not reported a container start yet: from the pod's start.
        let early = usage(&pod("mc-acme", labels(), spec, json!({"phase": "Running", "startTime": at(7)}))).unwrap();
        assert_eq!(early.started_at, T + 7);
    }

    #[test]
    fn requests_default_to_limits_and_add_up_like_the_scheduler() {
        let spec = json!({
            "initContainers": [
                {"name": "migrate", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                {"name": "proxy", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "late", "image": "x", "resources": {"requests": {"cpu": "1950m"}}},
            ],
            "containers": [
                {"name": "app", "image": "x", "resources": {"limits": {"cpu": "0.5", "memory": "256Mi"}}},
                {"name": "side", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "1e6"}, "limits": {"cpu": "1"}}},
                {"name": "bare", "image": "x"},
            ],
            "overhead": {"cpu": "10m", "memory": "1Ki"},
        });
        let u = usage(&pod("mc-acme", labels(), spec, running(0))).unwrap();
        // cpu: init peak max(2, 0.1 + 1.95 = 2.05) vs containers 0.5 + 0.25 + sidecar 0.1 = 0.85 -> 2.05, + 10m.
        assert_eq!(u.cpu_millis, 2060);
        // memory: init peak 1Gi vs 256Mi + 1e6 -> 1Gi, + 1Ki.
        assert_eq!(u.memory_bytes, (1 << 30) + 1024);

        let pod_level = json!({"resources": {"requests": {"cpu": "3"}, "limits": {"memory": "2Gi"}},
            "containers": [{"name": "app", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]});
        let u = usage(&pod("mc-acme", labels(), pod_level, running(0))).unwrap();
        assert_eq!((u.cpu_millis, u.memory_bytes), (3000, 2 << 30), "pod-level resources replace the containers'");
    }

    #[test]
    fn the_interval_ends_when_every_container_finished_or_at_deletion() {
        let spec = json!({"containers": [{"name": "app", "image": "x"}, {"name": "b", "image": "x"}]});
        let one_done = json!({"phase": "Running", "containerStatuses": [terminated(0, 90),
            {"name": "b", "image": "x", "imageID": "", "ready": true, "restartCount": 1,
             "state": {"running": {"startedAt": at(30)}},
             "lastState": {"terminated": {"exitCode": 1, "startedAt": at(-20), "finishedAt": at(29)}}}]});
        let u = usage(&pod("mc-acme", labels(), spec.clone(), one_done.clone())).unwrap();
        assert_eq!((u.started_at, u.ended_at), (T - 20, None), "earliest start, including the previous run");
        let all_done = json!({"phase": "Succeeded", "containerStatuses": [terminated(0, 90), terminated(5, 120)]});
        let u = usage(&pod("mc-acme", labels(), spec.clone(), all_done.clone())).unwrap();
        assert_eq!((u.started_at, u.ended_at), (T, Some(T + 120)));

        let mut deleting = pod("mc-acme", labels(), spec.clone(), one_done);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(T + 200).unwrap()));
        assert_eq!(usage(&deleting).unwrap().ended_at, Some(T + 200));
        let mut finished_then_deleted = pod("mc-acme", labels(), spec.clone(), all_done);
        finished_then_deleted.metadata.deletion_timestamp = deleting.metadata.deletion_timestamp.clone();
        assert_eq!(usage(&finished_then_deleted).unwrap().ended_at, Some(T + 120), "the earlier of both");

        // Gone without either: at the time the deletion was seen.
        let gone = pod("mc-acme", labels(), spec, running(0));
        assert_eq!(deleted(&gone, T + 500).unwrap().ended_at, Some(T + 500));
        assert_eq!(deleted(&deleting, T + 500).unwrap().ended_at, Some(T + 200));
        assert_eq!(deleted(&gone, T - 500).unwrap().ended_at, Some(T), "never before its start");
    }
}
