-- The audit log of operator access to callers' data (one row per request
-- that read or erased a caller's data). Rows are only ever inserted:
-- Recall has no statement that updates or deletes them, and erasing a
-- caller leaves them, since they are the record that the erasure happened.

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    time text NOT NULL,
    token text NOT NULL,
    route text NOT NULL,
    caller text,
    conversation_id text,
    status smallint NOT NULL
);

CREATE INDEX audit_log_caller ON audit_log (caller, id) WHERE caller IS NOT NULL;
