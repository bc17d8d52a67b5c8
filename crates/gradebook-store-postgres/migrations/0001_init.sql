-- gradebook schema on PostgreSQL, version 1: the SQLite schema as its four
-- migrations left it, in one step.
--
-- Grades and coefficients are integer hundredths (12.25 -> 1225); special
-- marks are negative codes (-1 ABS, -2 EXC, -3 ATT). Times are Unix
-- seconds. Ids come from identity columns, which never hand out a number
-- twice, even after the newest row is deleted (protocol §4).

CREATE TABLE users (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'teacher', 'student')),
    student_id    BIGINT,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    token_hash BYTEA  PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE promotions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    year        BIGINT,
    description TEXT,
    created_by  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE grants (
    promotion_id BIGINT NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (promotion_id, user_id)
);
CREATE INDEX grants_user ON grants (user_id);

CREATE TABLE students (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    promotion_id BIGINT NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    first_name   TEXT   NOT NULL,
    last_name    TEXT   NOT NULL,
    number       TEXT   UNIQUE,
    email        TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX students_promotion ON students (promotion_id);

CREATE TABLE grades (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    student_id  BIGINT NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    subject     TEXT   NOT NULL,
    value       BIGINT NOT NULL CHECK (value BETWEEN -3 AND 2000),
    coefficient BIGINT NOT NULL CHECK (coefficient BETWEEN 1 AND 10000),
    label       TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX grades_student ON grades (student_id);

-- At-most-once UDP requests (protocol §6): a write made for a UDP request
-- records the request's key and the reply's data in the same transaction
-- as the change. Rows are purged after a day.
CREATE TABLE udp_requests (
    session    BYTEA  NOT NULL,
    request_id TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    reply      TEXT   NOT NULL,
    PRIMARY KEY (session, request_id)
);
CREATE INDEX udp_requests_at ON udp_requests (at);

-- The change log (see gradebook_store::change). Every committed write
-- appends its changes here, in the same transaction, under a seq that the
-- writer assigns, one more than the last (not a sequence: a sequence leaves
-- gaps when a transaction rolls back). Each entry's hash covers its fields
-- and the previous entry's hash. No foreign keys: entries outlive what
-- they talk about.
CREATE TABLE changes (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    username     TEXT   NOT NULL,
    command      TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    promotion_id BIGINT,
    student_id   BIGINT,
    grade_id     BIGINT,
    old          TEXT,
    new          TEXT,
    hash         BYTEA  NOT NULL
);
CREATE INDEX changes_promotion ON changes (promotion_id, seq);
CREATE INDEX changes_student ON changes (student_id, seq);

-- The highest seq ever written, kept in the same transaction as the
-- entries: entries deleted from the end of the log leave it above the last
-- one, which the chain check reports (SQLite's sqlite_sequence does this
-- for its backend).
CREATE TABLE changes_highest (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    seq      BIGINT  NOT NULL
);
INSERT INTO changes_highest (seq) VALUES (0);
