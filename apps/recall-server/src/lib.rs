//! Recall's HTTP service: the three ElevenLabs webhooks over a memory
//! store, with authentication, limits, metrics and logs.
//!
//! The binary (`recall`) only parses the command line; everything else is
//! here so that tests run the real server in-process:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use recall_server::{Application, config::{Config, EnvVars}};
//!
//! let config = Config::load(None, &EnvVars::process())?;
//! let app = Application::build(config).await?;
//! println!("listening on port {}", app.port());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod auth;
pub mod config;
pub mod elevenlabs;
pub mod error;
pub mod import;
pub mod metrics;
pub mod net;
pub mod routes;
pub mod secrets_file;
pub mod setup;
pub mod startup;
pub mod telemetry;

pub use startup::{Application, connect_database, migrate, open_audit, open_service};
