-- GroupMgr's own data (ARCHITECTURE.md §6). Times are Unix microseconds UTC; ids are
-- lower-case hyphenated GUID text; binary values are BLOBs. No plaintext UPN anywhere.
CREATE TABLE tenants (
    tenant_id        TEXT    NOT NULL PRIMARY KEY,
    status           TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'offboarded')),
    seats            INTEGER NOT NULL CHECK (seats >= 1),
    licence_expires  TEXT    NULL,            -- YYYY-MM-DD, last valid day (UTC)
    log_public_key   BLOB    NULL,            -- current X25519 public key (32 bytes)
    log_public_key_id TEXT   NULL,
    created_at       INTEGER NOT NULL,
    offboarded_at    INTEGER NULL
) STRICT;

CREATE TABLE licensed_users (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (tenant_id),
    upn_index   BLOB    NOT NULL CHECK (length(upn_index) = 32),
    sealed_upn  BLOB    NULL,
    upn_key_id  TEXT    NULL,
    upn_nonce   BLOB    NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, upn_index)
) STRICT;

CREATE TABLE log_keys (
    key_id        TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (tenant_id),
    public_key_id TEXT    NOT NULL,
    enc           BLOB    NOT NULL,
    sealed_key    BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX ix_log_keys_tenant ON log_keys (tenant_id, created_at);

CREATE TABLE logs (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (tenant_id),
    time       INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    nonce      BLOB    NOT NULL,
    sealed     BLOB    NOT NULL
) STRICT;
CREATE INDEX ix_logs_tenant_time ON logs (tenant_id, time, id);
