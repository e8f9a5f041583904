-- Metering: one running interval per pod of a tenant's service, with the pod's effective CPU and memory
-- requests. Times here are whole seconds since the Unix epoch (Kubernetes reports pod and container times to
-- the second), not microseconds like elsewhere. `ended_at` is NULL while the pod runs.
CREATE TABLE pod_usage (
    uid          TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    namespace    TEXT NOT NULL,
    pod          TEXT NOT NULL,
    cpu_millis   BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX pod_usage_tenant ON pod_usage (tenant_id, started_at);
