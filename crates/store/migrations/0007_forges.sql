-- Git hosting providers (GitHub, Gitea): pull requests live on the forge, the store keeps their number, page and
-- review state; merge policies can be set per tenant; webhook deliveries are remembered so a replay is a no-op.

ALTER TABLE pull_requests ADD COLUMN url TEXT;
-- pending | approved | changes_requested (NULL: the order needs no review)
ALTER TABLE pull_requests ADD COLUMN review_state TEXT;
-- comma-separated logins behind review_state
ALTER TABLE pull_requests ADD COLUMN reviewed_by TEXT;

-- A tenant's own merge policy for one kind and action, over the catalog's default.
CREATE TABLE merge_policies (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    kind               TEXT NOT NULL,
    action             TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    policy             TEXT NOT NULL CHECK (policy IN ('auto', 'review')),
    -- comma-separated forge logins that must approve (empty: anyone with write access)
    reviewers          TEXT NOT NULL DEFAULT '',
    required_approvals BIGINT NOT NULL DEFAULT 1,
    updated_by         TEXT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, action)
);

-- Webhook deliveries already handled (by the forge's delivery id).
CREATE TABLE webhook_deliveries (
    provider    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event       TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);

-- An order remembers the merge policy's reviewers at the time it was placed.
ALTER TABLE orders ADD COLUMN reviewers TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN required_approvals BIGINT NOT NULL DEFAULT 1;
