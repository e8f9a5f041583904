//! The order workflow in-process: a real SQLite store, real tenant repos, the real worker.

use std::path::Path;
use std::sync::Arc;

use maxcloud_catalog::{Action, Catalog, ResourceName};
use maxcloud_gitops::Repos;
use maxcloud_orders::{OrderError, OrderService, PlaceOrder, WorkerConfig};
use maxcloud_store::{NewKey, Store, Tenant};
use serde_json::json;

struct Env {
    _dir: tempfile::TempDir,
    service: OrderService,
    store: Store,
    repos: Repos,
    tenant: Tenant,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await.unwrap();
    store.migrate().await.unwrap();
    let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xrds")).unwrap();
    let repos = Repos::new(dir.path().join("repos"));
    let service = OrderService::new(store.clone(), Arc::new(catalog), Arc::new(repos.clone()), WorkerConfig::default());
    let key = NewKey { name: "k".into(), prefix: "mc_k".into(), hash: "h".into() };
    let reg = store.register("a@example.com", "Acme", |n| format!("acme{n}"), key).await.unwrap();
    service.init_tenant_repo(&reg.tenant).await.unwrap();
    Env { _dir: dir, service, store, repos, tenant: reg.tenant }
}

fn order(env: &Env, action: Action, name: &str, params: serde_json::Value) -> PlaceOrder {
    PlaceOrder {
        tenant: env.tenant.clone(),
        action,
        kind: "apps".into(),
        name: ResourceName::parse(name).unwrap(),
        parameters: params,
        requester: "a@example.com".into(),
        idempotency_key: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_are_merged_with_defaults_and_one_commit_each() {
    let env = env().await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let placed = env
            .service
            .place(order(&env, Action::Create, &format!("web-{i}"), json!({"image": "nginx"})))
            .await
            .unwrap();
        assert!(placed.created);
        assert_eq!(placed.order.kind, "App", "kind resolved from the plural");
        ids.push(placed.order.id);
    }
    env.service.idle().await;
    for id in &ids {
        assert_eq!(env.store.order(&env.tenant.id, id).await.unwrap().unwrap().state, "merged");
    }
    let file = env.repos.read_main_file(&env.tenant.slug, "apps/web-3.yaml").unwrap().unwrap();
    let text = String::from_utf8(file).unwrap();
    assert!(text.contains("maxScale: 10") && text.contains("port: 8080"), "defaults are in the file: {text}");
    assert_eq!(env.repos.list_main_files(&env.tenant.slug, "apps").unwrap().len(), 10);

    // Re-ordering the same parameters still records which order last touched the resource.
    let same = env.service.place(order(&env, Action::Update, "web-3", json!({"image": "nginx"}))).await.unwrap();
    env.service.idle().await;
    assert_eq!(env.store.order(&env.tenant.id, &same.order.id).await.unwrap().unwrap().state, "merged");
    let text =
        String::from_utf8(env.repos.read_main_file(&env.tenant.slug, "apps/web-3.yaml").unwrap().unwrap()).unwrap();
    assert!(text.contains(&format!("maxcloud.dev/order-id: {}", same.order.id)), "{text}");

    // A real update and a delete go through.
    let upd = env.service.place(order(&env, Action::Update, "web-3", json!({"image": "nginx:1.27"}))).await.unwrap();
    let del = env.service.place(order(&env, Action::Delete, "web-4", json!(null))).await.unwrap();
    env.service.idle().await;
    let u = env.store.order(&env.tenant.id, &upd.order.id).await.unwrap().unwrap();
    assert_eq!(u.state, "merged", "{:?}", u.error);
    assert_eq!(env.store.order(&env.tenant.id, &del.order.id).await.unwrap().unwrap().state, "merged");
    let text =
        String::from_utf8(env.repos.read_main_file(&env.tenant.slug, "apps/web-3.yaml").unwrap().unwrap()).unwrap();
    assert!(text.contains("nginx:1.27"));
    assert!(env.repos.read_main_file(&env.tenant.slug, "apps/web-4.yaml").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_orders_are_refused_before_the_store() {
    let env = env().await;
    let err = env
        .service
        .place(order(&env, Action::Create, "web", json!({"image": "nginx", "scaling": {"minScale": 3, "maxScale": 2}})))
        .await
        .unwrap_err();
    match err {
        OrderError::Invalid(errors) => assert_eq!(errors[0].field, "scaling.minScale"),
        other => panic!("{other:?}"),
    }
    let mut unknown = order(&env, Action::Create, "web", json!({}));
    unknown.kind = "Mainframe".into();
    assert!(matches!(env.service.place(unknown).await.unwrap_err(), OrderError::UnknownKind(_)));
    let counts = env.store.table_counts().await.unwrap();
    assert_eq!((counts["orders"], counts["resources"]), (0, 0));
}
