-- The operators' trail: one entry per operator command that changes or reads a tenant's data,
-- hash-chained (hash = SHA-256 over the previous hash and the entry) so that a deleted or
-- altered entry is detected by `groupmgr operators log --verify`. `operator` is an Entra object
-- id (entra:<tenant>/<object>) or an OS account (os:<user>@<host>), never a UPN.
CREATE TABLE dbo.operator_audit (
    seq       BIGINT           NOT NULL CONSTRAINT pk_operator_audit PRIMARY KEY,
    at        DATETIME2(6)     NOT NULL,
    operator  NVARCHAR(256)    NOT NULL,
    command   NVARCHAR(64)     NOT NULL,
    tenant_id UNIQUEIDENTIFIER NULL,
    detail    NVARCHAR(1024)   NOT NULL,
    prev_hash BINARY(32)       NOT NULL,
    hash      BINARY(32)       NOT NULL
)
GO
