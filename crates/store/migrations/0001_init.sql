-- Portable SQL: runs unchanged on SQLite and PostgreSQL (through sqlx's Any driver).
-- Ids are UUID text, timestamps are microseconds since the Unix epoch (BIGINT), flags are BIGINT 0/1.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE memberships (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- API keys are stored as SHA-256 of the full key; the key itself is shown once and never stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Read-only tokens for a tenant's Git repo (Flux), stored hashed like API keys.
CREATE TABLE git_tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE resources (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    url         TEXT,
    spec        TEXT NOT NULL,
    path        TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, kind, name)
);

-- The outbox: an order is stored before any Git work; the worker drives it forward.
CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    action          TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    parameters      TEXT NOT NULL,
    state           TEXT NOT NULL,
    requester       TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT,
    resource_id     TEXT NOT NULL,
    path            TEXT NOT NULL,
    merge_policy    TEXT NOT NULL CHECK (merge_policy IN ('auto', 'review')),
    approved        BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX orders_tenant_created ON orders (tenant_id, created_at);
CREATE INDEX orders_state ON orders (state);

CREATE TABLE order_events (
    order_id    TEXT NOT NULL REFERENCES orders(id),
    state       TEXT NOT NULL,
    at          BIGINT NOT NULL,
    message     TEXT
);
CREATE INDEX order_events_order ON order_events (order_id, at);

-- Pull requests of the local provider (and the mirror of remote providers' PRs).
CREATE TABLE pull_requests (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    order_id      TEXT NOT NULL UNIQUE REFERENCES orders(id),
    number        BIGINT NOT NULL,
    branch        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'merged', 'closed')),
    merge_policy  TEXT NOT NULL,
    head_commit   TEXT NOT NULL,
    merge_commit  TEXT,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);

-- Every mutating call, accepted or refused.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    tenant_id   TEXT,
    actor       TEXT,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      BIGINT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    detail      TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);
