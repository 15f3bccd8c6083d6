-- Per caller: how many memories they have, and a version changed by every
-- statement that writes one of them, whatever writes it (the store, a
-- migration, SQL by hand), kept by triggers. The count spares searches
-- and greetings a count(*) over a large caller's rows. A replica keeps a
-- large caller's vectors in memory and trusts them while the version it
-- read them at is still the caller's. Versions come from one sequence, so
-- a value is never used twice (not even for a caller erased and heard
-- from again), and a caller without memories has no row: erasure leaves
-- no trace of the number here.

CREATE SEQUENCE memory_versions_seq;

CREATE TABLE memory_versions (
    user_id text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL,
    memories bigint NOT NULL
);

INSERT INTO memory_versions (user_id, version, memories)
    SELECT user_id, nextval('memory_versions_seq'), count(*) FROM memories GROUP BY user_id;

CREATE FUNCTION memory_versions_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    direction bigint := CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END;
BEGIN
    INSERT INTO memory_versions AS v (user_id, version, memories)
        SELECT user_id, nextval('memory_versions_seq'), direction * n
        FROM (SELECT user_id, count(*) AS n FROM changed_rows GROUP BY user_id ORDER BY user_id) c
        ON CONFLICT (user_id) DO UPDATE
            SET version = EXCLUDED.version, memories = v.memories + EXCLUDED.memories;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM memory_versions
            WHERE memories <= 0 AND user_id IN (SELECT user_id FROM changed_rows);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION memory_versions_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memory_versions;
    RETURN NULL;
END
$$;

-- A statement-level trigger sees the changed rows as a transition table,
-- which may name one event only: one trigger per event.
CREATE TRIGGER memories_inserted AFTER INSERT ON memories
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_versions_bump();
CREATE TRIGGER memories_updated AFTER UPDATE ON memories
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_versions_bump();
CREATE TRIGGER memories_deleted AFTER DELETE ON memories
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_versions_bump();
CREATE TRIGGER memories_truncated AFTER TRUNCATE ON memories
    FOR EACH STATEMENT EXECUTE FUNCTION memory_versions_clear();

-- Searches read the words index while memories are written: without
-- fastupdate a write updates the index at once, instead of leaving a
-- pending list that every search scans until the next vacuum (8 ms of a
-- large caller's search in the benchmark).
ALTER INDEX memories_words SET (fastupdate = off);

-- Where the btree_gin extension can be installed (it ships with
-- PostgreSQL's contrib and most managed services), one index finds a
-- caller's memories matching words directly, rather than intersecting the
-- caller's rows with every caller's matches. Without it, nothing changes.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public;
    CREATE INDEX memories_user_words ON memories USING gin (user_id, words)
        WITH (fastupdate = off);
    DROP INDEX memories_words;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'btree_gin is not available (%): words are found with memories_words', SQLERRM;
END
$$;
