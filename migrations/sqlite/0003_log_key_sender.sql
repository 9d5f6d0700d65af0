-- The sender of a data key sealed in HPKE Auth mode: GroupMgr's publisher public key (32
-- bytes), with which the reader opens it and so knows GroupMgr sealed it. NULL: Base mode
-- (sealed before the publisher key was configured, or without one).
ALTER TABLE log_keys ADD COLUMN sender_public_key BLOB NULL CHECK (sender_public_key IS NULL OR length(sender_public_key) = 32);
