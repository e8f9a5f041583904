-- The order events are the durable live-event log: each gets a global sequence number (the SSE event id) and
-- its tenant, so a client reconnecting with `Last-Event-ID` is replayed what it missed from here, across
-- server restarts. The counter row is taken inside each writing transaction, so sequence order is commit
-- order (on PostgreSQL the row lock serialises the writers; SQLite has one writer anyway).
CREATE TABLE event_seq (
    id     INTEGER PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO event_seq (id, value) VALUES (1, 0);
ALTER TABLE order_events ADD COLUMN seq BIGINT;
ALTER TABLE order_events ADD COLUMN tenant_id TEXT;
UPDATE order_events SET tenant_id = (SELECT tenant_id FROM orders WHERE orders.id = order_events.order_id);
CREATE INDEX order_events_tenant_seq ON order_events (tenant_id, seq);
