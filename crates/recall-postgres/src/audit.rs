//! [`PgAuditLog`]: the audit log of operator access, as a table.

use async_trait::async_trait;
use recall_model::PhoneNumber;
use recall_service::{AuditEntry, AuditLog};

use crate::{Database, DatabaseError};

/// An [`AuditLog`] in the `audit_log` table (migration 7), shared by
/// every replica: rows are only inserted, each append commits before it
/// returns. Needs a migrated [`Database`].
#[derive(Clone, Debug)]
pub struct PgAuditLog {
    db: Database,
}

impl PgAuditLog {
    /// The audit log on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn io(e: impl Into<DatabaseError>) -> std::io::Error {
    std::io::Error::other(e.into())
}

#[async_trait]
impl AuditLog for PgAuditLog {
    async fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        let client = self.db.client().await.map_err(io)?;
        let caller = entry.caller.as_ref().map(|c| c.as_ref().to_owned());
        let status = i16::try_from(entry.status).unwrap_or(i16::MAX);
        client
            .execute(
                "INSERT INTO audit_log (time, token, route, caller, conversation_id, status) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &entry.time,
                    &entry.token,
                    &entry.route,
                    &caller,
                    &entry.conversation_id,
                    &status,
                ],
            )
            .await
            .map_err(io)?;
        Ok(())
    }

    async fn for_caller(&self, caller: &PhoneNumber) -> std::io::Result<Vec<AuditEntry>> {
        let client = self.db.client().await.map_err(io)?;
        let rows = client
            .query(
                "SELECT time, token, route, conversation_id, status FROM audit_log \
                 WHERE caller = $1 ORDER BY id",
                &[&caller.as_ref()],
            )
            .await
            .map_err(io)?;
        Ok(rows
            .iter()
            .map(|row| AuditEntry {
                time: row.get(0),
                token: row.get(1),
                route: row.get(2),
                caller: Some(caller.clone()),
                conversation_id: row.get(3),
                status: u16::try_from(row.get::<_, i16>(4)).unwrap_or_default(),
            })
            .collect())
    }
}
