//! The loop in a real cluster: a control plane with Flux, the order service, and tenants onboarded exactly as the
//! platform does it — the files the server committed to its platform repository (`flux/tenants/<slug>/`:
//! namespace, quota, RBAC, GitRepository + Kustomization, Receiver) plus the two Secrets the platform creates in
//! the cluster (Git read token, Receiver HMAC token).

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api as KubeApi, Client};
use maxcloud_testenv::{ControlPlane, Flux};
use serde_json::{json, Value};

use crate::platform::parse_yaml_docs;
use crate::{git, Api, Server};

/// Everything a failure message needs: the controllers' and the order service's logs.
pub struct Env {
    pub cp: ControlPlane,
    pub flux: Flux,
    pub server: Server,
    /// The server creates the tenants' Flux Secrets itself (it knows its ServiceAccount).
    pub server_creates_secrets: bool,
}

impl Env {
    /// The order service on a fresh data dir in `tmp`, connected to the cluster: it calls the tenants' Flux
    /// Receivers after merges (one webhook token for the platform) and runs the status aggregator.
    /// `identity`: the admin's kubeconfig, or the one of [`install_server_identity`] with the ServiceAccount
    /// (`namespace/name`) it acts as — the server then also creates the tenants' Flux Secrets.
    pub fn start(cp: ControlPlane, flux: Flux, tmp: &Path, identity: (&Path, Option<&str>)) -> Env {
        let (kubeconfig, service_account) = identity;
        let mut env: Vec<(String, String)> = vec![
            ("MAXCLOUD_FLUX_RECEIVER_URL".into(), flux.receiver_url()),
            ("MAXCLOUD_FLUX_WEBHOOK_TOKEN".into(), WEBHOOK_TOKEN.into()),
            ("MAXCLOUD_KUBECONFIG".into(), kubeconfig.display().to_string()),
        ];
        if let Some(account) = service_account {
            env.push(("MAXCLOUD_SERVICE_ACCOUNT".into(), account.to_string()));
        }
        let server = Server::start(&tmp.join("data"), crate::Options { env, ..Default::default() });
        Env { cp, flux, server, server_creates_secrets: service_account.is_some() }
    }

    pub fn logs(&self) -> String {
        let server = self.server.log();
        let server_tail: Vec<&str> = server.lines().rev().take(30).collect();
        format!(
            "{}----- maxcloud-server (last 30 lines)\n{}\n----- logs in {}",
            self.flux.logs_tail(25),
            server_tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            self.flux.dir().display()
        )
    }

    pub async fn client(&self) -> Client {
        self.cp.client().await.expect("kube client")
    }

    /// A namespaced object as JSON, or None.
    pub async fn get(&self, gvk: (&str, &str, &str), namespace: &str, name: &str) -> Option<Value> {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(gvk.0, gvk.1, gvk.2));
        let api: KubeApi<DynamicObject> = KubeApi::namespaced_with(self.client().await, namespace, &ar);
        let obj = api.get_opt(name).await.unwrap_or_else(|e| panic!("get {} {namespace}/{name}: {e}", gvk.2))?;
        Some(serde_json::to_value(obj).expect("JSON"))
    }

    /// Names of the objects of a kind in a namespace (all namespaces with `None`).
    pub async fn names(&self, gvk: (&str, &str, &str), namespace: Option<&str>) -> Vec<String> {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(gvk.0, gvk.1, gvk.2));
        let client = self.client().await;
        let api: KubeApi<DynamicObject> = match namespace {
            Some(ns) => KubeApi::namespaced_with(client, ns, &ar),
            None => KubeApi::all_with(client, &ar),
        };
        let list = api.list(&Default::default()).await.unwrap_or_else(|e| panic!("list {}: {e}", gvk.2));
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .map(|o| format!("{}/{}", o.metadata.namespace.unwrap_or_default(), o.metadata.name.unwrap_or_default()))
            .collect();
        names.sort();
        names
    }

    /// Polls `check` every 100 ms until it returns Some; panics with the logs after `timeout`.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> (T, Duration)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(v) = check().await {
                return (v, started.elapsed());
            }
            if started.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn kustomization(&self, ns: &str) -> Value {
        self.get(KUSTOMIZATION, ns, "maxcloud-tenant").await.expect("tenant Kustomization")
    }

    pub async fn poke(&self, ns: &str, why: &str) {
        let body = serde_json::to_vec(&json!({"reason": why})).expect("body");
        let status = self.flux.poke_receiver(&self.cp, ns, "maxcloud-tenant", &body).await.expect("poke Receiver");
        assert_eq!(status, 200, "Receiver of {ns} answered {status}\n{}", self.logs());
    }
}

pub const APP: (&str, &str, &str) = ("maxcloud.dev", "v1alpha1", "App");
pub const KUSTOMIZATION: (&str, &str, &str) = ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
pub const GIT_REPOSITORY: (&str, &str, &str) = ("source.toolkit.fluxcd.io", "v1", "GitRepository");
pub const CONFIG_MAP: (&str, &str, &str) = ("", "v1", "ConfigMap");
pub const CLUSTER_ROLE_BINDING: (&str, &str, &str) = ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding");

/// How often the tenant's GitRepository polls in this test. Production renders `10m` (gitops/tenant/sync.yaml.j2)
/// and relies on the Receiver; the test shortens the interval only so that "merge → applied without a Receiver
/// call" can be measured in bounded time.
pub const TEST_INTERVAL: &str = "15s";

/// The App CRD exactly as Crossplane derives it from the XRD (minus the owner reference to the XRD object, which
/// does not exist here: the garbage collector would delete the CRD).
pub fn app_crd() -> Value {
    maxcloud_testenv::tools::catalog_crd("app.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The order service's identity as the Helm chart installs it (`helm template` of `deploy/chart/maxcloud-server`
/// into `maxcloud-system`: its ServiceAccount, the aggregator's read-only ClusterRole and the binding), applied
/// to the cluster; returns a kubeconfig acting as that ServiceAccount, so the server has exactly the chart's
/// rights, and its `namespace/name`.
pub async fn install_server_identity(cp: &ControlPlane) -> (std::path::PathBuf, String) {
    const NAMESPACE: &str = "maxcloud-system";
    let out = std::process::Command::new(crate::platform::helm())
        .args(["template", "mc"])
        .arg(crate::workspace_root().join("deploy/chart/maxcloud-server"))
        .args(["--namespace", NAMESPACE])
        .output()
        .expect("helm template");
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Value> = parse_yaml_docs(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|d| ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"].contains(&d["kind"].as_str().unwrap_or("")))
        .collect();
    let account = docs.iter().find(|d| d["kind"] == "ServiceAccount").expect("the chart has a ServiceAccount");
    let name = account["metadata"]["name"].as_str().expect("name").to_string();
    let mut objects = vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})];
    objects.extend(docs);
    cp.apply(objects).await.expect("apply the chart's RBAC");
    (cp.kubeconfig_for_service_account(NAMESPACE, &name).expect("kubeconfig"), format!("{NAMESPACE}/{name}"))
}

/// The tenant's onboarding as the server committed it to the platform repository, with the test interval.
pub fn onboarding(platform_repo: &Path, slug: &str) -> Vec<Value> {
    let production = maxcloud_testenv::flux::tenant_onboarding(platform_repo, slug, None)
        .unwrap_or_else(|e| panic!("onboarding of {slug}: {e}"));
    let repo = production.iter().find(|d| d["kind"] == "GitRepository").expect("GitRepository");
    assert_eq!(repo["spec"]["interval"], "10m", "production interval");
    let docs = maxcloud_testenv::flux::tenant_onboarding(platform_repo, slug, Some(TEST_INTERVAL))
        .unwrap_or_else(|e| panic!("onboarding of {slug}: {e}"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap_or_default()).collect();
    for kind in ["Namespace", "ServiceAccount", "Role", "RoleBinding", "GitRepository", "Kustomization", "Receiver"] {
        assert!(kinds.contains(&kind), "{kind} missing from the onboarding of {slug}: {kinds:?}");
    }
    docs
}

/// A tenant registered with the order service and onboarded into the cluster.
pub struct Tenant {
    pub api: Api,
    pub slug: String,
    pub ns: String,
}

/// The webhook token of every tenant's Receiver (the platform's `MAXCLOUD_FLUX_WEBHOOK_TOKEN`).
pub const WEBHOOK_TOKEN: &str = "platform-webhook-token-0123456789abcdef";

pub async fn onboard(env: &Env, anon: &Api, email: &str, org: &str) -> Tenant {
    let (key, slug) = anon.register(email, org).await;
    let api = anon.with_key(&key);
    let (status, token) = api.post("/auth/git-tokens", &json!({})).await;
    assert_eq!(status, 201, "git token: {token}");
    let token = token["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("mcg_"), "{token}");
    let ns = format!("mc-{slug}");

    let docs = onboarding(&env.server.data_dir.join("repos/platform.git"), &slug);
    // Flux pulls the (still empty) tenant repo over HTTP from the order service and applies it.
    let identity = if env.server_creates_secrets { String::new() } else { env.server.tenant_key(&slug) };
    let secrets = (!env.server_creates_secrets).then_some(maxcloud_testenv::flux::TenantSecrets {
        git_token: &token,
        webhook_token: WEBHOOK_TOKEN,
        sops_identity: &identity,
    });
    maxcloud_testenv::flux::onboard_tenant(&env.cp, docs, secrets, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("onboarding of {slug}: {e}\n{}", env.logs()));
    Tenant { api, slug, ns }
}

/// Places an order and waits until it is merged; returns the order id and the merge commit.
pub async fn order_merged(t: &Tenant, body: Value) -> String {
    let (status, order) = t.api.post("/orders", &body).await;
    assert_eq!(status, 201, "{body}: {order}");
    let id = order["id"].as_str().expect("id").to_string();
    let order = t.api.wait_order(&id, "merged", Duration::from_secs(30)).await;
    assert_eq!(order["state"], "merged", "{order}");
    id
}

/// Applies the file `path` of main of the tenant repo `repo`, as Flux would.
pub async fn apply_committed(cp: &ControlPlane, repo: &std::path::Path, path: &str) -> Value {
    let committed = git(repo, &["show", &format!("main:{path}")]);
    let object = parse_yaml_docs(&committed).remove(0);
    cp.apply(vec![object.clone()]).await.expect("apply as Flux would");
    object
}

/// Sets an object's status as its controller would (server-side apply as `crossplane`).
pub async fn set_status(cp: &ControlPlane, object: &Value, status: Value) {
    use kube::api::{Api as KubeApi, DynamicObject, Patch, PatchParams};
    let client = cp.client().await.expect("client");
    let discovery = kube::discovery::Discovery::new(client.clone()).run().await.expect("discovery");
    let (api, _): (KubeApi<DynamicObject>, _) =
        maxcloud_testenv::controlplane::dynamic_api(&client, &discovery, object).expect("served");
    let patch = json!({"apiVersion": object["apiVersion"], "kind": object["kind"], "status": status});
    api.patch_status(
        object["metadata"]["name"].as_str().expect("name"),
        &PatchParams::apply("crossplane").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("status patch");
}
