//! `deploy/`: the Helm chart of `maxcloud-server serve` and the k3s-on-Hetzner bootstrap, checked as a platform
//! engineer would before a release: `helm lint --strict`, `helm template` with the default and a full-featured
//! values file validated by kubeconform against the pinned Kubernetes (and CRD) schemas, the objects' key fields,
//! bad values refused with the field named, the bootstrap's dry-run plan and flag errors, and shellcheck.
//! All tools are real: helm and kubeconform built by `scripts/testbin.sh`, shellcheck from Debian.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use maxcloud_tests::platform::{helm, kubeconform, kubeconform_text, parse_yaml_docs, version, versions};
use maxcloud_tests::workspace_root;
use serde_json::Value;

const RELEASE: &str = "mc";
const NAMESPACE: &str = "maxcloud-system";
const SERVICE_MONITOR_API: &str = "monitoring.coreos.com/v1/ServiceMonitor";

fn chart() -> PathBuf {
    workspace_root().join("deploy/chart/maxcloud-server")
}

fn full_values() -> PathBuf {
    chart().join("ci/full-values.yaml")
}

fn bootstrap() -> PathBuf {
    workspace_root().join("deploy/bootstrap/hetzner-k3s.sh")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `helm template mc CHART -n maxcloud-system ARGS...`.
fn helm_template(args: &[&str]) -> Output {
    Command::new(helm())
        .args(["template", RELEASE])
        .arg(chart())
        .args(["--namespace", NAMESPACE])
        .args(args)
        .output()
        .expect("run helm template")
}

/// Renders, asserts success and kubeconform validity (strict, no missing schemas), returns the objects.
fn render_valid(args: &[&str]) -> Vec<Value> {
    let out = helm_template(args);
    let manifests = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "helm template {args:?} failed:\n{}", text(&out));
    let (ok, report) = kubeconform_text(&manifests);
    assert!(ok, "kubeconform rejected helm template {args:?}:\n{report}\n{manifests}");
    let docs = parse_yaml_docs(&manifests);
    assert!(
        report.contains(&format!("{} resources found", docs.len()))
            && report.contains("Invalid: 0, Errors: 0, Skipped: 0"),
        "kubeconform did not validate every object: {report}"
    );
    docs
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(|d| d["kind"].as_str().expect("kind").to_string()).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, got {}", found.len());
    found[0]
}

fn container(docs: &[Value]) -> &Value {
    let containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn env<'a>(docs: &'a [Value], name: &str) -> Option<&'a Value> {
    container(docs)["env"].as_array().expect("env").iter().find(|e| e["name"] == name)
}

fn env_names(docs: &[Value]) -> Vec<String> {
    container(docs)["env"].as_array().expect("env").iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

/// Nothing the chart renders carries a secret value: no Secret object, and every env var that looks like a
/// credential comes from a secretKeyRef.
fn assert_no_secret_values(docs: &[Value]) {
    assert!(!kinds(docs).contains("Secret"), "the chart rendered a Secret: {:?}", kinds(docs));
    for e in container(docs)["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if name == "DATABASE_URL" || name.contains("TOKEN") || name.contains("PASSWORD") {
            assert!(e.get("value").is_none(), "{name} is rendered as a plain value: {e}");
            assert!(e["valueFrom"]["secretKeyRef"]["name"].is_string(), "{name} is not a Secret reference: {e}");
        }
    }
}

fn assert_hardened(docs: &[Value]) {
    let pod = &one(docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);
    let c = container(docs);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["limits"]["memory"].is_string());
    // the probes hit the server's health endpoints on the named port
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    // the data dir is the one writable volume besides /tmp, mounted where MAXCLOUD_DATA_DIR points
    let data_dir = env(docs, "MAXCLOUD_DATA_DIR").expect("MAXCLOUD_DATA_DIR")["value"].as_str().unwrap();
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m["name"] == "data" && m["mountPath"] == data_dir), "{mounts:?}");
    assert!(mounts.iter().any(|m| m["mountPath"] == "/tmp"), "{mounts:?}");
    // MAXCLOUD_LISTEN listens on all interfaces at the container port the Service and probes use
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(env(docs, "MAXCLOUD_LISTEN").expect("MAXCLOUD_LISTEN")["value"], format!("0.0.0.0:{port}"));
    assert_eq!(c["args"], serde_json::json!(["serve"]));
    assert_eq!(one(docs, "Service")["spec"]["ports"][0]["targetPort"], "http");
}

#[test]
fn helm_lint_strict_passes_with_default_and_full_values() {
    for extra in [vec![], vec!["--values".to_string(), full_values().display().to_string()]] {
        let out =
            Command::new(helm()).args(["lint", "--strict"]).arg(chart()).args(&extra).output().expect("helm lint");
        assert!(out.status.success(), "helm lint --strict {extra:?}:\n{}", text(&out));
        assert!(text(&out).contains("0 chart(s) failed"), "{}", text(&out));
    }
}

#[test]
fn default_values_render_hardened_valid_objects() {
    let docs = render_valid(&[]);
    let expected: BTreeSet<String> =
        ["ClusterRole", "ClusterRoleBinding", "Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"]
            .map(String::from)
            .into();
    assert_eq!(kinds(&docs), expected);
    assert_hardened(&docs);
    assert_no_secret_values(&docs);
    // SQLite in the data directory: no DATABASE_URL at all, a single replica, Recreate (one writer of the volume)
    assert!(env(&docs, "DATABASE_URL").is_none());
    // Flux clones tenant repositories through this release's Service (the server's own default is loopback)
    let service = one(&docs, "Service");
    let base = format!(
        "http://{}.{NAMESPACE}.svc.cluster.local:{}/git",
        service["metadata"]["name"].as_str().unwrap(),
        service["spec"]["ports"][0]["port"]
    );
    assert_eq!(env(&docs, "MAXCLOUD_TENANT_GIT_BASE_URL").expect("MAXCLOUD_TENANT_GIT_BASE_URL")["value"], base);
    assert!(env(&docs, "MAXCLOUD_PLATFORM_GIT_TOKEN").is_none(), "platform repo served without a token Secret");
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    // the image tag defaults to the chart's appVersion, which is the server's crate version
    let chart_yaml: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap()).expect("Chart.yaml");
    let app_version = chart_yaml["appVersion"].as_str().unwrap();
    assert_eq!(container(&docs)["image"], format!("ghcr.io/max-cloud/maxcloud-server:{app_version}"));
    let cargo = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains(&format!("version = \"{app_version}\"")),
        "appVersion {app_version} is not the crate version"
    );
    // the data volume is a claim the chart created, kept when the release is uninstalled
    let pvc = one(&docs, "PersistentVolumeClaim");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let data = volumes.iter().find(|v| v["name"] == "data").expect("data volume");
    assert_eq!(data["persistentVolumeClaim"]["claimName"], pvc["metadata"]["name"]);
    assert_eq!(pvc["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    // the pod runs as the chart's ServiceAccount, the one the ClusterRoleBinding binds
    let sa = one(&docs, "ServiceAccount")["metadata"]["name"].clone();
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccountName"], sa);
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["name"], sa);
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    assert_eq!(binding["roleRef"]["name"], one(&docs, "ClusterRole")["metadata"]["name"]);
}

#[test]
fn full_values_render_every_feature_with_secrets_by_reference() {
    let values = full_values();
    let docs = render_valid(&["--values", values.to_str().unwrap(), "--api-versions", SERVICE_MONITOR_API]);
    for kind in ["Ingress", "NetworkPolicy", "PodDisruptionBudget", "ServiceMonitor", "PersistentVolumeClaim"] {
        assert!(kinds(&docs).contains(kind), "{kind} missing: {:?}", kinds(&docs));
    }
    assert_hardened(&docs);
    assert_no_secret_values(&docs);
    // PostgreSQL: DATABASE_URL comes from the named Secret and key, nothing else
    let db = env(&docs, "DATABASE_URL").expect("DATABASE_URL");
    assert_eq!(db["valueFrom"]["secretKeyRef"], serde_json::json!({"name": "maxcloud-db", "key": "uri"}));
    let platform = env(&docs, "MAXCLOUD_PLATFORM_GIT_TOKEN").expect("MAXCLOUD_PLATFORM_GIT_TOKEN");
    assert_eq!(
        platform["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "maxcloud-platform-git", "key": "token"})
    );
    assert_eq!(env(&docs, "MAXCLOUD_TENANT_GIT_BASE_URL").unwrap()["value"], "https://git.maxcloud.de/git");
    // The tenant repositories on GitHub as a GitHub App: settings as values, credentials from the named Secret.
    assert_eq!(env(&docs, "MAXCLOUD_GIT_PROVIDER").expect("MAXCLOUD_GIT_PROVIDER")["value"], "github");
    assert_eq!(env(&docs, "MAXCLOUD_GIT_PROVIDER_OWNER").unwrap()["value"], "acme-tenants");
    assert_eq!(env(&docs, "MAXCLOUD_GITHUB_APP_ID").unwrap()["value"], "123456");
    assert_eq!(env(&docs, "MAXCLOUD_GITHUB_APP_INSTALLATION_ID").unwrap()["value"], "7890123");
    let key_file = env(&docs, "MAXCLOUD_GITHUB_APP_PRIVATE_KEY").unwrap()["value"].as_str().unwrap().to_string();
    let mount =
        container(&docs)["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "git-provider").cloned();
    assert!(key_file.starts_with(mount.expect("private key mount")["mountPath"].as_str().unwrap()));
    assert!(env(&docs, "MAXCLOUD_GIT_PROVIDER_TOKEN").is_none(), "an App, not a token");
    assert_eq!(
        env(&docs, "MAXCLOUD_GIT_PROVIDER_WEBHOOK_SECRET").unwrap()["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "maxcloud-github", "key": "webhook-secret", "optional": true})
    );
    // The master key of tenant secrets: a file from the named Secret, mounted read-only.
    let master = env(&docs, "MAXCLOUD_MASTER_KEY_FILE").expect("MAXCLOUD_MASTER_KEY_FILE")["value"].as_str().unwrap();
    let mount =
        container(&docs)["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "master-key").cloned();
    let mount = mount.expect("master key mount");
    assert!(master.starts_with(mount["mountPath"].as_str().unwrap()) && mount["readOnly"] == true);
    // Quotas: the values as the file the server parses (the same parser, so a mistake fails here too).
    let quotas =
        docs.iter().find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"].as_str().unwrap().ends_with("-quotas"));
    let text = quotas.expect("quota ConfigMap")["data"]["quotas.yaml"].as_str().unwrap().to_string();
    let parsed = maxcloud_orders::quota::Quotas::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(parsed.for_tenant("acme-shop").services, Some(50));
    assert_eq!(parsed.for_tenant("other").cpu_milli, Some(32_000));
    assert_eq!(env(&docs, "MAXCLOUD_QUOTAS").unwrap()["value"], "/etc/maxcloud/quotas/quotas.yaml");
    // The registry token key: a file from the named Secret, mounted read-only; the registry's settings as values.
    let registry_key =
        env(&docs, "MAXCLOUD_REGISTRY_KEY_FILE").expect("MAXCLOUD_REGISTRY_KEY_FILE")["value"].as_str().unwrap();
    let mount =
        container(&docs)["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "registry-key").cloned();
    let mount = mount.expect("registry key mount");
    assert!(registry_key.starts_with(mount["mountPath"].as_str().unwrap()) && mount["readOnly"] == true);
    let volume = one(&docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "registry-key")
        .cloned()
        .expect("registry key volume");
    assert_eq!(volume["secret"]["secretName"], "maxcloud-registry-key");
    assert_eq!(
        env(&docs, "MAXCLOUD_REGISTRY_URL").unwrap()["value"],
        "http://registry.registry.svc.cluster.local:5000"
    );
    assert_eq!(env(&docs, "MAXCLOUD_REGISTRY_HOST").unwrap()["value"], "registry.maxcloud.de");
    assert_eq!(env(&docs, "MAXCLOUD_REGISTRY_SERVICE").unwrap()["value"], "max-cloud-registry");
    // Audit sources behind the ingress, logs from a multi-tenant Loki, the domains' TXT resolver.
    for (name, value) in [
        ("MAXCLOUD_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.10"),
        ("MAXCLOUD_LOKI_URL", "http://loki-gateway.monitoring.svc.cluster.local"),
        ("MAXCLOUD_LOKI_TENANT", "platform"),
        ("MAXCLOUD_LOKI_APP_LABEL", "maxcloud_dev_name"),
        ("MAXCLOUD_DNS_RESOLVER", "192.0.2.53:53"),
    ] {
        assert_eq!(env(&docs, name).unwrap_or_else(|| panic!("{name}"))["value"], value, "{name}");
    }
    let token = env(&docs, "MAXCLOUD_EXAMPLE_TOKEN").expect("secretEnv entry");
    assert_eq!(token["valueFrom"]["secretKeyRef"], serde_json::json!({"name": "maxcloud-example", "key": "token"}));
    assert_eq!(one(&docs, "Deployment")["spec"]["replicas"], 2);
    assert_eq!(container(&docs)["image"], "registry.example.de/platform/maxcloud-server:0.1.0");
    // the catalog XRDs come from the referenced ConfigMap, mounted read-only at MAXCLOUD_XRDS_DIR
    let xrds_dir = env(&docs, "MAXCLOUD_XRDS_DIR").unwrap()["value"].as_str().unwrap();
    let mount = container(&docs)["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "catalog").cloned();
    assert_eq!(mount.expect("catalog mount")["mountPath"], xrds_dir);
    // the Ingress publishes the API and the Git endpoint only (not /metrics), TLS from a referenced Secret
    let ingress = one(&docs, "Ingress");
    let paths: Vec<&str> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/api", "/git"]);
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "maxcloud-api-tls");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        one(&docs, "Service")["metadata"]["name"]
    );
    // the ServiceMonitor scrapes /metrics on the Service's http port
    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    // the NetworkPolicy admits the listed namespaces and limits egress
    let policy = one(&docs, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    let allowed = &policy["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"];
    assert_eq!(allowed, &serde_json::json!(["flux-system", "kourier-system", "monitoring"]));
    // shared repositories: the claim is ReadWriteMany on the requested class
    let pvc = one(&docs, "PersistentVolumeClaim");
    assert_eq!(pvc["spec"]["accessModes"], serde_json::json!(["ReadWriteMany"]));
    assert_eq!(pvc["spec"]["storageClassName"], "hcloud-volumes-rwx");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "50Gi");
}

#[test]
fn service_monitor_only_when_the_cluster_serves_the_kind() {
    let values = full_values();
    let without = render_valid(&["--values", values.to_str().unwrap()]);
    assert!(!kinds(&without).contains("ServiceMonitor"), "{:?}", kinds(&without));
    let with = render_valid(&["--values", values.to_str().unwrap(), "--api-versions", SERVICE_MONITOR_API]);
    assert!(kinds(&with).contains("ServiceMonitor"));
    // off by default, even where the kind exists
    let default = render_valid(&["--api-versions", SERVICE_MONITOR_API]);
    assert!(!kinds(&default).contains("ServiceMonitor"));
}

#[test]
fn aggregator_cluster_role_is_read_only_and_covers_what_it_watches() {
    for args in [vec![], vec!["--values".to_string(), full_values().display().to_string()]] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let docs = render_valid(&args);
        let role = one(&docs, "ClusterRole");
        let rules = role["rules"].as_array().expect("rules");
        let mut covered = BTreeSet::new();
        for rule in rules {
            let verbs: BTreeSet<&str> = rule["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            // Container logs (`maxcloud logs`): `get` on the pods/log subresource, nothing more.
            let read = if rule["resources"] == serde_json::json!(["pods/log"]) {
                BTreeSet::from(["get"])
            } else {
                BTreeSet::from(["get", "list", "watch"])
            };
            assert_eq!(verbs, read, "not read-only: {rule}");
            assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    assert!(!(group == "" && resource == "secrets"), "the aggregator must not read Secrets: {rule}");
                    covered.insert(format!("{}/{}", group.as_str().unwrap(), resource.as_str().unwrap()));
                }
            }
        }
        for needed in [
            "maxcloud.dev/*",
            "serving.knative.dev/services",
            "serving.knative.dev/domainmappings",
            "kustomize.toolkit.fluxcd.io/kustomizations",
            "postgresql.cnpg.io/clusters",
            "externaldns.k8s.io/dnsendpoints",
            "/pods",
            "/events",
            "/namespaces",
            "/pods/log",
        ] {
            assert!(covered.contains(needed), "ClusterRole lacks {needed}: {covered:?}");
        }
        assert!(!kinds(&docs).contains("Role"), "no namespaced write roles");
    }
}

/// Every env var the chart sets (other than user-supplied secretEnv/extraEnv) is one `maxcloud-server serve`
/// reads: a clap `env = "..."` of the serve arguments or the `MAXCLOUD_LOG` filter.
#[test]
fn env_var_names_are_the_ones_the_server_reads() {
    let main = std::fs::read_to_string(workspace_root().join("crates/server/src/main.rs")).expect("server main.rs");
    assert!(main.contains("Serve(RunArgs)"), "maxcloud-server has no `serve` subcommand");
    let reads =
        |name: &str| main.contains(&format!("env = \"{name}\"")) || main.contains(&format!("from_env(\"{name}\")"));
    let values = full_values();
    let user_supplied = ["MAXCLOUD_EXAMPLE_TOKEN"];
    for args in [
        vec![],
        vec!["--values", values.to_str().unwrap()],
        vec!["--set", "server.runWorker=false", "--set", "server.logFormat=text"],
    ] {
        let docs = render_valid(&args);
        let names = env_names(&docs);
        for name in &names {
            if user_supplied.contains(&name.as_str()) {
                continue;
            }
            assert!(reads(name), "the chart sets {name}, which maxcloud-server does not read ({args:?})");
        }
        for always in [
            "MAXCLOUD_LISTEN",
            "MAXCLOUD_DATA_DIR",
            "MAXCLOUD_XRDS_DIR",
            "MAXCLOUD_LOG_FORMAT",
            "MAXCLOUD_TENANT_GIT_BASE_URL",
        ] {
            assert!(names.iter().any(|n| n == always), "{always} missing ({args:?}): {names:?}");
        }
    }
    let no_worker = render_valid(&["--set", "server.runWorker=false", "--set", "server.logFormat=text"]);
    assert_eq!(env(&no_worker, "MAXCLOUD_NO_WORKER").expect("MAXCLOUD_NO_WORKER")["value"], "true");
    assert_eq!(env(&no_worker, "MAXCLOUD_LOG_FORMAT").unwrap()["value"], "text");
    assert!(env(&render_valid(&[]), "MAXCLOUD_NO_WORKER").is_none());
}

#[test]
fn bad_values_fail_helm_template_naming_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicaCount=-1"], "/replicaCount"),
        (&["--set-string", "replicaCount=three"], "/replicaCount"),
        (&["--set", "server.port=70000"], "/server/port"),
        (&["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (&["--set", "image.digest=latest"], "/image/digest"),
        (&["--set", "server.logFormat=xml"], "/server/logFormat"),
        (&["--set", "persistence.size=ten"], "/persistence/size"),
        (&["--set", "database.existingSecret=Not_A_Name"], "/database/existingSecret"),
        (&["--set", "server.secretEnv[0].name=X"], "/server/secretEnv/0"),
        (&["--set", "ingress.enabled=yes"], "/ingress/enabled"),
        (&["--set", "git.tenantBaseUrl=git.example.de/git"], "/git/tenantBaseUrl"),
        (&["--set", "git.platformToken.secretKey="], "/git/platformToken/secretKey"),
        (&["--set", "git.provider.type=svn"], "/git/provider/type"),
        (&["--set", "git.provider.url=git.example.de"], "/git/provider/url"),
        (&["--set", "git.provider.type=gitea", "--set", "git.provider.existingSecret=g"], "git.provider.owner"),
        (&["--set", "git.provider.type=gitea", "--set", "git.provider.owner=t"], "git.provider.existingSecret"),
        (&["--set", "resources.limits.memory=lots"], "/resources/limits/memory"),
        (&["--set", "registry.url=registry.example.de"], "/registry/url"),
        (&["--set", "registry.keySecret.existingSecret=Not_A_Name"], "/registry/keySecret/existingSecret"),
        (&["--set", "registry.url=http://registry:5000"], "registry.keySecret.existingSecret"),
        (&["--set", "trustedProxies[0]=ingress.local"], "/trustedProxies/0"),
        (&["--set", "logs.loki.url=loki:3100"], "/logs/loki/url"),
        (&["--set", "logs.loki.tenant=a b"], "/logs/loki/tenant"),
        (&["--set", "logs.loki.tenant=platform"], "logs.loki.url"),
        (&["--set", "domains.dnsResolver=ns1.example.de"], "/domains/dnsResolver"),
        (&["--set", "replicaCont=2"], "replicaCont"),
        // settings that cannot work together
        (&["--set", "replicaCount=2"], "database.existingSecret"),
        (&["--set", "replicaCount=2", "--set", "database.existingSecret=db"], "persistence.accessModes"),
    ];
    for (args, field) in cases {
        let out = helm_template(args);
        let message = text(&out);
        assert!(!out.status.success(), "helm template {args:?} succeeded:\n{message}");
        assert!(message.contains(field), "helm template {args:?} failed without naming {field}:\n{message}");
    }
}

#[test]
fn kubeconform_is_strict_offline_and_fails_on_unknown_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // Kubernetes built-ins, Flux and Crossplane kinds validate from the cached schemas
    let good = write(
        "good.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\n\
         apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: a, namespace: flux-system}\n\
         spec: {interval: 10m, path: ./tenants, prune: true, sourceRef: {kind: GitRepository, name: platform}}\n---\n\
         apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: platform, namespace: flux-system}\n\
         spec: {interval: 1m, url: 'http://mc-maxcloud-server.maxcloud-system.svc/git/acme.git', ref: {branch: main}}\n---\n\
         apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata: {name: a}\n\
         spec: {compositeTypeRef: {apiVersion: maxcloud.dev/v1alpha1, kind: App}, mode: Pipeline,\n  \
         pipeline: [{step: s, functionRef: {name: function-go-templating}}]}\n",
    );
    let (ok, report) = kubeconform(&[&good]);
    assert!(ok && report.contains("4 resources found") && report.contains("Valid: 4"), "{report}");
    // an unknown field is an error (strict), in built-ins and in CRD kinds
    let typo = write("typo.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatta: {k: v}\n");
    let (ok, report) = kubeconform(&[&typo]);
    assert!(!ok && report.contains("datta"), "{report}");
    let typo = write(
        "typo-flux.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: a}\n\
         spec: {interval: 10m, prune: true, sourceRef: {kind: GitRepository, name: p}, prunne: true}\n",
    );
    let (ok, report) = kubeconform(&[&typo]);
    assert!(!ok && report.contains("prunne"), "{report}");
    // a kind without a schema fails (no -ignore-missing-schemas, and no download)
    let unknown = write("unknown.yaml", "apiVersion: example.org/v1\nkind: Widget\nmetadata: {name: a}\n");
    let (ok, report) = kubeconform(&[&unknown]);
    assert!(!ok && report.contains("could not find schema for Widget"), "{report}");
}

// --- bootstrap -------------------------------------------------------------------------------------------------------

/// Runs the bootstrap with an environment that has no hcloud token, no HOME config and only the base system on PATH.
fn run_bootstrap(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(bootstrap())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .expect("run hetzner-k3s.sh")
}

const REQUIRED: &[&str] = &[
    "--env",
    "prod",
    "--admin-cidr",
    "203.0.113.0/24",
    "--ssh-key",
    "ops",
    "--repo-url",
    "ssh://git@git.example.de/platform/max-cloud.git",
];

#[test]
fn bootstrap_dry_run_prints_the_whole_plan() {
    let mut args = vec!["--dry-run"];
    args.extend_from_slice(REQUIRED);
    args.extend_from_slice(&["--control-planes", "3", "--workers", "2", "--server-type", "cpx41", "--name", "mc-prod"]);
    let out = run_bootstrap(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "dry run failed:\n{}", text(&out));
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
    let has = |prefix: &str| commands.iter().any(|c| c.starts_with(prefix));
    // network, subnet in the zone of the German default locations, firewall, one placement group per location
    assert!(has("+ hcloud network create --name mc-prod --ip-range 10.0.0.0/16"), "{stdout}");
    assert!(has("+ hcloud network add-subnet mc-prod --type cloud --network-zone eu-central --ip-range 10.0.1.0/24"));
    assert!(has("+ hcloud firewall create --name mc-prod"));
    assert!(has("+ hcloud placement-group create --name mc-prod-fsn1 --type spread"));
    assert!(has("+ hcloud placement-group create --name mc-prod-nbg1 --type spread"));
    // the firewall: 22 and 6443 from the admin network only, 80/443 from anywhere, nothing else inbound
    let rules: Vec<&str> = stdout.lines().filter(|l| l.contains("\"direction\": \"in\"")).collect();
    let rule = |port: &str| rules.iter().find(|r| r.contains(&format!("\"port\": \"{port}\""))).copied();
    for port in ["22", "6443"] {
        let r = rule(port).unwrap_or_else(|| panic!("no rule for {port}: {stdout}"));
        assert!(r.contains("[\"203.0.113.0/24\"]"), "{r}");
    }
    for port in ["80", "443"] {
        assert!(rule(port).unwrap_or_else(|| panic!("no rule for {port}")).contains("0.0.0.0/0"));
    }
    assert_eq!(rules.iter().filter(|r| r.contains("\"protocol\": \"tcp\"")).count(), 4, "{rules:?}");
    // 3 control planes and 2 workers, spread over fsn1 and nbg1, each with its cloud-init
    let servers: Vec<&&str> = commands.iter().filter(|c| c.starts_with("+ hcloud server create")).collect();
    assert_eq!(servers.len(), 5, "{servers:?}");
    for (name, location) in [
        ("mc-prod-cp-1", "fsn1"),
        ("mc-prod-cp-2", "nbg1"),
        ("mc-prod-cp-3", "fsn1"),
        ("mc-prod-worker-1", "fsn1"),
        ("mc-prod-worker-2", "nbg1"),
    ] {
        let s = servers.iter().find(|s| s.contains(&format!("--name {name} "))).unwrap_or_else(|| panic!("no {name}"));
        assert!(
            s.contains("--type cpx41 ") && s.contains("--ssh-key ops ") && s.contains("--firewall mc-prod "),
            "{s}"
        );
        assert!(s.contains("--network mc-prod ") && s.contains("--user-data-from-file "), "{s}");
        assert!(s.contains(&format!("--location {location} --")), "{name} not in {location}: {s}");
        assert!(s.contains(&format!("--placement-group mc-prod-{location} ")), "{s}");
    }
    // k3s by cloud-init, at the pinned version: traefik off (Knative brings Kourier), secrets encrypted at rest,
    // etcd initialised by the first server and joined by the others, agents joining the first server
    let k3s = version("K3S_VERSION");
    let installs: Vec<&str> = stdout.lines().filter(|l| l.contains("sh -s - ")).collect();
    assert_eq!(installs.len(), 5, "{stdout}");
    assert_eq!(stdout.matches(&format!("INSTALL_K3S_VERSION='{k3s}'")).count(), 5);
    let servers_k3s: Vec<&&str> = installs.iter().filter(|l| l.contains("sh -s - server")).collect();
    assert_eq!(servers_k3s.len(), 3);
    for s in &servers_k3s {
        assert!(s.contains("--disable=traefik") && s.contains("--secrets-encryption"), "{s}");
        assert!(s.contains("--node-taint=CriticalAddonsOnly=true:NoExecute"), "workers exist: {s}");
    }
    assert_eq!(installs.iter().filter(|l| l.contains("--cluster-init")).count(), 1);
    assert_eq!(installs.iter().filter(|l| l.contains("sh -s - agent") && l.contains("--server=https://")).count(), 2);
    // the join token is generated only for a real run: the dry run shows a placeholder
    assert_eq!(stdout.matches("K3S_TOKEN=").count(), stdout.matches("K3S_TOKEN='<generated-token>'").count());
    // kubeconfig from the first server, then Flux on flux/clusters/prod of the platform repo
    assert!(has("+ ssh ") && stdout.contains("cat /etc/rancher/k3s/k3s.yaml"));
    assert!(has("+ flux check --pre --kubeconfig ./kubeconfig-mc-prod"));
    let flux = commands.iter().find(|c| c.starts_with("+ flux bootstrap git")).expect("flux bootstrap git");
    assert!(flux.contains("--url ssh://git@git.example.de/platform/max-cloud.git"), "{flux}");
    assert!(flux.contains("--path flux/clusters/prod") && flux.contains("--branch main"), "{flux}");
    // flux comes last
    assert!(commands.last().unwrap().starts_with("+ flux bootstrap git"), "{commands:?}");
}

#[test]
fn bootstrap_dry_run_single_node_https_repo() {
    let args = [
        "--dry-run",
        "--env=dev",
        "--admin-cidr=2001:db8::/48",
        "--ssh-key=ops",
        "--repo-url=https://git.example.de/platform/max-cloud.git",
        "--workers=0",
        "--location=nbg1",
    ];
    let out = run_bootstrap(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout.matches("+ hcloud server create").count(), 1);
    assert!(stdout.contains("--name maxcloud-dev-cp-1 ") && stdout.contains("--location nbg1 "), "{stdout}");
    assert!(stdout.contains("[\"2001:db8::/48\"]"));
    // one node: it runs workloads, so no taint
    assert!(!stdout.contains("CriticalAddonsOnly"), "{stdout}");
    let flux = stdout.lines().find(|l| l.starts_with("+ flux bootstrap git")).expect("flux bootstrap");
    assert!(flux.contains("--path flux/clusters/dev") && flux.contains("--token-auth"), "{flux}");
    // the token is referenced, never expanded
    assert!(flux.contains("--password \\$FLUX_GIT_TOKEN"), "{flux}");
}

#[test]
fn bootstrap_rejects_bad_flags_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--control-planes", "2"], "--control-planes"),
        (&["--control-planes", "x"], "--control-planes"),
        (&["--workers", "-1"], "--workers"),
        (&["--workers", "51"], "--workers"),
        (&["--admin-cidr", "0.0.0.0/0"], "--admin-cidr"),
        (&["--admin-cidr", "300.1.2.3/24"], "--admin-cidr"),
        (&["--admin-cidr", "203.0.113.7"], "--admin-cidr"),
        (&["--location", "fsn1,ash"], "--location"),
        (&["--location", "berlin"], "--location"),
        (&["--env", "Prod"], "--env"),
        (&["--name", "-bad-"], "--name"),
        (&["--repo-url", "git@github.com:acme/platform.git"], "--repo-url"),
        (&["--server-type", "big one"], "--server-type"),
        (&["--k3s-version", "latest"], "--k3s-version"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--workers"], "--workers"),
    ];
    for (bad, flag) in cases {
        let mut args = vec!["--dry-run"];
        args.extend_from_slice(REQUIRED);
        args.extend_from_slice(bad);
        let out = run_bootstrap(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} accepted:\n{}", text(&out));
        assert!(stderr.contains(flag), "{bad:?}: error does not name {flag}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("+ hcloud"), "{bad:?} printed commands");
    }
    // each required flag, missing
    for (i, flag) in REQUIRED.iter().enumerate().step_by(2) {
        let mut args = vec!["--dry-run"];
        args.extend(REQUIRED.iter().enumerate().filter(|(j, _)| *j != i && *j != i + 1).map(|(_, a)| *a));
        let out = run_bootstrap(&args);
        assert!(!out.status.success(), "missing {flag} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{flag} is required")), "{}", text(&out));
    }
    // without --dry-run, missing tools are named before anything runs
    let out = run_bootstrap(REQUIRED);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hcloud is not installed"), "{}", text(&out));
}

#[test]
fn bootstrap_help_lists_every_flag() {
    let out = run_bootstrap(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--env",
        "--name",
        "--location",
        "--control-planes",
        "--workers",
        "--server-type",
        "--admin-cidr",
        "--repo-url",
        "--ssh-key",
        "--dry-run",
        "--help",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(help.contains(version("K3S_VERSION")), "{help}");
}

#[test]
fn pinned_versions_agree() {
    let script = std::fs::read_to_string(bootstrap()).unwrap();
    let k3s = version("K3S_VERSION");
    assert!(script.contains(&format!("K3S_VERSION_DEFAULT=\"{k3s}\"")), "bootstrap does not pin k3s {k3s}");
    // k3s runs the Kubernetes release the manifests are validated against
    let kubernetes = version("KUBERNETES_VERSION");
    assert!(k3s.starts_with(&format!("{kubernetes}+k3s")), "K3S_VERSION {k3s} is not KUBERNETES_VERSION {kubernetes}");
    assert!(versions().contains_key("KUBECONFORM_VERSION"));
}

// --- shellcheck ------------------------------------------------------------------------------------------------------

/// shellcheck from Debian, installed through apt when missing (the machine's registries are reachable).
fn shellcheck() -> &'static str {
    let present = || Command::new("shellcheck").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !present() {
        let install = |update: bool| {
            let script = if update {
                "apt-get update -qq && apt-get install -y -qq shellcheck"
            } else {
                "apt-get install -y -qq shellcheck"
            };
            Command::new("sh").args(["-c", script]).env("DEBIAN_FRONTEND", "noninteractive").status()
        };
        if !install(false).map(|s| s.success()).unwrap_or(false) {
            let status = install(true).expect("run apt-get");
            assert!(status.success(), "cannot install shellcheck with apt-get");
        }
    }
    assert!(present(), "shellcheck is not installed");
    "shellcheck"
}

#[test]
fn shellcheck_passes_on_deploy_and_scripts() {
    let root = workspace_root();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["deploy/bootstrap", "scripts"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sh") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.iter().any(|f| f.ends_with("deploy/bootstrap/hetzner-k3s.sh")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("scripts/testbin.sh")), "{files:?}");
    // -x -P SCRIPTDIR: follow `. versions.env` as the scripts do
    let out = Command::new(shellcheck())
        .args(["--external-sources", "--source-path=SCRIPTDIR", "--severity=style"])
        .args(&files)
        .output()
        .expect("run shellcheck");
    assert!(out.status.success(), "shellcheck found problems:\n{}", text(&out));
}
