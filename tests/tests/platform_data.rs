//! The data services — Database (CloudNativePG), Registry (Harbor) and DNSRecord (external-dns) — checked with the
//! real tools: the catalog accepts every example and refuses bad orders naming the field, `crossplane resource
//! validate` agrees, each example renders through its composition with the real Crossplane reconciler (functions as
//! local processes), the composed resources are asserted field by field, a second render with observed resources
//! checks the status the user sees, and the output validates against the upstream CRDs.

use std::path::PathBuf;

use maxcloud_catalog::{Action, Catalog, MergePolicy};
use maxcloud_tests::platform::{crds, parse_yaml_docs, render_with, to_yaml, validate, Functions, Rendered};
use maxcloud_tests::workspace_root;
use serde_json::{json, Value};

const NAMESPACE: &str = "mc-acme";

/// The platform settings these compositions read (EnvironmentConfig `maxcloud-platform`).
const ENVIRONMENT: &str = "\
apiVersion: apiextensions.crossplane.io/v1beta1
kind: EnvironmentConfig
metadata:
  name: maxcloud-platform
data:
  zone: apps.maxcloud.example
  ingressHost: ingress.apps.maxcloud.example
  registryHost: registry.maxcloud.example
  backupDestinationPath: s3://maxcloud-backups
  backupEndpointURL: https://objects.maxcloud.example
";

fn catalog() -> Catalog {
    Catalog::load_dir(&workspace_root().join("xrds")).expect("xrds/ loads")
}

fn example(path: &str) -> Value {
    let file = workspace_root().join("examples").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A scratch directory with the XR of an example placed in the tenant namespace, the platform settings (plus
/// `extra` cluster objects) and, optionally, observed composed resources.
struct Case {
    dir: tempfile::TempDir,
    plural: &'static str,
    xr: PathBuf,
    required: PathBuf,
}

impl Case {
    fn new(plural: &'static str, example_path: &str, environment: &str, extra: &[Value]) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut xr = example(example_path);
        xr["metadata"]["namespace"] = NAMESPACE.into();
        xr["metadata"]["labels"] = json!({"maxcloud.dev/tenant": "acme", "app.kubernetes.io/managed-by": "maxcloud"});
        let xr_file = dir.path().join("xr.yaml");
        std::fs::write(&xr_file, to_yaml(&xr)).expect("write XR");
        let required = dir.path().join("required.yaml");
        let mut text = format!("---\n{environment}");
        for doc in extra {
            text.push_str(&format!("---\n{}", to_yaml(doc)));
        }
        std::fs::write(&required, text).expect("write required resources");
        Case { dir, plural, xr: xr_file, required }
    }

    fn xrd(&self) -> PathBuf {
        workspace_root().join("xrds").join(format!("{}.yaml", singular(self.plural)))
    }

    fn render(&self, functions: &Functions, observed: &[Value]) -> Rendered {
        let composition = workspace_root().join("compositions").join(format!("{}.yaml", singular(self.plural)));
        let observed_file = (!observed.is_empty()).then(|| {
            let file = self.dir.path().join("observed.yaml");
            std::fs::write(&file, observed.iter().map(|d| format!("---\n{}", to_yaml(d))).collect::<String>())
                .expect("write observed");
            file
        });
        render_with(&self.xr, &composition, &self.xrd(), functions, observed_file.as_deref(), Some(&self.required))
    }

    /// Validates the rendered XR and composed resources whose API group passes `keep` against the XRDs, the
    /// upstream CRDs and Crossplane's own schemas.
    fn validate(&self, rendered: &Rendered, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        let (checked, skipped): (Vec<&Value>, Vec<&Value>) =
            std::iter::once(&rendered.xr).chain(rendered.composed.iter()).partition(|d| keep(d));
        let file = self.dir.path().join("rendered.yaml");
        std::fs::write(&file, checked.iter().map(|d| format!("---\n{}", to_yaml(d))).collect::<String>())
            .expect("write rendered");
        let sources = vec![
            workspace_root().join("xrds"),
            crds("cloudnative-pg", "CNPG_VERSION"),
            crds("external-dns", "EXTERNAL_DNS_VERSION"),
        ];
        let (ok, report) = validate(&sources, &file);
        assert!(ok, "rendered output does not validate:\n{report}\n{}", rendered.text);
        skipped.into_iter().cloned().collect()
    }
}

fn singular(plural: &str) -> &'static str {
    match plural {
        "databases" => "database",
        "registries" => "registry",
        "dnsrecords" => "dnsrecord",
        other => panic!("not a data service: {other}"),
    }
}

fn group(doc: &Value) -> &str {
    doc["apiVersion"].as_str().and_then(|a| a.rsplit_once('/')).map_or("", |(g, _)| g)
}

/// Every composed resource: in the tenant namespace, owned by the XR, labelled for the tenant and as ours.
fn assert_common(rendered: &Rendered, kind: &str, name: &str) {
    for r in &rendered.composed {
        let m = &r["metadata"];
        assert_eq!(m["namespace"], NAMESPACE, "{r}");
        assert_eq!(m["labels"]["maxcloud.dev/tenant"], "acme", "{r}");
        assert_eq!(m["labels"]["app.kubernetes.io/managed-by"], "maxcloud", "{r}");
        assert_eq!(m["ownerReferences"][0]["kind"], kind, "{r}");
        assert_eq!(m["ownerReferences"][0]["name"], name, "{r}");
        assert_eq!(m["ownerReferences"][0]["controller"], true, "{r}");
    }
}

fn condition(xr: &Value, kind: &str) -> Value {
    xr["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or(Value::Null)
}

fn ready_condition() -> Value {
    json!([{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2024-01-01T00:00:00Z"}])
}

/// An observed composed resource: what the composition last produced plus a status, as the controller wrote it.
fn observed(rendered: &Rendered, name: &str, status: Value) -> Value {
    let mut r = rendered.resource(name).clone();
    r["status"] = status;
    r
}

// ---------------------------------------------------------------------------------------------------------------
// Catalog

#[test]
fn catalog_loads_the_data_xrds_and_accepts_every_example_with_defaults() {
    let catalog = catalog();
    let database = catalog.get("Database").expect("Database");
    let registry = catalog.get("Registry").expect("Registry");
    let dns = catalog.get("DNSRecord").expect("DNSRecord");
    assert_eq!(
        (database.plural.as_str(), registry.plural.as_str(), dns.plural.as_str()),
        ("databases", "registries", "dnsrecords")
    );
    for t in [database, registry] {
        assert_eq!(t.merge_policy(Action::Create), MergePolicy::Review, "{}", t.kind);
        assert_eq!(t.merge_policy(Action::Update), MergePolicy::Auto, "{}", t.kind);
        assert_eq!(t.merge_policy(Action::Delete), MergePolicy::Review, "{}", t.kind);
    }
    for action in [Action::Create, Action::Update, Action::Delete] {
        assert_eq!(dns.merge_policy(action), MergePolicy::Auto);
    }
    assert_eq!(
        database.ui_order,
        ["version", "storage", "instances", "backup", "deletionProtection", "resources", "parameters"]
    );
    assert_eq!(registry.ui_order, ["public", "storageQuota", "robot", "pullSecretName", "scanOnPush", "retention"]);
    assert_eq!(dns.ui_order, ["name", "type", "targets", "ttl", "zone"]);

    // Defaults of the minimal examples are what the compositions rely on.
    let db = database.validate(&example("databases/minimal.yaml")["spec"]).expect("minimal database");
    assert_eq!(
        db,
        json!({"version": 17, "storage": "10Gi", "instances": 1, "deletionProtection": true,
               "backup": {"enabled": false, "schedule": "0 0 2 * * *", "retention": "30d"},
               "resources": {"cpu": "1", "memory": "1Gi"}})
    );
    let reg = registry.validate(&example("registries/minimal.yaml")["spec"]).expect("minimal registry");
    assert_eq!(reg, json!({"public": false, "storageQuota": 10, "robot": {"permissions": "pull"}, "scanOnPush": true}));
    let rec = dns.validate(&example("dnsrecords/a-record.yaml")["spec"]).expect("A record");
    assert_eq!(rec["ttl"], 300);

    for path in [
        "databases/ha-with-backups.yaml",
        "registries/push-robot.yaml",
        "dnsrecords/aaaa-record.yaml",
        "dnsrecords/cname.yaml",
        "dnsrecords/txt-verification.yaml",
    ] {
        let doc = example(path);
        let ty = catalog.get(doc["kind"].as_str().expect("kind")).expect("type");
        let spec = ty.validate(&doc["spec"]).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        // Nothing the example sets is changed by defaulting.
        for (k, v) in doc["spec"].as_object().expect("spec") {
            assert_eq!(&spec[k], v, "{path}: {k}");
        }
    }

    // The no-downgrade / no-shrink / immutable rules are transition rules: present for the API server, not
    // evaluated on orders (which have no old object).
    let rules = |t: &maxcloud_catalog::ServiceType| t.rules().into_iter().map(|(p, r, _)| (p, r)).collect::<Vec<_>>();
    let db_rules = rules(database);
    assert!(db_rules.contains(&("version".into(), "self >= oldSelf".into())), "{db_rules:?}");
    assert!(db_rules.iter().any(|(p, r)| p == "storage" && r.contains("oldSelf")), "{db_rules:?}");
    assert!(rules(registry).contains(&("pullSecretName".into(), "self == oldSelf".into())));
}

#[test]
fn bad_data_orders_are_refused_by_the_catalog_and_by_crossplane_alike() {
    let catalog = catalog();
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("DNSRecord", json!({"name": "www", "type": "A", "targets": ["www.example.com"]}), "targets", "IPv4"),
        ("DNSRecord", json!({"name": "www", "type": "A", "targets": ["256.1.1.1"]}), "targets", "IPv4"),
        ("DNSRecord", json!({"name": "www", "type": "AAAA", "targets": ["203.0.113.10"]}), "targets", "IPv6"),
        (
            "DNSRecord",
            json!({"name": "www", "type": "CNAME", "targets": ["a.example.com", "b.example.com"]}),
            "targets",
            "exactly one",
        ),
        ("DNSRecord", json!({"name": "@", "type": "CNAME", "targets": ["a.example.com"]}), "name", "apex"),
        ("DNSRecord", json!({"name": "_x", "type": "A", "targets": ["203.0.113.10"]}), "name", "underscores"),
        ("DNSRecord", json!({"name": "www", "type": "MX", "targets": ["mail.example.com"]}), "type", ""),
        ("DNSRecord", json!({"name": "www", "type": "A", "targets": ["203.0.113.10"], "ttl": 10}), "ttl", ""),
        ("DNSRecord", json!({"name": "www", "type": "TXT", "targets": []}), "targets", ""),
        ("DNSRecord", json!({"name": "Www", "type": "A", "targets": ["203.0.113.10"]}), "name", ""),
        ("Database", json!({"version": 14}), "version", ""),
        ("Database", json!({"instances": 6}), "instances", ""),
        ("Database", json!({"storage": "10GB"}), "storage", ""),
        ("Database", json!({"backup": {"enabled": true, "schedule": "0 2 * * *"}}), "backup.schedule", ""),
        ("Database", json!({"backup": {"enabled": true, "retention": "30 days"}}), "backup.retention", ""),
        ("Registry", json!({"robot": {"permissions": "admin"}}), "robot.permissions", ""),
        ("Registry", json!({"storageQuota": 0}), "storageQuota", ""),
        ("Registry", json!({"retention": {"keepTagsMatching": "v*"}}), "retention.keepTagsMatching", "keepLast"),
        ("Registry", json!({"pullSecretName": "Not_A_Name"}), "pullSecretName", ""),
    ];
    for (i, (kind, spec, field, message)) in cases.iter().enumerate() {
        let ty = catalog.get(kind).expect("kind");
        let errors = ty.validate(spec).expect_err("refused by the catalog");
        assert!(
            errors.iter().any(|e| e.field == *field && e.message.contains(message)),
            "{kind} {spec}: want {field} ({message}), got {errors:?}"
        );
        let object = json!({
            "apiVersion": "maxcloud.dev/v1alpha1", "kind": kind,
            "metadata": {"name": format!("bad-{i}"), "namespace": NAMESPACE},
            "spec": spec,
        });
        let file = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&file, to_yaml(&object)).expect("write");
        let (ok, report) = validate(&[workspace_root().join("xrds").join(&ty.source)], &file);
        assert!(!ok, "crossplane accepted {kind} {spec}:\n{report}");
        let path = format!("spec.{}", field);
        assert!(report.contains(&path), "crossplane names {path} for {kind} {spec}:\n{report}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Database

#[test]
fn database_minimal_composes_a_protected_cnpg_cluster_and_reports_its_status() {
    let functions = Functions::start();
    let case = Case::new("databases", "databases/minimal.yaml", ENVIRONMENT, &[]);
    let rendered = case.render(&functions, &[]);
    assert_eq!(rendered.names(), ["cluster", "protect-cluster", "protect-database"]);
    assert_common(&rendered, "Database", "shop-db");

    let cluster = rendered.resource("cluster");
    assert_eq!(
        (cluster["apiVersion"].as_str(), cluster["kind"].as_str()),
        (Some("postgresql.cnpg.io/v1"), Some("Cluster"))
    );
    assert_eq!(cluster["metadata"]["name"], "shop-db");
    let spec = &cluster["spec"];
    assert_eq!(spec["instances"], 1);
    assert_eq!(
        spec["imageCatalogRef"],
        json!({"apiGroup": "postgresql.cnpg.io", "kind": "ClusterImageCatalog", "name": "maxcloud-postgresql", "major": 17})
    );
    assert!(spec.get("imageName").is_none(), "image comes from the catalog");
    assert_eq!(spec["enableSuperuserAccess"], false);
    assert_eq!(spec["storage"], json!({"size": "10Gi"}));
    assert_eq!(
        spec["resources"],
        json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    );
    assert_eq!(spec["bootstrap"], json!({"initdb": {"database": "shop_db", "owner": "shop_db"}}));
    assert_eq!(
        spec["inheritedMetadata"]["labels"],
        json!({"app.kubernetes.io/managed-by": "maxcloud", "maxcloud.dev/tenant": "acme",
               "maxcloud.dev/kind": "Database", "maxcloud.dev/name": "shop-db"}),
        "CloudNativePG puts these on the instance pods: metered as Database shop-db of acme"
    );
    assert!(spec.get("plugins").is_none() && spec.get("backup").is_none(), "no backups by default");
    assert!(spec.get("postgresql").is_none());

    // Deletion protection: Usages with a reason on the XR itself and on the Cluster.
    for (name, api_version, kind) in [
        ("protect-database", "maxcloud.dev/v1alpha1", "Database"),
        ("protect-cluster", "postgresql.cnpg.io/v1", "Cluster"),
    ] {
        let usage = rendered.resource(name);
        assert_eq!(usage["apiVersion"], "protection.crossplane.io/v1beta1");
        assert_eq!(usage["kind"], "Usage");
        assert_eq!(
            usage["spec"]["of"],
            json!({"apiVersion": api_version, "kind": kind, "resourceRef": {"name": "shop-db"}})
        );
        assert!(usage["spec"]["reason"].as_str().expect("reason").contains("deletionProtection"), "{usage}");
        assert!(usage["spec"].get("by").is_none());
    }

    let status = &rendered.xr["status"];
    assert_eq!(status["host"], "shop-db-rw.mc-acme.svc");
    assert_eq!(status["readOnlyHost"], "shop-db-ro.mc-acme.svc");
    assert_eq!(status["port"], 5432);
    assert_eq!(status["connectionSecret"], "shop-db-app");
    assert_eq!((status["database"].as_str(), status["owner"].as_str()), (Some("shop_db"), Some("shop_db")));
    assert_eq!(status["ready"], false);
    assert_eq!(condition(&rendered.xr, "Ready")["status"], "False");

    let skipped = case.validate(&rendered, |_| true);
    assert!(skipped.is_empty());

    // The operator reports the cluster healthy; Crossplane reports the Usages.
    let observed_docs = vec![
        observed(
            &rendered,
            "cluster",
            json!({
                "phase": "Cluster in healthy state", "readyInstances": 1, "instances": 1,
                "writeService": "shop-db-rw", "conditions": ready_condition(),
            }),
        ),
        observed(&rendered, "protect-database", json!({"conditions": ready_condition()})),
        observed(&rendered, "protect-cluster", json!({"conditions": ready_condition()})),
    ];
    let again = case.render(&functions, &observed_docs);
    let status = &again.xr["status"];
    assert_eq!(status["ready"], true);
    assert_eq!(status["phase"], "Cluster in healthy state");
    assert_eq!(status["readyInstances"], 1);
    assert_eq!(status["connectionSecret"], "shop-db-app");
    assert_eq!(condition(&again.xr, "Ready")["status"], "True", "{}", again.text);
    assert!(status.get("message").is_none());
    case.validate(&again, |_| true);
}

#[test]
fn database_ha_with_backups_composes_object_store_and_scheduled_backup_without_protection() {
    let functions = Functions::start();
    let case = Case::new("databases", "databases/ha-with-backups.yaml", ENVIRONMENT, &[]);
    let rendered = case.render(&functions, &[]);
    assert_eq!(
        rendered.names(),
        ["cluster", "object-store", "scheduled-backup"],
        "deletionProtection: false → no Usages"
    );
    assert_common(&rendered, "Database", "orders-db");

    let spec = &rendered.resource("cluster")["spec"];
    assert_eq!(spec["instances"], 3);
    assert_eq!(spec["imageCatalogRef"]["major"], 16);
    assert_eq!(spec["storage"]["size"], "50Gi");
    assert_eq!(spec["resources"]["requests"], json!({"cpu": "2", "memory": "4Gi"}));
    assert_eq!(spec["postgresql"]["parameters"], json!({"max_connections": "200", "shared_buffers": "1GB"}));
    assert_eq!(spec["bootstrap"]["initdb"]["database"], "orders_db");
    assert_eq!(
        spec["plugins"],
        json!([{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                "parameters": {"barmanObjectName": "orders-db-backups"}}])
    );

    let store = rendered.resource("object-store");
    assert_eq!(
        (store["apiVersion"].as_str(), store["kind"].as_str()),
        (Some("barmancloud.cnpg.io/v1"), Some("ObjectStore"))
    );
    assert_eq!(store["metadata"]["name"], "orders-db-backups");
    assert_eq!(store["spec"]["retentionPolicy"], "14d");
    let conf = &store["spec"]["configuration"];
    assert_eq!(conf["destinationPath"], "s3://maxcloud-backups/mc-acme");
    assert_eq!(conf["endpointURL"], "https://objects.maxcloud.example");
    assert_eq!(
        conf["s3Credentials"],
        json!({"accessKeyId": {"name": "maxcloud-backup-s3", "key": "ACCESS_KEY_ID"},
               "secretAccessKey": {"name": "maxcloud-backup-s3", "key": "ACCESS_SECRET_KEY"}})
    );

    let backup = rendered.resource("scheduled-backup");
    assert_eq!(
        (backup["apiVersion"].as_str(), backup["kind"].as_str()),
        (Some("postgresql.cnpg.io/v1"), Some("ScheduledBackup"))
    );
    assert_eq!(backup["metadata"]["name"], "orders-db-backup");
    assert_eq!(
        backup["spec"],
        json!({"schedule": "0 30 1 * * *", "cluster": {"name": "orders-db"}, "method": "plugin",
               "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"},
               "backupOwnerReference": "self", "immediate": true})
    );

    // The ObjectStore's CRD (plugin-barman-cloud) is not among the fetched CRDs: everything else validates.
    let skipped = case.validate(&rendered, |d| group(d) != "barmancloud.cnpg.io");
    assert_eq!(skipped.iter().map(|d| d["kind"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["ObjectStore"]);

    // Observed: healthy with replicas and a first backup.
    let observed_docs = vec![
        observed(
            &rendered,
            "cluster",
            json!({
                "phase": "Cluster in healthy state", "readyInstances": 3, "instances": 3,
                "lastSuccessfulBackup": "2024-01-02T01:30:12Z", "conditions": ready_condition(),
            }),
        ),
        observed(&rendered, "object-store", json!({})),
        observed(&rendered, "scheduled-backup", json!({"lastScheduleTime": "2024-01-02T01:30:00Z"})),
    ];
    let again = case.render(&functions, &observed_docs);
    let status = &again.xr["status"];
    assert_eq!(status["ready"], true);
    assert_eq!(status["readyInstances"], 3);
    assert_eq!(status["lastSuccessfulBackup"], "2024-01-02T01:30:12Z");
    assert_eq!(condition(&again.xr, "Ready")["status"], "True", "{}", again.text);

    // A platform without a backup store: no backup resources, and the user is told why.
    let bare = "apiVersion: apiextensions.crossplane.io/v1beta1\nkind: EnvironmentConfig\nmetadata:\n  name: maxcloud-platform\ndata:\n  zone: apps.maxcloud.example\n";
    let case = Case::new("databases", "databases/ha-with-backups.yaml", bare, &[]);
    let rendered = case.render(&functions, &[]);
    assert_eq!(rendered.names(), ["cluster"]);
    assert!(rendered.resource("cluster")["spec"].get("plugins").is_none());
    assert!(rendered.xr["status"]["message"].as_str().expect("message").contains("backupDestinationPath"));
}

// ---------------------------------------------------------------------------------------------------------------
// Registry

fn robot_connection_secret(name: &str, secret: &str) -> Value {
    use std::io::Write as _;
    // base64 of the secret, as the provider writes it (Secret data), without pulling in a crate.
    let mut out = Vec::new();
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in secret.as_bytes().chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.write_all(&[table[((n >> (18 - 6 * i)) & 63) as usize]]).expect("write");
            } else {
                out.push(b'=');
            }
        }
    }
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"attribute.secret": String::from_utf8(out).expect("ascii")},
    })
}

fn base64_decode(s: &str) -> Vec<u8> {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> =
        s.bytes().filter(|&c| c != b'=').map(|c| table.iter().position(|&t| t == c).expect("base64") as u32).collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    out
}

#[test]
fn registry_minimal_composes_project_and_pull_robot_then_the_pull_secret_from_its_credentials() {
    let functions = Functions::start();
    let case = Case::new(
        "registries",
        "registries/minimal.yaml",
        ENVIRONMENT,
        &[robot_connection_secret("images-robot", "s3cr3t-robot")],
    );
    let rendered = case.render(&functions, &[]);
    // No pull secret until the robot account exists and has credentials.
    assert_eq!(rendered.names(), ["project", "robot"]);
    assert_common(&rendered, "Registry", "images");

    let project = rendered.resource("project");
    assert_eq!(
        (project["apiVersion"].as_str(), project["kind"].as_str()),
        (Some("harbor.m.crossplane.io/v1alpha1"), Some("Project"))
    );
    assert_eq!(project["metadata"]["name"], "images");
    assert_eq!(
        project["spec"],
        json!({"forProvider": {"name": "mc-acme-images", "public": false, "storageQuota": 10,
                               "vulnerabilityScanning": true, "forceDestroy": true},
               "providerConfigRef": {"kind": "ClusterProviderConfig", "name": "default"}})
    );
    let robot = rendered.resource("robot");
    assert_eq!(
        (robot["apiVersion"].as_str(), robot["kind"].as_str()),
        (Some("robot.harbor.m.crossplane.io/v1alpha1"), Some("Account"))
    );
    assert_eq!(robot["metadata"]["name"], "images-robot");
    let fp = &robot["spec"]["forProvider"];
    assert_eq!(fp["name"], "maxcloud");
    assert_eq!(fp["level"], "project");
    assert_eq!(
        fp["permissions"],
        json!([{"kind": "project", "namespace": "mc-acme-images", "access": [{"action": "pull", "resource": "repository"}]}])
    );
    assert_eq!(robot["spec"]["writeConnectionSecretToRef"], json!({"name": "images-robot"}));

    let status = &rendered.xr["status"];
    assert_eq!(status["project"], "mc-acme-images");
    assert_eq!(status["repository"], "registry.maxcloud.example/mc-acme-images");
    assert_eq!(status["ready"], false);
    assert!(status.get("pullSecret").is_none());

    // Harbor kinds have no schema here (provider CRDs are not fetchable): validate the rest, say which were left.
    let skipped = case.validate(&rendered, |d| !group(d).contains("harbor"));
    assert_eq!(skipped.iter().map(|d| d["kind"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["Project", "Account"]);

    // The provider created both and wrote the robot's secret to images-robot (a required resource above).
    let observed_docs = vec![
        observed(&rendered, "project", json!({"atProvider": {"projectId": 7}, "conditions": ready_condition()})),
        observed(
            &rendered,
            "robot",
            json!({"atProvider": {"fullName": "robot$mc-acme-images+maxcloud"}, "conditions": ready_condition()}),
        ),
    ];
    let again = case.render(&functions, &observed_docs);
    assert_eq!(again.names(), ["project", "pull-secret", "robot"]);
    let secret = again.resource("pull-secret");
    assert_eq!((secret["apiVersion"].as_str(), secret["kind"].as_str()), (Some("v1"), Some("Secret")));
    assert_eq!(secret["metadata"]["name"], "images-pull");
    assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let config: Value =
        serde_json::from_slice(&base64_decode(secret["data"][".dockerconfigjson"].as_str().expect("data")))
            .expect("dockerconfigjson is JSON");
    let auth = &config["auths"]["registry.maxcloud.example"];
    assert_eq!(auth["username"], "robot$mc-acme-images+maxcloud");
    assert_eq!(auth["password"], "s3cr3t-robot");
    assert_eq!(
        String::from_utf8(base64_decode(auth["auth"].as_str().expect("auth"))).expect("utf-8"),
        "robot$mc-acme-images+maxcloud:s3cr3t-robot"
    );
    let status = &again.xr["status"];
    assert_eq!(status["pullSecret"], "images-pull");
    assert_eq!(status["robotAccount"], "robot$mc-acme-images+maxcloud");
    assert_eq!(status["ready"], true);
    assert_eq!(condition(&again.xr, "Ready")["status"], "True", "{}", again.text);
    let skipped = case.validate(&again, |d| !group(d).contains("harbor"));
    assert_eq!(skipped.len(), 2);
}

#[test]
fn registry_push_robot_with_public_project_named_secret_and_tag_retention() {
    let functions = Functions::start();
    let case = Case::new(
        "registries",
        "registries/push-robot.yaml",
        ENVIRONMENT,
        &[robot_connection_secret("ci-robot", "pushy")],
    );
    let rendered = case.render(&functions, &[]);
    assert_eq!(rendered.names(), ["project", "retention", "robot"]);
    assert_common(&rendered, "Registry", "ci");
    let fp = &rendered.resource("project")["spec"]["forProvider"];
    assert_eq!((fp["name"].as_str(), fp["public"].as_bool()), (Some("mc-acme-ci"), Some(true)));
    assert_eq!((fp["storageQuota"].as_i64(), fp["vulnerabilityScanning"].as_bool()), (Some(50), Some(false)));
    assert_eq!(
        rendered.resource("robot")["spec"]["forProvider"]["permissions"][0]["access"],
        json!([{"action": "pull", "resource": "repository"}, {"action": "push", "resource": "repository"}])
    );
    let retention = rendered.resource("retention");
    assert_eq!(
        (retention["apiVersion"].as_str(), retention["kind"].as_str()),
        (Some("retention.harbor.m.crossplane.io/v1alpha1"), Some("Policy"))
    );
    assert_eq!(
        retention["spec"]["forProvider"],
        json!({"scopeRef": {"name": "ci"}, "schedule": "Daily", "rule": [
            {"repoMatching": "**", "tagMatching": "**", "mostRecentlyPushed": 20, "untaggedArtifacts": true},
            {"repoMatching": "**", "tagMatching": "v*", "alwaysRetain": true},
        ]})
    );
    let observed_docs = vec![
        observed(&rendered, "project", json!({"conditions": ready_condition()})),
        observed(
            &rendered,
            "robot",
            json!({"atProvider": {"fullName": "robot$mc-acme-ci+maxcloud"}, "conditions": ready_condition()}),
        ),
        observed(&rendered, "retention", json!({"conditions": ready_condition()})),
    ];
    let again = case.render(&functions, &observed_docs);
    assert_eq!(again.resource("pull-secret")["metadata"]["name"], "ci-registry-credentials");
    assert_eq!(again.xr["status"]["pullSecret"], "ci-registry-credentials");
    assert_eq!(again.xr["status"]["ready"], true);
    let skipped = case.validate(&again, |d| !group(d).contains("harbor"));
    assert_eq!(skipped.len(), 3, "Project, Account and Policy are checked by the assertions above");
}

// ---------------------------------------------------------------------------------------------------------------
// DNSRecord

#[test]
fn dns_records_compose_one_dns_endpoint_in_the_tenant_subdomain_or_a_verified_zone() {
    let functions = Functions::start();
    let cases = [
        (
            "dnsrecords/a-record.yaml",
            "www",
            "www.acme.apps.maxcloud.example",
            "A",
            json!(["203.0.113.10", "203.0.113.11"]),
            300,
        ),
        ("dnsrecords/aaaa-record.yaml", "apex-v6", "acme.apps.maxcloud.example", "AAAA", json!(["2001:db8::10"]), 3600),
        (
            "dnsrecords/cname.yaml",
            "shop-cname",
            "shop.example.com",
            "CNAME",
            json!(["shop.acme.apps.maxcloud.dev"]),
            300,
        ),
        (
            "dnsrecords/txt-verification.yaml",
            "domain-verification",
            "_verify.example.com",
            "TXT",
            json!(["maxcloud-verification=3f6c1d2e9a"]),
            60,
        ),
    ];
    for (path, name, fqdn, record_type, targets, ttl) in cases {
        let case = Case::new("dnsrecords", path, ENVIRONMENT, &[]);
        let rendered = case.render(&functions, &[]);
        assert_eq!(rendered.names(), ["endpoint"], "{path}");
        assert_common(&rendered, "DNSRecord", name);
        let endpoint = rendered.resource("endpoint");
        assert_eq!(
            (endpoint["apiVersion"].as_str(), endpoint["kind"].as_str()),
            (Some("externaldns.k8s.io/v1alpha1"), Some("DNSEndpoint"))
        );
        assert_eq!(endpoint["metadata"]["name"], name);
        assert_eq!(
            endpoint["spec"],
            json!({"endpoints": [{"dnsName": fqdn, "recordType": record_type, "recordTTL": ttl, "targets": targets}]}),
            "{path}"
        );
        assert_eq!(rendered.xr["status"]["fqdn"], fqdn);
        assert_eq!(rendered.xr["status"]["ready"], false);
        case.validate(&rendered, |_| true);

        // external-dns has seen generation 1 (it sets no conditions).
        let mut seen = observed(&rendered, "endpoint", json!({"observedGeneration": 1}));
        seen["metadata"]["generation"] = 1.into();
        let again = case.render(&functions, &[seen.clone()]);
        assert_eq!(again.xr["status"]["ready"], true, "{path}");
        assert_eq!(condition(&again.xr, "Ready")["status"], "True", "{path}: {}", again.text);
        // ...but not a newer generation yet.
        seen["metadata"]["generation"] = 2.into();
        let later = case.render(&functions, &[seen]);
        assert_eq!(later.xr["status"]["ready"], false, "{path}");
        assert_eq!(condition(&later.xr, "Ready")["status"], "False", "{path}");
    }

    // Without a platform zone, a record in it cannot be placed: nothing is composed, the status says why.
    let bare = "apiVersion: apiextensions.crossplane.io/v1beta1\nkind: EnvironmentConfig\nmetadata:\n  name: maxcloud-platform\ndata: {}\n";
    let case = Case::new("dnsrecords", "dnsrecords/a-record.yaml", bare, &[]);
    let rendered = case.render(&functions, &[]);
    assert!(rendered.composed.is_empty());
    assert!(rendered.xr["status"]["message"].as_str().expect("message").contains("zone"));
}

#[test]
fn rendered_data_examples_parse_as_yaml_documents() {
    // Guard for the fixtures above: every example is one XR without a namespace (tests and tenants place it).
    for dir in ["databases", "registries", "dnsrecords"] {
        let path = workspace_root().join("examples").join(dir);
        for entry in std::fs::read_dir(&path).expect("examples dir") {
            let file = entry.expect("entry").path();
            let docs = parse_yaml_docs(&std::fs::read_to_string(&file).expect("read"));
            assert_eq!(docs.len(), 1, "{}", file.display());
            assert_eq!(docs[0]["apiVersion"], "maxcloud.dev/v1alpha1");
            assert!(docs[0]["metadata"].get("namespace").is_none(), "{}", file.display());
        }
    }
}
