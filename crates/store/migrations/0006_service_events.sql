-- Service status changes as the cluster reports them (a resource's status or URL changed), numbered from the
-- same counter as the order events (migration 0004): together they are one live-event log per tenant.
CREATE TABLE service_events (
    seq        BIGINT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    url        TEXT,
    message    TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX service_events_tenant_seq ON service_events (tenant_id, seq);
