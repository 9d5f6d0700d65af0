-- Small per-tenant state the jobs keep between runs when no Azure Storage is configured
-- (Graph delta links, where the customer's GroupMgr list lives, checkpoints). `version`
-- makes writes compare-and-swap, like a blob ETag.
CREATE TABLE tenant_state (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (tenant_id),
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;
