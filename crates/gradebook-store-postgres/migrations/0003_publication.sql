-- Publication and locking (protocol §9). Existing promotions publish
-- immediately and are unlocked; existing grades were visible, and stay so.
ALTER TABLE promotions ADD COLUMN publication TEXT NOT NULL DEFAULT 'immediate'
    CHECK (publication IN ('immediate', 'manual'));
ALTER TABLE promotions ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE grades ADD COLUMN published BOOLEAN NOT NULL DEFAULT TRUE;
