//! The platform's XRDs and compositions, checked with the real Crossplane tooling (built from its Go modules by
//! scripts/testbin.sh): every XRD converts to a CRD and validates against Crossplane's own schema, every example
//! order the catalog accepts renders through its composition (real reconciler engine, functions as local
//! processes) and the output validates against the upstream CRDs; then the App composition field by field.

use std::path::{Path, PathBuf};

use maxcloud_catalog::{Catalog, ResourceName, ServiceType, TenantSlug};
use maxcloud_tests::platform::{
    self, crds, has_upstream_schema, parse_yaml_docs, render_with, to_yaml, validate, Functions, Rendered,
};
use maxcloud_tests::workspace_root;
use serde_json::{json, Value};

fn catalog() -> Catalog {
    Catalog::load_dir(&workspace_root().join("xrds")).expect("xrds/ loads")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn examples() -> Vec<PathBuf> {
    let root = workspace_root().join("examples");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).expect("examples/").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs.iter().flat_map(|d| yaml_files(d)).collect()
}

fn xrd_path(ty: &ServiceType) -> PathBuf {
    workspace_root().join("xrds").join(&ty.source)
}

fn composition_path(ty: &ServiceType) -> PathBuf {
    workspace_root().join("compositions").join(format!("{}.yaml", ty.singular))
}

fn environment() -> PathBuf {
    workspace_root().join("tests/fixtures/platform/environment.yaml")
}

/// CRD directories of everything the compositions compose (plus our own XRDs for nested XRs).
fn schema_sources() -> Vec<PathBuf> {
    vec![
        workspace_root().join("xrds"),
        crds("knative-serving", "KNATIVE_SERVING_VERSION"),
        crds("cloudnative-pg", "CNPG_VERSION"),
        crds("external-dns", "EXTERNAL_DNS_VERSION"),
    ]
}

/// An example order as the order service would commit it: validated (defaults applied) by the catalog and built
/// as the tenant `acme`'s resource. Returns the service type and the file holding the XR.
fn order<'c>(catalog: &'c Catalog, example: &Path, dir: &Path) -> (&'c ServiceType, PathBuf, Value) {
    let text = std::fs::read_to_string(example).expect("example");
    let doc: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    let kind = doc["kind"].as_str().expect("kind");
    let ty = catalog.get(kind).unwrap_or_else(|| panic!("{}: kind {kind} not in the catalog", example.display()));
    let name = ResourceName::parse(doc["metadata"]["name"].as_str().expect("metadata.name")).expect("valid name");
    let spec = ty
        .validate(&doc["spec"])
        .unwrap_or_else(|e| panic!("{}: the catalog refuses the example: {e:?}", example.display()));
    let object = ty.build_resource(&TenantSlug::parse("acme").expect("slug"), &name, "ord-example", &spec);
    let file = dir.join(format!("{}-{}.yaml", ty.plural, name.as_str()));
    std::fs::write(&file, to_yaml(&object)).expect("write XR");
    (ty, file, object)
}

fn render_example(functions: &Functions, example: &str, observed: Option<&Path>) -> (Rendered, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog();
    let (ty, xr, _) = order(&catalog, &workspace_root().join("examples").join(example), dir.path());
    let rendered = render_with(&xr, &composition_path(ty), &xrd_path(ty), functions, observed, Some(&environment()));
    (rendered, dir)
}

#[test]
fn every_xrd_converts_and_validates_with_crossplane() {
    let catalog = catalog();
    let xrds = yaml_files(&workspace_root().join("xrds"));
    assert_eq!(xrds.len(), catalog.len(), "one service type per XRD file");
    for kind in ["App", "Database", "Registry", "DNSRecord", "Workspace"] {
        assert!(catalog.get(kind).is_some(), "the catalog lists {kind}");
    }
    let crossplane_crds = crds("crossplane", "CROSSPLANE_VERSION");
    for ty in catalog.types() {
        let xrd = xrd_path(ty);
        // The Crossplane CLI derives the CRD Crossplane itself would install.
        let out = std::process::Command::new(platform::crossplane_cli())
            .args(["xrd", "convert"])
            .arg(&xrd)
            .output()
            .expect("crossplane xrd convert");
        assert!(out.status.success(), "{}: {}", xrd.display(), String::from_utf8_lossy(&out.stderr));
        let crd = parse_yaml_docs(&String::from_utf8_lossy(&out.stdout)).remove(0);
        assert_eq!(crd["kind"], "CustomResourceDefinition");
        assert_eq!(crd["spec"]["group"], "maxcloud.dev");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["kind"], ty.kind.as_str());
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(schema["properties"]["status"]["properties"].is_object(), "{}: status schema", ty.kind);
        assert!(schema["properties"]["spec"]["description"].is_string(), "{}: spec description", ty.kind);
        // The XRD itself is a valid CompositeResourceDefinition for the pinned Crossplane.
        let (ok, report) = validate(std::slice::from_ref(&crossplane_crds), &xrd);
        assert!(ok, "{}:\n{report}", xrd.display());

        // Every type has its composition (default composition of the XRD) and at least one example.
        let composition = composition_path(ty);
        let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&composition).expect("composition"))
            .expect("composition YAML");
        assert_eq!(doc["metadata"]["name"], ty.xrd_name.as_str());
        assert_eq!(doc["spec"]["compositeTypeRef"]["apiVersion"], "maxcloud.dev/v1alpha1");
        assert_eq!(doc["spec"]["compositeTypeRef"]["kind"], ty.kind.as_str());
        assert_eq!(doc["spec"]["mode"], "Pipeline");
        let function_inputs = crds("function-go-templating", "FUNCTION_GO_TEMPLATING_VERSION");
        let (ok, report) = validate(&[crossplane_crds.clone(), function_inputs], &composition);
        assert!(ok, "{}:\n{report}", composition.display());
        let xrd_doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&xrd).expect("xrd")).expect("xrd");
        assert_eq!(xrd_doc["spec"]["defaultCompositionRef"]["name"], ty.xrd_name.as_str(), "{}", ty.kind);
        let steps: Vec<&str> = doc["spec"]["pipeline"]
            .as_array()
            .expect("pipeline")
            .iter()
            .map(|s| s["functionRef"]["name"].as_str().expect("functionRef"))
            .collect();
        assert_eq!(steps.last(), Some(&"function-auto-ready"), "{}: readiness is derived last", ty.kind);
        assert!(
            examples().iter().any(|e| e.parent().and_then(|p| p.file_name()).is_some_and(|n| n == ty.plural.as_str())),
            "examples/{}/ has at least one example",
            ty.plural
        );
    }
    // The Function packages are pinned to the versions the tests run.
    let functions = std::fs::read_to_string(workspace_root().join("compositions/functions.yaml")).expect("fns");
    for (name, key) in [
        ("function-go-templating", "FUNCTION_GO_TEMPLATING_VERSION"),
        ("function-auto-ready", "FUNCTION_AUTO_READY_VERSION"),
    ] {
        let pin = format!("/{name}:{}", platform::version(key));
        assert!(functions.contains(&pin), "compositions/functions.yaml pins {pin}");
    }
}

#[test]
fn every_example_order_renders_and_validates_against_upstream_crds() {
    let functions = Functions::start();
    let catalog = catalog();
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = examples();
    assert!(examples.len() >= 10, "examples cover the options of every type");
    let mut composed_kinds = std::collections::BTreeSet::new();
    for example in &examples {
        let (ty, xr, object) = order(&catalog, example, dir.path());
        let rendered = render_with(&xr, &composition_path(ty), &xrd_path(ty), &functions, None, Some(&environment()));
        assert_eq!(rendered.xr["kind"], ty.kind.as_str());
        let mut rendered_spec = rendered.xr["spec"].clone();
        let refs = rendered_spec.as_object_mut().expect("spec").remove("crossplane");
        assert_eq!(rendered_spec, object["spec"], "{}: the XR is rendered as ordered", example.display());
        assert_eq!(
            refs.expect("spec.crossplane")["resourceRefs"].as_array().expect("resourceRefs").len(),
            rendered.composed.len(),
            "{}: Crossplane references every composed resource",
            example.display()
        );
        assert!(!rendered.composed.is_empty(), "{}: composes something", example.display());
        for resource in &rendered.composed {
            let api_version = resource["apiVersion"].as_str().expect("apiVersion");
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g).to_string();
            composed_kinds.insert((group, resource["kind"].as_str().expect("kind").to_string()));
            assert_eq!(
                resource["metadata"]["namespace"],
                "mc-acme",
                "{}: composed resources stay in the tenant namespace",
                example.display()
            );
            assert_eq!(resource["metadata"]["labels"]["maxcloud.dev/tenant"], "acme", "{}", example.display());
            assert_eq!(resource["metadata"]["ownerReferences"][0]["kind"], ty.kind.as_str());
        }
        // Validate everything that has an upstream schema here. The Harbor provider's CRDs are not published as
        // a Go module, so its managed resources are checked by the Registry render assertions instead.
        let (checkable, harbor): (Vec<&Value>, Vec<&Value>) =
            std::iter::once(&rendered.xr).chain(rendered.composed.iter()).partition(|d| has_upstream_schema(d));
        for object in &harbor {
            let api_version = object["apiVersion"].as_str().unwrap_or("");
            let expected = if api_version.contains("harbor") { "Registry" } else { "Database" };
            assert_eq!(ty.kind, expected, "{}: {api_version} composed by {}", example.display(), ty.kind);
        }
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, checkable.iter().map(|d| format!("---\n{}", to_yaml(d))).collect::<String>())
            .expect("write");
        let (ok, report) = validate(&schema_sources(), &file);
        assert!(ok, "{}: rendered output does not validate:\n{report}\n{}", example.display(), rendered.text);
    }
    assert_rbac_covers(&composed_kinds);
}

/// Every kind a composition composes is granted to Crossplane by an aggregated ClusterRole in
/// compositions/rbac.yaml (Crossplane's own kinds, its XRs and core Secrets it can already manage).
fn assert_rbac_covers(kinds: &std::collections::BTreeSet<(String, String)>) {
    let text = std::fs::read_to_string(workspace_root().join("compositions/rbac.yaml")).expect("rbac.yaml");
    let roles = parse_yaml_docs(&text);
    for role in &roles {
        assert_eq!(role["kind"], "ClusterRole");
        assert_eq!(role["metadata"]["labels"]["rbac.crossplane.io/aggregate-to-crossplane"], "true");
    }
    for (group, kind) in kinds {
        if group == "maxcloud.dev"
            || group.ends_with("crossplane.io") && !group.contains("harbor")
            || group.is_empty() && kind == "Secret"
        {
            continue;
        }
        let lower = kind.to_lowercase();
        let plural = match lower.strip_suffix('y') {
            Some(stem) => format!("{stem}ies"),
            None => format!("{lower}s"),
        };
        let granted = roles.iter().flat_map(|r| r["rules"].as_array().expect("rules")).any(|rule| {
            let has = |field: &str, want: &str| rule[field].as_array().is_some_and(|v| v.iter().any(|x| x == want));
            has("apiGroups", group) && has("resources", &plural) && has("verbs", "create") && has("verbs", "delete")
        });
        assert!(granted, "compositions/rbac.yaml grants Crossplane {group}/{plural}");
    }
}

fn annotations(v: &Value) -> &serde_json::Map<String, Value> {
    v["metadata"]["annotations"].as_object().expect("annotations")
}

#[test]
fn app_scale_to_zero_composes_one_knative_service() {
    let functions = Functions::start();
    let (r, _dir) = render_example(&functions, "apps/scale-to-zero.yaml", None);
    assert_eq!(r.names(), ["service"]);
    let svc = r.resource("service");
    assert_eq!(svc["apiVersion"], "serving.knative.dev/v1");
    assert_eq!(svc["kind"], "Service");
    assert_eq!(svc["metadata"]["name"], "hello");
    assert_eq!(svc["metadata"]["labels"]["app.kubernetes.io/managed-by"], "maxcloud");
    assert!(svc["metadata"]["labels"].get("networking.knative.dev/visibility").is_none(), "public by default");
    let template = &svc["spec"]["template"];
    assert!(template["metadata"].get("name").is_none(), "no revision name: Knative generates one");
    let pod_labels = &template["metadata"]["labels"];
    assert_eq!(
        (&pod_labels["maxcloud.dev/kind"], &pod_labels["maxcloud.dev/name"]),
        (&json!("App"), &json!("hello")),
        "the pods are metered as App hello"
    );
    assert_eq!(pod_labels["app.kubernetes.io/managed-by"], "maxcloud");
    let a = annotations(template);
    assert_eq!(a["autoscaling.knative.dev/min-scale"], "0", "scales to zero");
    assert_eq!(a["autoscaling.knative.dev/max-scale"], "10");
    assert!(!a.contains_key("autoscaling.knative.dev/target"));
    assert!(!a.keys().any(|k| k.starts_with("autoscaling.knative.dev/") && k.contains("Scale")), "kebab-case keys");
    assert_eq!(template["spec"]["containerConcurrency"], 0);
    let c = &template["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/knative/helloworld-go:latest");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["resources"]["requests"], json!({"cpu": "1", "memory": "512Mi"}));
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(c.get("env").is_none() && c.get("envFrom").is_none() && c.get("command").is_none());
    assert!(svc["spec"].get("traffic").is_none(), "all traffic to the latest revision");
    // Nothing observed yet: not ready, and the user is told why.
    assert_eq!(r.xr["status"]["ready"], false);
    assert_eq!(r.xr["status"]["message"], "waiting for the Knative Service to be created");
    let ready = r.xr["status"]["conditions"].as_array().expect("conditions").iter().find(|c| c["type"] == "Ready");
    assert_eq!(ready.expect("Ready condition")["status"], "False");
}

#[test]
fn app_traffic_split_names_revisions_and_tags_targets() {
    let functions = Functions::start();
    let (r, _dir) = render_example(&functions, "apps/traffic-split.yaml", None);
    let svc = r.resource("service");
    let template = &svc["spec"]["template"];
    assert_eq!(template["metadata"]["name"], "shop-v2", "the revision is named <app>-<revision>");
    let a = annotations(template);
    assert_eq!(a["autoscaling.knative.dev/min-scale"], "1");
    assert_eq!(a["autoscaling.knative.dev/max-scale"], "20");
    assert_eq!(a["autoscaling.knative.dev/target"], "50");
    assert_eq!(a["autoscaling.knative.dev/scale-down-delay"], "5m");
    assert_eq!(template["spec"]["containerConcurrency"], 100);
    let c = &template["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"], 3000);
    assert_eq!(c["resources"]["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
    assert_eq!(c["env"], json!([{"name": "LOG_LEVEL", "value": "info"}]));
    assert_eq!(
        svc["spec"]["traffic"],
        json!([
            {"revisionName": "shop-v1", "percent": 90, "tag": "stable"},
            {"revisionName": "shop-v2", "percent": 10, "tag": "canary"}
        ])
    );
}

#[test]
fn app_custom_domains_get_a_domain_mapping_and_a_dns_record_each() {
    let functions = Functions::start();
    let (r, dir) = render_example(&functions, "apps/custom-domains.yaml", None);
    assert_eq!(
        r.names(),
        [
            "dns-shop-acme-example",
            "dns-www-acme-example",
            "domain-shop-acme-example",
            "domain-www-acme-example",
            "service"
        ]
    );
    for domain in ["www.acme.example", "shop.acme.example"] {
        let key = domain.replace('.', "-");
        let mapping = r.resource(&format!("domain-{key}"));
        assert_eq!(mapping["apiVersion"], "serving.knative.dev/v1beta1");
        assert_eq!(mapping["kind"], "DomainMapping");
        assert_eq!(mapping["metadata"]["name"], domain);
        assert_eq!(
            mapping["spec"]["ref"],
            json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "web"})
        );
        let dns = r.resource(&format!("dns-{key}"));
        assert_eq!(dns["apiVersion"], "externaldns.k8s.io/v1alpha1");
        assert_eq!(dns["kind"], "DNSEndpoint");
        assert_eq!(dns["metadata"]["name"], format!("web-{key}"));
        assert_eq!(
            dns["spec"]["endpoints"],
            json!([{"dnsName": domain, "recordType": "CNAME", "recordTTL": 300, "targets": ["ingress.apps.maxcloud.example"]}])
        );
        assert!(!annotations(dns).contains_key("gotemplating.fn.crossplane.io/ready"), "not observed yet");
    }
    let status = &r.xr["status"];
    assert_eq!(
        status["domains"][0],
        json!({"domain": "www.acme.example", "url": "https://www.acme.example", "ready": false})
    );

    // Without the platform's ingress host the mappings are still made, the DNS records are not, and the status
    // says why.
    let catalog = catalog();
    let (ty, xr, _) = order(&catalog, &workspace_root().join("examples/apps/custom-domains.yaml"), dir.path());
    let bare = render_with(&xr, &composition_path(ty), &xrd_path(ty), &functions, None, None);
    assert_eq!(bare.names(), ["domain-shop-acme-example", "domain-www-acme-example", "service"]);
}

#[test]
fn app_internal_visibility_secret_references_and_pull_secret() {
    let functions = Functions::start();
    let (r, _dir) = render_example(&functions, "apps/internal-worker.yaml", None);
    let svc = r.resource("service");
    assert_eq!(svc["metadata"]["labels"]["networking.knative.dev/visibility"], "cluster-local");
    let spec = &svc["spec"]["template"]["spec"];
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "acme-registry-pull"}]));
    let c = &spec["containers"][0];
    assert_eq!(c["command"], json!(["/app/server"]));
    assert_eq!(c["args"], json!(["--listen", ":8080"]));
    assert_eq!(
        c["env"],
        json!([
            {"name": "DATABASE_HOST", "value": "orders-db-rw"},
            {"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orders-db-app", "key": "password"}}}
        ])
    );
    assert_eq!(c["envFrom"], json!([{"secretRef": {"name": "orders-config"}}]));
    assert!(c["image"].as_str().expect("image").contains("@sha256:"));
}

#[test]
fn app_status_comes_from_the_observed_knative_service() {
    let functions = Functions::start();
    let (first, dir) = render_example(&functions, "apps/custom-domains.yaml", None);
    // The cluster as Knative and external-dns would leave it: the Service ready, one mapping ready, one DNS
    // record seen by external-dns.
    let mut svc = first.resource("service").clone();
    svc["status"] = json!({
        "observedGeneration": 1,
        "url": "https://web.mc-acme.apps.maxcloud.example",
        "address": {"url": "http://web.mc-acme.svc.cluster.local"},
        "latestCreatedRevisionName": "web-00002",
        "latestReadyRevisionName": "web-00001",
        "traffic": [{"revisionName": "web-00001", "percent": 100, "latestRevision": true}],
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-21T08:00:00Z"}]
    });
    let mut www = first.resource("domain-www-acme-example").clone();
    www["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    let mut dns = first.resource("dns-www-acme-example").clone();
    dns["metadata"]["generation"] = json!(1);
    dns["status"] = json!({"observedGeneration": 1});
    let observed = dir.path().join("observed.yaml");
    std::fs::write(&observed, [svc, www, dns].iter().map(|d| format!("---\n{}", to_yaml(d))).collect::<String>())
        .expect("write observed");
    let (r, _dir2) = render_example(&functions, "apps/custom-domains.yaml", Some(&observed));
    let status = &r.xr["status"];
    assert_eq!(status["ready"], true);
    assert_eq!(status["failed"], false);
    assert_eq!(status["url"], "https://web.mc-acme.apps.maxcloud.example");
    assert_eq!(status["address"], "http://web.mc-acme.svc.cluster.local");
    assert_eq!(status["latestRevision"], "web-00002");
    assert_eq!(status["latestReadyRevision"], "web-00001");
    assert_eq!(status["traffic"], json!([{"revision": "web-00001", "percent": 100}]));
    assert!(status.get("message").is_none(), "no message when ready: {status}");
    assert_eq!(
        status["domains"],
        json!([
            {"domain": "www.acme.example", "url": "https://www.acme.example", "ready": true},
            {"domain": "shop.acme.example", "url": "https://shop.acme.example", "ready": false}
        ])
    );
    // Readiness per composed resource shows in the XR's Ready condition: Knative's conditions for the Service and
    // the mappings (function-auto-ready), the observed generation for DNS records (external-dns reports no
    // conditions). Ready waits for the shop domain, whose mapping and record are not done yet.
    let ready = r.xr["status"]["conditions"].as_array().expect("conditions").iter().find(|c| c["type"] == "Ready");
    let ready = ready.expect("Ready condition");
    assert_eq!(ready["status"], "False");
    let message = ready["message"].as_str().expect("message");
    assert!(message.contains("dns-shop-acme-example") && message.contains("domain-shop-acme-example"), "{message}");
    assert!(!message.contains("www") && !message.contains("service"), "{message}");
}

/// The order service and Crossplane agree on what is invalid: the catalog refuses these orders naming the field,
/// and `crossplane resource validate` (the Kubernetes validation library with the XRD's CEL rules) refuses the
/// same objects.
#[test]
fn invalid_apps_are_refused_by_the_catalog_and_by_crossplane_alike() {
    let catalog = catalog();
    let app = catalog.get("App").expect("App");
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (json!({"image": "nginx:1.27", "traffic": [{"revision": "a", "percent": 60}]}), "traffic", "add up to 100"),
        (json!({"image": "nginx:1.27", "scaling": {"minScale": 5, "maxScale": 2}}), "scaling.minScale", "minScale"),
        (json!({"image": "nginx:1.27", "visibility": "everyone"}), "visibility", ""),
        (json!({"image": "nginx:1.27", "domains": ["UPPER.example"]}), "domains[0]", ""),
    ];
    for (i, (spec, field, message)) in cases.iter().enumerate() {
        let errors = app.validate(spec).expect_err("refused by the catalog");
        assert!(errors.iter().any(|e| e.field == *field && e.message.contains(message)), "{spec}: {errors:?}");
        let object = json!({
            "apiVersion": "maxcloud.dev/v1alpha1", "kind": "App",
            "metadata": {"name": format!("bad-{i}"), "namespace": "mc-acme"},
            "spec": spec,
        });
        let file = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&file, to_yaml(&object)).expect("write");
        let (ok, report) = validate(&[xrd_path(app)], &file);
        assert!(!ok, "crossplane accepted {spec}:\n{report}");
        let field_path = format!("spec.{}", field.split('[').next().unwrap_or(field));
        assert!(report.contains(&field_path), "crossplane names {field_path}:\n{report}");
    }
}

#[test]
fn workspace_composes_app_database_and_dns_record_as_nested_services() {
    let functions = Functions::start();
    let (r, _dir) = render_example(&functions, "workspaces/nextcloud.yaml", None);
    assert_eq!(r.names(), ["app", "database", "dns"]);
    for resource in &r.composed {
        assert_eq!(resource["apiVersion"], "maxcloud.dev/v1alpha1", "only the platform's own service types");
        assert_eq!(resource["metadata"]["labels"]["maxcloud.dev/workspace"], "cloud");
    }
    let db = r.resource("database");
    assert_eq!(db["kind"], "Database");
    assert_eq!(db["metadata"]["name"], "cloud-db");
    assert_eq!(
        db["spec"],
        json!({"version": 17, "storage": "10Gi", "instances": 1, "backup": {"enabled": true}, "deletionProtection": true})
    );
    let app = r.resource("app");
    assert_eq!(app["kind"], "App");
    assert_eq!(app["metadata"]["name"], "cloud");
    assert_eq!(app["spec"]["image"], "nextcloud:31-apache");
    assert_eq!(app["spec"]["port"], 80);
    assert_eq!(app["spec"]["scaling"], json!({"minScale": 1, "maxScale": 3}));
    assert_eq!(app["spec"]["domains"], json!(["cloud.acme.apps.maxcloud.example"]));
    // Credentials reach the App as references to the Secret CloudNativePG creates, never as values.
    let secret_env = app["spec"]["secretEnv"].as_array().expect("secretEnv");
    let vars: Vec<(&str, &str)> =
        secret_env.iter().map(|e| (e["name"].as_str().unwrap(), e["key"].as_str().unwrap())).collect();
    assert_eq!(
        vars,
        [
            ("POSTGRES_DB", "dbname"),
            ("POSTGRES_HOST", "host"),
            ("POSTGRES_PASSWORD", "password"),
            ("POSTGRES_USER", "username")
        ]
    );
    assert!(secret_env.iter().all(|e| e["secretName"] == "cloud-db-app"));
    assert_eq!(
        app["spec"]["env"],
        json!([
            {"name": "NEXTCLOUD_TRUSTED_DOMAINS", "value": "cloud.acme.apps.maxcloud.example"},
            {"name": "OVERWRITEPROTOCOL", "value": "https"}
        ])
    );
    let dns = r.resource("dns");
    assert_eq!(dns["kind"], "DNSRecord");
    assert_eq!(dns["spec"], json!({"name": "cloud", "type": "CNAME", "targets": ["ingress.apps.maxcloud.example"]}));
    let status = &r.xr["status"];
    assert_eq!(status["ready"], false);
    assert_eq!(status["message"], "waiting for app, database, dns");
    assert_eq!(status["connectionSecret"], "cloud-db-app");
    assert_eq!(status["url"], "https://cloud.acme.apps.maxcloud.example");
}

#[test]
fn workspace_custom_image_on_ha_database_and_its_ready_status() {
    let functions = Functions::start();
    let (first, dir) = render_example(&functions, "workspaces/custom-ha.yaml", None);
    let db = first.resource("database");
    assert_eq!(db["spec"]["version"], 16);
    assert_eq!(db["spec"]["storage"], "50Gi");
    assert_eq!(db["spec"]["instances"], 2, "high availability = primary + replica");
    assert_eq!(db["spec"]["deletionProtection"], false, "passed through to the nested Database");
    let app = first.resource("app");
    assert_eq!(app["spec"]["image"], "registry.example.eu/acme/crm:4.2.0");
    assert_eq!(app["spec"]["port"], 8000);
    assert!(app["spec"].get("env").is_none() && app["spec"].get("resources").is_none());
    let names: Vec<&str> =
        app["spec"]["secretEnv"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["DATABASE_URL", "PGDATABASE", "PGHOST", "PGPASSWORD", "PGPORT", "PGUSER"]);
    assert_eq!(first.resource("dns")["spec"]["name"], "crm");

    // The nested services report ready (as their own compositions would): the Workspace is ready, with the
    // connection secret and DNS name the nested resources report.
    let ready = json!([{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-11-21T08:00:00Z"}]);
    let mut app = first.resource("app").clone();
    app["status"] = json!({"conditions": ready, "url": "https://crm.acme.apps.maxcloud.example", "ready": true});
    let mut db = first.resource("database").clone();
    db["status"] = json!({"conditions": ready, "connectionSecret": "sales-db-app", "ready": true});
    let mut dns = first.resource("dns").clone();
    dns["status"] = json!({"conditions": ready, "fqdn": "crm.acme.apps.maxcloud.example", "ready": true});
    let observed = dir.path().join("observed.yaml");
    std::fs::write(&observed, [app, db, dns].iter().map(|d| format!("---\n{}", to_yaml(d))).collect::<String>())
        .expect("write");
    let (r, _dir2) = render_example(&functions, "workspaces/custom-ha.yaml", Some(&observed));
    let status = &r.xr["status"];
    assert_eq!(status["ready"], true, "{status}");
    assert!(status.get("message").is_none());
    assert_eq!(status["fqdn"], "crm.acme.apps.maxcloud.example");
    assert_eq!(status["url"], "https://crm.acme.apps.maxcloud.example");
    assert_eq!(status["connectionSecret"], "sales-db-app");
    let condition = r.xr["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").cloned();
    assert_eq!(condition.expect("Ready")["status"], "True", "every nested service is ready");
}
