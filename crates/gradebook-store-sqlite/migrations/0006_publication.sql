-- Publication and locking (protocol §9). Existing promotions publish
-- immediately and are unlocked; existing grades were visible, and stay so.
ALTER TABLE promotions ADD COLUMN publication TEXT NOT NULL DEFAULT 'immediate'
    CHECK (publication IN ('immediate', 'manual'));
ALTER TABLE promotions ADD COLUMN locked INTEGER NOT NULL DEFAULT 0
    CHECK (locked IN (0, 1));
ALTER TABLE grades ADD COLUMN published INTEGER NOT NULL DEFAULT 1
    CHECK (published IN (0, 1));
