-- Invites can be revoked, and remember whether their e-mail went out ('none': no mailer configured,
-- 'pending': being sent, 'sent').
ALTER TABLE invites ADD COLUMN revoked_at BIGINT;
ALTER TABLE invites ADD COLUMN mail TEXT NOT NULL DEFAULT 'none';

-- Users of an OpenID Connect identity provider: one row per (issuer, subject). The user row is created on
-- the first login; the memberships it gets from the token's claims carry via = 'oidc' and follow the
-- claims on every request (a role removed in the identity provider is removed here).
CREATE TABLE oidc_identities (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
ALTER TABLE memberships ADD COLUMN via TEXT;
