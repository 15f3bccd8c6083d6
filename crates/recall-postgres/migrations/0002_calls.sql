-- The call index: one row per call, its collected values and whether its
-- audio is stored.

CREATE TABLE calls (
    conversation_id text COLLATE "C" PRIMARY KEY,
    agent_id text COLLATE "C" NOT NULL,
    caller text,
    initiation_failed boolean NOT NULL,
    status text NOT NULL,
    start_time bigint NOT NULL,
    duration bigint,
    cost double precision,
    summary text,
    title text,
    successful boolean,
    transcript text NOT NULL
);

CREATE INDEX calls_by_time ON calls (start_time DESC, conversation_id DESC);
CREATE INDEX calls_by_caller ON calls (caller, start_time DESC, conversation_id DESC);
CREATE INDEX calls_by_agent ON calls (agent_id, start_time DESC, conversation_id DESC);

CREATE TABLE call_collected (
    conversation_id text COLLATE "C" NOT NULL
        REFERENCES calls (conversation_id) ON DELETE CASCADE,
    field_id text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    PRIMARY KEY (conversation_id, field_id)
);

CREATE TABLE call_audio (
    conversation_id text COLLATE "C" PRIMARY KEY
);
