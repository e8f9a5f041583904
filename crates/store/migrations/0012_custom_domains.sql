-- Custom domains of the tenants' services and their ownership proof. A tenant claims a domain for one of its
-- services and gets a token to publish as a TXT record (`_maxcloud-challenge.<domain>`, `maxcloud-verify=<token>`);
-- the token is public by design (it is published in DNS), so it is kept as is. Once the record is seen the claim is
-- verified: a domain is verified for at most one tenant (the partial unique index), and only then is it ordered.
CREATE TABLE custom_domains (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    domain        TEXT NOT NULL,
    service_id    TEXT NOT NULL,
    service_name  TEXT NOT NULL,
    token         TEXT NOT NULL,
    verified_at   BIGINT,
    order_id      TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);
CREATE UNIQUE INDEX custom_domains_verified ON custom_domains (domain) WHERE verified_at IS NOT NULL;
CREATE INDEX custom_domains_service ON custom_domains (tenant_id, service_id);

-- What the cluster serves of a resource's revisions, as its XR status says (latest created and ready revision,
-- traffic with the tags' URLs), JSON written by the status aggregator; NULL until it reports.
ALTER TABLE resources ADD COLUMN served TEXT;
