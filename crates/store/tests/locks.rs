//! `Store::lock`: on PostgreSQL a lock shared by every process of the database — a second holder waits until the
//! first releases it, or until the first is dropped unreleased (its connection is closed, and PostgreSQL drops the
//! session's locks); other names do not wait. PostgreSQL comes from `MAXCLOUD_TEST_POSTGRES_URL` like the store
//! suite. On SQLite (one process per store) it locks nothing.
//!
//! And one lock order for the transactions that write order events: accepting a delete (the resource row, then the
//! event counter) while the worker records the merge of the resource's create (the counter, then the resource row)
//! used to deadlock on PostgreSQL.

mod common;

use std::time::Duration;

use maxcloud_store::Outcome;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread")]
async fn accepting_and_merging_orders_of_one_resource_do_not_deadlock() {
    let store = common::postgres().await.store;
    let reg = store.register("a@example.com", "Acme", common::slug("acme"), common::key("a")).await.unwrap();
    let tenant = reg.tenant.id.clone();
    for i in 0..40 {
        let name = format!("app-{i}");
        let created = store.accept_order(common::new_order(&tenant, "create", &name)).await.unwrap().order().clone();
        let pr = common::pr(&created.id, &"0".repeat(40));
        let merged = Outcome::Merged { order: created, pr, merge_commit: "1".repeat(40), message: None };
        let (merging, deleting) = tokio::join!(
            store.record_outcomes(vec![merged]),
            store.accept_order(common::new_order(&tenant, "delete", &name)),
        );
        merging.unwrap_or_else(|e| panic!("{name}: merge: {e}"));
        deleting.unwrap_or_else(|e| panic!("{name}: delete: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_locks_are_shared_and_released_on_drop() {
    let store = common::postgres().await.store;
    let first = store.lock("maxcloud-quota/t1").await.unwrap();
    // Another name is free.
    let other = timeout(Duration::from_secs(5), store.lock("maxcloud-quota/t2")).await.expect("another name");
    other.unwrap().release().await;
    // The same name waits for the release…
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.lock("maxcloud-quota/t1").await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the second holder waits");
    first.release().await;
    let second = timeout(Duration::from_secs(5), waiting).await.expect("granted after the release").unwrap();
    // …and for a holder dropped without release (a cancelled request).
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.lock("maxcloud-quota/t1").await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the third holder waits");
    drop(second);
    let third = timeout(Duration::from_secs(5), waiting).await.expect("granted after the drop").unwrap();
    third.release().await;
    // Released locks leave the pool usable.
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_locks_nothing() {
    let store = common::sqlite().await.store;
    let a = store.lock("x").await.unwrap();
    let b = timeout(Duration::from_secs(5), store.lock("x")).await.expect("no wait on SQLite").unwrap();
    a.release().await;
    b.release().await;
}
