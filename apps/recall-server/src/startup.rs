//! Building and running the server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use recall_memory::{InMemoryStore, MemoryStore};
use recall_service::{AuditLog, FileAuditLog, PayloadStore, Service};
use recall_signature::{Tolerance, Verifier};

use crate::config::{Config, Store};
use crate::metrics::Metrics;
use crate::routes;
use recall_postgres::{Database, PgAuditLog, PgCallIndex, PgEventLog, PgMemoryStore};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The use cases.
    pub service: Service,
    /// Verifies post-call signatures.
    pub post_call: Verifier,
    /// Authenticates client-data.
    pub client_data: Verifier,
    /// Authenticates search-data.
    pub search_data: Verifier,
    /// The configuration in force.
    pub config: Config,
    /// Metrics.
    pub metrics: Metrics,
    /// Post-call bodies being received (`post_call_max_uploads` permits):
    /// each is staged on disk before its signature can be checked, so
    /// unauthenticated traffic can hold at most this many.
    pub uploads: Arc<tokio::sync::Semaphore>,
}

/// Opens the configured memory store.
///
/// # Errors
/// When the store cannot be opened (bad path, bad URL).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn MemoryStore>> {
    Ok(match config.store {
        Store::Memory => Arc::new(InMemoryStore::new()),
        Store::Embedded => {
            let path = config.embedded_db_path();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            Arc::new(
                recall_embedded::EmbeddedStore::open(&path).with_context(|| {
                    format!("cannot open the embedded store {}", path.display())
                })?,
            )
        }
        Store::Postgres => Arc::new(PgMemoryStore::new(connect_database(config).await?)),
        Store::OpenMemory => {
            let timeout = config.openmemory_timeout_ms.millis();
            let mut om = recall_memory::openmemory::OpenMemoryConfig::from_port_or_url(
                &config.openmemory_url,
            )
            .context("invalid setting `openmemory_url` (OPENMEMORY_PORT)")?
            .read_timeout(timeout)
            .write_timeout(timeout);
            if let Some(key) = &config.openmemory_key {
                om = om
                    .with_api_key(key.expose())
                    .context("invalid setting `openmemory_key` (OPENMEMORY_KEY)")?;
            }
            Arc::new(
                recall_memory::openmemory::OpenMemoryStore::new(om)
                    .context("cannot set up the OpenMemory client")?,
            )
        }
    })
}

/// Opens every store the service owns — memories, payloads, call index —
/// and builds the service (for the server and for `recall replay`,
/// `recall forget`, `recall reindex`). A new call index is filled from the
/// events already stored (an upgrade, or a deleted index), so it is never
/// silently empty.
///
/// # Errors
/// When a store cannot be opened.
pub async fn open_service(
    config: &Config,
    store: Option<Arc<dyn MemoryStore>>,
) -> anyhow::Result<Service> {
    open_service_on(config, store, None).await
}

/// [`open_service`], on `db` when given (`store = "postgres"`) rather
/// than a database connected here.
async fn open_service_on(
    config: &Config,
    store: Option<Arc<dyn MemoryStore>>,
    db: Option<Database>,
) -> anyhow::Result<Service> {
    let embedder = recall_embed::load(config.embedding_model.as_deref())
        .context("cannot load the embedding model (RECALL_EMBEDDING_MODEL)")?;
    tracing::debug!(model = embedder.model_id(), "embedding model loaded");
    if config.store == Store::Postgres {
        let db = match db {
            Some(db) => db,
            None => connect_database(config).await?,
        };
        migrate(&db).await?;
        let store = store.unwrap_or_else(|| Arc::new(PgMemoryStore::new(db.clone())));
        let events = PgEventLog::open(db.clone())
            .await
            .context("cannot open the event log")?;
        let events = events.with_quarantine_limits(
            config.quarantine_max_files.get(),
            config.quarantine_max_bytes.get(),
        );
        let index = Arc::new(PgCallIndex::new(db));
        let builder = Service::builder(store, events).call_index(index);
        return Ok(builder
            .config(config.service.clone())
            .embedder(embedder)
            .build());
    }
    let store = match store {
        Some(store) => store,
        None => open_store(config).await?,
    };
    let payloads = PayloadStore::open(config.payload_dir())
        .and_then(|p| {
            p.with_quarantine_limits(
                config.quarantine_max_files.get(),
                config.quarantine_max_bytes.get(),
            )
        })
        .with_context(|| {
            format!(
                "cannot open the payload directory {} (PAYLOAD_STORAGE_PATH)",
                config.payload_dir().display()
            )
        })?;
    let (index, fresh) = crate::admin::open_index(config).await?;
    let service = Service::builder(store, payloads)
        .call_index(Arc::new(index))
        .config(config.service.clone())
        .embedder(embedder)
        .build();
    if fresh {
        let report = service.reindex().await.with_context(|| {
            format!(
                "cannot index the payloads in {}",
                config.payload_dir().display()
            )
        })?;
        tracing::info!(?report, "call index created");
    }
    Ok(service)
}

/// Opens the audit log of operator access: `audit_log`'s file, or the
/// `audit_log` table with `store = "postgres"`.
///
/// # Errors
/// When the file cannot be created or opened, or the database reached.
pub async fn open_audit(config: &Config) -> anyhow::Result<Arc<dyn AuditLog>> {
    open_audit_on(config, None).await
}

/// [`open_audit`], on `db` when given (`store = "postgres"`).
async fn open_audit_on(config: &Config, db: Option<Database>) -> anyhow::Result<Arc<dyn AuditLog>> {
    if config.store == Store::Postgres {
        let db = match db {
            Some(db) => db,
            None => connect_database(config).await?,
        };
        migrate(&db).await?;
        return Ok(Arc::new(PgAuditLog::new(db)));
    }
    let path = config.audit_log_path();
    Ok(Arc::new(FileAuditLog::open(&path).with_context(|| {
        format!(
            "cannot open the audit log {} (RECALL_AUDIT_LOG)",
            path.display()
        )
    })?))
}

/// Connects to the configured PostgreSQL database (`store = "postgres"`).
///
/// # Errors
/// When `database_url` is not set or the first connection fails.
pub async fn connect_database(config: &Config) -> anyhow::Result<Database> {
    connect_database_pinned(config, 0).await
}

/// [`connect_database`], with connections set aside for `threads` HTTP
/// worker threads ([`Database::pin_this_thread`]).
async fn connect_database_pinned(config: &Config, threads: usize) -> anyhow::Result<Database> {
    let url = (config.database_url.as_ref())
        .context("invalid setting `database_url` (DATABASE_URL): not set")?;
    let mut database = Database::builder(url.expose()).pinned_threads(threads);
    if let Some(ca) = &config.database_ca_file {
        database = database.root_certificates(ca);
    }
    database
        .schema(&config.database_schema)
        .pool_size(config.database_pool_size.size())
        .statement_timeout(config.database_statement_timeout_ms.millis())
        .connect()
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database {} (DATABASE_URL)",
                url.masked()
            )
        })
}

/// Applies the migrations the database lacks (under an advisory lock, so
/// replicas starting together are safe) and returns the schema version.
///
/// # Errors
/// When a migration fails (none is half-applied) or a newer build
/// migrated the database.
pub async fn migrate(db: &Database) -> anyhow::Result<i32> {
    db.migrate()
        .await
        .context("cannot migrate the database (DATABASE_URL)")
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    service: Service,
    generated_secrets: bool,
    config: Config,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the server on the configured store: resolves the webhook
    /// secrets (generating them on a loopback first run), opens the stores
    /// and binds the address (port 0 picks a free port).
    ///
    /// # Errors
    /// Refused secrets, a store or directory that cannot be opened, an
    /// address that cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_store(config, None).await
    }

    /// [`build`](Self::build), on the given store instead of the
    /// configured one (tests share a store across restarts).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub async fn build_with_store(
        mut config: Config,
        store: Option<Arc<dyn MemoryStore>>,
    ) -> anyhow::Result<Self> {
        let generated_secrets = config.resolve_secrets()?;
        let workers = match config.workers.get() {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            _ => config.workers.size(),
        };
        // One pool for the service and the audit log, with each HTTP
        // worker's connections its own: their I/O stays on its thread.
        let db = match config.store {
            Store::Postgres => Some(connect_database_pinned(&config, workers).await?),
            _ => None,
        };
        let service = open_service_on(&config, store, db.clone()).await?;
        // The backlog is known before the first request: /metrics and
        // /api/events count what a previous run left from the start.
        let scan = std::time::Instant::now();
        let backlog = service
            .load_backlog()
            .await
            .context("cannot read the payload directory's backlog")?;
        tracing::info!(
            pending = backlog,
            failed = service.failed_count(),
            elapsed_ms = scan.elapsed().as_millis() as u64,
            "post-call backlog read"
        );
        let admin = crate::admin::AdminState {
            tokens: config.admin_token.clone(),
            service: service.clone(),
            audit: open_audit_on(&config, db.clone()).await?,
        };

        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("cannot listen on {} (RECALL_BIND)", config.bind))?;
        let local = listener.local_addr()?;
        let port = local.port();

        let tolerance = Tolerance::new(
            config.signature_tolerance_secs.secs(),
            config.signature_future_secs.secs(),
        );
        let verifier = |secrets: &recall_signature::Secrets| {
            Verifier::new(secrets.clone()).with_tolerance(tolerance)
        };
        let state = web::Data::new(AppState {
            service: service.clone(),
            post_call: verifier(&config.post_call_key.secrets),
            client_data: verifier(&config.client_data_key.secrets),
            search_data: verifier(&config.search_data_key.secrets),
            metrics: Metrics::new(service.clone()),
            uploads: Arc::new(tokio::sync::Semaphore::new(
                config.post_call_max_uploads.size(),
            )),
            config: config.clone(),
        });

        let keep_alive = config.keep_alive_secs.secs();
        let (request, disconnect) = (config.request_timeout_ms, config.disconnect_timeout_ms);
        let mut server = HttpServer::new(move || {
            // Called once on each worker thread, before it serves.
            if let Some(db) = &db {
                db.pin_this_thread();
            }
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(routes::observe))
                .configure(|cfg| crate::admin::configure(cfg, admin.clone()))
                .configure(routes::configure)
        })
        .client_request_timeout(request.millis())
        .client_disconnect_timeout(disconnect.millis())
        .keep_alive(if keep_alive.is_zero() {
            actix_web::http::KeepAlive::Disabled
        } else {
            actix_web::http::KeepAlive::Timeout(keep_alive)
        })
        .shutdown_timeout(config.shutdown_timeout_secs.get());
        server = server.workers(workers);
        let server = server.listen(listener)?.run();
        tracing::info!(
            address = %local,
            port,
            store = config.store.name(),
            events = %match config.store {
                Store::Postgres => "postgres".to_owned(),
                _ => config.payload_dir().display().to_string(),
            },
            "recall is listening"
        );
        Ok(Self {
            port,
            server,
            service,
            generated_secrets,
            config: config.clone(),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configuration it runs with, first-run secrets filled in.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this build generated secrets (a first run).
    pub fn generated_secrets(&self) -> bool {
        self.generated_secrets
    }

    /// The service (tests drive the worker through it).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs until SIGTERM/SIGINT (or [`handle`](Self::handle)`.stop()`),
    /// with the post-call worker and the retention sweep (now, then every
    /// `retention_sweep_secs`): then stops accepting, lets in-flight
    /// requests finish, and stops both, leaving unprocessed events and
    /// pending deletions stored for the next start.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let worker = self.service.spawn_worker();
        let config = self.service.config();
        let days = |d: Option<std::time::Duration>| d.map(|d| d.as_secs() / 86_400);
        tracing::info!(
            deletion_policy = %config.deletion_policy,
            retain_events_days = ?days(config.retain_events),
            retain_audio_days = ?days(config.retain_audio),
            retain_callers_days = ?days(config.retain_callers),
            sweep_secs = config.retention_sweep.as_secs(),
            "retention sweep started"
        );
        let retention = self.service.spawn_retention();
        let result = self.server.await;
        retention.shutdown().await;
        worker.shutdown().await;
        tracing::info!("recall stopped");
        result
    }
}
