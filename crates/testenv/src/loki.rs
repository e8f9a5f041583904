//! A real Grafana Loki (`github.com/grafana/loki/v3/cmd/loki`, built by `scripts/testbin.sh` at `LOKI_VERSION`),
//! single binary (`-target=all`) on free loopback ports (HTTP and gRPC), authentication off (one tenant), the
//! in-memory ring (no memberlist), TSDB index and chunks on the filesystem of a temporary directory, usage reporting
//! off. Log lines go in through its push API (`POST /loki/api/v1/push`, JSON) labelled as a Kubernetes log shipper
//! (Grafana Alloy, Promtail) labels them: [`Loki::push`]. The process is killed when the value drops, its directory
//! removed.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::process::{free_port, spawn, tail};
use crate::tools::{tool, workspace_root};
use crate::Error;

/// A running Loki.
pub struct Loki {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    http: reqwest::Client,
    /// The tenant every push and query of the test goes to (`X-Scope-OrgID`); `None`: a single-tenant Loki.
    org: Option<String>,
    /// From the spawn to the first 200 of `GET /ready`.
    pub startup: Duration,
}

/// One stream of pushed lines: the labels of one container of one pod, as a shipper's Kubernetes discovery sets
/// them (`namespace`, `pod`, `container`, the pod labels it maps, e.g. `maxcloud_dev_name`).
#[derive(Debug, Clone)]
pub struct Stream {
    pub labels: Vec<(String, String)>,
    /// (time in nanoseconds since the epoch, line)
    pub lines: Vec<(i128, String)>,
}

impl Stream {
    /// The labels Alloy's / Promtail's Kubernetes pod discovery gives a container of a maxcloud App pod, with the
    /// pod labels `maxcloud.dev/name` and `serving.knative.dev/revision` mapped to `maxcloud_dev_name` and
    /// `serving_knative_dev_revision`.
    pub fn app_container(namespace: &str, pod: &str, container: &str, app: &str, revision: &str) -> Stream {
        let labels = [
            ("namespace", namespace),
            ("pod", pod),
            ("container", container),
            ("maxcloud_dev_name", app),
            ("serving_knative_dev_revision", revision),
        ];
        Stream { labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), lines: Vec::new() }
    }

    /// Adds a line at `time` (nanoseconds since the epoch).
    pub fn line(mut self, time: i128, line: &str) -> Stream {
        self.lines.push((time, line.to_string()));
        self
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or_default()
}

impl Loki {
    /// Writes the configuration, starts Loki and waits (at most 90 s) until `GET /ready` answers 200 (the ingester
    /// joined the ring: pushes are accepted).
    pub async fn start() -> Result<Loki, Error> {
        Loki::start_with(None).await
    }

    /// A multi-tenant Loki (`auth_enabled: true`: every request names its tenant in `X-Scope-OrgID`); the test's
    /// pushes and queries go to tenant `org`.
    pub async fn start_multi_tenant(org: &str) -> Result<Loki, Error> {
        Loki::start_with(Some(org.to_string())).await
    }

    async fn start_with(org: Option<String>) -> Result<Loki, Error> {
        let started = Instant::now();
        let bin = tool("loki", "LOKI_VERSION", "loki")?;
        let base = workspace_root().join("target/testenv");
        std::fs::create_dir_all(&base)?;
        let dir = tempfile::Builder::new().prefix("loki-").tempdir_in(&base)?;
        let (port, grpc_port) = (free_port()?, free_port()?);
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, config_yaml(dir.path(), port, grpc_port, org.is_some()))?;
        let args = vec![format!("-config.file={}", config.display()), "-target=all".to_string()];
        let child = spawn(dir.path(), "loki", &bin, &args, &[] as &[(&str, &str)])?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(org) = &org {
            let value = reqwest::header::HeaderValue::from_str(org).map_err(|e| Error::Start(format!("org: {e}")))?;
            headers.insert("X-Scope-OrgID", value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Start(format!("HTTP client: {e}")))?;
        let mut loki = Loki { dir, child, port, http, org, startup: Duration::ZERO };
        loki.wait_ready(Duration::from_secs(90)).await?;
        loki.startup = started.elapsed();
        Ok(loki)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Start(format!("loki exited ({status}):\n{}", tail(&self.log(), 30))));
            }
            if let Ok(resp) = self.http.get(format!("{}/ready", self.url())).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!("loki not ready in {timeout:?}:\n{}", tail(&self.log(), 30))));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>`: what `maxcloud-server --loki-url` is given.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Loki tenant of the test's pushes and queries (multi-tenant Loki only).
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }

    /// The Loki process (e.g. for [`crate::process::rss_kib`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Loki's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("loki.log")).unwrap_or_default()
    }

    /// Pushes the streams through `POST /loki/api/v1/push` (JSON, as a shipper does); Loki answers 204.
    pub async fn push(&self, streams: &[Stream]) -> Result<(), Error> {
        let body = json!({"streams": streams.iter().map(|s| json!({
            "stream": s.labels.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<String, Value>>(),
            "values": s.lines.iter().map(|(t, l)| json!([t.to_string(), l])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()});
        let resp = self
            .http
            .post(format!("{}/loki/api/v1/push", self.url()))
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Start(format!("loki push: {e}")))?;
        let status = resp.status();
        if status != reqwest::StatusCode::NO_CONTENT {
            let text = resp.text().await.unwrap_or_default();
            return Err(Error::Start(format!("loki push answered {status}: {text}")));
        }
        Ok(())
    }

    /// Waits (at most 20 s) until an instant query of `selector` (LogQL) finds at least `count` lines: pushed lines
    /// are in the ingester at once, this makes that explicit.
    pub async fn wait_lines(&self, selector: &str, count: usize) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let resp = self
                .http
                .get(format!("{}/loki/api/v1/query_range", self.url()))
                .query(&[
                    ("query", selector.to_string()),
                    ("limit", count.to_string()),
                    ("start", (now_ns() - 3_600_000_000_000).to_string()),
                    ("end", (now_ns() + 60_000_000_000).to_string()),
                ])
                .send()
                .await
                .map_err(|e| Error::Start(format!("loki query: {e}")))?;
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let found: usize = body["data"]["result"]
                .as_array()
                .map(|streams| streams.iter().map(|s| s["values"].as_array().map_or(0, Vec::len)).sum())
                .unwrap_or(0);
            if found >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!("loki holds {found} of {count} lines of {selector}: {body}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn config_yaml(dir: &Path, port: u16, grpc_port: u16, auth_enabled: bool) -> String {
    // JSON is YAML: every path quoted by serde_json.
    let q = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    format!(
        "auth_enabled: {auth_enabled}\n\
         server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: {port}\n  \
         grpc_listen_address: 127.0.0.1\n  grpc_listen_port: {grpc_port}\n  log_level: warn\n\
         common:\n  instance_addr: 127.0.0.1\n  path_prefix: {data}\n  replication_factor: 1\n  \
         storage:\n    filesystem:\n      chunks_directory: {chunks}\n      rules_directory: {rules}\n  \
         ring:\n    kvstore:\n      store: inmemory\n\
         schema_config:\n  configs:\n    - from: \"2020-10-24\"\n      store: tsdb\n      object_store: filesystem\n      \
         schema: v13\n      index:\n        prefix: index_\n        period: 24h\n\
         ingester:\n  lifecycler:\n    min_ready_duration: 0s\n\
         limits_config:\n  reject_old_samples: false\n\
         analytics:\n  reporting_enabled: false\n",
        data = q(&dir.join("data")),
        chunks = q(&dir.join("data/chunks")),
        rules = q(&dir.join("data/rules")),
    )
}

impl Drop for Loki {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
