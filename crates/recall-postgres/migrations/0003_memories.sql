-- The memory store: one row per memory, scoped by caller; a full-text
-- index over content and fact key; embeddings in the form the shared
-- ranking reads (Embedding::to_bytes), with their model for backfills.

CREATE TABLE memories (
    seq bigserial PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    user_id text COLLATE "C" NOT NULL,
    content text NOT NULL,
    sector text NOT NULL,
    salience double precision NOT NULL,
    decay_lambda double precision NOT NULL,
    tags text NOT NULL,
    metadata text NOT NULL,
    agent_id text COLLATE "C",
    conversation_id text COLLATE "C",
    fact_key text COLLATE "C",
    fact_value text,
    fact_is_name boolean,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    embedding bytea,
    embedding_model bigint,
    words tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', content || ' ' || coalesce(replace(fact_key, '_', ' '), ''))
    ) STORED
);

CREATE INDEX memories_by_user ON memories (user_id, created_at DESC, seq DESC);
CREATE UNIQUE INDEX memories_one_fact_per_key ON memories (user_id, fact_key)
    WHERE fact_key IS NOT NULL;
CREATE INDEX memories_words ON memories USING gin (words);
CREATE INDEX memories_unembedded ON memories (seq) WHERE embedding IS NULL;

-- Every idempotency key written for a caller, with the memory as first
-- written (JSON), returned as the duplicate once that memory is gone.
CREATE TABLE memory_keys (
    user_id text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    memory_id text COLLATE "C" NOT NULL,
    first_written text NOT NULL,
    PRIMARY KEY (user_id, key)
);
