-- The change log replaces the audit table (see src/change.rs). Every
-- committed write appends its changes here, in the same transaction, under
-- a seq that grows by one per entry; each entry's hash covers its fields
-- and the previous entry's hash. Grade changes keep the audit table's form
-- (old and new as the grade's JSON), so audit.list reads them unchanged.
--
-- The audit entries move over in their order, numbered 1, 2, 3…; their
-- hashes are left NULL here (SQLite has no SHA-256) and computed in order
-- by the server when it first opens the database after this migration.

CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    username     TEXT    NOT NULL,
    command      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    promotion_id INTEGER,
    student_id   INTEGER,
    grade_id     INTEGER,
    old          TEXT,
    new          TEXT,
    hash         BLOB
);
CREATE INDEX changes_promotion ON changes (promotion_id, seq);
CREATE INDEX changes_student ON changes (student_id, seq);

INSERT INTO changes (seq, at, username, command, kind, promotion_id, student_id, grade_id, old, new)
    SELECT ROW_NUMBER() OVER (ORDER BY id), at, username, action, 'grade', promotion_id,
           student_id, grade_id, old_value, new_value
    FROM audit;

DROP TABLE audit;
