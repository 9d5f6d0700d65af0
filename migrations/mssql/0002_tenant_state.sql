-- Small per-tenant state the jobs keep between runs when no Azure Storage is configured
-- (Graph delta links, where the customer's GroupMgr list lives, checkpoints). `version`
-- makes writes compare-and-swap, like a blob ETag.
CREATE TABLE dbo.tenant_state (
    tenant_id  UNIQUEIDENTIFIER NOT NULL CONSTRAINT fk_state_tenant REFERENCES dbo.tenants (tenant_id),
    name       NVARCHAR(128)    NOT NULL,
    value      NVARCHAR(MAX)    NOT NULL,
    version    BIGINT           NOT NULL,
    updated_at DATETIME2(6)     NOT NULL,
    CONSTRAINT pk_tenant_state PRIMARY KEY (tenant_id, name)
)
GO
