//! The schema's migrations, embedded, applied in order under an advisory
//! lock (see [`Database::migrate`](crate::Database::migrate)).

use deadpool_postgres::Object;

use crate::DatabaseError;

/// The migrations, by version, increasing. A released one is never
/// edited: a change is a new migration. Versions may have gaps while
/// branches that each add one are merged (6 is the retention branch's):
/// every migration not yet recorded in `schema_version` is applied, in
/// order, so one merged later than a higher one is still applied.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_event_log.sql")),
    (2, include_str!("../migrations/0002_calls.sql")),
    (3, include_str!("../migrations/0003_memories.sql")),
    (4, include_str!("../migrations/0004_event_claims.sql")),
    (5, include_str!("../migrations/0005_failed_events.sql")),
    (6, include_str!("../migrations/0006_deletions.sql")),
    (7, include_str!("../migrations/0007_memory_versions.sql")),
    (8, include_str!("../migrations/0008_audit_log.sql")),
];

/// The versions of the migrations this build knows, increasing.
pub fn migration_versions() -> Vec<i32> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

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
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_version", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let current = applied.iter().copied().max().unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(DatabaseError::NewerSchema {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
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
    fn versions_increase_from_one() {
        assert_eq!(MIGRATIONS[0].0, 1);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} then {}", pair[0].0, pair[1].0);
        }
        for (_, sql) in MIGRATIONS {
            assert!(!sql.trim().is_empty());
        }
    }
}
