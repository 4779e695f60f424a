//! `aifn serve`: the HTTP service, configured by an optional TOML file and
//! flags (flags win).

use std::io::IsTerminal as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use aifn_server::{AppState, ServerConfig};
use aifn_service::{DataDir, Service, ServiceConfig};
use aifn_types::DatabaseUrl;
use anyhow::Context as _;
use serde::Deserialize;

use crate::Exit;
use crate::output::err;

/// Where `aifn serve` listens unless told otherwise (localhost only).
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Data directory (registry, audit log, module cache). Default ./aifn-data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, `HOST:PORT` (a name such as `localhost`
    /// is resolved). Default 127.0.0.1:8080 (localhost only: put a TLS
    /// proxy in front to serve other hosts).
    #[arg(long)]
    listen: Option<String>,
    /// A TOML configuration file (see docs/operations.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// This host's name in audit records (default: generated once per
    /// data dir and kept in it).
    #[arg(long)]
    node: Option<String>,
    /// The PostgreSQL database a fleet of nodes shares, for the registry
    /// and the audit log (default: $AIFN_DATABASE_URL, then `[service]
    /// database`; none: SQLite files in the data dir).
    #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
    database: Option<DatabaseUrl>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The configuration file.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    log_format: Option<LogFormat>,
    server: ServerConfig,
    service: ServiceConfig,
}

/// `HOST:PORT` to one address; names are resolved (the first address).
fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| {
            format!("cannot listen on {listen}: write HOST:PORT, e.g. 127.0.0.1:8080")
        })?
        .next()
        .with_context(|| format!("{listen} resolves to no address"))
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, never into log files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: no new connections; finishing calls in flight");
}

/// Open mode is for development: say so once per open tenant, at start
/// (before the listening line, so that scripts see it) and every hour, so
/// that it is not left on unnoticed.
async fn warn_open_tenants(service: &Service) {
    let s = service.clone();
    match tokio::task::spawn_blocking(move || s.open_tenants()).await {
        Ok(Ok(tenants)) => {
            for tenant in tenants {
                tracing::warn!(
                    %tenant,
                    "tenant is in open mode: every agent may invoke every active function; \
                     for development only (`aifn tenant mode allowlist` ends it)"
                );
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "cannot list the tenants in open mode"),
        Err(e) => tracing::error!(error = %e, "open-mode check task failed"),
    }
}

/// [`warn_open_tenants`] every hour after the start.
fn spawn_open_mode_warnings(service: Service) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let hour = Duration::from_secs(3600);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
        loop {
            tick.tick().await;
            warn_open_tenants(&service).await;
        }
    })
}

fn read_config(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cfg: FileConfig = toml::from_str(&text)
        .with_context(|| format!("invalid configuration in {}", path.display()))?;
    check_counts(&cfg).with_context(|| format!("invalid configuration in {}", path.display()))?;
    Ok(cfg)
}

/// Refuses a zero where one would mean nothing (a cap of no requests, a
/// timeout of no time): written `0` is more likely meant as "off", which
/// these settings do not have, so it is an error at start-up rather than
/// a silent 1.
fn check_counts(cfg: &FileConfig) -> anyhow::Result<()> {
    let (server, service) = (&cfg.server, &cfg.service);
    let counts = [
        ("[server] max_requests", server.max_requests as u64),
        ("[server] header_timeout_secs", server.header_timeout_secs),
        ("[server] idle_timeout_secs", server.idle_timeout_secs),
        ("[server] body_timeout_secs", server.body_timeout_secs),
        ("[server] max_connections", server.max_connections as u64),
        (
            "[service] max_concurrent",
            u64::from(service.max_concurrent),
        ),
        ("[service] cpu_slots", service.cpu_slots as u64),
    ];
    for (name, value) in counts {
        if value == 0 {
            anyhow::bail!("{name} must be at least 1 (there is no setting that switches it off)");
        }
    }
    Ok(())
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let file = read_config(args.config.as_ref())?;
    let mut service_config = file.service;
    if let Some(d) = args.data_dir {
        service_config.data_dir = d;
    }
    if let Some(n) = args.node {
        service_config.node = Some(n);
    }
    if let Some(url) = args.database {
        service_config.database = Some(url);
    }
    let listen = resolve(
        args.listen
            .as_deref()
            .or(file.listen.as_deref())
            .unwrap_or(DEFAULT_LISTEN),
    )?;
    init_logs(args.log_format.or(file.log_format).unwrap_or_default());
    let server_config = file.server;

    // One server per data dir, held until this process exits.
    let dir = DataDir::new(&service_config.data_dir, "");
    dir.create()?;
    let _lock = dir.lock()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Bounded: requests past `max_requests` are shed before they get here.
        .max_blocking_threads(server_config.max_requests.max(1) + 8)
        // Calls run wasm on these threads: the guest's stack (`stack_bytes`,
        // at most wasmtime's 2 MiB) and the host's frames must both fit.
        .thread_stack_size(8 << 20)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let service = {
            let cfg = service_config.clone();
            tokio::task::spawn_blocking(move || Service::open(cfg)).await??
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        match &service_config.database {
            Some(url) => tracing::info!(%addr, data_dir = %dir.absolute().display(), database = %url, "aifn serving"),
            None => tracing::info!(%addr, data_dir = %dir.absolute().display(), "aifn serving"),
        }
        warn_open_tenants(&service).await;
        let warnings = spawn_open_mode_warnings(service.clone());
        // Scripts and tests read the address from this line.
        err!("aifn listening on http://{addr}");
        aifn_server::serve(
            listener,
            AppState::new(service, server_config),
            shutdown_signal(),
        )
        .await?;
        warnings.abort();
        anyhow::Ok(())
    })?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in docs/operations.md is the reference: it must parse,
    /// and say what it claims.
    #[test]
    fn the_documented_configuration_parses() {
        let doc = include_str!("../../../docs/operations.md");
        let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + doc[start..].find("```").expect("end of block");
        let cfg: FileConfig =
            toml::from_str(&doc[start..end]).expect("the documented config parses");
        let service = cfg.service;
        assert_eq!(cfg.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(
            resolve(cfg.listen.as_deref().expect("listen")).expect("resolves"),
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
        assert_eq!(cfg.log_format, Some(LogFormat::Json));
        assert_eq!(service.limits, aifn_types::Limits::default());
        assert_eq!(service.tenant, aifn_service::TenantLimits::default());
        assert_eq!(service.audit.retention_days, Some(365));
        assert_eq!(
            service.audit.signing_key.as_deref(),
            Some(std::path::Path::new("/etc/aifn/audit-signing.key"))
        );
        assert_eq!(service.audit.checkpoint_every, 1000);
        assert_eq!(service.audit.checkpoint_secs, 60);
        assert_eq!(service.audit.max_db_bytes, Some(10_737_418_240));
        assert_eq!(service.node.as_deref(), Some("aifn-1"));
        assert_eq!(
            service.memory_keep_resident,
            aifn_service::ServiceConfig::default().memory_keep_resident
        );
        assert_eq!(
            cfg.server.console.public_origin.as_deref(),
            Some("https://aifn.example.com")
        );
        assert_eq!(cfg.server.console.session_minutes, 480);
        assert_eq!(
            ServerConfig {
                console: aifn_server::ConsoleConfig::default(),
                ..cfg.server
            },
            ServerConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(
            toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").is_err()
        );
        assert!(toml::from_str::<FileConfig>("[service.limits]\nfuell = 3\n").is_err());
        assert!(toml::from_str::<FileConfig>("[server]\nmax_request = 3\n").is_err());
        assert!(toml::from_str::<FileConfig>("[service.audit]\nretention = 3\n").is_err());
        // The old flat names are gone: they must not be silently ignored.
        assert!(toml::from_str::<FileConfig>("[service]\naudit_retention_days = 3\n").is_err());
    }

    #[test]
    fn an_absent_section_takes_the_one_default() {
        let cfg: FileConfig = toml::from_str("[server]\nmax_requests = 7\n").expect("parses");
        assert_eq!(cfg.server.max_requests, 7);
        assert_eq!(
            cfg.server.cors_origins,
            ServerConfig::default().cors_origins
        );
        assert_eq!(cfg.service, ServiceConfig::default());
    }

    #[test]
    fn a_zero_count_or_timeout_is_refused_and_one_is_taken() {
        for setting in [
            "[server]\nmax_requests",
            "[server]\nheader_timeout_secs",
            "[server]\nidle_timeout_secs",
            "[server]\nbody_timeout_secs",
            "[server]\nmax_connections",
            "[service]\nmax_concurrent",
            "[service]\ncpu_slots",
        ] {
            let one: FileConfig = toml::from_str(&format!("{setting} = 1\n")).expect("parses");
            assert!(check_counts(&one).is_ok(), "{setting} = 1");
            let zero: FileConfig = toml::from_str(&format!("{setting} = 0\n")).expect("parses");
            let err = check_counts(&zero).expect_err(setting).to_string();
            let name = setting.rsplit('\n').next().unwrap_or_default();
            assert!(err.contains(name) && err.contains("at least 1"), "{err}");
        }
        assert!(check_counts(&FileConfig::default()).is_ok());
    }

    #[test]
    fn a_listen_name_is_resolved() {
        assert!(resolve("localhost:0").expect("resolves").ip().is_loopback());
        assert!(resolve("no port").is_err());
    }
}
