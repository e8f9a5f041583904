//! Crossplane core (the pinned `crossplane` binary, `core start`) running out of cluster against a
//! [`ControlPlane`], with the platform's composition functions as local processes, so XRs are composed by
//! Crossplane itself.
//!
//! How it fits together (nothing of it is a Crossplane feature made for tests; it is what the in-cluster
//! install does, with the pieces a cluster would provide put in place by hand):
//! - Crossplane's CRDs are applied from `<testbin>/crds/crossplane-<version>` (no `crossplane core init`).
//! - One CA signs a server certificate (SAN `IP:127.0.0.1`) and a client certificate, made with the `openssl`
//!   CLI. The functions serve gRPC with the server certificate and require the client certificate
//!   (`--tls-certs-dir`); Crossplane presents the client certificate (`--tls-client-certs-dir`) and serves its
//!   admission webhook with the server certificate (`--tls-server-certs-dir`).
//! - `--package-runtime=External`: Crossplane runs no function Deployments. Each `Function` names a package by
//!   digest with `packagePullPolicy: Never`; the package's metadata is put into Crossplane's package cache
//!   (`--xpkg-cache-dir`) under the file name Crossplane looks for ([`friendly_id`]), so the package manager
//!   creates an active `FunctionRevision` without a registry. Its status then gets what the Deployment runtime
//!   would have written: `endpoint: 127.0.0.1:<port>` of the local function process, `tlsServerSecretName`,
//!   and the `RuntimeHealthy` condition.
//! - Webhooks on: Crossplane's Usage controllers need the `crossplane-no-usages` admission webhook, registered
//!   here as a `ValidatingWebhookConfiguration` with a URL on loopback (rules as Crossplane's
//!   `cluster/webhookconfigurations/usage.yaml`).
//!
//! Crossplane runs with the control plane's admin kubeconfig (RBAC is not what is under test here; the
//! platform's aggregated ClusterRoles are applied all the same by [`Crossplane::install_platform`]).
//!
//! Measured on the development machine (kube-apiserver v1.35.4, Crossplane v2.4.0, function-go-templating
//! v0.12.3, function-auto-ready v0.7.0; debug test build), `crates/testenv/tests/crossplane.rs`:
//! [`Crossplane::start`] (PKI, Crossplane CRDs, processes, webhook, both Functions installed and healthy)
//! 4–5 s, most of it Crossplane's package and revision reconcilers; [`Crossplane::install_platform`] 6–8 s
//! (composed kinds' CRDs about 2 s, then Crossplane establishing the five XRDs, which retries on
//! conflicts with backoff). An App is composed about 0.5 s after it is applied and Ready about 0.4 s after its
//! resources report ready. Resident memory (VmRSS) after composing an App, a Database and a Workspace:
//! Crossplane about 110 MiB, function-go-templating and function-auto-ready about 37 MiB each. The test prints
//! the figures of each run (`crossplane started in …`, `VmRSS …`).

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::process::{free_port, rss_kib, run, spawn, tail};
use crate::tools::{crd_set, tool, version, workspace_root};
use crate::{ControlPlane, Error};

/// Namespace Crossplane runs in (its default, `--namespace`).
pub const NAMESPACE: &str = "crossplane-system";
/// Secret holding the functions' server certificate (`FunctionRevision.status.tlsServerSecretName`).
const TLS_SERVER_SECRET: &str = "function-tls-server";

/// The composition functions the platform's compositions run: (Function name, version key).
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("function-go-templating", "FUNCTION_GO_TEMPLATING_VERSION"),
    ("function-auto-ready", "FUNCTION_AUTO_READY_VERSION"),
];

/// The registry path the Function packages would be pulled from in a cluster (`compositions/functions.yaml`).
const PACKAGE_REPOSITORY: &str = "xpkg.crossplane.io/crossplane-contrib";

struct Process {
    name: String,
    child: Child,
}

/// Crossplane core and the composition functions, running against a control plane. Killed on drop.
pub struct Crossplane {
    dir: PathBuf,
    processes: Vec<Process>,
    /// Port of Crossplane's admission webhook server.
    pub webhook_port: u16,
    /// How long [`Crossplane::start`] took.
    pub startup: Duration,
}

/// `xpkg.FriendlyID`: the DNS-label name Crossplane gives a package revision and its cache entry, from the
/// package source (the reference without tag or digest) and the digest (`sha256:<hex>`).
///
/// Ported from crossplane-runtime v2.4.0, `pkg/xpkg/name.go` (`FriendlyID`, `ToDNSLabel`, `truncate`): the
/// name truncated to 50 bytes and the hash to 12, joined by `-`; then only `[a-z0-9]` kept, `.`, `/`, `:`,
/// `-` turned into `-` except at byte 0, byte 62 and the last byte, stopping after byte 62; `-` trimmed.
pub fn friendly_id(name: &str, hash: &str) -> String {
    fn truncate(s: &str, n: usize) -> &[u8] {
        let b = s.as_bytes();
        &b[..b.len().min(n)]
    }
    let mut joined = truncate(name, 50).to_vec();
    joined.push(b'-');
    joined.extend_from_slice(truncate(hash, 12));
    to_dns_label(&joined)
}

/// `xpkg.ToDNSLabel` (crossplane-runtime v2.4.0, `pkg/xpkg/name.go`), over bytes as Go indexes strings.
fn to_dns_label(s: &[u8]) -> String {
    let mut cut = String::new();
    for (i, &b) in s.iter().enumerate() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            cut.push(b as char);
        }
        if matches!(b, b'.' | b'/' | b':' | b'-') && i != 0 && i != 62 && i != s.len() - 1 {
            cut.push('-');
        }
        if i == 62 {
            break;
        }
    }
    cut.trim_matches('-').to_string()
}

/// A condition of an object's `status.conditions` with `status: "True"`.
pub fn condition_true(obj: &Value, kind: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// A kube `Api` for a group/version/kind, namespaced or cluster-wide.
pub fn api(
    client: &Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// Writes one CA, a server certificate for 127.0.0.1 and a client certificate, as `srv/` and `cli/` each
/// holding `tls.crt`, `tls.key` and `ca.crt` (the layout Crossplane and the function SDK read).
fn make_pki(dir: &Path) -> Result<(), Error> {
    let p = |s: &str| dir.join(s).display().to_string();
    for d in ["ca", "srv", "cli"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=maxcloud-testenv-ca"];
    args.extend(ec);
    let (ca_key, ca_crt) = (p("ca/ca.key"), p("ca/ca.crt"));
    args.extend(["-keyout", &ca_key, "-out", &ca_crt]);
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run("openssl", &args)?;
    for (leaf, cn, ext) in [
        ("srv", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("cli", "crossplane", "extendedKeyUsage=clientAuth\n"),
    ] {
        let (key, csr, crt, extfile) = (
            p(&format!("{leaf}/tls.key")),
            p(&format!("{leaf}/tls.csr")),
            p(&format!("{leaf}/tls.crt")),
            p(&format!("{leaf}/ext.cnf")),
        );
        std::fs::write(&extfile, format!("keyUsage=critical,digitalSignature,keyEncipherment\n{ext}"))?;
        let subj = format!("/CN={cn}");
        let mut args = vec!["req", "-new", "-subj", &subj];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr]);
        run("openssl", &args)?;
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        )?;
        std::fs::copy(&ca_crt, dir.join(leaf).join("ca.crt"))?;
    }
    Ok(())
}

/// Puts a Function package's metadata into Crossplane's package cache, as `FsPackageCache.Store` does
/// (gzip of the package stream) under `<FriendlyID>.gz`; returns the package reference to install.
fn seed_package(cache: &Path, name: &str, version: &str) -> Result<String, Error> {
    // The digest only has to be well formed and stable per version (hashing the binary itself took seconds in
    // unoptimised test builds).
    let digest = hex::encode(Sha256::digest(format!("{name}@{version}")));
    let source = format!("{PACKAGE_REPOSITORY}/{name}");
    let id = friendly_id(&source, &format!("sha256:{digest}"));
    let meta = format!(
        "apiVersion: meta.pkg.crossplane.io/v1beta1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  \
         capabilities:\n  - composition\n"
    );
    let mut gz =
        flate2::write::GzEncoder::new(File::create(cache.join(format!("{id}.gz")))?, flate2::Compression::fast());
    gz.write_all(meta.as_bytes())?;
    gz.finish()?.sync_all()?;
    Ok(format!("{source}@sha256:{digest}"))
}

async fn wait_port(port: u16, what: &str, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(Error::Start(format!("{what} does not listen on 127.0.0.1:{port} after {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

impl Crossplane {
    /// Applies Crossplane's CRDs, starts the composition functions and Crossplane core, registers the usage
    /// webhook and installs the functions (see the module documentation). Returns once both Functions are
    /// `Healthy` with their revisions pointing at the local processes.
    pub async fn start(cp: &ControlPlane) -> Result<Crossplane, Error> {
        let started = Instant::now();
        let dir = cp.dir().join("crossplane");
        let pki = dir.join("pki");
        let cache = dir.join("xpkg");
        std::fs::create_dir_all(&cache)?;
        make_pki(&pki)?;
        let crossplane_bin = tool("crossplane", "CROSSPLANE_VERSION", "crossplane")?;

        cp.apply_yaml(&crd_set("crossplane", "CROSSPLANE_VERSION")?).await?;
        let srv_crt = std::fs::read(pki.join("srv/tls.crt"))?;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let client = cp.client().await?;
        // Kinds known beforehand are applied directly: `ControlPlane::apply` runs a discovery each time.
        ssa(
            &api(&client, "v1", "Namespace", "namespaces", None),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        )
        .await?;
        ssa(
            &api(&client, "v1", "Secret", "secrets", Some(NAMESPACE)),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": TLS_SERVER_SECRET, "namespace": NAMESPACE},
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": b64(&srv_crt),
                    "tls.key": b64(&std::fs::read(pki.join("srv/tls.key"))?),
                    "ca.crt": b64(&std::fs::read(pki.join("ca/ca.crt"))?),
                },
            }),
        )
        .await?;

        let mut xp =
            Crossplane { dir: dir.clone(), processes: Vec::new(), webhook_port: free_port()?, startup: Duration::ZERO };

        // The functions, as local gRPC servers with mTLS.
        let mut functions = Vec::new();
        for (name, key) in FUNCTIONS {
            let bin = tool(name, key, "function")?;
            let package = seed_package(&cache, name, version(key)?)?;
            let port = free_port()?;
            let args =
                vec![format!("--address=127.0.0.1:{port}"), format!("--tls-certs-dir={}", pki.join("srv").display())];
            xp.processes.push(Process {
                name: name.to_string(),
                child: spawn(&dir, name, &bin, &args, &[] as &[(&str, &str)])?,
            });
            functions.push((*name, package, port));
        }

        // Crossplane core.
        let (metrics, health) = (free_port()?, free_port()?);
        let args: Vec<String> = vec![
            "core".into(),
            "start".into(),
            "--package-runtime=External".into(),
            format!("--xpkg-cache-dir={}", cache.display()),
            format!("--tls-client-certs-dir={}", pki.join("cli").display()),
            "--enable-webhooks".into(),
            format!("--webhook-port={}", xp.webhook_port),
            format!("--tls-server-certs-dir={}", pki.join("srv").display()),
            format!("--metrics-port={metrics}"),
            format!("--health-probe-port={health}"),
            // Composed resources are watched (realtime compositions), so polling only backs that up.
            "--poll-interval=15s".into(),
            "--debug".into(),
        ];
        let child = spawn(&dir, "crossplane", &crossplane_bin, &args, &[("KUBECONFIG", &cp.kubeconfig)])?;
        xp.processes.push(Process { name: "crossplane".into(), child });

        for (name, _, port) in &functions {
            wait_port(*port, name, Duration::from_secs(30)).await.map_err(|e| xp.failed(e, name))?;
        }
        xp.wait_ready(health, Duration::from_secs(60)).await?;

        // The admission webhook the Usage controllers rely on (Crossplane's usage.yaml, served on loopback).
        let webhooks = api(
            &client,
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            None,
        );
        ssa(
            &webhooks,
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "crossplane-no-usages"},
                "webhooks": [{
                    "name": "nousages.protection.crossplane.io",
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {
                        "url": format!("https://127.0.0.1:{}/validate-no-usages", xp.webhook_port),
                        "caBundle": b64(&std::fs::read(pki.join("ca/ca.crt"))?),
                    },
                    "failurePolicy": "Fail",
                    "objectSelector": {"matchLabels": {"crossplane.io/in-use": "true"}},
                    "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["DELETE"], "resources": ["*"]}],
                    "sideEffects": "None",
                }],
            }),
        )
        .await?;

        // The Functions, by digest from the cache; their revisions pointed at the local processes.
        let function_api = api(&client, "pkg.crossplane.io/v1", "Function", "functions", None);
        for (name, package, _) in &functions {
            let function = json!({
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "Function",
                "metadata": {"name": name},
                "spec": {"package": package, "packagePullPolicy": "Never", "skipDependencyResolution": true},
            });
            ssa(&function_api, function).await?;
        }
        for (name, _, port) in &functions {
            xp.connect_function(&client, name, *port).await?;
        }
        xp.startup = started.elapsed();
        Ok(xp)
    }

    /// Waits for `/readyz` of Crossplane's health probe server (answers once its manager and webhook server
    /// started).
    async fn wait_ready(&mut self, health: u16, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{health}/readyz");
        loop {
            if let Some(p) = self.processes.iter_mut().find(|p| p.name == "crossplane") {
                if let Ok(Some(status)) = p.child.try_wait() {
                    return Err(Error::Start(format!(
                        "crossplane exited ({status}):\n{}",
                        tail(&self.log("crossplane"), 40)
                    )));
                }
            }
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!(
                    "crossplane not ready after {timeout:?}:\n{}",
                    tail(&self.log("crossplane"), 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the Function's revision, gives it the local endpoint (what the Deployment runtime would do),
    /// and waits until the Function is `Healthy`. Repeats the status patch if a reconcile wrote over it.
    async fn connect_function(&self, client: &Client, name: &str, port: u16) -> Result<(), Error> {
        let revisions = api(client, "pkg.crossplane.io/v1", "FunctionRevision", "functionrevisions", None);
        let functions = api(client, "pkg.crossplane.io/v1", "Function", "functions", None);
        let endpoint = format!("127.0.0.1:{port}");
        let lp = ListParams::default().labels(&format!("pkg.crossplane.io/package={name}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = revisions.list(&lp).await.map_err(|e| Error::Kube(format!("list FunctionRevisions: {e}")))?;
            for rev in &list.items {
                let v = to_value(rev);
                if v["spec"]["desiredState"] != "Active" {
                    continue;
                }
                let has_runtime = v["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "RuntimeHealthy" && c["status"] == "True"));
                if v["status"]["endpoint"] != endpoint.as_str() || !has_runtime {
                    let mut conditions: Vec<Value> = v["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|c| c["type"] != "RuntimeHealthy")
                        .collect();
                    conditions.push(json!({
                        "type": "RuntimeHealthy", "status": "True", "reason": "HealthyPackageRuntime",
                        "lastTransitionTime": now_rfc3339(),
                    }));
                    let patch = json!({
                        "metadata": {"resourceVersion": rev.metadata.resource_version},
                        "status": {"endpoint": endpoint, "tlsServerSecretName": TLS_SERVER_SECRET, "conditions": conditions},
                    });
                    let rev_name = rev.metadata.name.clone().unwrap_or_default();
                    // A conflict means a reconcile wrote meanwhile: look again.
                    let _ = revisions.patch_status(&rev_name, &PatchParams::default(), &Patch::Merge(&patch)).await;
                }
            }
            let healthy = match functions.get_opt(name).await.map_err(|e| Error::Kube(e.to_string()))? {
                Some(f) => condition_true(&to_value(&f), "Healthy"),
                None => false,
            };
            let connected = list.items.iter().any(|r| {
                let v = to_value(r);
                v["spec"]["desiredState"] == "Active" && v["status"]["endpoint"] == endpoint.as_str()
            });
            if healthy && connected {
                return Ok(());
            }
            if Instant::now() > deadline {
                let f = functions.get_opt(name).await.ok().flatten().map(|f| to_value(&f));
                return Err(Error::Start(format!(
                    "Function {name} not healthy with endpoint {endpoint} after 60s\nFunction: {}\nrevisions: {}\n\
                     crossplane.log:\n{}",
                    serde_json::to_string_pretty(&f).unwrap_or_default(),
                    serde_json::to_string_pretty(&list.items).unwrap_or_default(),
                    tail(&self.log("crossplane"), 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn failed(&self, e: Error, name: &str) -> Error {
        Error::Start(format!("{e}\n{name}.log:\n{}", tail(&self.log(name), 30)))
    }

    /// Installs the platform as `flux/platform` does, minus what needs a provider not running here: the
    /// ClusterRoles aggregated to Crossplane (`compositions/rbac.yaml`), the CRDs of the composed kinds
    /// (Knative Serving, CloudNativePG, external-dns; the Harbor provider's are not available, so `Registry`
    /// XRs are not composable here), the test EnvironmentConfig (`tests/fixtures/platform/environment.yaml`),
    /// all XRDs (waiting until each is `Established`, and `Offered` where it offers a claim) and the
    /// compositions (`compositions/*.yaml` but `functions.yaml` and `rbac.yaml`).
    pub async fn install_platform(&self, cp: &ControlPlane) -> Result<(), Error> {
        let root = workspace_root();
        let read_all = |files: Vec<PathBuf>| -> Result<String, Error> {
            let mut text = String::new();
            for f in files {
                text.push_str("\n---\n");
                text.push_str(&std::fs::read_to_string(f)?);
            }
            Ok(text)
        };
        // One apply per stage: each `ControlPlane::apply` runs a discovery.
        let mut text =
            read_all(vec![root.join("compositions/rbac.yaml"), root.join("tests/fixtures/platform/environment.yaml")])?;
        for (project, key) in [
            ("knative-serving", "KNATIVE_SERVING_VERSION"),
            ("cloudnative-pg", "CNPG_VERSION"),
            ("external-dns", "EXTERNAL_DNS_VERSION"),
        ] {
            text.push_str(&crd_set(project, key)?);
        }
        cp.apply_yaml(&text).await?;

        let names: Vec<(String, bool)> = cp
            .apply_yaml(&read_all(yaml_files(&root.join("xrds"), &[])?)?)
            .await?
            .iter()
            .map(|o| (o.metadata.name.clone().unwrap_or_default(), to_value(o)["spec"].get("claimNames").is_some()))
            .collect();
        let client = cp.client().await?;
        let api = api(
            &client,
            "apiextensions.crossplane.io/v2",
            "CompositeResourceDefinition",
            "compositeresourcedefinitions",
            None,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        for (name, offers_claim) in names {
            loop {
                let v = to_value(&api.get(&name).await.map_err(|e| Error::Kube(format!("XRD {name}: {e}")))?);
                if condition_true(&v, "Established") && (!offers_claim || condition_true(&v, "Offered")) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Start(format!(
                        "XRD {name} not established after 60s: {}\ncrossplane.log:\n{}",
                        v["status"],
                        tail(&self.log("crossplane"), 40)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        cp.apply_yaml(&read_all(yaml_files(&root.join("compositions"), &["functions.yaml", "rbac.yaml"])?)?).await?;
        Ok(())
    }

    /// The log of one process: `crossplane`, `function-go-templating`, `function-auto-ready`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Resident memory (VmRSS, KiB) of each running process, by name.
    pub fn rss_kib(&self) -> Vec<(String, u64)> {
        self.processes.iter().map(|p| (p.name.clone(), rss_kib(p.child.id()).unwrap_or(0))).collect()
    }

    /// Whether every process is still running; the first one that exited, with its status, otherwise.
    pub fn check_running(&mut self) -> Result<(), String> {
        for p in &mut self.processes {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(format!("{} exited ({status})", p.name));
            }
        }
        Ok(())
    }
}

/// Server-side apply of one object whose API is known.
async fn ssa(api: &Api<DynamicObject>, obj: Value) -> Result<DynamicObject, Error> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    api.patch(&name, &PatchParams::apply(crate::controlplane::FIELD_MANAGER).force(), &Patch::Apply(&obj))
        .await
        .map_err(|e| Error::Kube(format!("apply {} {name}: {e}", obj["kind"].as_str().unwrap_or_default())))
}

fn yaml_files(dir: &Path, except: &[&str]) -> Result<Vec<PathBuf>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !except.iter().any(|x| p.file_name().is_some_and(|n| n == *x)))
        .collect();
    files.sort();
    Ok(files)
}

/// The current time as RFC 3339 (seconds, UTC), for condition timestamps.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl Drop for Crossplane {
    fn drop(&mut self) {
        // Crossplane first (it talks to the functions), then the functions.
        for p in self.processes.iter_mut().rev() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_id_matches_crossplane() {
        // The names Crossplane's own xpkg.FriendlyID gave these packages (seen as cache files of a real run).
        let hex_gt = "4e097caacdb0fff5d58ca65baf089b36d173ea8434d5e1710d87f1e2e84ae48a";
        let hex_ar = "01f6f8b41156bcda0b2add9ff1329eca31367b3ee6faae0f9482e238a24060d2";
        assert_eq!(
            friendly_id("xpkg.crossplane.io/crossplane-contrib/function-go-templating", &format!("sha256:{hex_gt}")),
            "xpkg-crossplane-io-crossplane-contrib-function-go--sha256-4e097"
        );
        assert_eq!(
            friendly_id("xpkg.crossplane.io/crossplane-contrib/function-auto-ready", &format!("sha256:{hex_ar}")),
            "xpkg-crossplane-io-crossplane-contrib-function-aut-sha256-01f6f"
        );
        assert_eq!(to_dns_label(b"-a.b-"), "a-b");
    }

    #[test]
    fn rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
