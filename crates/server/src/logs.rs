//! Container logs through the Kubernetes pod log API (`pods/{name}/log`, proxied by the API server to the node):
//! every pod of an App — the compositions label the Knative revision template with `maxcloud.dev/kind` and
//! `maxcloud.dev/name`, so all its revisions' pods match — read with timestamps, merged in time order.
//! Following watches the App's pods and streams each one's log as it appears, until the reader goes away.

use std::collections::HashSet;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::runtime::watcher;
use maxcloud_api::LogQuery;
use maxcloud_api_model::LogLine;
use tokio::sync::mpsc;

/// Knative names the user's container so; other pods (e.g. a database's) use their first container.
const USER_CONTAINER: &str = "user-container";
/// The label Knative puts on a revision's pods.
const REVISION_LABEL: &str = "serving.knative.dev/revision";
/// Lines buffered for a slow reader of a followed log.
const BUFFER: usize = 1024;

pub struct PodLogs {
    client: kube::Client,
}

impl PodLogs {
    pub fn new(client: kube::Client) -> PodLogs {
        PodLogs { client }
    }
}

fn selector(app: &str) -> String {
    format!("maxcloud.dev/kind=App,maxcloud.dev/name={app}")
}

/// The container whose log is read, its revision and whether the pod has a node (no node: no log yet).
fn describe(pod: &Pod) -> Option<(String, String, Option<String>)> {
    let name = pod.metadata.name.clone()?;
    let spec = pod.spec.as_ref()?;
    spec.node_name.as_ref()?;
    let container = spec
        .containers
        .iter()
        .find(|c| c.name == USER_CONTAINER)
        .or_else(|| spec.containers.first())
        .map(|c| c.name.clone())?;
    let revision = pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).cloned();
    Some((name, container, revision))
}

/// `<RFC 3339 time> <line>` as the node prints it with `timestamps=true`.
fn parse_line(pod: &str, container: &str, revision: &Option<String>, raw: &str) -> LogLine {
    let (time, line) = match raw.split_once(' ') {
        Some((t, rest)) if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok() => {
            (Some(t.to_string()), rest.to_string())
        }
        _ => (None, raw.to_string()),
    };
    LogLine { time, revision: revision.clone(), pod: pod.to_string(), container: container.to_string(), line }
}

fn sort_key(line: &LogLine) -> Option<time::OffsetDateTime> {
    line.time
        .as_deref()
        .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}

impl maxcloud_api::LogSource for PodLogs {
    fn logs(
        &self,
        namespace: String,
        app: String,
        query: LogQuery,
    ) -> BoxFuture<'static, Result<BoxStream<'static, LogLine>, String>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        Box::pin(async move {
            let listed = pods.list(&ListParams::default().labels(&selector(&app))).await.map_err(|e| e.to_string())?;
            let mut lines = Vec::new();
            let mut seen = HashSet::new();
            for pod in &listed.items {
                let Some((name, container, revision)) = describe(pod) else { continue };
                seen.insert(name.clone());
                let params = LogParams {
                    container: Some(container.clone()),
                    tail_lines: Some(i64::from(query.tail)),
                    timestamps: true,
                    ..LogParams::default()
                };
                match pods.logs(&name, &params).await {
                    Ok(text) => lines.extend(text.lines().map(|l| parse_line(&name, &container, &revision, l))),
                    Err(e) => tracing::debug!(pod = %name, error = %e, "no log to read"),
                }
            }
            // Each line's time parsed once, not at every comparison.
            lines.sort_by_cached_key(sort_key);
            let skip = lines.len().saturating_sub(query.tail as usize);
            let past = futures::stream::iter(lines.into_iter().skip(skip));
            if !query.follow {
                return Ok(past.boxed());
            }
            Ok(past.chain(follow(pods, app, seen)).boxed())
        })
    }
}

/// New lines of the App's pods: those already read (from now on) and every pod that appears later (from its start).
fn follow(pods: Api<Pod>, app: String, already: HashSet<String>) -> BoxStream<'static, LogLine> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut following: HashSet<String> = HashSet::new();
        let events = watcher(pods.clone(), watcher::Config::default().labels(&selector(&app)));
        let mut events = std::pin::pin!(events);
        loop {
            let event = tokio::select! {
                _ = tx.closed() => return,
                event = events.try_next() => event,
            };
            let pod = match event {
                Ok(Some(watcher::Event::Apply(pod))) | Ok(Some(watcher::Event::InitApply(pod))) => pod,
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch for logs");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some((name, container, revision)) = describe(&pod) else { continue };
            if following.contains(&name) {
                continue;
            }
            // A pod read before the follow began continues after its last line; a new one from its first.
            let params = LogParams {
                container: Some(container.clone()),
                follow: true,
                timestamps: true,
                tail_lines: already.contains(&name).then_some(0),
                ..LogParams::default()
            };
            match pods.log_stream(&name, &params).await {
                Ok(stream) => {
                    following.insert(name.clone());
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let mut lines = stream.lines();
                        loop {
                            let next = tokio::select! {
                                _ = tx.closed() => return,
                                next = lines.next() => next,
                            };
                            match next {
                                Some(Ok(raw)) => {
                                    if tx.send(parse_line(&name, &container, &revision, &raw)).await.is_err() {
                                        return;
                                    }
                                }
                                _ => return,
                            }
                        }
                    });
                }
                // Not started yet (the node answers 400): tried again at the pod's next change.
                Err(e) => tracing::debug!(pod = %name, error = %e, "cannot follow the log yet"),
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}
