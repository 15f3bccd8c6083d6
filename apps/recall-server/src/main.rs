//! The `recall` command: serve the webhooks, sign a test event, replay
//! stored events, forget a caller, check the configuration.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use recall_model::{ConversationId, PhoneNumber};
use recall_server::Application;
use recall_server::config::{Config, EnvVars, SecretSource, Store};
use recall_signature::{Secret, sign};

/// Recall gives ElevenLabs voice agents a long-term memory of their callers.
///
/// Configuration comes from built-in defaults, then recall.toml (--config or
/// RECALL_CONFIG, else ./recall.toml when present), then the environment.
/// See docs/configuration.md for every setting.
#[derive(Debug, Parser)]
#[command(
    name = "recall",
    version,
    propagate_version = true,
    after_help = "Examples:\n  \
        recall                                  serve on 127.0.0.1:8080 with the embedded store under ./data\n  \
        RECALL_BIND=0.0.0.0:8080 recall serve   (needs the three ELEVENLABS_*_KEY secrets)\n  \
        recall sign call.json                   the ElevenLabs-Signature for call.json\n  \
        recall replay --conversation conv_123   process one stored conversation again\n  \
        recall replay --failed                  retry the events whose processing failed\n  \
        recall forget +16129782029              erase a caller\n  \
        recall reindex                          rebuild the call index and the memories' embeddings\n  \
        recall check-config                     show the effective configuration\n  \
        recall migrate                          apply the PostgreSQL migrations (store = postgres)"
)]
struct Cli {
    /// The configuration file (TOML). Default: $RECALL_CONFIG, else
    /// ./recall.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the webhooks (the default command). Stops gracefully on
    /// SIGTERM or Ctrl-C, leaving unprocessed post-call events on disk.
    Serve,
    /// Print the ElevenLabs-Signature header value for a body, exactly as
    /// ElevenLabs computes it (t=<unix secs>,v0=<hex HMAC-SHA256>), to test
    /// the post-call webhook with curl.
    Sign {
        /// The webhook secret. Default: the configured post-call secret
        /// (ELEVENLABS_POST_CALL_KEY, or the one generated on the first run).
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// The signed time in unix seconds. Default: now.
        #[arg(long, value_name = "UNIX_SECONDS")]
        timestamp: Option<u64>,
        /// The body to sign, byte for byte (`-` reads standard input).
        file: PathBuf,
    },
    /// Process stored post-call events again into memories (all, or one
    /// conversation's), e.g. after a store outage or a store change.
    Replay {
        /// Only this conversation.
        #[arg(long, value_name = "ID", conflicts_with = "failed")]
        conversation: Option<String>,
        /// Only the events whose processing failed for good (listed by
        /// `GET /api/events?status=failed`).
        #[arg(long)]
        failed: bool,
    },
    /// Erase one caller (GDPR): their memories and their stored post-call
    /// events.
    Forget {
        /// The caller's number in E.164 form, e.g. +16129782029.
        number: String,
    },
    /// Print the effective configuration, secrets redacted, and check it.
    CheckConfig,
    /// Rebuild the call index (<data_dir>/calls.db) behind the operator API
    /// and dashboard from the stored post-call events, and embed every
    /// memory whose embedding is missing or of another model.
    Reindex,
    /// Apply the database migrations (with `store = "postgres"`) and exit.
    /// `serve` applies them too, at start; this runs them alone, e.g.
    /// before a rolling deploy.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("recall: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::load(cli.config.as_deref(), &EnvVars::process())?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        None | Some(Command::Serve) => serve(&load(cli)?),
        Some(Command::Sign {
            secret,
            timestamp,
            file,
        }) => {
            let secret = match secret {
                Some(s) => {
                    Secret::new(s.as_str()).map_err(|e| anyhow::anyhow!("invalid --secret: {e}"))?
                }
                None => configured_post_call_secret(&load(cli)?)?,
            };
            let mut body = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut body)?;
            } else {
                body = std::fs::read(file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            }
            let timestamp = timestamp.unwrap_or_else(recall_server::auth::now_unix);
            println!("{}", sign(&body, &secret, timestamp));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Replay {
            conversation,
            failed,
        }) => {
            let config = load(cli)?;
            let conversation = conversation
                .as_deref()
                .map(ConversationId::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--conversation: {e}"))?;
            runtime()?.block_on(async {
                let service = recall_server::open_service(&config, None).await?;
                let report = if *failed {
                    service.replay_failed().await?
                } else {
                    service.replay(conversation.as_ref()).await?
                };
                println!(
                    "replayed: {} processed, {} failed, {} to retry, {} skipped; {} memories written, {} unchanged",
                    report.processed,
                    report.failed,
                    report.retrying,
                    report.skipped,
                    report.memories_written,
                    report.memories_unchanged
                );
                anyhow::Ok(if report.failed + report.retrying == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            })
        }
        Some(Command::Forget { number }) => {
            let config = load(cli)?;
            let caller = PhoneNumber::parse(number).map_err(|e| anyhow::anyhow!("{e}"))?;
            runtime()?.block_on(async {
                let service = recall_server::open_service(&config, None).await?;
                let report = service.erase_caller(&caller).await?;
                println!(
                    "forgot {}: {} memories, {} conversations, {} stored events, {} audio files, {} indexed calls removed",
                    caller.masked(),
                    report.memories,
                    report.conversations,
                    report.payloads,
                    report.audio,
                    report.indexed_calls
                );
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Some(Command::Reindex) => {
            let config = load(cli)?;
            let runtime = runtime()?;
            let (report, embedded) = runtime.block_on(async {
                let service = recall_server::open_service(&config, None).await?;
                let report = service.reindex().await?;
                anyhow::Ok((report, service.backfill_embeddings().await?))
            })?;
            println!(
                "indexed {} calls and {} calls that never connected, {} with audio; {} unreadable events skipped",
                report.transcriptions, report.initiation_failures, report.audio, report.skipped
            );
            println!(
                "embedded {} memories ({} gone meanwhile)",
                embedded.embedded, embedded.gone
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Migrate) => {
            let config = load(cli)?;
            anyhow::ensure!(
                config.store == Store::Postgres,
                "`recall migrate` is for store = \"postgres\" (RECALL_STORE=postgres and DATABASE_URL); the {} store needs no migration",
                config.store.name()
            );
            let version = runtime()?.block_on(async {
                let db = recall_server::connect_database(&config).await?;
                recall_server::migrate(&db).await
            })?;
            println!("the database schema is at version {version}");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::CheckConfig) => {
            let mut config = load(cli)?;
            config.load_generated_secrets()?;
            if let Some(file) = &config.config_file {
                println!("# from {} and the environment", file.display());
            } else {
                println!("# from the defaults and the environment");
            }
            print!("{}", config.describe());
            for name in &config.ignored_env {
                println!("# ignored: {name} is not a setting");
            }
            println!("# configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn configured_post_call_secret(config: &Config) -> anyhow::Result<Secret> {
    let mut config = config.clone();
    config.load_generated_secrets()?;
    match config.post_call_key.secrets.iter().next() {
        Some(secret) => Ok(secret.clone()),
        None => anyhow::bail!(
            "no post-call secret: pass --secret, set ELEVENLABS_POST_CALL_KEY, or run `recall serve` once to generate {}",
            config.generated_secrets_path().display()
        ),
    }
}

fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    let _log_writer = recall_server::telemetry::init_stderr(config.log_format, &config.log_filter);
    for name in &config.ignored_env {
        tracing::warn!(
            variable = %name,
            "ignoring an environment variable that is not a Recall setting (see docs/configuration.md)"
        );
    }
    runtime()?.block_on(async {
        let app = Application::build(config.clone()).await?;
        print_secrets_notice(config, app.generated_secrets());
        app.run_until_stopped().await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn print_secrets_notice(config: &Config, generated: bool) {
    let any_generated = config
        .webhook_keys()
        .iter()
        .any(|(_, k)| k.source != SecretSource::Configured);
    if !any_generated {
        return;
    }
    let path = config.generated_secrets_path();
    let verb = if generated { "Generated" } else { "Using" };
    eprintln!(
        "\n{verb} webhook secrets in {path} (mode 0600). Read them with `cat {path}`:\n  \
         post_call_key   -> the post-call webhook's secret in ElevenLabs; `recall sign FILE` uses it\n  \
         client_data_key -> header `X-Api-Key` on the conversation-initiation webhook\n  \
         search_data_key -> header `X-Api-Key` on the search tool\n\
         Set ELEVENLABS_POST_CALL_KEY, ELEVENLABS_CLIENT_DATA_KEY and ELEVENLABS_SEARCH_DATA_KEY to use your own.\n",
        path = path.display()
    );
}
