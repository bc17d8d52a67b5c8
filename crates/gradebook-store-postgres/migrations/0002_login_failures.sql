-- Login throttling (protocol §7) in the database: every server sharing it
-- counts failures together. One row per username ("user:NAME") or address
-- ("addr:IP").
CREATE TABLE login_failures (
    key           TEXT   PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    blocked_until BIGINT
);
