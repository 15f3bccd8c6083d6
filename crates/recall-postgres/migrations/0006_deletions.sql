-- Deletions (PgEventLog::record_deletion): what ElevenLabs' deletion
-- settings schedule for a conversation, and when its stored events,
-- transcript and audio were deleted (by that schedule or a retention
-- window). Due schedules and old events are found without a scan.

CREATE TABLE deletions (
    conversation_id text COLLATE "C" PRIMARY KEY
        REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    due bigint,
    transcript boolean NOT NULL,
    audio boolean NOT NULL,
    transcript_deleted_at bigint,
    audio_deleted_at bigint
);

CREATE INDEX deletions_outstanding ON deletions (due)
    WHERE (transcript AND transcript_deleted_at IS NULL)
       OR (audio AND audio_deleted_at IS NULL);

CREATE INDEX events_by_arrival ON events (received_nanos);
