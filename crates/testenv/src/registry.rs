//! A real CNCF Distribution registry (`github.com/distribution/distribution/v3/cmd/registry`, built by
//! `scripts/testbin.sh` at `DISTRIBUTION_VERSION`), on a free loopback port with filesystem storage in a temporary
//! directory, trusting a token service: `auth.token` with the service's realm (its `/api/v1/registry/token`),
//! `service` (the tokens' audience), `issuer` and a `jwks` file holding the signing key, ES256 only. Every request
//! without a valid token answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, and a token
//! without the needed action (`insufficient_scope`) too.
//!
//! OpenTelemetry export is off (`OTEL_TRACES_EXPORTER=none`: Distribution v3 otherwise exports spans over OTLP).
//! The process is killed when the value drops, its directory (and the stored images) removed.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::process::{free_port, spawn, tail};
use crate::tools::{tool, workspace_root};
use crate::Error;

/// How the registry trusts the token service.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token endpoint, e.g. `http://127.0.0.1:8080/api/v1/registry/token`.
    pub realm: String,
    /// `aud` of the tokens.
    pub service: String,
    /// `iss` of the tokens.
    pub issuer: String,
    /// JWKS file of the signing key(s).
    pub jwks: PathBuf,
}

/// A running registry.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    /// From the spawn to the first 401 of `GET /v2/`.
    pub startup: Duration,
}

impl Registry {
    /// Writes the configuration, starts the registry and waits (at most 30 s) until `GET /v2/` answers 401.
    pub async fn start(auth: &TokenAuth) -> Result<Registry, Error> {
        Registry::start_on(free_port()?, auth).await
    }

    /// [`Registry::start`] on a given loopback port (one chosen before the token service started, which needs the
    /// registry's URL).
    pub async fn start_on(port: u16, auth: &TokenAuth) -> Result<Registry, Error> {
        let started = Instant::now();
        let bin = tool("registry", "DISTRIBUTION_VERSION", "registry")?;
        let base = workspace_root().join("target/testenv");
        std::fs::create_dir_all(&base)?;
        let dir = tempfile::Builder::new().prefix("registry-").tempdir_in(&base)?;
        let config = dir.path().join("config.yml");
        std::fs::write(&config, config_yaml(dir.path(), port, auth))?;
        let args = vec!["serve".to_string(), config.display().to_string()];
        let child = spawn(dir.path(), "registry", &bin, &args, &[("OTEL_TRACES_EXPORTER", "none")])?;
        let mut registry = Registry { dir, child, port, startup: Duration::ZERO };
        registry.wait_ready(Duration::from_secs(30)).await?;
        registry.startup = started.elapsed();
        Ok(registry)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Start(format!("HTTP client: {e}")))?;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Start(format!("registry exited ({status}):\n{}", tail(&self.log(), 30))));
            }
            if let Ok(resp) = http.get(format!("{}/v2/", self.url())).send().await {
                if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!("registry not ready in {timeout:?}:\n{}", tail(&self.log(), 30))));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `127.0.0.1:<port>`: the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The storage root (`docker/registry/v2/repositories/<name>/…` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The repositories stored on disk (`acme/web`, …), whatever the registry would show: what was written.
    pub fn stored_repositories(&self) -> Vec<String> {
        let root = self.storage().join("docker/registry/v2/repositories");
        let mut found = Vec::new();
        collect_repositories(&root, &root, &mut found);
        found.sort();
        found
    }
}

/// A directory is a repository when it has `_manifests` (a pushed manifest) or `_uploads`/`_layers` (blobs).
fn collect_repositories(root: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut is_repo = false;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if matches!(name.as_str(), "_manifests" | "_layers" | "_uploads") {
            is_repo = true;
        } else if path.is_dir() {
            collect_repositories(root, &path, found);
        }
    }
    if is_repo {
        if let Ok(rel) = dir.strip_prefix(root) {
            found.push(rel.display().to_string());
        }
    }
}

fn config_yaml(dir: &Path, port: u16, auth: &TokenAuth) -> String {
    // JSON is YAML: every value quoted by serde_json.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: {secret}\n\
         auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    jwks: {jwks}\n    \
         signingalgorithms: [ES256]\n",
        storage = q(&dir.join("storage").display().to_string()),
        addr = q(&format!("127.0.0.1:{port}")),
        secret = q(&uuid::Uuid::new_v4().to_string()),
        realm = q(&auth.realm),
        service = q(&auth.service),
        issuer = q(&auth.issuer),
        jwks = q(&auth.jwks.display().to_string()),
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
