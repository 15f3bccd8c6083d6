//! [`Database`]: a pool of connections to one PostgreSQL database (and
//! schema), with TLS through rustls, and the schema's migrations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Source of [`Inner::id`].
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The pool (index into [`Inner::pools`]) each database pinned this
    /// thread to.
    static PINNED: std::cell::RefCell<Vec<(u64, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The pool size when none is set.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a caller waits for a free connection (or a new one) when no
/// other time is set.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database could not be set up or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// The URL is not a PostgreSQL connection URL this client reads.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The schema name is not a plain identifier.
    #[error(
        "invalid schema name {0:?}: must be 1 to 63 ASCII letters, digits or '_', not starting with a digit"
    )]
    InvalidSchema(String),
    /// The TLS client could not be configured.
    #[error("TLS setup: {0}")]
    Tls(#[source] rustls::Error),
    /// The file of root certificates could not be read, or holds none.
    #[error("root certificates {path}: {reason}")]
    RootCertificates {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection pool could not be built.
    #[error("building the connection pool: {0}")]
    Build(#[source] deadpool_postgres::BuildError),
    /// No connection could be had (the server is down, refused us, or
    /// every connection stayed busy past the acquire timeout).
    #[error("no database connection: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database: {0}")]
    Postgres(#[source] tokio_postgres::Error),
    /// The database was migrated by a newer build: this one does not know
    /// its schema.
    #[error(
        "the database schema is at version {found}, newer than this build knows ({known}): run a newer Recall"
    )]
    NewerSchema {
        /// The version recorded in the database.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
}

impl From<tokio_postgres::Error> for DatabaseError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

impl From<deadpool_postgres::PoolError> for DatabaseError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Pool(e)
    }
}

impl DatabaseError {
    /// Whether the statement was cancelled by the statement timeout.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Postgres(e) => is_timeout(e),
            Self::Pool(deadpool_postgres::PoolError::Timeout(_)) => true,
            _ => false,
        }
    }
}

/// Whether a statement was cancelled (by the statement timeout).
pub(crate) fn is_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED)
}

/// How to reach the database: see [`Database::builder`].
#[derive(Clone, Debug)]
pub struct DatabaseBuilder {
    url: String,
    pool_size: usize,
    statement_timeout: Option<Duration>,
    acquire_timeout: Duration,
    schema: Option<String>,
    root_certificates: Option<std::path::PathBuf>,
    pinned_threads: usize,
}

impl DatabaseBuilder {
    /// Sets aside connections for up to `threads` threads that each run
    /// a runtime of their own and serve requests (a server's worker
    /// threads), each claiming its share with
    /// [`Database::pin_this_thread`]. A connection's I/O runs on the
    /// thread that opened it: kept to one thread, a request's statement
    /// is written and its answer read without waking another thread.
    /// The pool size stays the total: each pinned thread gets
    /// `pool_size / (threads + 1)` connections (at least 1) and the other
    /// threads share the rest. Threads that cannot get a share (the pool
    /// too small) use the shared connections.
    pub fn pinned_threads(mut self, threads: usize) -> Self {
        self.pinned_threads = threads;
        self
    }

    /// Verifies the server's certificate against the PEM certificates in
    /// `path` instead of the system's roots (a managed database's own
    /// authority, such as Amazon RDS's or Cloud SQL's), for
    /// `sslmode=require`, `verify-ca` and `verify-full`.
    pub fn root_certificates(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.root_certificates = Some(path.into());
        self
    }

    /// At most `size` connections (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Cancels any statement running longer than `timeout` (PostgreSQL's
    /// `statement_timeout`, set on each connection).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// How long to wait for a connection before failing
    /// ([`DEFAULT_ACQUIRE_TIMEOUT`] unless set).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Keeps Recall's tables in `schema` (set as each connection's
    /// `search_path`; [`Database::migrate`] creates it). A plain
    /// identifier: ASCII letters, digits and `_`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Builds the pool and checks that one connection can be made.
    ///
    /// # Errors
    /// [`DatabaseError::InvalidUrl`], [`DatabaseError::InvalidSchema`],
    /// [`DatabaseError::Tls`], or [`DatabaseError::Pool`] when the first
    /// connection fails.
    pub async fn connect(self) -> Result<Database, DatabaseError> {
        let mut config: tokio_postgres::Config = verified_modes_as_require(&self.url)
            .parse()
            .map_err(DatabaseError::InvalidUrl)?;
        if let Some(schema) = &self.schema {
            check_schema(schema)?;
        }
        // Per-connection settings travel in the startup packet: no extra
        // round trip, and every pooled connection has them.
        let mut options = config.get_options().unwrap_or_default().to_owned();
        if let Some(schema) = &self.schema {
            options.push_str(&format!(" -c search_path={schema}"));
        }
        if let Some(timeout) = self.statement_timeout {
            options.push_str(&format!(
                " -c statement_timeout={}",
                timeout.as_millis().max(1)
            ));
        }
        if !options.trim().is_empty() {
            config.options(options.trim());
        }
        if config.get_application_name().is_none() {
            config.application_name("recall");
        }
        let tls = tls_connector(config.get_ssl_mode(), self.root_certificates.as_deref())?;
        // The shared pool first, then one per pinned thread; the sizes
        // add up to the pool size.
        let pinned = self.pinned_threads.min(self.pool_size - 1);
        let share = self.pool_size / (pinned + 1);
        let mut sizes = vec![share; pinned];
        sizes.insert(0, self.pool_size - share * pinned);
        let pools = sizes
            .into_iter()
            .map(|size| {
                let manager = Manager::from_config(
                    config.clone(),
                    tls.clone(),
                    ManagerConfig {
                        recycling_method: RecyclingMethod::Fast,
                    },
                );
                Pool::builder(manager)
                    .max_size(size)
                    .runtime(Runtime::Tokio1)
                    .wait_timeout(Some(self.acquire_timeout))
                    .create_timeout(Some(self.acquire_timeout))
                    .build()
                    .map_err(DatabaseError::Build)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let database = Database {
            inner: Arc::new(Inner {
                id: NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
                pools,
                pinned: AtomicUsize::new(0),
                schema: self.schema,
                statement_timeout: self.statement_timeout,
            }),
        };
        drop(database.client().await?);
        Ok(database)
    }
}

/// libpq's `sslmode=verify-full` and `verify-ca`, which the client does
/// not parse, as `require`: TLS with the certificate verified against the
/// system's roots and the server's name (for `verify-ca`, stricter than
/// libpq, which leaves the name unchecked).
fn verified_modes_as_require(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find("sslmode=verify-") {
        let before = &rest[..at];
        let starts_a_parameter = (at == 0 && out.is_empty())
            || before.ends_with(['?', '&'])
            || before.ends_with(char::is_whitespace);
        let tail = &rest[at + "sslmode=".len()..];
        let value_len = tail
            .find(|c: char| c == '&' || c.is_whitespace())
            .unwrap_or(tail.len());
        let value = &tail[..value_len];
        out.push_str(&rest[..at]);
        if starts_a_parameter && (value == "verify-full" || value == "verify-ca") {
            out.push_str("sslmode=require");
        } else {
            out.push_str("sslmode=");
            out.push_str(value);
        }
        rest = &tail[value_len..];
    }
    out.push_str(rest);
    out
}

fn check_schema(schema: &str) -> Result<(), DatabaseError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DatabaseError::InvalidSchema(schema.to_owned()))
    }
}

/// The TLS connector for a `sslmode`: `require` verifies the server's
/// certificate against the system's roots (and its name); `prefer` takes
/// the encryption a server offers without authenticating it, as libpq
/// does; `disable` never starts TLS.
fn tls_connector(
    mode: SslMode,
    root_certificates: Option<&std::path::Path>,
) -> Result<MakeRustlsConnect, DatabaseError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(DatabaseError::Tls)?;
    let config = match mode {
        SslMode::Prefer => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unauthenticated { provider }))
            .with_no_client_auth(),
        _ if let Some(path) = root_certificates => builder
            .with_root_certificates(roots_from(path)?)
            .with_no_client_auth(),
        _ => {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::warn!(%error, "a system root certificate could not be loaded");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 && mode == SslMode::Require {
                tracing::warn!(
                    ignored,
                    "no system root certificates: sslmode=require cannot verify any server"
                );
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The PEM certificates of `path` as the only roots.
fn roots_from(path: &std::path::Path) -> Result<rustls::RootCertStore, DatabaseError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let failed = |reason: String| DatabaseError::RootCertificates {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| failed(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(failed("no usable PEM certificate in it".into()));
    }
    Ok(roots)
}

/// `sslmode=prefer`: encryption without authentication (libpq's
/// meaning). The handshake's signatures are still checked, so the
/// session is encrypted to whoever holds the certificate's key; who that
/// is, is not checked. Use `sslmode=require` to verify it.
#[derive(Debug)]
struct Unauthenticated {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unauthenticated {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A pool of connections to one PostgreSQL database, and the schema
/// Recall keeps there. Cheap to clone: clones share the pool.
///
/// The URL is libpq's (`postgres://user:password@host:port/database?...`);
/// its `sslmode` is honoured: `disable` (plain TCP), `prefer` (the
/// default: TLS when the server offers it, unauthenticated, as libpq) or
/// `require` (TLS through rustls, the server's certificate verified
/// against the system's roots and its name); `verify-full` and
/// `verify-ca` are read as `require`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// use recall_postgres::Database;
///
/// let db = Database::builder("postgres://recall@db.example.com/recall?sslmode=require")
///     .pool_size(8)
///     .statement_timeout(Duration::from_secs(30))
///     .schema("recall")
///     .connect()
///     .await?;
/// // Safe when several replicas start at once: one applies, the others wait.
/// let version = db.migrate().await?;
/// println!("schema at version {version}");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Database {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Tells this database's pins from another's in [`PINNED`].
    id: u64,
    /// The shared pool, then one per pinned thread.
    pools: Vec<Pool>,
    /// How many threads have claimed a pool of their own.
    pinned: AtomicUsize,
    schema: Option<String>,
    statement_timeout: Option<Duration>,
}

impl Database {
    /// Settings for connecting to `url`; finish with
    /// [`connect`](DatabaseBuilder::connect).
    pub fn builder(url: impl Into<String>) -> DatabaseBuilder {
        DatabaseBuilder {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout: None,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            schema: None,
            root_certificates: None,
            pinned_threads: 0,
        }
    }

    /// Connects to `url` with the default settings.
    ///
    /// # Errors
    /// As [`DatabaseBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, DatabaseError> {
        Self::builder(url).connect().await
    }

    /// The schema set with [`DatabaseBuilder::schema`], if any.
    pub fn schema(&self) -> Option<&str> {
        self.inner.schema.as_deref()
    }

    /// The statement timeout set, if any.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.inner.statement_timeout
    }

    /// A connection from the pool.
    ///
    /// # Errors
    /// [`DatabaseError::Pool`] when none can be had in time.
    pub async fn client(&self) -> Result<Object, DatabaseError> {
        let id = self.inner.id;
        let at = PINNED.with_borrow(|pins| pins.iter().find(|(db, _)| *db == id).map(|p| p.1));
        Ok(self.inner.pools[at.unwrap_or(0)].get().await?)
    }

    /// Gives the calling thread the next of the pools set aside with
    /// [`DatabaseBuilder::pinned_threads`]: from now on its connections
    /// are its own, opened (and their I/O run) on this thread. Call it
    /// once per worker thread, on that thread, before it serves. Returns
    /// whether a pool was left (if not, the thread keeps sharing).
    pub fn pin_this_thread(&self) -> bool {
        let id = self.inner.id;
        if PINNED.with_borrow(|pins| pins.iter().any(|(db, _)| *db == id)) {
            return true;
        }
        let at = self.inner.pinned.fetch_add(1, Ordering::Relaxed) + 1;
        if at >= self.inner.pools.len() {
            return false;
        }
        PINNED.with_borrow_mut(|pins| pins.push((id, at)));
        true
    }

    /// Brings the schema up to date: applies the migrations it lacks, in
    /// one transaction under an advisory lock (so replicas starting
    /// together apply them once, the others waiting), and records each in
    /// `schema_version`. Returns the version the schema is at. Running it
    /// again changes nothing.
    ///
    /// # Errors
    /// [`DatabaseError::Postgres`] when a statement fails (nothing is
    /// applied), [`DatabaseError::NewerSchema`] when a newer build
    /// migrated the database.
    pub async fn migrate(&self) -> Result<i32, DatabaseError> {
        let mut client = self.client().await?;
        crate::migrate::run(&mut client, self.schema()).await
    }

    /// The version the schema is at; `None` before the first
    /// [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`DatabaseError`] when it cannot be read.
    pub async fn schema_version(&self) -> Result<Option<i32>, DatabaseError> {
        let client = self.client().await?;
        crate::migrate::version(&client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["recall", "t_1", "_x", "A9"] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "a b", "a;drop", "a-b", "ü", &"x".repeat(64)] {
            assert!(
                matches!(check_schema(bad), Err(DatabaseError::InvalidSchema(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_bad_url_or_schema_is_refused_before_connecting() {
        let err = Database::connect("mysql://nope").await.unwrap_err();
        assert!(matches!(err, DatabaseError::InvalidUrl(_)), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
        let err = Database::builder("postgres://u@127.0.0.1:1/db")
            .schema("x; DROP TABLE y")
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, DatabaseError::InvalidSchema(_)), "{err:?}");
    }

    #[test]
    fn verify_modes_are_read_as_require() {
        for (url, read) in [
            (
                "postgres://h/db?sslmode=verify-full",
                "postgres://h/db?sslmode=require",
            ),
            (
                "postgres://h/db?application_name=x&sslmode=verify-ca&connect_timeout=5",
                "postgres://h/db?application_name=x&sslmode=require&connect_timeout=5",
            ),
            (
                "host=h sslmode=verify-full user=u",
                "host=h sslmode=require user=u",
            ),
            ("sslmode=verify-ca", "sslmode=require"),
            (
                "postgres://h/db?sslmode=prefer",
                "postgres://h/db?sslmode=prefer",
            ),
            (
                "postgres://h/db?sslmode=verify-nothing",
                "postgres://h/db?sslmode=verify-nothing",
            ),
            (
                "postgres://h/db?xsslmode=verify-full",
                "postgres://h/db?xsslmode=verify-full",
            ),
        ] {
            assert_eq!(verified_modes_as_require(url), read, "{url}");
        }
    }

    #[test]
    fn every_sslmode_gets_a_connector() {
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            assert!(tls_connector(mode, None).is_ok());
        }
    }
}
