-- Each tenant's age key for SOPS-encrypted Secrets in its repository: the public recipient, and the private
-- identity only sealed (age-encrypted to the platform's master key). One key per tenant, created on first use.
CREATE TABLE tenant_sops_keys (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    recipient   TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
