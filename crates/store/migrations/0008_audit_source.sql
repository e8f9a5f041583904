-- Where a call came from (the peer address the server saw), for the audit log's "from where".
ALTER TABLE audit_log ADD COLUMN source TEXT;
