//! Flux (GitOps Toolkit) against the test control plane: source-controller, kustomize-controller and
//! notification-controller, built by `scripts/testbin.sh` from their Go modules at the versions pinned in
//! `scripts/versions.env`, run out of cluster as processes with the admin kubeconfig, every listener on a free
//! loopback port, leader election off, and the platform's multi-tenancy lockdown flags
//! (`flux/components/flux-lockdown`) exactly as in production:
//!
//! | controller | lockdown flags |
//! |---|---|
//! | kustomize-controller | `--no-cross-namespace-refs=true --no-remote-bases=true --default-service-account=default` |
//! | notification-controller | `--no-cross-namespace-refs=true` |
//! | source-controller | (none: the component patches only the controllers above) |
//!
//! source-controller's artifact storage lives in the control plane's directory and is served on loopback
//! (`--storage-addr`, advertised with `--storage-adv-addr`), so kustomize-controller fetches artifacts from it
//! like in a cluster; source- and kustomize-controller send their events to notification-controller's event
//! server, whose webhook receiver server is [`Flux::receiver_url`].
//!
//! Measured on the 2-CPU development VM (tests/tests/flux_sync.rs, three runs), the three controllers spawned
//! together: start-up (spawn → `/readyz` ok, "Starting workers" logged, own server listening) 0.4–2.4 s each,
//! CRDs + namespace + all three ready in 2.1–3.2 s. Resident memory (`VmRSS`): right after start-up
//! source-controller ~80 MiB, kustomize-controller ~72 MiB, notification-controller ~70 MiB; after the
//! two-tenant test source ~90 MiB, kustomize ~135–147 MiB, notification ~72 MiB. [`Flux::report`] prints the
//! figures of a run.
//!
//! Everything started here is killed when the value drops.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::Api;
use serde_json::{json, Value};

use crate::controlplane::ControlPlane;
use crate::process::rss_kib;
use crate::process::{free_port, spawn, tail};
use crate::tools::{crd_set, tool};
use crate::Error;

/// The namespace the controllers consider their own (`RUNTIME_NAMESPACE`).
pub const FLUX_NAMESPACE: &str = "flux-system";

/// One running controller.
pub struct Controller {
    /// `source-controller`, `kustomize-controller` or `notification-controller`.
    pub name: &'static str,
    child: Child,
    health_port: u16,
    spawned: Instant,
    startup: Option<Duration>,
}

impl Controller {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Spawn → ready: `/readyz` answers, the log says the workers started and the controller's own server
    /// (artifact storage, webhook receiver) listens.
    pub fn startup(&self) -> Duration {
        self.startup.unwrap_or_default()
    }

    /// Resident memory of the process in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }
}

/// The three Flux controllers, running.
pub struct Flux {
    dir: PathBuf,
    controllers: Vec<Controller>,
    receiver_port: u16,
    storage_port: u16,
    events_port: u16,
    /// CRDs + namespace + all three controllers ready.
    pub startup: Duration,
}

/// The status code of a GET on loopback, if anything answers within 2 s.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
    Some(client.get(format!("http://127.0.0.1:{port}{path}")).send().await.ok()?.status().as_u16())
}

impl Flux {
    /// Installs the Flux CRDs and the `flux-system` namespace into `cp`, starts the three controllers and waits
    /// until each is ready.
    pub async fn start(cp: &ControlPlane) -> Result<Flux, Error> {
        let started = Instant::now();
        let mut crds = String::new();
        for (set, key) in [
            ("flux-source", "FLUX_SOURCE_CONTROLLER_VERSION"),
            ("flux-kustomize", "FLUX_KUSTOMIZE_CONTROLLER_VERSION"),
            ("flux-notification", "FLUX_NOTIFICATION_CONTROLLER_VERSION"),
        ] {
            crds.push_str(&crd_set(set, key)?);
        }
        crds.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {FLUX_NAMESPACE}\n"));
        cp.apply_yaml(&crds).await?;

        let dir = cp.dir().to_path_buf();
        let storage = dir.join("flux-artifacts");
        std::fs::create_dir_all(&storage)?;
        let (receiver_port, storage_port, events_port) = (free_port()?, free_port()?, free_port()?);
        let events_url = format!("http://127.0.0.1:{events_port}/");
        let mut flux =
            Flux { dir, controllers: Vec::new(), receiver_port, storage_port, events_port, startup: Duration::ZERO };

        // notification-controller first: the others send it their events.
        let specs: [(&'static str, &str, Vec<String>); 3] = [
            (
                "notification-controller",
                "FLUX_NOTIFICATION_CONTROLLER_VERSION",
                vec![
                    format!("--events-addr=127.0.0.1:{events_port}"),
                    format!("--receiverAddr=127.0.0.1:{receiver_port}"),
                    // flux/components/flux-lockdown
                    "--no-cross-namespace-refs=true".into(),
                ],
            ),
            (
                "source-controller",
                "FLUX_SOURCE_CONTROLLER_VERSION",
                vec![
                    format!("--events-addr={events_url}"),
                    format!("--storage-path={}", storage.display()),
                    format!("--storage-addr=127.0.0.1:{storage_port}"),
                    format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
                ],
            ),
            (
                "kustomize-controller",
                "FLUX_KUSTOMIZE_CONTROLLER_VERSION",
                vec![
                    format!("--events-addr={events_url}"),
                    // flux/components/flux-lockdown
                    "--no-cross-namespace-refs=true".into(),
                    "--no-remote-bases=true".into(),
                    "--default-service-account=default".into(),
                ],
            ),
        ];
        for (name, key, extra) in specs {
            let bin = tool(&format!("flux-{name}"), key, name)?;
            let (metrics_port, health_port) = (free_port()?, free_port()?);
            let mut args: Vec<String> = vec![
                format!("--metrics-addr=127.0.0.1:{metrics_port}"),
                format!("--health-addr=127.0.0.1:{health_port}"),
                "--enable-leader-election=false".into(),
                "--watch-all-namespaces=true".into(),
                "--log-level=info".into(),
                "--log-encoding=json".into(),
            ];
            args.extend(extra);
            let env = [("KUBECONFIG", cp.kubeconfig.as_os_str()), ("RUNTIME_NAMESPACE", OsStr::new(FLUX_NAMESPACE))];
            let child = spawn(&flux.dir, name, &bin, &args, &env)?;
            flux.controllers.push(Controller { name, child, health_port, spawned: Instant::now(), startup: None });
        }
        flux.wait_ready(Duration::from_secs(90)).await?;
        flux.startup = started.elapsed();
        Ok(flux)
    }

    /// Polls every controller until all are ready, recording each one's start-up time.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            for index in 0..self.controllers.len() {
                if self.controllers[index].startup.is_some() {
                    continue;
                }
                let name = self.controllers[index].name;
                if let Ok(Some(status)) = self.controllers[index].child.try_wait() {
                    return Err(Error::Start(format!("{name} exited ({status}):\n{}", tail(&self.log(name), 40))));
                }
                if self.is_ready(index).await {
                    let c = &mut self.controllers[index];
                    c.startup = Some(c.spawned.elapsed());
                }
            }
            let waiting: Vec<&str> = self.controllers.iter().filter(|c| c.startup.is_none()).map(|c| c.name).collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> =
                    waiting.iter().map(|name| format!("----- {name}\n{}", tail(&self.log(name), 40))).collect();
                return Err(Error::Start(format!("{waiting:?} not ready after {timeout:?}:\n{}", logs.join("\n"))));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `/readyz` answers, the log says the workers started, and the controller's own server listens.
    async fn is_ready(&self, index: usize) -> bool {
        let c = &self.controllers[index];
        if http_status(c.health_port, "/readyz").await != Some(200) || !self.log(c.name).contains("Starting workers") {
            return false;
        }
        match c.name {
            "source-controller" => http_status(self.storage_port, "/").await.is_some(),
            "notification-controller" => http_status(self.receiver_port, "/").await.is_some(),
            _ => true,
        }
    }

    /// The running controllers (start-up time, pid, RSS).
    pub fn controllers(&self) -> &[Controller] {
        &self.controllers
    }

    /// One line per controller: start-up time and current resident memory.
    pub fn report(&self) -> String {
        let mut out = format!("flux ready in {:?}", self.startup);
        for c in &self.controllers {
            let rss = c.rss_kib().map_or_else(|| "?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
            out.push_str(&format!("\n  {}: ready in {:?}, RSS {rss}", c.name, c.startup()));
        }
        out
    }

    /// The log of one controller (`source-controller`, `kustomize-controller`, `notification-controller`).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The last `lines` lines of every controller's log, for failure messages.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for c in &self.controllers {
            out.push_str(&format!("----- {} (last {lines} lines)\n{}\n", c.name, tail(&self.log(c.name), lines)));
        }
        out
    }

    /// The log file of a controller.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// notification-controller's webhook receiver server, `http://127.0.0.1:<port>`; a Receiver is served at
    /// `<receiver_url><status.webhookPath>`.
    pub fn receiver_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.receiver_port)
    }

    /// source-controller's artifact server, `http://127.0.0.1:<port>`.
    pub fn storage_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.storage_port)
    }

    /// notification-controller's event server, `http://127.0.0.1:<port>/`.
    pub fn events_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.events_port)
    }

    /// The directory the logs and artifacts are in (the control plane's).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Calls the `generic-hmac` Receiver `name` in `namespace` the way a Git server's webhook would: waits until
    /// the Receiver has a `status.webhookPath`, reads its token from the Secret of `spec.secretRef` (key
    /// `token`), and POSTs `body` to the receiver server signed with `X-Signature: sha256=<hex HMAC-SHA256>`.
    /// Returns the HTTP status of the receiver's answer.
    pub async fn poke_receiver(
        &self,
        cp: &ControlPlane,
        namespace: &str,
        name: &str,
        body: &[u8],
    ) -> Result<u16, Error> {
        let client = cp.client().await?;
        let gvk = GroupVersionKind::gvk("notification.toolkit.fluxcd.io", "v1", "Receiver");
        let receivers: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
        let deadline = Instant::now() + Duration::from_secs(30);
        let (path, secret) = loop {
            let receiver =
                receivers.get(name).await.map_err(|e| Error::Kube(format!("Receiver {namespace}/{name}: {e}")))?;
            let path = receiver.data["status"]["webhookPath"].as_str().unwrap_or_default().to_string();
            let secret = receiver.data["spec"]["secretRef"]["name"].as_str().unwrap_or_default().to_string();
            if !path.is_empty() {
                break (path, secret);
            }
            if Instant::now() > deadline {
                return Err(Error::Kube(format!(
                    "Receiver {namespace}/{name} has no webhookPath: {}\n{}",
                    receiver.data["status"],
                    tail(&self.log("notification-controller"), 20)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, namespace);
        let secret =
            secrets.get(&secret).await.map_err(|e| Error::Kube(format!("Secret {namespace}/{secret}: {e}")))?;
        let token =
            secret.data.as_ref().and_then(|d| d.get("token")).map(|t| t.0.clone()).ok_or_else(|| {
                Error::Kube(format!("Secret {namespace}/{:?} has no key token", secret.metadata.name))
            })?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&token).map_err(|e| Error::Kube(e.to_string()))?;
        mac.update(body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.receiver_url()))
            .header("X-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Error::Kube(format!("POST receiver: {e}")))?;
        Ok(response.status().as_u16())
    }
}

impl Drop for Flux {
    fn drop(&mut self) {
        for c in &mut self.controllers {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }
}

/// The parsed value of a Flux object's condition `type_` (status, reason, message), if present.
pub fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| {
        (
            c["status"].as_str().unwrap_or_default().to_string(),
            c["reason"].as_str().unwrap_or_default().to_string(),
            c["message"].as_str().unwrap_or_default().to_string(),
        )
    })
}

/// Name of every tenant's Flux Kustomization (and GitRepository, Receiver), as gitops/tenant renders it.
pub const TENANT_KUSTOMIZATION: &str = "maxcloud-tenant";

/// `git --git-dir=<repo> show main:<path>`.
fn show(repo: &Path, path: &str) -> Result<String, Error> {
    let out = std::process::Command::new("git")
        .arg(format!("--git-dir={}", repo.display()))
        .args(["show", &format!("main:{path}")])
        .output()?;
    if !out.status.success() {
        return Err(Error::Start(format!("git show {path}: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The tenant's onboarding as the order service committed it to its platform repository
/// (`flux/tenants/<slug>/`), in the order of its kustomization.yaml; with `interval`, the GitRepository polls at
/// that interval instead of the production one.
pub fn tenant_onboarding(platform_repo: &Path, slug: &str, interval: Option<&str>) -> Result<Vec<Value>, Error> {
    let dir = format!("flux/tenants/{slug}");
    let yaml = |text: &str| serde_saphyr::from_multiple::<Value>(text).map_err(|e| Error::Yaml(e.to_string()));
    let kustomization = yaml(&show(platform_repo, &format!("{dir}/kustomization.yaml"))?)?;
    let files = kustomization.first().and_then(|k| k["resources"].as_array()).cloned().unwrap_or_default();
    let mut docs = Vec::new();
    for file in files.iter().filter_map(Value::as_str) {
        for mut doc in yaml(&show(platform_repo, &format!("{dir}/{file}"))?)? {
            if let (Some(interval), true) = (interval, doc["kind"] == "GitRepository") {
                doc["spec"]["interval"] = json!(interval);
            }
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The Secrets the platform creates in a tenant namespace (never committed).
#[derive(Debug, Clone, Copy)]
pub struct TenantSecrets<'a> {
    /// Git read token of the tenant repository.
    pub git_token: &'a str,
    /// The Receiver's webhook token.
    pub webhook_token: &'a str,
    /// The tenant's age identity (`AGE-SECRET-KEY-1…`), with which Flux decrypts its SOPS files.
    pub sops_identity: &'a str,
}

/// Onboards a tenant into the cluster as the platform does: the namespace, then — with `secrets` — the three
/// Secrets Flux needs there (without, the order service creates them), then Flux's objects; waits (up to
/// `timeout`) until its Kustomization is Ready, i.e. Flux pulled the tenant repository.
pub async fn onboard_tenant(
    cp: &ControlPlane,
    docs: Vec<Value>,
    secrets: Option<TenantSecrets<'_>>,
    timeout: Duration,
) -> Result<(), Error> {
    let (namespace, rest): (Vec<Value>, Vec<Value>) = docs.into_iter().partition(|d| d["kind"] == "Namespace");
    let ns = namespace
        .first()
        .and_then(|n| n["metadata"]["name"].as_str())
        .ok_or_else(|| Error::Kube("the onboarding has no Namespace".into()))?
        .to_string();
    cp.apply(namespace).await?;
    if let Some(given) = secrets {
        let secrets = [
            ("maxcloud-git-token", json!({"username": "flux", "password": given.git_token})),
            ("maxcloud-webhook-token", json!({"token": given.webhook_token})),
            ("maxcloud-sops-age", json!({"identity.agekey": given.sops_identity})),
        ];
        let objects = secrets.into_iter().map(|(name, data)| {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "stringData": data})
        });
        cp.apply(objects.collect()).await?;
    }
    cp.apply(rest).await?;
    let client = cp.client().await?;
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ApiResource::from_gvk(&gvk));
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(k)) = api.get_opt(TENANT_KUSTOMIZATION).await {
            let k = serde_json::to_value(k).unwrap_or_default();
            if condition(&k, "Ready").is_some_and(|c| c.0 == "True") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Start(format!("the Kustomization of {ns} did not become Ready within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
