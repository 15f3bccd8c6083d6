-- The event log: raw webhook bodies as acknowledged, their processing
-- state, the caller of each conversation, decoded audio, and the
-- quarantine. Ids and type names compare bytewise (COLLATE "C"), so
-- listings come in the order the other implementations give.

CREATE TABLE conversations (
    conversation_id text COLLATE "C" PRIMARY KEY,
    caller text
);

CREATE TABLE events (
    conversation_id text COLLATE "C" NOT NULL
        REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    kind text COLLATE "C" NOT NULL,
    body bytea NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    failure text,
    record text,
    received_nanos bigint NOT NULL,
    PRIMARY KEY (conversation_id, kind)
);

CREATE INDEX events_pending ON events (received_nanos) WHERE state = 'pending';

CREATE TABLE audio (
    conversation_id text COLLATE "C" PRIMARY KEY
        REFERENCES conversations (conversation_id) ON DELETE CASCADE,
    len bigint NOT NULL,
    chunks integer NOT NULL
);

CREATE TABLE audio_chunks (
    conversation_id text COLLATE "C" NOT NULL
        REFERENCES audio (conversation_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE quarantine (
    id text COLLATE "C" PRIMARY KEY,
    reason text NOT NULL,
    body bytea NOT NULL,
    bytes bigint NOT NULL
);
