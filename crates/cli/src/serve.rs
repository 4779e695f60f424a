//! `aifn serve`: the HTTP service, configured by an optional TOML file and
//! flags (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use aifn_server::{AppState, ServerConfig};
use aifn_service::{Service, ServiceConfig};
use anyhow::Context as _;
use serde::Deserialize;

use crate::Exit;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Data directory (registry, audit log, module cache). Default ./aifn-data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1:8080 (localhost only: put
    /// a TLS proxy in front to serve other hosts).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A TOML configuration file (see docs/operations.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// This host's name in audit records.
    #[arg(long)]
    node: Option<String>,
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
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    server: ServerSection,
    service: Option<ServiceConfig>,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ServerSection {
    max_requests: usize,
    cors_origins: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        let d = ServerConfig::default();
        ServerSection {
            max_requests: d.max_requests,
            cors_origins: d.cors_origins,
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("invalid configuration in {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut service_config = file.service.unwrap_or_default();
    if let Some(d) = args.data_dir {
        service_config.data_dir = d;
    }
    if let Some(n) = args.node {
        service_config.node = n;
    }
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    init_logs(args.log_format.or(file.log_format).unwrap_or_default());
    let server_config = ServerConfig {
        max_requests: file.server.max_requests,
        cors_origins: file.server.cors_origins,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Bounded: requests past `max_requests` are shed before they get here.
        .max_blocking_threads(server_config.max_requests.max(1) + 8)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let service = {
            let cfg = service_config.clone();
            tokio::task::spawn_blocking(move || Service::open(cfg))
                .await?
                .map_err(|e| anyhow::anyhow!("{e}"))?
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %service_config.data_dir.display(), "aifn serving");
        // Scripts and tests read the address from this line.
        eprintln!("aifn listening on http://{addr}");
        aifn_server::serve(
            listener,
            AppState::new(service, server_config),
            shutdown_signal(),
        )
        .await?;
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
        let service = cfg.service.expect("service section");
        assert_eq!(cfg.listen, Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
        assert_eq!(cfg.log_format, Some(LogFormat::Json));
        assert_eq!(service.limits, aifn_types::Limits::default());
        assert_eq!(service.tenant, aifn_service::TenantLimits::default());
        assert_eq!(service.audit_retention_days, Some(365));
        assert_eq!(
            service.memory_keep_resident,
            aifn_service::ServiceConfig::default().memory_keep_resident
        );
        assert_eq!(
            cfg.server.max_requests,
            ServerConfig::default().max_requests
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(
            toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").is_err()
        );
        assert!(toml::from_str::<FileConfig>("[service.limits]\nfuell = 3\n").is_err());
    }
}
