//! Container logs from Grafana Loki (`--loki-url`), for clusters whose log shipper (Grafana Alloy, Promtail, …)
//! sends every container's output there. The streams are found by the labels such a shipper's Kubernetes pod
//! discovery sets: `namespace`, `pod`, `container`, and the pod label `maxcloud.dev/name` mapped to a stream label
//! (`--loki-app-label`, default `maxcloud_dev_name`: what a `labelmap` of `__meta_kubernetes_pod_label_(.+)` makes
//! of it); the revision is read from `serving.knative.dev/revision` mapped likewise (`--loki-revision-label`), when
//! present. Only Knative's `user-container` is read, never its `queue-proxy`.
//!
//! The namespace of every query is the caller's tenant's (`mc-<slug>`, given by the route); label values are
//! escaped as LogQL string literals. The tail is `query_range` backward (pages of [`PAGE`] lines, Loki's default
//! `max_entries_limit_per_query` is 5000) over the last [`LOOKBACK`], returned oldest first; following polls
//! `query_range` forward every [`POLL`] from the newest line shown, re-reading the last [`LATE`] so a line a
//! shipper delivers a little after newer ones is still shown (each line once), until the stream is dropped.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use maxcloud_api::LogQuery;
use maxcloud_api_model::LogLine;
use serde_json::Value;

/// Knative names the user's container so; its `queue-proxy` sidecar is left out.
const USER_CONTAINER: &str = "user-container";
/// Lines per `query_range` request.
const PAGE: usize = 1000;
/// How far back the tail looks (Loki's default `max_query_length` is 721h).
const LOOKBACK: Duration = Duration::from_secs(720 * 3600);
/// Between two polls of a followed log.
const POLL: Duration = Duration::from_secs(1);
/// How far behind the newest line shown a followed log keeps looking for lines delivered late.
const LATE: Duration = Duration::from_secs(5);

/// Where Loki is and how the shipper labels the streams.
#[derive(Debug, Clone)]
pub struct LokiSettings {
    /// Loki's HTTP API, e.g. `http://loki.monitoring:3100` (the `/loki/api/v1/...` paths are appended).
    pub url: String,
    /// Stream label holding the pod label `maxcloud.dev/name`.
    pub app_label: String,
    /// Stream label holding the pod label `serving.knative.dev/revision` (read when present).
    pub revision_label: String,
    /// The Loki tenant the logs are kept under (`X-Scope-OrgID`), for a Loki with `auth_enabled: true`; `None`: a
    /// single-tenant Loki. The platform's cluster is one Loki tenant; tenants of max-cloud are told apart by the
    /// `namespace` label, which every query fixes to the caller's own.
    pub org_id: Option<String>,
}

impl LokiSettings {
    pub const DEFAULT_APP_LABEL: &'static str = "maxcloud_dev_name";
    pub const DEFAULT_REVISION_LABEL: &'static str = "serving_knative_dev_revision";

    /// Settings for `url` with the default label names.
    pub fn new(url: impl Into<String>) -> LokiSettings {
        LokiSettings {
            url: url.into(),
            app_label: Self::DEFAULT_APP_LABEL.to_string(),
            revision_label: Self::DEFAULT_REVISION_LABEL.to_string(),
            org_id: None,
        }
    }

    /// Refuses a URL that is not http(s) and label names LogQL does not accept.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            anyhow::bail!("--loki-url must be an http(s) URL, got {:?}", self.url);
        }
        for (flag, label) in [("--loki-app-label", &self.app_label), ("--loki-revision-label", &self.revision_label)] {
            if !is_label_name(label) {
                anyhow::bail!("{flag} must be a Loki label name ([a-zA-Z_][a-zA-Z0-9_]*), got {label:?}");
            }
        }
        if let Some(org) = &self.org_id {
            // Loki's tenant ids: at most 150 of these characters, `|` joining several for a query across them.
            let allowed = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()|".contains(c);
            if org.is_empty() || org.len() > 150 || !org.chars().all(allowed) || matches!(org.as_str(), "." | "..") {
                anyhow::bail!(
                    "--loki-tenant must be a Loki tenant id (1 to 150 of a-z A-Z 0-9 ! - _ . * ' ( ), `|` between \
                     several), got {org:?}"
                );
            }
        }
        Ok(())
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A LogQL string literal: `"` and `\` escaped, control characters as Go escapes.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub struct LokiLogs {
    settings: LokiSettings,
    http: reqwest::Client,
}

impl LokiLogs {
    pub fn new(settings: LokiSettings) -> anyhow::Result<LokiLogs> {
        settings.validate()?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(org) = &settings.org_id {
            headers.insert("X-Scope-OrgID", reqwest::header::HeaderValue::from_str(org)?);
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).default_headers(headers).build()?;
        Ok(LokiLogs {
            settings: LokiSettings { url: settings.url.trim_end_matches('/').to_string(), ..settings },
            http,
        })
    }

    /// The stream selector of App `app`'s user containers in `namespace`.
    fn selector(&self, namespace: &str, app: &str) -> String {
        format!(
            "{{namespace={}, {}={}, container={}}}",
            quote(namespace),
            self.settings.app_label,
            quote(app),
            quote(USER_CONTAINER)
        )
    }
}

/// One line as Loki returns it: its time in nanoseconds and what the API shows.
#[derive(Debug, Clone)]
struct Entry {
    ns: i128,
    line: LogLine,
}

impl Entry {
    /// What tells two lines apart (Loki itself drops lines equal in stream, time and text).
    fn key(&self) -> (i128, String, String, String) {
        (self.ns, self.line.pod.clone(), self.line.container.clone(), self.line.line.clone())
    }
}

fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or_default()
}

fn rfc3339(ns: i128) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A `query_range` request; the entries of every returned stream, in no particular order.
struct Range {
    start: i128,
    end: i128,
    limit: usize,
    forward: bool,
}

impl LokiLogs {
    async fn query(&self, selector: &str, range: &Range) -> Result<Vec<Entry>, String> {
        let resp = self
            .http
            .get(format!("{}/loki/api/v1/query_range", self.settings.url))
            .query(&[
                ("query", selector.to_string()),
                ("start", range.start.to_string()),
                ("end", range.end.to_string()),
                ("limit", range.limit.to_string()),
                ("direction", if range.forward { "forward" } else { "backward" }.to_string()),
            ])
            .send()
            .await
            .map_err(|e| {
                // The caller (a tenant) is not told where Loki is; the server's log says it.
                tracing::warn!(loki = %self.settings.url, error = %e, "cannot query Loki");
                format!("Loki is unreachable: {}", e.without_url())
            })?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(format!("Loki answered {status}: {}", text.trim()));
        }
        let body: Value = resp.json().await.map_err(|e| format!("Loki's answer: {e}"))?;
        let streams =
            body["data"]["result"].as_array().ok_or_else(|| format!("Loki's answer has no streams: {body}"))?;
        let mut entries = Vec::new();
        for stream in streams {
            let label = |name: &str| stream["stream"][name].as_str().map(str::to_string);
            let pod = label("pod").unwrap_or_default();
            let container = label("container").unwrap_or_default();
            let revision = label(&self.settings.revision_label);
            for value in stream["values"].as_array().into_iter().flatten() {
                let (Some(ts), Some(text)) = (value[0].as_str(), value[1].as_str()) else { continue };
                let Ok(ns) = ts.parse::<i128>() else { continue };
                entries.push(Entry {
                    ns,
                    line: LogLine {
                        time: rfc3339(ns),
                        revision: revision.clone(),
                        pod: pod.clone(),
                        container: container.clone(),
                        line: text.to_string(),
                    },
                });
            }
        }
        Ok(entries)
    }

    /// The last `tail` lines before `end`, oldest first, read backward page by page.
    async fn tail(&self, selector: &str, tail: usize, end: i128) -> Result<Vec<Entry>, String> {
        let start = end - LOOKBACK.as_nanos() as i128;
        let mut lines: Vec<Entry> = Vec::new();
        let mut end = end;
        // Lines at the boundary time already taken (the next page includes that nanosecond again).
        let mut boundary: HashSet<(i128, String, String, String)> = HashSet::new();
        while lines.len() < tail {
            let limit = (tail - lines.len() + boundary.len()).min(PAGE);
            let mut page = self.query(selector, &Range { start, end, limit, forward: false }).await?;
            let full = page.len() >= limit;
            page.sort_by_key(|e| std::cmp::Reverse(e.ns));
            page.retain(|e| !boundary.contains(&e.key()));
            if page.is_empty() {
                break;
            }
            let oldest = page.last().map(|e| e.ns).unwrap_or(start);
            if oldest != end - 1 {
                boundary.clear();
            }
            boundary.extend(page.iter().filter(|e| e.ns == oldest).map(Entry::key));
            lines.extend(page);
            if !full {
                break;
            }
            // Loki's `end` is exclusive: the next page still covers the oldest nanosecond of this one.
            end = oldest + 1;
        }
        lines.truncate(tail);
        lines.reverse();
        Ok(lines)
    }
}

/// What a followed log remembers between polls.
struct Follow {
    logs: std::sync::Arc<LokiLogs>,
    selector: String,
    /// Start of the next query.
    from: i128,
    /// Lines shown at or after `from`.
    shown: HashSet<(i128, String, String, String)>,
    /// Poll again without waiting (the last page was full).
    immediate: bool,
}

impl Follow {
    /// The lines new since the last poll, oldest first (empty when there are none or Loki failed this time).
    async fn poll(&mut self) -> Vec<LogLine> {
        if !self.immediate {
            tokio::time::sleep(POLL).await;
        }
        self.immediate = false;
        let range = Range { start: self.from, end: now_ns() + 1, limit: PAGE, forward: true };
        let mut entries = match self.logs.query(&self.selector, &range).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::debug!(error = %e, "following logs in Loki");
                return Vec::new();
            }
        };
        let full = entries.len() >= PAGE;
        entries.sort_by_key(|e| e.ns);
        let newest = entries.last().map(|e| e.ns);
        let fresh: Vec<Entry> = entries.into_iter().filter(|e| self.shown.insert(e.key())).collect();
        if let Some(newest) = newest {
            // A full page: the rest is read from its newest line on at once; otherwise look back `LATE`.
            let from = if full { newest } else { newest - LATE.as_nanos() as i128 };
            if from > self.from {
                self.from = from;
                self.shown.retain(|k| k.0 >= from);
            }
            self.immediate = full;
        }
        fresh.into_iter().map(|e| e.line).collect()
    }
}

/// [`maxcloud_api::LogSource`] over a shared [`LokiLogs`].
#[derive(Clone)]
pub struct LokiSource(pub std::sync::Arc<LokiLogs>);

impl maxcloud_api::LogSource for LokiSource {
    fn logs(
        &self,
        namespace: String,
        app: String,
        query: LogQuery,
    ) -> BoxFuture<'static, Result<BoxStream<'static, LogLine>, String>> {
        let logs = self.0.clone();
        Box::pin(async move {
            let selector = logs.selector(&namespace, &app);
            let end = now_ns() + 1;
            let past = logs.tail(&selector, query.tail as usize, end).await?;
            // Following looks back `LATE` for late deliveries, but never before the oldest line of a full tail:
            // older lines were left out on purpose.
            let mut from = end - LATE.as_nanos() as i128;
            if past.len() >= query.tail as usize {
                from = from.max(past.first().map_or(from, |e| e.ns));
            }
            let shown = past.iter().filter(|e| e.ns >= from).map(Entry::key).collect();
            let tail = stream::iter(past.into_iter().map(|e| e.line).collect::<Vec<_>>());
            if !query.follow {
                return Ok(tail.boxed());
            }
            let follow = Follow { logs, selector, from, shown, immediate: true };
            let new = stream::unfold(follow, |mut follow| async move {
                let lines = follow.poll().await;
                Some((stream::iter(lines), follow))
            })
            .flatten();
            Ok(tail.chain(new).boxed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_logql_string_literals() {
        assert_eq!(quote("mc-acme"), r#""mc-acme""#);
        assert_eq!(quote(r#"a"} or {namespace=~".+"#), r#""a\"} or {namespace=~\".+""#);
        assert_eq!(quote("back\\slash\nnew"), r#""back\\slash\nnew""#);
        let logs = LokiLogs::new(LokiSettings::new("http://127.0.0.1:3100/")).unwrap();
        assert_eq!(
            logs.selector("mc-acme", "shop\""),
            r#"{namespace="mc-acme", maxcloud_dev_name="shop\"", container="user-container"}"#
        );
        assert_eq!(logs.settings.url, "http://127.0.0.1:3100");
    }

    #[test]
    fn settings_are_checked() {
        assert!(LokiSettings::new("loki:3100").validate().unwrap_err().to_string().contains("--loki-url"));
        let bad = LokiSettings { app_label: "maxcloud.dev/name".into(), ..LokiSettings::new("http://loki") };
        assert!(bad.validate().unwrap_err().to_string().contains("--loki-app-label"));
        let bad = LokiSettings { revision_label: "1rev".into(), ..LokiSettings::new("http://loki") };
        assert!(bad.validate().unwrap_err().to_string().contains("--loki-revision-label"));
        assert!(LokiSettings::new("https://loki.example").validate().is_ok());
        for org in ["", "a b", "..", "x/y", &"a".repeat(151)] {
            let bad = LokiSettings { org_id: Some(org.to_string()), ..LokiSettings::new("http://loki") };
            assert!(bad.validate().unwrap_err().to_string().contains("--loki-tenant"), "{org:?}");
        }
        let good = LokiSettings { org_id: Some("platform|cluster-a".into()), ..LokiSettings::new("http://loki") };
        assert!(good.validate().is_ok());
    }

    #[test]
    fn nanoseconds_become_rfc3339() {
        assert_eq!(rfc3339(1_700_000_000_123_456_789).as_deref(), Some("2023-11-14T22:13:20.123456789Z"));
    }
}
