-- GroupMgr's own data (ARCHITECTURE.md §6) for Azure SQL / SQL Server.
-- Batches are separated by GO lines (sqlcmd convention); the app runs each batch once,
-- recorded in dbo.schema_migrations. Times are UTC datetime2. No plaintext UPN anywhere.
CREATE TABLE dbo.tenants (
    tenant_id         UNIQUEIDENTIFIER NOT NULL CONSTRAINT pk_tenants PRIMARY KEY,
    status            NVARCHAR(16)     NOT NULL CONSTRAINT ck_tenants_status CHECK (status IN ('active', 'suspended', 'offboarded')),
    seats             INT              NOT NULL CONSTRAINT ck_tenants_seats CHECK (seats >= 1),
    licence_expires   DATE             NULL,
    log_public_key    VARBINARY(32)    NULL,
    log_public_key_id NVARCHAR(64)     NULL,
    created_at        DATETIME2(6)     NOT NULL,
    offboarded_at     DATETIME2(6)     NULL
)
GO
CREATE TABLE dbo.licensed_users (
    tenant_id  UNIQUEIDENTIFIER NOT NULL CONSTRAINT fk_users_tenant REFERENCES dbo.tenants (tenant_id),
    upn_index  BINARY(32)       NOT NULL,
    sealed_upn VARBINARY(MAX)   NULL,
    upn_key_id UNIQUEIDENTIFIER NULL,
    upn_nonce  BINARY(12)       NULL,
    first_seen DATETIME2(6)     NOT NULL,
    last_seen  DATETIME2(6)     NOT NULL,
    CONSTRAINT pk_licensed_users PRIMARY KEY (tenant_id, upn_index)
)
GO
CREATE TABLE dbo.log_keys (
    key_id        UNIQUEIDENTIFIER NOT NULL CONSTRAINT pk_log_keys PRIMARY KEY,
    tenant_id     UNIQUEIDENTIFIER NOT NULL CONSTRAINT fk_log_keys_tenant REFERENCES dbo.tenants (tenant_id),
    public_key_id NVARCHAR(64)     NOT NULL,
    enc           VARBINARY(64)    NOT NULL,
    sealed_key    VARBINARY(128)   NOT NULL,
    created_at    DATETIME2(6)     NOT NULL
)
GO
CREATE INDEX ix_log_keys_tenant ON dbo.log_keys (tenant_id, created_at)
GO
CREATE TABLE dbo.logs (
    id        UNIQUEIDENTIFIER NOT NULL,
    tenant_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT fk_logs_tenant REFERENCES dbo.tenants (tenant_id),
    time      DATETIME2(6)     NOT NULL,
    level     NVARCHAR(8)      NOT NULL,
    event     NVARCHAR(64)     NOT NULL,
    message   NVARCHAR(512)    NOT NULL,
    key_id    UNIQUEIDENTIFIER NOT NULL,
    nonce     BINARY(12)       NOT NULL,
    sealed    VARBINARY(MAX)   NOT NULL,
    -- Clustered on the read path: one tenant's entries in time order.
    CONSTRAINT pk_logs PRIMARY KEY (tenant_id, time, id)
)
GO
CREATE UNIQUE INDEX ux_logs_id ON dbo.logs (id)
GO
