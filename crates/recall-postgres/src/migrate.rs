//! The schema's migrations, embedded, applied in order under an advisory
//! lock (see [`Database::migrate`](crate::Database::migrate)).

use deadpool_postgres::Object;

use crate::DatabaseError;

/// The migrations, by version (1, 2, ...). A released one is never
/// edited: a change is a new migration.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_event_log.sql")),
    (2, include_str!("../migrations/0002_calls.sql")),
    (3, include_str!("../migrations/0003_memories.sql")),
    (4, include_str!("../migrations/0004_event_claims.sql")),
    (5, include_str!("../migrations/0005_failed_events.sql")),
    (6, include_str!("../migrations/0006_deletions.sql")),
    (7, include_str!("../migrations/0007_memory_versions.sql")),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock class of migrations (the second key is the schema's
/// name, hashed): replicas migrating one schema take turns, other schemas
/// go on.
const LOCK_CLASS: &str = "recall.migrate";

pub(crate) async fn run(client: &mut Object, schema: Option<&str>) -> Result<i32, DatabaseError> {
    let tx = client.transaction().await?;
    // Waiting for another replica's migration, or a long migration, is
    // not a statement to cut short.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1), hashtext(coalesce($2, current_schema(), '')))",
        &[&LOCK_CLASS, &schema],
    )
    .await?;
    if let Some(schema) = schema {
        // A checked plain identifier (DatabaseBuilder::schema).
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET LOCAL search_path = \"{schema}\""
        ))
        .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(DatabaseError::NewerSchema {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await?;
    Ok(current.max(SCHEMA_VERSION))
}

pub(crate) async fn version(client: &Object) -> Result<Option<i32>, DatabaseError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    Ok(client
        .query_one("SELECT max(version) FROM schema_version", &[])
        .await?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        for (i, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i32 + 1);
            assert!(!sql.trim().is_empty());
        }
    }
}
