//! The `recall` command: serve the webhooks, sign a test event, replay
//! stored events, forget or export a caller, read the audit log, check the
//! configuration.

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
        recall export-caller +16129782029 > caller.json\n  \
                                                everything held about a caller, as JSON\n  \
        recall audit --caller +16129782029      who read or erased this caller's data\n  \
        recall reindex                          rebuild the call index and the memories' embeddings\n  \
        recall import --since 90d               backfill memories from the ElevenLabs Conversations API\n  \
        recall check-config                     show the effective configuration\n  \
        recall migrate                          apply the PostgreSQL migrations (store = postgres)\n  \
        recall migrate-store --from embedded --to postgres\n  \
                                                copy events, audio, memories and calls to PostgreSQL"
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
    /// Write everything Recall holds about one caller to standard output
    /// as one JSON document (the same as GET /api/users/{phone}/export):
    /// profile, memories, calls with transcripts, whether audio exists.
    /// Recorded in the audit log (token `cli`).
    ExportCaller {
        /// The caller's number in E.164 form, e.g. +16129782029.
        number: String,
    },
    /// Print the audit log's entries about one caller, oldest first, one
    /// JSON object a line.
    Audit {
        /// The caller's number in E.164 form, e.g. +16129782029.
        #[arg(long, value_name = "E164")]
        caller: String,
    },
    /// Print the effective configuration, secrets redacted, and check it.
    CheckConfig,
    /// Backfill memories from the ElevenLabs Conversations API: every
    /// finished conversation goes through the same ingest as the post-call
    /// webhook (a conversation already received is a duplicate), then is
    /// processed into memories. Needs ELEVENLABS_API_KEY; a data-residency
    /// workspace also needs ELEVENLABS_API_URL. Resumable: an interrupted
    /// import continues from <data_dir>/import-checkpoint.json. Run it
    /// while the server is stopped (one process per event log).
    Import(ImportArgs),
    /// Check how an ElevenLabs agent is wired to Recall: the
    /// conversation-initiation webhook and its header, the prompt's
    /// {{user_name}} and {{last_call_summary}}, the first-message override,
    /// the memory tool (URL, header, user_id bound to system__caller_id)
    /// and the post-call webhook with its HMAC secret. Prints ✓/✗ and the
    /// fix for each; exits 1 when something is wrong. Needs
    /// ELEVENLABS_API_KEY. Never prints a secret.
    Setup(SetupArgs),
    /// Rebuild the call index (<data_dir>/calls.db) behind the operator API
    /// and dashboard from the stored post-call events, and embed every
    /// memory whose embedding is missing or of another model.
    Reindex,
    /// Apply the database migrations (with `store = "postgres"`) and exit.
    /// `serve` applies them too, at start; this runs them alone, e.g.
    /// before a rolling deploy.
    Migrate,
    /// Copy everything Recall holds — every stored event byte for byte with
    /// its state, the calls' audio, every caller's memories — from one store
    /// to another, then rebuild the target's call index and compare the
    /// counts. Both stores are set up from the same settings (data_dir for
    /// embedded, DATABASE_URL for postgres). Safe to interrupt and run
    /// again: it goes on where it stopped and copies nothing twice. Stop
    /// the servers on the source first.
    MigrateStore {
        /// The store to copy from: embedded, openmemory or postgres.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The store to copy to: embedded or postgres.
        #[arg(long, value_name = "STORE")]
        to: String,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Only this agent's conversations (repeat for several).
    #[arg(long = "agent", value_name = "AGENT_ID")]
    agents: Vec<String>,
    /// Only calls started at or after this: a date (2026-01-31, UTC), a
    /// date and time (RFC 3339), or a duration ago (90d, 12h, 30m, 2w).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only calls started before this (same forms; a date includes that
    /// whole day). Default: when the import started.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// List and fetch, then print the counts; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also fetch each call's recording and store it as the post_call_audio
    /// webhook would.
    #[arg(long)]
    audio: bool,
    /// Conversations fetched at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    concurrency: u16,
    /// Conversations per listed page (at most 100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    page_size: u32,
    /// Only store the events; the server processes them into memories at
    /// its next start.
    #[arg(long)]
    no_process: bool,
    /// Ignore the checkpoint of an interrupted import and start over.
    #[arg(long)]
    restart: bool,
}

#[derive(Debug, clap::Args)]
struct SetupArgs {
    /// The agent to check.
    #[arg(long, value_name = "AGENT_ID")]
    agent: String,
    /// Where ElevenLabs reaches Recall, e.g. https://recall.example.com:
    /// checks the URLs' host too, and is where --apply points the tool.
    #[arg(long, value_name = "URL")]
    url: Option<url::Url>,
    /// Create or update the memory tool (with a workspace secret for its
    /// header) and attach it to the agent, after showing the change and
    /// asking.
    #[arg(long, requires = "url")]
    apply: bool,
    /// Apply without asking.
    #[arg(long, requires = "apply")]
    yes: bool,
}

/// A caller's number from the command line, or an error naming it.
fn parse_number(raw: &str) -> anyhow::Result<PhoneNumber> {
    PhoneNumber::parse(raw).map_err(|e| anyhow::anyhow!("number: {e}"))
}

/// Records a command's access to a caller's data in the audit log (token
/// `cli`: whoever runs the command already holds the data directory).
/// Fails the command when the entry cannot be written, before any data is
/// shown.
async fn audit_cli(
    audit: &dyn recall_service::AuditLog,
    route: &str,
    caller: &PhoneNumber,
    status: u16,
) -> anyhow::Result<()> {
    let entry = recall_service::AuditEntry {
        time: recall_model::UnixTimestamp::now().to_rfc3339(),
        token: "cli".to_owned(),
        route: route.to_owned(),
        caller: Some(caller.clone()),
        conversation_id: None,
        status,
    };
    audit
        .append(&entry)
        .await
        .map_err(|e| anyhow::anyhow!("cannot write the audit log: {e}"))
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
            let caller = parse_number(number)?;
            runtime()?.block_on(async {
                let service = recall_server::open_service(&config, None).await?;
                let audit = recall_server::open_audit(&config).await?;
                let result = service.erase_caller(&caller).await;
                let status = if result.is_ok() { 200 } else { 500 };
                audit_cli(audit.as_ref(), "CLI forget", &caller, status).await?;
                let report = result?;
                println!(
                    "forgot {}: {} memories, {} conversations, {} stored events, {} audio files, {} indexed calls, {} quarantined bodies, {} pending and {} failed events removed",
                    caller.masked(),
                    report.memories,
                    report.conversations,
                    report.payloads,
                    report.audio,
                    report.indexed_calls,
                    report.quarantined,
                    report.pending_events,
                    report.failed_events
                );
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Some(Command::ExportCaller { number }) => {
            let config = load(cli)?;
            let caller = parse_number(number)?;
            runtime()?.block_on(async {
                use tokio::io::AsyncWriteExt as _;
                let service = recall_server::open_service(&config, None).await?;
                let audit = recall_server::open_audit(&config).await?;
                let known = service.caller(&caller).await?.is_some();
                let status = if known { 200 } else { 404 };
                audit_cli(audit.as_ref(), "CLI export-caller", &caller, status).await?;
                if !known {
                    anyhow::bail!("no caller with the number {} is known", caller.masked());
                }
                let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
                let report = service.export_caller(&caller, &mut out).await?;
                out.write_all(b"\n").await?;
                out.flush().await?;
                eprintln!(
                    "exported {}: {} memories, {} calls",
                    caller.masked(),
                    report.memories,
                    report.calls
                );
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Some(Command::Audit { caller }) => {
            let config = load(cli)?;
            let caller = parse_number(caller)?;
            runtime()?.block_on(async {
                let audit = recall_server::open_audit(&config).await?;
                for entry in audit.for_caller(&caller).await? {
                    println!("{}", serde_json::to_string(&entry)?);
                }
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
        Some(Command::MigrateStore { from, to }) => {
            let config = load(cli)?;
            let source = with_store(&config, from, "--from")?;
            let target = with_store(&config, to, "--to")?;
            anyhow::ensure!(
                source.store != target.store,
                "--from and --to name the same store"
            );
            anyhow::ensure!(
                !matches!(target.store, Store::Memory | Store::OpenMemory),
                "--to: the {} store cannot hold the events; use embedded or postgres",
                target.store.name()
            );
            let report = runtime()?.block_on(async {
                let source = recall_server::open_service(&source, None).await?;
                let target = recall_server::open_service(&target, None).await?;
                let progress = recall_server::import::Progress::auto_for("recall migrate-store");
                let report = source
                    .copy_to(&target, |r| {
                        progress.status(|| {
                            format!(
                                "{}/{} conversations, {} events copied, {} already there; memories of {} callers",
                                r.conversations_done,
                                r.conversations,
                                r.events_copied,
                                r.events_present,
                                r.callers
                            )
                        });
                    })
                    .await;
                progress.finish();
                let report = report?;
                let embedded = target.backfill_embeddings().await?;
                anyhow::Ok((report, embedded))
            });
            let (report, embedded) = report?;
            println!(
                "copied {} events ({} already there) of {} conversations, {} with audio; {} memories ({} already there) of {} callers; {} calls indexed; {} memories embedded",
                report.events_copied,
                report.events_present,
                report.conversations,
                report.audio,
                report.memories_copied,
                report.memories_present,
                report.callers,
                report.calls_indexed,
                embedded.embedded
            );
            println!("the counts match: the target holds every event and memory of the source");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Import(args)) => import(&load(cli)?, args),
        Some(Command::Setup(args)) => setup(&load(cli)?, args),
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

/// `config` with its store set to `name` (a `--from`/`--to` argument).
fn with_store(config: &Config, name: &str, flag: &str) -> anyhow::Result<Config> {
    let mut config = config.clone();
    config.store = Store::parse(name).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(config)
}

fn setup(config: &Config, args: &SetupArgs) -> anyhow::Result<ExitCode> {
    use recall_server::elevenlabs::{ElevenLabsClient, RetryPolicy};
    use recall_server::setup::{Expected, apply, check, inspect, plan};
    use std::io::{IsTerminal as _, Write as _};
    let Some(key) = &config.elevenlabs_api_key else {
        anyhow::bail!(
            "`recall setup` needs the ElevenLabs API key: set ELEVENLABS_API_KEY (setting `elevenlabs_api_key`)"
        );
    };
    let mut config = config.clone();
    config.load_generated_secrets()?;
    let expected = Expected {
        public_url: args.url.clone(),
        client_data_keys: config.client_data_key.secrets.clone(),
        search_keys: config.search_data_key.secrets.clone(),
        post_call_key_set: !config.post_call_key.secrets.is_empty(),
    };
    let client = ElevenLabsClient::new(
        &config.elevenlabs_api_url,
        key.expose(),
        RetryPolicy::default(),
    )?;
    runtime()?.block_on(async {
        let wiring = inspect(&client, &args.agent).await?;
        let report = check(&wiring, &expected);
        print!("{}", report.render());
        if !args.apply {
            return Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        let plan = plan(&client, &wiring, &expected).await?;
        if plan.is_empty() {
            println!("\nThe memory tool is wired right: nothing to apply.");
            return Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        println!("\n--apply will:\n{}", plan.describe());
        if !args.yes {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!("not applied: confirm on a terminal, or pass --yes");
            }
            print!("Apply these changes? [y/N] ");
            std::io::stdout().flush()?;
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                println!("Nothing changed.");
                return Ok(ExitCode::FAILURE);
            }
        }
        let applied = apply(&client, &plan).await?;
        println!(
            "Applied: tool {}{}.\n",
            applied.tool_id.as_deref().unwrap_or("-"),
            if applied.attached {
                " attached to the agent"
            } else {
                " updated"
            }
        );
        // Read everything back: the checklist now says what ElevenLabs has.
        let report = check(&inspect(&client, &args.agent).await?, &expected);
        print!("{}", report.render());
        Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

fn import(config: &Config, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    use recall_server::import::{
        CHECKPOINT_FILE, Counts, ElevenLabsClient, ImportOptions, Importer, Progress, RetryPolicy,
    };
    let Some(key) = &config.elevenlabs_api_key else {
        anyhow::bail!(
            "`recall import` needs the ElevenLabs API key: set ELEVENLABS_API_KEY (setting `elevenlabs_api_key`)"
        );
    };
    // Only warnings from the service: the progress line says the rest.
    let _log_writer = recall_server::telemetry::init_stderr(config.log_format, "warn");
    let options = ImportOptions {
        agents: args.agents.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        dry_run: args.dry_run,
        audio: args.audio,
        concurrency: usize::from(args.concurrency),
        page_size: args.page_size,
        process: !args.no_process,
        checkpoint: Some(config.data_dir.join(CHECKPOINT_FILE)),
        restart: args.restart,
    };
    let client = ElevenLabsClient::new(
        &config.elevenlabs_api_url,
        key.expose(),
        RetryPolicy::default(),
    )?;
    let progress = Progress::auto();
    let counts = Counts::default();
    runtime()?.block_on(async {
        let service = recall_server::open_service(config, None).await?;
        let importer = Importer::new(&service, &client, &options, &progress, &counts);
        let outcome = tokio::select! {
            outcome = importer.run() => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        };
        progress.finish();
        let prefix = if options.dry_run { "import (dry run)" } else { "import" };
        match outcome {
            None => {
                eprintln!(
                    "{prefix} interrupted: {}; run the same command again to resume",
                    counts.snapshot().line()
                );
                Ok(ExitCode::from(130))
            }
            Some(Err(error)) => {
                eprintln!("{prefix} stopped: {}", counts.snapshot().line());
                Err(error)
            }
            Some(Ok(summary)) => {
                let resumed = if summary.resumed { " (resumed)" } else { "" };
                let mut line = format!("{prefix}{resumed}: {}", summary.line());
                let mut ok = summary.failed == 0;
                if let Some(p) = &summary.processed {
                    line.push_str(&format!(
                        "; processed {} events ({} failed, {} to retry): {} memories written, {} unchanged",
                        p.processed, p.failed, p.retrying, p.memories_written, p.memories_unchanged
                    ));
                    ok &= p.failed + p.retrying == 0;
                } else if !options.dry_run {
                    line.push_str("; not processed yet: the server processes them at its next start");
                }
                println!("{line}");
                if summary.failed > 0 {
                    eprintln!(
                        "{} conversations failed (see above); run the import again to retry them",
                        summary.failed
                    );
                }
                Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
        }
    })
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
        print_secrets_notice(app.config(), app.generated_secrets(), app.port());
        app.run_until_stopped().await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn print_secrets_notice(config: &Config, generated: bool, port: u16) {
    let any_generated = config
        .webhook_keys()
        .iter()
        .any(|(_, k)| k.source != SecretSource::Configured);
    if !any_generated && !config.admin_token_generated {
        return;
    }
    let path = config.generated_secrets_path();
    let verb = if generated { "Generated" } else { "Using" };
    let mut lines = vec![
        format!(
            "{verb} secrets in {path} (mode 0600). Read them with `cat {path}`:",
            path = path.display()
        ),
        "  post_call_key   -> the post-call webhook's secret in ElevenLabs; `recall sign FILE` uses it".into(),
        "  client_data_key -> header `X-Api-Key` on the conversation-initiation webhook".into(),
        "  search_data_key -> header `X-Api-Key` on the search tool".into(),
    ];
    if config.admin_token_generated {
        let host = match config.bind.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        lines.push(format!(
            "  admin_token     -> the dashboard: open http://{host}:{port}/dashboard and paste it to sign in"
        ));
    }
    lines.push("Set ELEVENLABS_POST_CALL_KEY, ELEVENLABS_CLIENT_DATA_KEY, ELEVENLABS_SEARCH_DATA_KEY (and RECALL_ADMIN_TOKEN) to use your own.".into());
    eprintln!("\n{}\n", lines.join("\n"));
}
