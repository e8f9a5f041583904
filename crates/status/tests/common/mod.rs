//! What the aggregator suites share: the order service's store (SQLite in `dir`) with tenant `acme` registered.

use maxcloud_store::{NewKey, Store};

/// The store, migrated, and the id of tenant `acme`.
pub async fn store_with_acme(dir: &std::path::Path) -> (Store, String) {
    let store = Store::connect(&format!("sqlite://{}/s.db", dir.display())).await.expect("store");
    store.migrate().await.expect("migrate");
    let key = NewKey { name: "k".into(), prefix: "mc_k".into(), hash: "h".into() };
    let reg = store.register("ops@example.com", "Acme", |_| "acme".into(), key).await.expect("register acme");
    (store, reg.tenant.id)
}
