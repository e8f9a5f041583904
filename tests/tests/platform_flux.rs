//! `flux/`: what a platform team commits to its fleet repository, built with the pinned `kustomize` the way
//! Flux builds it, and checked for what the platform relies on: the multi-tenancy lockdown of the controllers,
//! the order infrastructure -> platform -> tenants, chart versions equal to `scripts/versions.env`, per-env
//! overlays, and valid manifests (kubeconform against the Kubernetes and CRD schemas, offline). The tenant
//! template (`gitops/tenant/`) is rendered for a sample tenant and validated the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use maxcloud_tests::platform::{self, parse_yaml_docs, version};
use maxcloud_tests::workspace_root;
use serde_json::Value;

const ENVS: [&str; 2] = ["production", "staging"];

fn kustomize_build(dir: &Path) -> String {
    let out = Command::new(platform::kustomize()).arg("build").arg(dir).output().expect("run kustomize");
    assert!(out.status.success(), "kustomize build {} failed: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The four controllers as `flux bootstrap` writes them into gotk-components.yaml (names, namespace, the
/// `manager` container and its default args), and gotk-sync.yaml for `flux/clusters/<env>`. Bootstrap generates
/// these files in the fleet repository; they are not part of the template, so the test supplies them.
fn bootstrap_files(env: &str) -> (String, String) {
    let deployment = |name: &str| {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: flux-system\n  labels:\n    app.kubernetes.io/component: {name}\n    app.kubernetes.io/part-of: flux\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n        - name: manager\n          image: ghcr.io/fluxcd/{name}\n          args:\n            - --events-addr=http://notification-controller.flux-system.svc.cluster.local./\n            - --watch-all-namespaces=true\n            - --log-level=info\n            - --log-encoding=json\n            - --enable-leader-election\n"
        )
    };
    let components: String =
        ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
            .iter()
            .map(|n| deployment(n))
            .collect();
    let sync = format!(
        "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n  url: ssh://git@example.com/platform/fleet\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m0s\n  path: ./flux/clusters/{env}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    );
    (components, sync)
}

/// `kustomize build flux/clusters/<env>` in a copy of `flux/` completed with the bootstrap files.
fn build_cluster(env: &str) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let flux = tmp.path().join("flux");
    copy_dir(&workspace_root().join("flux"), &flux);
    let (components, sync) = bootstrap_files(env);
    let dir = flux.join("clusters").join(env).join("flux-system");
    assert!(!dir.join("gotk-components.yaml").exists(), "bootstrap output must not be committed to flux/");
    std::fs::write(dir.join("gotk-components.yaml"), components).unwrap();
    std::fs::write(dir.join("gotk-sync.yaml"), sync).unwrap();
    let text = kustomize_build(&flux.join("clusters").join(env));
    (tmp, text)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn args(docs: &[Value], deployment: &str) -> Vec<String> {
    find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn depends_on(k: &Value) -> Vec<String> {
    k["spec"]["dependsOn"]
        .as_array()
        .map(|a| a.iter().map(|d| d["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// kubeconform over manifests; panics with its report on failure.
fn assert_valid(what: &str, manifests: &str) {
    let (ok, report) = platform::kubeconform_text(manifests);
    assert!(ok, "{what} does not validate:\n{report}");
}

/// Kinds whose CRDs `scripts/testbin.sh` does not fetch (cert-manager, the Knative Operator, the Harbor
/// provider): kubeconform has no schema for them, so they are checked field by field in the tests below and
/// left out of the schema run. Everything else must validate.
const NO_SCHEMA: [&str; 3] = ["ClusterIssuer", "KnativeServing", "ClusterProviderConfig"];

fn schema_checked(docs: &[Value]) -> String {
    docs.iter()
        .filter(|d| !NO_SCHEMA.contains(&d["kind"].as_str().unwrap_or_default()))
        .map(|d| format!("---\n{}", platform::to_yaml(d)))
        .collect()
}

#[test]
fn clusters_lock_down_the_controllers_and_chain_infrastructure_platform_tenants() {
    for env in ENVS {
        let (_tmp, text) = build_cluster(env);
        let docs = parse_yaml_docs(&text);

        let kustomize = args(&docs, "kustomize-controller");
        for flag in ["--no-cross-namespace-refs=true", "--no-remote-bases=true", "--default-service-account=default"] {
            assert!(kustomize.contains(&flag.to_string()), "{env}: kustomize-controller lacks {flag}: {kustomize:?}");
        }
        let helm = args(&docs, "helm-controller");
        for flag in ["--no-cross-namespace-refs=true", "--default-service-account=default"] {
            assert!(helm.contains(&flag.to_string()), "{env}: helm-controller lacks {flag}: {helm:?}");
        }
        assert!(
            !helm.iter().any(|a| a.starts_with("--no-remote-bases")),
            "helm-controller has no --no-remote-bases flag (it would not start)"
        );
        let notification = args(&docs, "notification-controller");
        assert!(notification.contains(&"--no-cross-namespace-refs=true".to_string()), "{env}: {notification:?}");
        assert!(
            args(&docs, "source-controller").iter().all(|a| !a.starts_with("--no-cross-namespace-refs")),
            "source-controller does not take the lockdown flags"
        );

        // The chain, and every Kustomization of the platform keeps an identity with permissions.
        let ks: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "Kustomization" && d["apiVersion"] != "kustomize.config.k8s.io/v1beta1")
            .collect();
        let names: Vec<&str> = ks.iter().map(|k| k["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 5, "{env}: {names:?}");
        assert!(depends_on(find(&docs, "Kustomization", "infra-controllers")).is_empty());
        assert_eq!(depends_on(find(&docs, "Kustomization", "infrastructure")), ["infra-controllers"]);
        assert_eq!(depends_on(find(&docs, "Kustomization", "platform")), ["infrastructure"]);
        assert_eq!(depends_on(find(&docs, "Kustomization", "tenants")), ["platform"]);
        for k in &ks {
            assert_eq!(k["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
            assert_eq!(k["metadata"]["namespace"], "flux-system");
            assert_eq!(k["spec"]["serviceAccountName"], "kustomize-controller", "{env}: {}", k["metadata"]["name"]);
            assert!(k["spec"]["sourceRef"].get("namespace").is_none(), "no cross-namespace source refs");
            assert_eq!(k["spec"]["prune"], true);
        }
        let path = |name: &str| find(&docs, "Kustomization", name)["spec"]["path"].as_str().unwrap().to_string();
        assert_eq!(path("flux-system"), format!("./flux/clusters/{env}"));
        assert_eq!(path("infra-controllers"), format!("./flux/infrastructure/controllers/{env}"));
        assert_eq!(path("infrastructure"), format!("./flux/infrastructure/configs/{env}"));
        assert_eq!(path("platform"), "./flux/platform");
        assert_eq!(path("tenants"), "./flux/tenants");
        let tenants = find(&docs, "Kustomization", "tenants");
        assert_eq!(tenants["spec"]["sourceRef"]["name"], "maxcloud-platform");
        let source = find(&docs, "GitRepository", "maxcloud-platform");
        assert!(source["spec"]["url"].as_str().unwrap().ends_with("/git/platform.git"));
        assert_eq!(source["spec"]["secretRef"]["name"], "maxcloud-platform-git");
        // Every referenced path exists in the repository.
        for k in &ks {
            let p = k["spec"]["path"].as_str().unwrap().trim_start_matches("./");
            if k["spec"]["sourceRef"]["name"] == "flux-system" {
                assert!(workspace_root().join(p).is_dir(), "{env}: {p} does not exist");
            }
        }
        assert_valid(&format!("flux/clusters/{env}"), &schema_checked(&docs));
    }
}

/// versions.env key of each chart's pinned version.
fn chart_key(chart: &str) -> &'static str {
    match chart {
        "crossplane" => "CROSSPLANE_CHART_VERSION",
        "knative-operator" => "KNATIVE_OPERATOR_CHART_VERSION",
        "cert-manager" => "CERT_MANAGER_CHART_VERSION",
        "external-dns" => "EXTERNAL_DNS_CHART_VERSION",
        "cloudnative-pg" => "CLOUDNATIVE_PG_CHART_VERSION",
        "harbor" => "HARBOR_CHART_VERSION",
        "plugin-barman-cloud" => "PLUGIN_BARMAN_CLOUD_CHART_VERSION",
        other => panic!("HelmRelease of chart {other} has no version key in scripts/versions.env"),
    }
}

#[test]
fn infrastructure_pins_chart_versions_and_differs_per_env_by_overlay() {
    let root = workspace_root().join("flux/infrastructure");
    let mut per_env = Vec::new();
    for env in ENVS {
        let controllers = parse_yaml_docs(&kustomize_build(&root.join("controllers").join(env)));
        let configs = parse_yaml_docs(&kustomize_build(&root.join("configs").join(env)));

        let releases: Vec<&Value> = controllers.iter().filter(|d| d["kind"] == "HelmRelease").collect();
        let mut charts: Vec<&str> =
            releases.iter().map(|r| r["spec"]["chart"]["spec"]["chart"].as_str().unwrap()).collect();
        charts.sort();
        assert_eq!(
            charts,
            [
                "cert-manager",
                "cloudnative-pg",
                "crossplane",
                "external-dns",
                "harbor",
                "knative-operator",
                "plugin-barman-cloud"
            ]
        );
        for r in &releases {
            let spec = &r["spec"];
            let chart = spec["chart"]["spec"]["chart"].as_str().unwrap();
            assert_eq!(spec["chart"]["spec"]["version"], version(chart_key(chart)), "{env}: chart {chart}");
            assert_eq!(r["apiVersion"], "helm.toolkit.fluxcd.io/v2");
            assert_eq!(r["metadata"]["namespace"], "flux-system", "HelmRelease next to its source");
            assert_eq!(spec["serviceAccountName"], "helm-controller", "{chart}: lockdown needs an identity");
            assert!(spec["chart"]["spec"]["sourceRef"].get("namespace").is_none());
            let source =
                find(&controllers, "HelmRepository", spec["chart"]["spec"]["sourceRef"]["name"].as_str().unwrap());
            assert!(source["spec"]["url"].as_str().unwrap().starts_with("https://"));
            assert_eq!(spec["install"]["crds"], "CreateReplace");
            assert_eq!(spec["upgrade"]["crds"], "CreateReplace");
            assert_eq!(spec["install"]["remediation"]["retries"], 3);
            assert_eq!(spec["upgrade"]["remediation"]["retries"], 3);
            let target = spec["targetNamespace"].as_str().unwrap();
            assert_eq!(spec["storageNamespace"], target);
            assert!(find(&controllers, "Namespace", target).is_object());
        }
        // Versions tied to the components the platform's tests run against.
        let values = |name: &str| find(&controllers, "HelmRelease", name)["spec"]["values"].clone();
        assert_eq!(version("CROSSPLANE_CHART_VERSION"), version("CROSSPLANE_VERSION").trim_start_matches('v'));
        assert_eq!(values("external-dns")["image"]["tag"], version("EXTERNAL_DNS_VERSION"));
        assert_eq!(values("cloudnative-pg")["image"]["tag"], version("CNPG_VERSION").trim_start_matches('v'));
        // Knative release 1.N ships knative.dev/serving v0.(N+27).
        let serving_minor: u32 = version("KNATIVE_SERVING_VERSION").split('.').nth(1).unwrap().parse().unwrap();
        let knative = find(&configs, "KnativeServing", "knative-serving");
        assert_eq!(knative["spec"]["version"], format!("1.{}", serving_minor - 27));
        assert!(version("KNATIVE_OPERATOR_CHART_VERSION").starts_with(&format!("v1.{}.", serving_minor - 27)));
        assert_eq!(knative["spec"]["ingress"]["kourier"]["enabled"], true);
        assert_eq!(knative["spec"]["config"]["network"]["ingress-class"], "kourier.ingress.networking.knative.dev");

        // external-dns: PowerDNS, DNSEndpoint source, the API key from a Secret reference only.
        let dns = values("external-dns");
        assert_eq!(dns["provider"]["name"], "pdns");
        assert_eq!(dns["sources"], serde_json::json!(["crd"]));
        assert!(!dns["domainFilters"].as_array().unwrap().is_empty());
        let key = dns["env"].as_array().unwrap().iter().find(|e| e["name"] == "EXTERNAL_DNS_PDNS_API_KEY").unwrap();
        assert!(key.get("value").is_none(), "the PowerDNS API key is never inline");
        assert_eq!(key["valueFrom"]["secretKeyRef"]["name"], "powerdns-api");
        assert!(dns["extraArgs"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().starts_with("--pdns-server=")));

        // Harbor provider package and the issuer.
        let provider = find(&configs, "Provider", "provider-harbor");
        assert_eq!(
            provider["spec"]["package"],
            format!("ghcr.io/crossplane-contrib/provider-upjet-harbor:{}", version("PROVIDER_HARBOR_VERSION"))
        );
        let issuer = find(&configs, "ClusterIssuer", "letsencrypt");
        assert_eq!(issuer["apiVersion"], "cert-manager.io/v1");
        assert_eq!(issuer["spec"]["acme"]["privateKeySecretRef"]["name"], "letsencrypt-account");

        assert_valid(&format!("infrastructure/controllers/{env}"), &schema_checked(&controllers));
        assert_valid(&format!("infrastructure/configs/{env}"), &schema_checked(&configs));
        per_env.push((env, controllers, configs));
    }
    // The overlays: staging uses Let's Encrypt's staging endpoint, fewer replicas, its own domains.
    let server = |configs: &[Value]| find(configs, "ClusterIssuer", "letsencrypt")["spec"]["acme"]["server"].clone();
    assert_eq!(server(&per_env[0].2), "https://acme-v02.api.letsencrypt.org/directory");
    assert_eq!(server(&per_env[1].2), "https://acme-staging-v02.api.letsencrypt.org/directory");
    let replicas =
        |controllers: &[Value]| find(controllers, "HelmRelease", "crossplane")["spec"]["values"]["replicas"].clone();
    assert_eq!(replicas(&per_env[0].1), 2);
    assert_eq!(replicas(&per_env[1].1), 1);
    let ha = |configs: &[Value]| {
        find(configs, "KnativeServing", "knative-serving")["spec"]["high-availability"]["replicas"].clone()
    };
    assert_eq!(ha(&per_env[0].2), 2);
    assert_eq!(ha(&per_env[1].2), 1);
    let filters = |controllers: &[Value]| {
        find(controllers, "HelmRelease", "external-dns")["spec"]["values"]["domainFilters"].clone()
    };
    assert_eq!(filters(&per_env[0].1), serde_json::json!(["apps.maxcloud.dev"]));
    assert_eq!(filters(&per_env[1].1), serde_json::json!(["apps.staging.maxcloud.dev"]));
}

#[test]
fn platform_applies_the_xrds_then_the_compositions() {
    let docs = parse_yaml_docs(&kustomize_build(&workspace_root().join("flux/platform")));
    let xrds = find(&docs, "Kustomization", "platform-xrds");
    let compositions = find(&docs, "Kustomization", "platform-compositions");
    assert_eq!(xrds["spec"]["path"], "./xrds");
    assert_eq!(compositions["spec"]["path"], "./compositions");
    assert_eq!(depends_on(compositions), ["platform-xrds"]);
    for k in [xrds, compositions] {
        assert_eq!(k["spec"]["serviceAccountName"], "kustomize-controller");
        assert_eq!(k["spec"]["prune"], true);
        assert_eq!(k["spec"]["sourceRef"]["name"], "flux-system");
    }
    // Flux generates a kustomization over every file there; a committed one would hide new files.
    for dir in ["xrds", "compositions"] {
        assert!(!workspace_root().join(dir).join("kustomization.yaml").exists(), "{dir}/kustomization.yaml");
    }
    let pc = find(&docs, "ClusterProviderConfig", "default");
    assert_eq!(pc["apiVersion"], "harbor.m.crossplane.io/v1beta1", "the provider the Registry composition uses");
    assert_eq!(pc["spec"]["credentials"]["source"], "Secret");
    assert_eq!(pc["spec"]["credentials"]["secretRef"]["name"], "harbor-provider");
    let environment = find(&docs, "EnvironmentConfig", "maxcloud-platform");
    for key in ["zone", "ingressHost", "registryHost", "backupDestinationPath", "backupEndpointURL"] {
        assert!(environment["data"][key].is_string(), "EnvironmentConfig data.{key}");
    }
    // Every major version the Database type offers has an image.
    let catalog = find(&docs, "ClusterImageCatalog", "maxcloud-postgresql");
    let majors: Vec<i64> =
        catalog["spec"]["images"].as_array().unwrap().iter().map(|i| i["major"].as_i64().unwrap()).collect();
    let xrd: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(workspace_root().join("xrds/database.yaml")).unwrap()).unwrap();
    let offered: Vec<i64> = xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["version"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(majors, offered);
    assert_valid("flux/platform", &schema_checked(&docs));
}

fn write_tenant(dir: &Path, files: &[maxcloud_gitops::RenderedFile]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for f in files {
        std::fs::write(dir.join(&f.name), &f.content).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn tenant_template_renders_valid_flux_onboarding() {
    let ctx = maxcloud_gitops::TenantContext::new("acme-shop", "Acme Shop", "https://api.maxcloud.dev/git");
    let files = maxcloud_gitops::render_tenant(&ctx).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tenants = tmp.path().join("flux/tenants");
    write_tenant(&tenants.join("acme-shop"), &files);
    std::fs::write(
        tenants.join("kustomization.yaml"),
        maxcloud_gitops::render_tenants_kustomization(&["acme-shop".into()]).unwrap(),
    )
    .unwrap();
    let text = kustomize_build(&tenants);
    let docs = parse_yaml_docs(&text);
    let mut kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "GitRepository",
            "Kustomization",
            "LimitRange",
            "Namespace",
            "Receiver",
            "ResourceQuota",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ]
    );
    for d in &docs {
        if d["kind"] != "Namespace" {
            assert_eq!(d["metadata"]["namespace"], "mc-acme-shop", "{}", d["kind"]);
        }
        assert_eq!(d["metadata"]["labels"]["maxcloud.dev/tenant"], "acme-shop", "{}", d["kind"]);
    }
    let sync = find(&docs, "Kustomization", "maxcloud-tenant");
    assert_eq!(sync["spec"]["serviceAccountName"], "maxcloud-tenant");
    assert_eq!(sync["spec"]["targetNamespace"], "mc-acme-shop");
    assert_eq!(
        find(&docs, "GitRepository", "maxcloud-tenant")["spec"]["url"],
        "https://api.maxcloud.dev/git/acme-shop.git"
    );
    // The tenant template and the flux-system Kustomizations together must be schema-valid (all kinds here have
    // schemas: Kubernetes built-ins and the Flux CRDs).
    assert_valid("rendered tenant", &text);
}
