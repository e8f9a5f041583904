use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{Mutex, MutexGuard};

use crate::Result;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// Serialises write transactions on SQLite (single writer); `None` on PostgreSQL.
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A lock of [`Store::lock`].
pub struct DbLock {
    /// The connection whose session holds the advisory lock (PostgreSQL only).
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    name: String,
}

impl DbLock {
    /// Unlocks and gives the connection back to the pool.
    pub async fn release(mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.name)
            .execute(&mut *conn)
            .await;
        if let Err(e) = unlocked {
            tracing::warn!(lock = %self.name, error = %e, "cannot release a database lock: closing its connection");
            conn.close_on_drop();
        }
    }
}

impl Drop for DbLock {
    /// Not released (an early return, a cancelled request): the connection is closed instead of pooled, and
    /// PostgreSQL drops a closed session's advisory locks.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// Microseconds since the Unix epoch, strictly increasing within this process (so that orders accepted
/// in the same microsecond still have a total order).
pub fn now_us() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000;
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = if now > prev { now } else { prev + 1 };
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

impl Store {
    /// Connect to `url` (`sqlite://path/to/file.db` or `postgres://…`). A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                format!("unsupported database URL {url:?}: expected sqlite:// or postgres://").into(),
            )
            .into());
        };
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                                 PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?
            }
        };
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Store { pool, backend, write_lock })
    }

    /// Apply the embedded migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction that appends to the live-event log. On PostgreSQL it takes the event counter's row lock
    /// first: every such transaction holds that lock from its first event until commit (`next_seq`: sequence order
    /// is commit order), and taking it before any other row gives them all one lock order. Otherwise an order's
    /// acceptance (its resource row, then the counter) and the worker's state change (the counter, then the
    /// resource row) deadlock; they serialise at the counter either way. (SQLite: one writer, `Store::writer`.)
    pub(crate) async fn begin_events(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT value FROM event_seq WHERE id = 1 FOR UPDATE").execute(&mut *tx).await?;
        }
        Ok(tx)
    }

    /// A lock named `name` shared by every process using this database, held until [`DbLock::release`] (or drop).
    /// PostgreSQL: a session advisory lock on a pooled connection of its own, keyed by a 64-bit hash of the name
    /// (two names sharing a hash only wait for each other). SQLite: no lock — a SQLite store belongs to one process,
    /// whose own locks suffice.
    pub async fn lock(&self, name: &str) -> Result<DbLock> {
        if self.backend != Backend::Postgres {
            return Ok(DbLock { conn: None, name: name.to_string() });
        }
        let mut conn = self.pool.acquire().await?;
        // As text: pg_advisory_lock returns `void`, a type the Any driver cannot describe.
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))::text").bind(name).execute(&mut *conn).await?;
        Ok(DbLock { conn: Some(conn), name: name.to_string() })
    }

    /// Cheap liveness check of the database connection.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Take the writer slot (SQLite only); hold the guard for the duration of a write transaction.
    pub(crate) async fn writer(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Row counts of every table but the audit log: lets tests prove that a refused request stored nothing.
    pub async fn table_counts(&self) -> Result<std::collections::BTreeMap<String, i64>> {
        let mut out = std::collections::BTreeMap::new();
        for table in [
            "tenants",
            "users",
            "memberships",
            "api_keys",
            "git_tokens",
            "invites",
            "oidc_identities",
            "resources",
            "orders",
            "order_events",
            "service_events",
            "pull_requests",
            "pod_usage",
            "custom_domains",
        ] {
            let row: AnyRow = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}")).fetch_one(&self.pool).await?;
            out.insert(table.to_string(), row.try_get::<i64, _>("n")?);
        }
        Ok(out)
    }
}
