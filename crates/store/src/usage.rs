//! Metering: the running interval of every pod of a tenant's services, with its CPU and memory requests, and
//! the usage they add up to over a time window.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_us, Result, Store};

/// Bytes in a GiB.
pub const GIB: u128 = 1 << 30;

/// One pod of a tenant's service: its effective requests and when it ran. Times are seconds since the Unix
/// epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub uid: String,
    /// Tenant slug (the pod's namespace is `mc-<slug>`).
    pub tenant: String,
    /// Catalog kind and name of the service the pod belongs to (`App`/`web`).
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub pod: String,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub started_at: i64,
    /// `None` while the pod runs.
    pub ended_at: Option<i64>,
}

/// What a service used in a window, exactly: requests × seconds, summed over its pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUsage {
    pub kind: String,
    pub name: String,
    /// Pods that ran for at least a second of the window.
    pub pods: u64,
    /// Milli-vCPU-seconds.
    pub cpu_milli_seconds: u128,
    /// Byte-seconds.
    pub memory_byte_seconds: u128,
}

impl ServiceUsage {
    pub fn vcpu_seconds(&self) -> f64 {
        self.cpu_milli_seconds as f64 / 1000.0
    }
    pub fn gib_seconds(&self) -> f64 {
        self.memory_byte_seconds as f64 / GIB as f64
    }
}

fn now_s() -> i64 {
    now_us() / 1_000_000
}

impl Store {
    /// Records a pod's interval (upsert by uid) and returns whether the pod's tenant exists (an unknown tenant's
    /// pod is ignored). Idempotent: replaying the same pod changes nothing. The start only moves earlier; an
    /// ended interval never reopens and its end only moves earlier (a deletion deadline, then the containers'
    /// actual finish). The requests are the latest seen.
    pub async fn record_pod_usage(&self, pod: &PodUsage) -> Result<bool> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "INSERT INTO pod_usage \
               (uid, tenant_id, kind, name, namespace, pod, cpu_millis, memory_bytes, started_at, ended_at) \
             SELECT $1, t.id, $2, $3, $4, $5, $6, $7, $8, $9 FROM tenants t WHERE t.slug = $10 \
             ON CONFLICT (uid) DO UPDATE SET \
               kind = excluded.kind, name = excluded.name, namespace = excluded.namespace, pod = excluded.pod, \
               cpu_millis = excluded.cpu_millis, memory_bytes = excluded.memory_bytes, \
               started_at = CASE WHEN excluded.started_at < pod_usage.started_at \
                            THEN excluded.started_at ELSE pod_usage.started_at END, \
               ended_at = CASE WHEN pod_usage.ended_at IS NULL THEN excluded.ended_at \
                          WHEN excluded.ended_at < pod_usage.ended_at THEN excluded.ended_at \
                          ELSE pod_usage.ended_at END",
        )
        .bind(&pod.uid)
        .bind(&pod.kind)
        .bind(&pod.name)
        .bind(&pod.namespace)
        .bind(&pod.pod)
        .bind(pod.cpu_millis)
        .bind(pod.memory_bytes)
        .bind(pod.started_at)
        .bind(pod.ended_at)
        .bind(&pod.tenant)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Uids of the pods recorded as running.
    pub async fn running_pods(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT uid FROM pod_usage WHERE ended_at IS NULL").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| r.get("uid")).collect())
    }

    /// Ends the intervals of these pods at `at` (seconds) where they are still open; returns how many ended.
    pub async fn end_pods(&self, uids: &[String], at: i64) -> Result<u64> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let mut ended = 0;
        for uid in uids {
            let done = sqlx::query("UPDATE pod_usage SET ended_at = $1 WHERE uid = $2 AND ended_at IS NULL")
                .bind(at)
                .bind(uid)
                .execute(&mut *tx)
                .await?;
            ended += done.rows_affected();
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// The tenant's recorded pod intervals, oldest first.
    pub async fn pod_usages(&self, tenant_id: &str) -> Result<Vec<PodUsage>> {
        let rows = sqlx::query(
            "SELECT p.uid, t.slug, p.kind, p.name, p.namespace, p.pod, p.cpu_millis, p.memory_bytes, p.started_at, \
             p.ended_at FROM pod_usage p JOIN tenants t ON t.id = p.tenant_id WHERE p.tenant_id = $1 \
             ORDER BY p.started_at, p.uid",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pod_usage).collect()
    }

    /// What each of the tenant's services used in `[from, to)` (seconds): every pod interval clipped to the
    /// window, a running pod counted up to now. Sorted by kind and name; services without usage in the window
    /// are left out.
    pub async fn usage(&self, tenant_id: &str, from: i64, to: i64) -> Result<Vec<ServiceUsage>> {
        let rows = sqlx::query(
            "SELECT kind, name, cpu_millis, memory_bytes, started_at, ended_at FROM pod_usage \
             WHERE tenant_id = $1 AND started_at < $2 AND (ended_at IS NULL OR ended_at > $3)",
        )
        .bind(tenant_id)
        .bind(to)
        .bind(from)
        .fetch_all(&self.pool)
        .await?;
        let until = to.min(now_s());
        let mut services: BTreeMap<(String, String), ServiceUsage> = BTreeMap::new();
        for row in &rows {
            let (started, ended): (i64, Option<i64>) = (row.try_get("started_at")?, row.try_get("ended_at")?);
            let seconds = ended.unwrap_or(i64::MAX).min(until) - started.max(from);
            if seconds <= 0 {
                continue;
            }
            let seconds = seconds as u128;
            let (cpu, memory): (i64, i64) = (row.try_get("cpu_millis")?, row.try_get("memory_bytes")?);
            let (kind, name): (String, String) = (row.try_get("kind")?, row.try_get("name")?);
            let service = services.entry((kind.clone(), name.clone())).or_insert_with(|| ServiceUsage {
                kind,
                name,
                ..ServiceUsage::default()
            });
            service.pods += 1;
            service.cpu_milli_seconds += cpu.max(0) as u128 * seconds;
            service.memory_byte_seconds += memory.max(0) as u128 * seconds;
        }
        Ok(services.into_values().collect())
    }
}

fn pod_usage(r: &AnyRow) -> Result<PodUsage> {
    Ok(PodUsage {
        uid: r.try_get("uid")?,
        tenant: r.try_get("slug")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        namespace: r.try_get("namespace")?,
        pod: r.try_get("pod")?,
        cpu_millis: r.try_get("cpu_millis")?,
        memory_bytes: r.try_get("memory_bytes")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}
