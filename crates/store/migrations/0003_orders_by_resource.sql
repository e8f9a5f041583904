-- Looking up the open orders of one resource (accept_order refuses to overtake an order in review).
CREATE INDEX orders_resource ON orders (tenant_id, kind, name);
