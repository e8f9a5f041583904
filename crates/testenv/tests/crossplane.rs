//! Live Crossplane: Crossplane core v2.4.0 and the platform's composition functions compose the platform's XRs
//! in the test control plane. An App composes its Knative Service, DomainMapping and DNSEndpoint and becomes
//! ready once they report ready (their controllers do not run here: the test sets their status as they
//! would); a Database composes its CloudNativePG Cluster and is protected from deletion by Crossplane's Usage
//! webhook; a Workspace composes nested App, Database and DNSRecord XRs, which compose in turn.

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::Client;
use maxcloud_testenv::crossplane::{api, condition_true};
use maxcloud_testenv::process::tail;
use maxcloud_testenv::{ControlPlane, Crossplane};
use serde_json::{json, Value};

const NS: &str = "mc-acme";
const TIMEOUT: Duration = Duration::from_secs(90);

struct Env {
    cp: ControlPlane,
    xp: Crossplane,
    client: Client,
}

fn value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).expect("object as JSON")
}

impl Env {
    fn api(&self, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        api(&self.client, api_version, kind, plural, Some(NS))
    }

    fn xr_api(&self, kind: &str, plural: &str) -> Api<DynamicObject> {
        self.api("maxcloud.dev/v1alpha1", kind, plural)
    }

    /// What Crossplane reports about every XR of the tenant namespace, and the tail of its log: the context of
    /// a failed wait.
    async fn diagnosis(&self) -> String {
        let mut out = String::new();
        for (kind, plural) in
            [("App", "apps"), ("Database", "databases"), ("DNSRecord", "dnsrecords"), ("Workspace", "workspaces")]
        {
            if let Ok(list) = self.xr_api(kind, plural).list(&Default::default()).await {
                for xr in list.items {
                    let v = value(&xr);
                    out.push_str(&format!(
                        "{kind} {}: status {}\n",
                        v["metadata"]["name"].as_str().unwrap_or_default(),
                        v["status"]
                    ));
                }
            }
        }
        format!("{out}crossplane.log (tail):\n{}", tail(&self.xp.log("crossplane"), 60))
    }

    /// Waits until `name` exists and `ok` holds for it; panics with what was last seen and the diagnosis.
    async fn wait(&self, api: &Api<DynamicObject>, what: &str, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let seen = api.get_opt(name).await.unwrap_or_else(|e| panic!("get {what} {name}: {e}"));
            if let Some(obj) = &seen {
                let v = value(obj);
                if ok(&v) {
                    return v;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} {name} not as expected after {TIMEOUT:?}; last seen: {}\n{}",
                    seen.map_or("nothing".to_string(), |o| serde_json::to_string_pretty(&value(&o))
                        .unwrap_or_default()),
                    self.diagnosis().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn status_patch(&self, api: &Api<DynamicObject>, name: &str, status: Value) {
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({ "status": status })))
            .await
            .unwrap_or_else(|e| panic!("status patch of {name}: {e}"));
    }
}

/// Whether `obj` is controlled by the XR `xr` (Crossplane sets a controller owner reference on what it composes).
fn owned_by(obj: &Value, xr: &Value) -> bool {
    obj["metadata"]["ownerReferences"].as_array().is_some_and(|refs| {
        refs.iter().any(|r| r["uid"] == xr["metadata"]["uid"] && r["kind"] == xr["kind"] && r["controller"] == true)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn crossplane_composes_apps_databases_and_workspaces() {
    let cp = ControlPlane::start().await.expect("control plane starts");
    let started = Instant::now();
    let xp = Crossplane::start(&cp).await.unwrap_or_else(|e| panic!("Crossplane starts: {e}"));
    eprintln!("crossplane started in {:?} (control plane: {:?})", xp.startup, cp.startup);
    xp.install_platform(&cp).await.unwrap_or_else(|e| panic!("platform installs: {e}"));
    eprintln!("platform installed after {:?}", started.elapsed());
    let client = cp.client().await.expect("client");
    let env = Env { cp, xp, client };
    env.cp.apply_yaml(&format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")).await.expect("namespace");

    // --- App: composed by Crossplane into a Knative Service, a DomainMapping and a DNSEndpoint.
    let t = Instant::now();
    env.cp
        .apply_yaml(&format!(
            r#"
apiVersion: maxcloud.dev/v1alpha1
kind: App
metadata:
  name: web
  namespace: {NS}
  labels: {{maxcloud.dev/tenant: acme}}
spec:
  image: nginx:1.27
  port: 80
  scaling: {{minScale: 1, maxScale: 3}}
  domains: [www.acme.example]
"#
        ))
        .await
        .expect("App applies");
    let apps = env.xr_api("App", "apps");
    let app = env.wait(&apps, "App", "web", |v| v["metadata"]["uid"].is_string()).await;
    let services = env.api("serving.knative.dev/v1", "Service", "services");
    let ksvc = env.wait(&services, "Knative Service", "web", |_| true).await;
    eprintln!("App composed its Knative Service in {:?}", t.elapsed());
    let template = &ksvc["spec"]["template"];
    assert_eq!(template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"], "1", "min-scale: {ksvc}");
    assert_eq!(template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"], "3", "max-scale: {ksvc}");
    assert_eq!(template["spec"]["containers"][0]["image"], "nginx:1.27", "image: {ksvc}");
    assert_eq!(template["spec"]["containers"][0]["ports"][0]["containerPort"], 80, "port: {ksvc}");
    assert_eq!(ksvc["metadata"]["labels"]["maxcloud.dev/tenant"], "acme", "tenant label: {ksvc}");
    assert!(owned_by(&ksvc, &app), "the Knative Service is controlled by the App XR: {ksvc}");

    let mappings = env.api("serving.knative.dev/v1beta1", "DomainMapping", "domainmappings");
    let mapping = env.wait(&mappings, "DomainMapping", "www.acme.example", |_| true).await;
    assert_eq!(mapping["spec"]["ref"]["name"], "web", "DomainMapping points at the Service: {mapping}");
    assert_eq!(mapping["spec"]["ref"]["kind"], "Service", "{mapping}");
    assert!(owned_by(&mapping, &app), "the DomainMapping is controlled by the App XR: {mapping}");
    let endpoints = env.api("externaldns.k8s.io/v1alpha1", "DNSEndpoint", "dnsendpoints");
    let dns = env.wait(&endpoints, "DNSEndpoint", "web-www-acme-example", |_| true).await;
    assert_eq!(
        dns["spec"]["endpoints"][0],
        json!({"dnsName": "www.acme.example", "recordType": "CNAME", "recordTTL": 300,
               "targets": ["ingress.apps.maxcloud.example"]}),
        "CNAME to the platform's ingress (EnvironmentConfig): {dns}"
    );
    assert!(owned_by(&dns, &app), "the DNSEndpoint is controlled by the App XR: {dns}");

    // Not ready while Knative has not reported.
    let app = env.wait(&apps, "App", "web", |v| v["status"]["ready"] == false).await;
    assert!(!condition_true(&app, "Ready"), "App is not Ready before its Service is: {app}");

    // Knative, the DomainMapping controller and external-dns report, as they would.
    let now = "2026-01-01T00:00:00Z";
    let ready = |extra: &str| {
        let mut c = vec![json!({"type": "Ready", "status": "True", "lastTransitionTime": now})];
        if !extra.is_empty() {
            for t in extra.split(',') {
                c.push(json!({"type": t, "status": "True", "lastTransitionTime": now}));
            }
        }
        c
    };
    let url = "https://web.acme.apps.maxcloud.example";
    env.status_patch(
        &services,
        "web",
        json!({
            "observedGeneration": ksvc["metadata"]["generation"],
            "conditions": ready("ConfigurationsReady,RoutesReady"),
            "url": url,
            "address": {"url": "http://web.mc-acme.svc.cluster.local"},
            "latestCreatedRevisionName": "web-00001",
            "latestReadyRevisionName": "web-00001",
            "traffic": [{"revisionName": "web-00001", "latestRevision": true, "percent": 100}],
        }),
    )
    .await;
    env.status_patch(
        &mappings,
        "www.acme.example",
        json!({
            "observedGeneration": mapping["metadata"]["generation"],
            "conditions": ready("CertificateProvisioned,DomainClaimed,IngressReady,ReferenceResolved"),
            "url": "https://www.acme.example",
        }),
    )
    .await;
    env.status_patch(&endpoints, "web-www-acme-example", json!({"observedGeneration": dns["metadata"]["generation"]}))
        .await;
    let t = Instant::now();
    let app = env
        .wait(&apps, "App", "web", |v| {
            v["status"]["ready"] == true && v["status"]["url"] == url && condition_true(v, "Ready")
        })
        .await;
    eprintln!("App Ready {:?} after its resources reported", t.elapsed());
    assert_eq!(app["status"]["latestReadyRevision"], "web-00001", "{app}");
    assert_eq!(app["status"]["domains"][0]["ready"], true, "domain ready: {app}");
    assert!(condition_true(&app, "Synced"), "App Synced: {app}");

    // --- Database with deletion protection: a CloudNativePG Cluster, and the Usage webhook refuses the delete.
    env.cp
        .apply_yaml(&format!(
            r#"
apiVersion: maxcloud.dev/v1alpha1
kind: Database
metadata:
  name: shop-db
  namespace: {NS}
  labels: {{maxcloud.dev/tenant: acme}}
spec:
  deletionProtection: true
"#
        ))
        .await
        .expect("Database applies");
    let databases = env.xr_api("Database", "databases");
    let clusters = env.api("postgresql.cnpg.io/v1", "Cluster", "clusters");
    let cluster = env.wait(&clusters, "CNPG Cluster", "shop-db", |_| true).await;
    let db = env.wait(&databases, "Database", "shop-db", |_| true).await;
    assert!(owned_by(&cluster, &db), "the Cluster is controlled by the Database XR: {cluster}");
    assert_eq!(cluster["spec"]["imageCatalogRef"]["name"], "maxcloud-postgresql", "{cluster}");
    assert_eq!(cluster["spec"]["imageCatalogRef"]["major"], 17, "{cluster}");
    assert_eq!(cluster["spec"]["bootstrap"]["initdb"]["database"], "shop_db", "{cluster}");
    // The Usage controller marks what is in use; from then on the webhook guards it.
    let db = env
        .wait(&databases, "Database", "shop-db", |v| v["metadata"]["labels"]["crossplane.io/in-use"] == "true")
        .await;
    assert_eq!(db["status"]["connectionSecret"], "shop-db-app", "{db}");
    match databases.delete("shop-db", &DeleteParams::default()).await {
        Ok(_) => panic!("deleting a protected Database was allowed\n{}", env.diagnosis().await),
        Err(kube::Error::Api(status)) => {
            let text = format!("{status:?}");
            assert!(
                text.contains("nousages.protection.crossplane.io") && text.contains("deletionProtection is on"),
                "refused by the Usage webhook with the Usage's reason: {text}"
            );
        }
        Err(e) => panic!("delete of the protected Database: unexpected error {e}"),
    }
    let db = databases.get("shop-db").await.expect("the Database is still there");
    assert!(db.metadata.deletion_timestamp.is_none(), "the Database is not being deleted: {:?}", db.metadata);
    // The Cluster has a Usage of its own; the webhook guards it once the Usage controller has marked it in use.
    env.wait(&clusters, "CNPG Cluster", "shop-db", |v| v["metadata"]["labels"]["crossplane.io/in-use"] == "true").await;
    let cluster_delete = clusters.delete("shop-db", &DeleteParams::default()).await;
    assert!(cluster_delete.is_err(), "deleting the protected CNPG Cluster directly is refused too");

    // --- Workspace: nested App, Database and DNSRecord XRs, each composed in turn.
    env.cp
        .apply_yaml(&format!(
            r#"
apiVersion: maxcloud.dev/v1alpha1
kind: Workspace
metadata:
  name: cloud
  namespace: {NS}
  labels: {{maxcloud.dev/tenant: acme}}
spec:
  application: nextcloud
  # Backups compose a Barman Cloud ObjectStore, whose CRD (plugin-barman-cloud) the test tools do not fetch:
  # Crossplane refuses to compose any resource of an XR while one kind is unknown to the API server.
  database: {{backups: false}}
"#
        ))
        .await
        .expect("Workspace applies");
    let workspace = env
        .wait(&env.xr_api("Workspace", "workspaces"), "Workspace", "cloud", |v| v["metadata"]["uid"].is_string())
        .await;
    let nested_app = env.wait(&apps, "nested App", "cloud", |_| true).await;
    let nested_db = env.wait(&databases, "nested Database", "cloud-db", |_| true).await;
    let records = env.xr_api("DNSRecord", "dnsrecords");
    let nested_dns = env.wait(&records, "nested DNSRecord", "cloud", |_| true).await;
    for (what, nested) in [("App", &nested_app), ("Database", &nested_db), ("DNSRecord", &nested_dns)] {
        assert!(owned_by(nested, &workspace), "the nested {what} is controlled by the Workspace: {nested}");
    }
    assert_eq!(nested_app["spec"]["domains"][0], "cloud.acme.apps.maxcloud.example", "{nested_app}");
    let secret_env = nested_app["spec"]["secretEnv"].as_array().expect("secretEnv");
    assert!(
        secret_env.iter().all(|e| e["secretName"] == "cloud-db-app"),
        "database credentials only as references to the Database's secret: {nested_app}"
    );
    // The nested XRs compose in turn.
    let nested_ksvc = env.wait(&services, "Knative Service of the nested App", "cloud", |_| true).await;
    assert!(owned_by(&nested_ksvc, &nested_app), "{nested_ksvc}");
    assert_eq!(
        nested_ksvc["spec"]["template"]["spec"]["containers"][0]["image"], "nextcloud:31-apache",
        "{nested_ksvc}"
    );
    let nested_cluster = env.wait(&clusters, "CNPG Cluster of the nested Database", "cloud-db", |_| true).await;
    assert!(owned_by(&nested_cluster, &nested_db), "{nested_cluster}");
    let nested_endpoint = env.wait(&endpoints, "DNSEndpoint of the nested DNSRecord", "cloud", |_| true).await;
    assert!(owned_by(&nested_endpoint, &nested_dns), "{nested_endpoint}");
    assert_eq!(
        nested_endpoint["spec"]["endpoints"][0]["dnsName"], "cloud.acme.apps.maxcloud.example",
        "{nested_endpoint}"
    );
    let workspace = env
        .wait(&env.xr_api("Workspace", "workspaces"), "Workspace", "cloud", |v| {
            v["status"]["database"] == "cloud-db" && v["status"]["fqdn"] == "cloud.acme.apps.maxcloud.example"
        })
        .await;
    assert_eq!(workspace["status"]["ready"], false, "not ready while its parts are not: {workspace}");

    let mut xp = env.xp;
    xp.check_running().unwrap_or_else(|e| panic!("{e}\n{}", tail(&xp.log("crossplane"), 40)));
    for (name, kib) in xp.rss_kib() {
        eprintln!("VmRSS {name}: {} MiB", kib / 1024);
    }
}
