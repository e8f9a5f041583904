//! What every store test file shares: a fresh store on SQLite (a temporary file) or PostgreSQL (a database of its
//! own on `MAXCLOUD_TEST_POSTGRES_URL`, an admin URL such as `postgres://postgres@127.0.0.1:5432/postgres`, which
//! `scripts/test.sh` starts; without it the PostgreSQL half fails loudly instead of passing silently), and
//! `on_both!`, which runs each named test on both.

#![allow(dead_code)] // each test file uses its own part

use maxcloud_store::{NewKey, NewOrder, NewPullRequest, Store};
use sqlx::{Connection, Executor};

pub struct Db {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("maxcloud.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    Db { store, _dir: Some(dir) }
}

pub async fn postgres() -> Db {
    let admin = std::env::var("MAXCLOUD_TEST_POSTGRES_URL").expect(
        "MAXCLOUD_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL 15 for this suite",
    );
    let name = format!("mc_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    conn.close().await.unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
    let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
    store.migrate().await.unwrap();
    Db { store, _dir: None }
}

/// `on_both!(a, b)`: tests `on_sqlite::a`, `on_postgres::a`, … each calling `a(store)` with a fresh store.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::common::sqlite().await.store).await } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::common::postgres().await.store).await } )* }
    };
}

pub fn key(n: &str) -> NewKey {
    NewKey { name: format!("key {n}"), prefix: format!("mc_{n}"), hash: format!("hash-{n}") }
}

/// Slug candidates `base`, `base-2`, … as registration tries them.
pub fn slug(base: &'static str) -> impl Fn(u32) -> String {
    move |n| if n == 1 { base.to_string() } else { format!("{base}-{n}") }
}

/// An auto-merged App order of `tenant`.
pub fn new_order(tenant: &str, action: &str, name: &str) -> NewOrder {
    NewOrder {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.to_string(),
        action: action.to_string(),
        kind: "App".into(),
        name: name.to_string(),
        parameters: r#"{"image":"nginx"}"#.into(),
        requester: "me@example.com".into(),
        idempotency_key: None,
        request_hash: None,
        path: format!("apps/{name}.yaml"),
        merge_policy: "auto".into(),
        reviewers: Vec::new(),
        required_approvals: 1,
    }
}

/// The pull request of order `order_id` at commit `head`.
pub fn pr(order_id: &str, head: &str) -> NewPullRequest {
    NewPullRequest {
        branch: format!("order/{order_id}"),
        head_commit: head.into(),
        title: "create App shop".into(),
        body: "body".into(),
        ..Default::default()
    }
}
