-- The failed events, found without a scan when a worker starts or looks
-- for work (PgEventLog::unfinished), as the pending ones already are.

CREATE INDEX events_failed ON events (received_nanos) WHERE state = 'failed';
