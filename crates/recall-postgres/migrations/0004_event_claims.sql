-- Claims on pending events, so that replicas share the work out
-- (PgEventLog::claim): the worker holding one, and until when.

ALTER TABLE events
    ADD COLUMN claimed_by text,
    ADD COLUMN claimed_until timestamptz;
