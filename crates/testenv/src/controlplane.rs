//! etcd + kube-apiserver (+ kube-controller-manager for garbage collection, namespace deletion and service
//! account tokens), built from their Go modules at the pinned versions, started on free loopback ports in a
//! temporary directory, with RBAC authorization on. Everything started here is killed when the value drops.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::{Api, Client, Config};
use serde_json::Value;

use crate::process::{free_port, run, spawn, tail};
use crate::tools::{tool, workspace_root};

const NO_ENV: &[(&str, &str)] = &[];
use crate::Error;

/// Field manager of everything the test environment applies.
pub const FIELD_MANAGER: &str = "maxcloud-testenv";

/// A running control plane.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    etcd: Child,
    apiserver: Option<Child>,
    controller_manager: Option<Child>,
    apiserver_args: Vec<String>,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// Bearer token of the cluster admin (`system:masters`).
    pub token: String,
    /// A kubeconfig for the admin, for the Go controllers and kubectl-like tools.
    pub kubeconfig: PathBuf,
    /// How long start-up took (etcd + API server ready).
    pub startup: Duration,
}

fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    std::io::Read::read_exact(&mut File::open("/dev/urandom")?, &mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// PEM blocks of a file, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

fn base64(data: &[u8]) -> String {
    // Standard alphabet with padding; only for the kubeconfig's certificate data (no new dependency for it).
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until the API server is ready.
    pub async fn start() -> Result<ControlPlane, Error> {
        let started = Instant::now();
        let base = workspace_root().join("target/testenv");
        std::fs::create_dir_all(&base)?;
        let dir = tempfile::Builder::new().prefix("cp-").tempdir_in(&base)?;
        let d = dir.path();

        let etcd_bin = tool("etcd", "ETCD_VERSION", "etcd")?;
        let apiserver_bin = tool("kubernetes", "KUBERNETES_VERSION", "kube-apiserver")?;
        let (client_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args: Vec<String> = vec![
            "--name=testenv".into(),
            format!("--data-dir={}", d.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=testenv={peer_url}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ];
        let etcd = spawn(d, "etcd", &etcd_bin, &etcd_args, NO_ENV)?;

        let sa_key = d.join("sa.key");
        let sa_pub = d.join("sa.pub");
        run("openssl", &["genrsa", "-out", &sa_key.display().to_string(), "2048"])?;
        run(
            "openssl",
            &["rsa", "-in", &sa_key.display().to_string(), "-pubout", "-out", &sa_pub.display().to_string()],
        )?;
        let token = random_hex(24)?;
        std::fs::write(d.join("tokens.csv"), format!("{token},admin,admin,system:masters\n"))?;
        let apiserver_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", d.join("certs").display()),
            format!("--token-auth-file={}", d.join("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
            "-v=1".into(),
        ];
        let mut cp = ControlPlane {
            kubeconfig: d.join("kubeconfig"),
            url: format!("https://127.0.0.1:{api_port}"),
            token,
            apiserver: None,
            controller_manager: None,
            apiserver_args,
            etcd,
            dir,
            startup: Duration::ZERO,
        };
        cp.start_apiserver_process(&apiserver_bin)?;
        cp.wait_ready(Duration::from_secs(90)).await?;
        cp.write_kubeconfig()?;
        cp.start_controller_manager()?;
        cp.startup = started.elapsed();
        Ok(cp)
    }

    fn start_apiserver_process(&mut self, bin: &Path) -> Result<(), Error> {
        self.apiserver = Some(spawn(self.dir.path(), "kube-apiserver", bin, &self.apiserver_args, NO_ENV)?);
        Ok(())
    }

    fn start_controller_manager(&mut self) -> Result<(), Error> {
        let bin = tool("kubernetes", "KUBERNETES_VERSION", "kube-controller-manager")?;
        let d = self.dir.path();
        let args: Vec<String> = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--authentication-kubeconfig={}", self.kubeconfig.display()),
            format!("--authorization-kubeconfig={}", self.kubeconfig.display()),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()?),
            format!("--cert-dir={}", d.join("kcm-certs").display()),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=false".into(),
            format!("--service-account-private-key-file={}", d.join("sa.key").display()),
            format!("--root-ca-file={}", d.join("ca.crt").display()),
            // What the platform relies on: garbage collection of owned objects, namespace deletion, service
            // accounts and their tokens. No node, pod or volume controllers: there are no nodes.
            "--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token,clusterrole-aggregation"
                .into(),
            "-v=1".into(),
        ];
        self.controller_manager = Some(spawn(d, "kube-controller-manager", &bin, &args, NO_ENV)?);
        Ok(())
    }

    /// The log of one process of the control plane (etcd, kube-apiserver, kube-controller-manager).
    /// Resident memory (KiB) of etcd, kube-apiserver and kube-controller-manager, as far as running.
    pub fn rss_kib(&self) -> Vec<(&'static str, u64)> {
        let procs = [
            ("etcd", Some(&self.etcd)),
            ("kube-apiserver", self.apiserver.as_ref()),
            ("kube-controller-manager", self.controller_manager.as_ref()),
        ];
        procs.into_iter().filter_map(|(name, child)| Some((name, crate::process::rss_kib(child?.id())?))).collect()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The directory holding the control plane's data, certificates and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let cert = self.dir.path().join("certs/apiserver.crt");
        loop {
            if let Some(child) = self.apiserver.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::Start(format!(
                        "kube-apiserver exited ({status}):\n{}",
                        tail(&self.log("kube-apiserver"), 40)
                    )));
                }
            }
            if cert.is_file() {
                self.write_kubeconfig()?;
                if let Ok(client) = self.client().await {
                    let req = http_get("/readyz")?;
                    if matches!(client.request_text(req).await.as_deref(), Ok("ok")) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!(
                    "kube-apiserver not ready after {timeout:?}:\n{}",
                    tail(&self.log("kube-apiserver"), 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes the admin kubeconfig, trusting the CA that signed the API server's self-generated certificate.
    fn write_kubeconfig(&self) -> Result<(), Error> {
        let pem = std::fs::read_to_string(self.dir.path().join("certs/apiserver.crt"))?;
        let blocks = pem_blocks(&pem);
        let ca = blocks.last().ok_or_else(|| Error::Start("apiserver.crt holds no certificate".into()))?;
        std::fs::write(self.dir.path().join("ca.crt"), ca)?;
        std::fs::write(&self.kubeconfig, self.kubeconfig_text(ca, "")?)?;
        Ok(())
    }

    fn kubeconfig_text(&self, ca: &str, impersonation: &str) -> Result<String, Error> {
        Ok(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {url}\n    \
             certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\n{impersonation}\
             contexts:\n- name: testenv\n  context:\n    cluster: testenv\n    user: admin\ncurrent-context: testenv\n",
            url = self.url,
            ca = base64(ca.as_bytes()),
            token = self.token,
        ))
    }

    /// A kubeconfig (written next to the admin's) in which the admin impersonates the ServiceAccount
    /// `namespace`/`name` with its groups, so a process using it has exactly that account's RBAC rights. Valid
    /// until the API server restarts (a restart writes a new CA into the admin kubeconfig only).
    pub fn kubeconfig_for_service_account(&self, namespace: &str, name: &str) -> Result<PathBuf, Error> {
        let ca = std::fs::read_to_string(self.dir.path().join("ca.crt"))?;
        let impersonation = format!(
            "    as: system:serviceaccount:{namespace}:{name}\n    as-groups:\n    - system:serviceaccounts\n    \
             - system:serviceaccounts:{namespace}\n    - system:authenticated\n"
        );
        let path = self.dir.path().join(format!("kubeconfig-{namespace}-{name}"));
        std::fs::write(&path, self.kubeconfig_text(&ca, &impersonation)?)?;
        Ok(path)
    }

    /// A kube client for the admin.
    pub async fn client(&self) -> Result<Client, Error> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).map_err(|e| Error::Kube(e.to_string()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kube(e.to_string()))?;
        Client::try_from(config).map_err(|e| Error::Kube(e.to_string()))
    }

    /// A kube client authenticated as the admin impersonating `user` (e.g.
    /// `system:serviceaccount:mc-acme:maxcloud-tenant`), to check what RBAC lets that identity do.
    pub async fn client_as(&self, user: &str) -> Result<Client, Error> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).map_err(|e| Error::Kube(e.to_string()))?;
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kube(e.to_string()))?;
        config.auth_info.impersonate = Some(user.to_string());
        Client::try_from(config).map_err(|e| Error::Kube(e.to_string()))
    }

    /// Kills the API server (etcd keeps the data), to test clients across an API-server outage.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut child) = self.apiserver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the API server again on the same port and waits until it is ready.
    pub async fn restart_apiserver(&mut self) -> Result<(), Error> {
        self.stop_apiserver();
        let bin = tool("kubernetes", "KUBERNETES_VERSION", "kube-apiserver")?;
        self.start_apiserver_process(&bin)?;
        self.wait_ready(Duration::from_secs(60)).await
    }

    /// Server-side applies YAML documents (any kinds, CRDs first; waits for CRDs to be established before
    /// applying the rest). Namespaced objects without a namespace go to `default`.
    pub async fn apply_yaml(&self, text: &str) -> Result<Vec<DynamicObject>, Error> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Error::Yaml(e.to_string()))?;
        self.apply(docs.into_iter().filter(|d| !d.is_null()).collect()).await
    }

    /// Server-side applies objects (see [`ControlPlane::apply_yaml`]).
    pub async fn apply(&self, docs: Vec<Value>) -> Result<Vec<DynamicObject>, Error> {
        let client = self.client().await?;
        let (crds, rest): (Vec<Value>, Vec<Value>) =
            docs.into_iter().partition(|d| d["kind"] == "CustomResourceDefinition");
        // Every kind the CRDs define, so discovery can be awaited for them too (a caller may use them next).
        let crd_kinds: Vec<Value> = crds
            .iter()
            .flat_map(|crd| {
                let (group, kind) = (&crd["spec"]["group"], &crd["spec"]["names"]["kind"]);
                let versions = crd["spec"]["versions"].as_array().cloned().unwrap_or_default();
                versions.into_iter().filter(|v| v["served"] != false).map(move |v| {
                    serde_json::json!({"apiVersion": format!("{}/{}", group.as_str().unwrap_or(""),
                        v["name"].as_str().unwrap_or("")), "kind": kind})
                })
            })
            .collect();
        let mut applied = Vec::new();
        if !crds.is_empty() {
            let discovery = Discovery::new(client.clone()).run().await.map_err(|e| Error::Kube(e.to_string()))?;
            for crd in crds {
                applied.push(apply_one(&client, &discovery, crd).await?);
            }
            for crd in &applied {
                wait_established(&client, crd.metadata.name.as_deref().unwrap_or_default()).await?;
            }
        }
        if !rest.is_empty() || !crd_kinds.is_empty() {
            // An Established CRD is not yet necessarily in discovery (the API server publishes it a moment later),
            // so discovery is re-run until it serves every kind the CRDs define and the other documents use.
            let wanted: Vec<Value> = crd_kinds.into_iter().chain(rest.iter().cloned()).collect();
            let discovery = discover_kinds(&client, &wanted).await?;
            for doc in rest {
                applied.push(apply_one(&client, &discovery, doc).await?);
            }
        }
        Ok(applied)
    }
}

fn http_get(path: &str) -> Result<http::Request<Vec<u8>>, Error> {
    http::Request::get(path).body(Vec::new()).map_err(|e| Error::Kube(e.to_string()))
}

/// The dynamic API for an object's kind, found by discovery.
pub fn dynamic_api(
    client: &Client,
    discovery: &Discovery,
    obj: &Value,
) -> Result<(Api<DynamicObject>, ApiResource), Error> {
    let api_version = obj["apiVersion"].as_str().ok_or_else(|| Error::Yaml("object without apiVersion".into()))?;
    let kind = obj["kind"].as_str().ok_or_else(|| Error::Yaml("object without kind".into()))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .ok_or_else(|| Error::Kube(format!("the API server does not serve {api_version} {kind}")))?;
    let api = if caps.scope == Scope::Namespaced {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    Ok((api, ar))
}

async fn apply_one(client: &Client, discovery: &Discovery, obj: Value) -> Result<DynamicObject, Error> {
    let (api, _) = dynamic_api(client, discovery, &obj)?;
    let name = obj["metadata"]["name"].as_str().ok_or_else(|| Error::Yaml("object without metadata.name".into()))?;
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&obj))
        .await
        .map_err(|e| Error::Kube(format!("apply {} {name}: {e}", obj["kind"].as_str().unwrap_or(""))))
}

/// Discovery that serves every `apiVersion`/`kind` of `docs`, re-run for up to 30 s while some kind is missing
/// (then the last discovery is returned, and applying the unknown kind names it).
async fn discover_kinds(client: &Client, docs: &[Value]) -> Result<Discovery, Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let discovery = Discovery::new(client.clone()).run().await.map_err(|e| Error::Kube(e.to_string()))?;
        let all_served = docs.iter().all(|d| {
            let (Some(api_version), Some(kind)) = (d["apiVersion"].as_str(), d["kind"].as_str()) else {
                return true;
            };
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            discovery.resolve_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind)).is_some()
        });
        if all_served || Instant::now() > deadline {
            return Ok(discovery);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_established(client: &Client, name: &str) -> Result<(), Error> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crd = api.get(name).await.map_err(|e| Error::Kube(e.to_string()))?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"));
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Kube(format!("CRD {name} not established")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in [self.controller_manager.take(), self.apiserver.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}
