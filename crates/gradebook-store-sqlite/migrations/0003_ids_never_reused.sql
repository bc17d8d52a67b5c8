-- no-transaction
-- Ids are never reused (protocol §4). A plain INTEGER PRIMARY KEY gives a
-- new row the largest id + 1, so deleting the newest student and adding one
-- handed the deleted student's id, and with it their audit history, to
-- someone else. AUTOINCREMENT keeps the highest id ever given in
-- sqlite_sequence instead. SQLite cannot add it to an existing table, so
-- the four tables are rebuilt (the documented twelve-step way: foreign keys
-- off, outside of a transaction, for the rebuild; checked before commit).
-- The counters also start above every id the audit log ever mentions, so
-- ids deleted before this migration are not given again either.

PRAGMA foreign_keys = OFF;

BEGIN;

CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    student_id    INTEGER,
    created_at    INTEGER NOT NULL
);
INSERT INTO users_new SELECT id, username, password_hash, role, student_id, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

CREATE TABLE promotions_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    year        INTEGER,
    description TEXT,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO promotions_new SELECT id, name, year, description, created_by, created_at FROM promotions;
DROP TABLE promotions;
ALTER TABLE promotions_new RENAME TO promotions;

CREATE TABLE students_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id INTEGER NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    first_name   TEXT    NOT NULL,
    last_name    TEXT    NOT NULL,
    number       TEXT    UNIQUE,
    email        TEXT,
    created_at   INTEGER NOT NULL
);
INSERT INTO students_new
    SELECT id, promotion_id, first_name, last_name, number, email, created_at FROM students;
DROP TABLE students;
ALTER TABLE students_new RENAME TO students;
CREATE INDEX students_promotion ON students (promotion_id);

CREATE TABLE grades_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    subject     TEXT    NOT NULL,
    value       INTEGER NOT NULL CHECK (value BETWEEN -3 AND 2000),
    coefficient INTEGER NOT NULL CHECK (coefficient BETWEEN 1 AND 10000),
    label       TEXT,
    created_at  INTEGER NOT NULL
);
INSERT INTO grades_new
    SELECT id, student_id, subject, value, coefficient, label, created_at FROM grades;
DROP TABLE grades;
ALTER TABLE grades_new RENAME TO grades;
CREATE INDEX grades_student ON grades (student_id);

-- The audit table keeps ids of rows long deleted: start above them.
INSERT INTO sqlite_sequence (name, seq)
    SELECT t.name, 0 FROM (SELECT 'users' AS name UNION ALL SELECT 'promotions'
                           UNION ALL SELECT 'students' UNION ALL SELECT 'grades') t
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence q WHERE q.name = t.name);
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(student_id), 0) FROM audit))
    WHERE name = 'students';
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(grade_id), 0) FROM audit))
    WHERE name = 'grades';
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(promotion_id), 0) FROM audit))
    WHERE name = 'promotions';

COMMIT;

PRAGMA foreign_keys = ON;
