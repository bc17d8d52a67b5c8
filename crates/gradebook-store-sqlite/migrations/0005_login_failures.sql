-- Login throttling (protocol §7) in the database, so that several servers
-- sharing it (PostgreSQL) count failures together; SQLite keeps the same
-- table so that both backends behave alike. One row per username
-- ("user:NAME") or address ("addr:IP").
CREATE TABLE login_failures (
    key           TEXT    PRIMARY KEY,
    window_start  INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    blocked_until INTEGER
);
