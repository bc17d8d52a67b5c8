-- gradebook schema, version 1.
-- Grades and coefficients are integer hundredths (12.25 -> 1225); special
-- marks are negative codes (-1 ABS, -2 EXC, -3 ATT). Times are Unix seconds.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    student_id    INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE promotions (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    year        INTEGER,
    description TEXT,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE grants (
    promotion_id INTEGER NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (promotion_id, user_id)
);

CREATE TABLE students (
    id           INTEGER PRIMARY KEY,
    promotion_id INTEGER NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    first_name   TEXT    NOT NULL,
    last_name    TEXT    NOT NULL,
    number       TEXT    UNIQUE,
    email        TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX students_promotion ON students (promotion_id);

CREATE TABLE grades (
    id          INTEGER PRIMARY KEY,
    student_id  INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    subject     TEXT    NOT NULL,
    value       INTEGER NOT NULL CHECK (value BETWEEN -3 AND 2000),
    coefficient INTEGER NOT NULL CHECK (coefficient BETWEEN 1 AND 10000),
    label       TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX grades_student ON grades (student_id);

-- Grade changes. No foreign keys on purpose: entries outlive the grade,
-- student or user they talk about.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    username     TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    grade_id     INTEGER NOT NULL,
    student_id   INTEGER NOT NULL,
    promotion_id INTEGER NOT NULL,
    old_value    TEXT,
    new_value    TEXT
);
CREATE INDEX audit_promotion ON audit (promotion_id, id);
CREATE INDEX audit_student ON audit (student_id, id);
