//! A fresh schema per test on the server at `DATABASE_URL` (default: the
//! local one), dropped at the end whatever the outcome. Without
//! `DATABASE_URL` and without a local server, tests say why they skip and
//! pass.

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;
use recall_postgres::{Database, DatabaseError};

/// The local server CI and developers run.
const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> (String, bool) {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, true),
        _ => (LOCAL.to_owned(), false),
    }
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!("recall_test_{}", uuid::Uuid::new_v4().simple())
}

/// The server, without a schema of ours: `None` (after saying why) when
/// no server answers and none was asked for.
pub async fn server() -> Option<Database> {
    let (url, asked) = url();
    match Database::connect(&url).await {
        Ok(db) => Some(db),
        Err(e @ DatabaseError::Pool(_)) if !asked => {
            eprintln!("skipping: no PostgreSQL at {url} (set DATABASE_URL): {e}");
            None
        }
        Err(e) => panic!("connecting to {url}: {e:?}"),
    }
}

/// Drops `schema` and everything in it.
///
/// A store's background work (reading a caller into its cache) may still
/// hold locks in the schema; a deadlock with it is retried.
pub async fn drop_schema(server: &Database, schema: &str) {
    let client = server
        .client()
        .await
        .expect("a connection to drop the test schema");
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    for attempt in 1.. {
        match client.batch_execute(&drop).await {
            Ok(()) => return,
            Err(e) if attempt < 20 => {
                eprintln!("dropping {schema} again: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the test schema is not dropped: {e}"),
        }
    }
}

/// Runs `test` with a [`Database`] on a fresh, migrated schema of its
/// own, then drops the schema (also when the test panics).
pub async fn with_schema<F, Fut>(test: F)
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = ()>,
{
    with_fresh_schema(|db| async move {
        db.migrate().await.expect("the schema migrates");
        test(db).await;
    })
    .await;
}

/// As [`with_schema`], without migrating it.
pub async fn with_fresh_schema<F, Fut>(test: F)
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(server) = server().await else {
        return;
    };
    let schema = fresh_schema();
    let db = Database::builder(url().0)
        .schema(&schema)
        .pool_size(4)
        .connect()
        .await
        .expect("connecting with a schema");
    let outcome = AssertUnwindSafe(test(db)).catch_unwind().await;
    drop_schema(&server, &schema).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
