-- At-most-once UDP requests (protocol §6). A write made for a UDP request
-- records the request's key (the session's token hash and the request id)
-- and the reply's data in the same transaction as the change: a retried
-- datagram finds it and gets the same reply, even after a restart, and the
-- primary key stops two copies of one request from both committing.
-- Rows are purged after a day.

CREATE TABLE udp_requests (
    session    BLOB    NOT NULL,
    request_id TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    reply      TEXT    NOT NULL,
    PRIMARY KEY (session, request_id)
);
CREATE INDEX udp_requests_at ON udp_requests (at);
