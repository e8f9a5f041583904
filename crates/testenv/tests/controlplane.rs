//! The test control plane comes up, enforces RBAC, serves CRDs, survives an API-server restart, and garbage
//! collects owned objects (kube-controller-manager).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use maxcloud_testenv::ControlPlane;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn control_plane_starts_enforces_rbac_and_survives_a_restart() {
    let mut cp = ControlPlane::start().await.expect("control plane starts");
    eprintln!("control plane ready in {:?}; RSS (KiB): {:?}", cp.startup, cp.rss_kib());
    assert_eq!(cp.rss_kib().len(), 3, "etcd, kube-apiserver and kube-controller-manager run");
    let client = cp.client().await.expect("client");

    // CRDs apply and serve, then objects of them.
    cp.apply_yaml(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.dev
spec:
  group: example.dev
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer, minimum: 1}
---
apiVersion: v1
kind: Namespace
metadata: {name: mc-acme}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: tenant, namespace: mc-acme}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: widgets, namespace: mc-acme}
rules:
  - apiGroups: [example.dev]
    resources: [widgets]
    verbs: [get, list, create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: widgets, namespace: mc-acme}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: widgets}
subjects:
  - {kind: ServiceAccount, name: tenant, namespace: mc-acme}
---
apiVersion: example.dev/v1
kind: Widget
metadata: {name: w1, namespace: mc-acme}
spec: {size: 3}
"#,
    )
    .await
    .expect("apply");

    // The schema is enforced by the real API server.
    let bad = cp.apply(vec![json!({
        "apiVersion": "example.dev/v1", "kind": "Widget",
        "metadata": {"name": "w2", "namespace": "mc-acme"}, "spec": {"size": 0}
    })]);
    let err = bad.await.expect_err("size 0 is refused").to_string();
    assert!(err.contains("spec.size"), "{err}");

    // RBAC: the tenant's service account may read widgets in its namespace, nothing else.
    let tenant = cp.client_as("system:serviceaccount:mc-acme:tenant").await.expect("impersonating client");
    let cms: Api<ConfigMap> = Api::namespaced(tenant.clone(), "mc-acme");
    let denied = cms.list(&ListParams::default()).await.expect_err("configmaps are not granted");
    assert!(denied.to_string().contains("forbidden"), "{denied}");
    let other: Api<ConfigMap> = Api::namespaced(tenant, "default");
    assert!(other.list(&ListParams::default()).await.is_err());

    // The kube-controller-manager garbage-collects owned objects.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "mc-acme");
    let owner = cms
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap())
        .await
        .expect("owner");
    let uid = owner.metadata.uid.clone().expect("uid");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "owned", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
        ]}}))
        .unwrap(),
    )
    .await
    .expect("owned");
    cms.delete("owner", &DeleteParams::default()).await.expect("delete owner");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cms.get_opt("owned").await.expect("get").is_some() {
        assert!(
            Instant::now() < deadline,
            "owned object not garbage-collected:\n{}",
            cp.log("kube-controller-manager")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A restart of the API server keeps the data (etcd) and the same address.
    cp.restart_apiserver().await.expect("restart");
    let client = cp.client().await.expect("client");
    let namespaces: Api<Namespace> = Api::all(client);
    assert!(namespaces.get_opt("mc-acme").await.expect("get").is_some());
}
