-- The operators' trail (ARCHITECTURE.md §6 keeps tenant data to ids; this names our own
-- operators, never a customer's user): one entry per operator command that changes or reads a
-- tenant's data, hash-chained (hash = SHA-256 over the previous hash and the entry) so that a
-- deleted or altered entry is detected by `groupmgr operators log --verify`. `operator` is an
-- Entra object id (entra:<tenant>/<object>) or an OS account (os:<user>@<host>), never a UPN.
CREATE TABLE operator_audit (
    seq       INTEGER NOT NULL PRIMARY KEY,
    at        INTEGER NOT NULL,
    operator  TEXT    NOT NULL,
    command   TEXT    NOT NULL,
    tenant_id TEXT    NULL,
    detail    TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
