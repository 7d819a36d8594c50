//! The `gregor` binary: `gregor [serve] [--config FILE] [--override key=value]...`,
//! `gregor storage format|info|random-uuid` (Kafka's `kafka-storage.sh`), `gregor dev
//! --nodes N` (a local cluster), and `gregor perf ...`, the load tool (crate `gregor-perf`).

mod dev_cluster;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gregor_config::{BrokerConfig, ConfigSources, LoadedConfig};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "gregor", version, about = "A Kafka-compatible event streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node (the default when no command is given).
    Serve(ServeArgs),
    /// Load tools: produce and consume load against any Kafka broker, a fake broker sink, machine ceilings.
    Perf(gregor_perf::cli::PerfArgs),
    /// Format and inspect the node's log directories, as Kafka's kafka-storage.sh.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Start a local cluster of N nodes on consecutive ports, its data under one folder; Ctrl-C stops it.
    Dev(DevArgs),
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Write meta.properties (cluster id, node id, directory id) into every log directory.
    Format(FormatArgs),
    /// Show what the log directories hold and any problem with them.
    Info(ServeArgs),
    /// Print a new random cluster id.
    RandomUuid,
}

#[derive(Debug, Clone, clap::Args)]
struct FormatArgs {
    /// The cluster id every node of the cluster is formatted with (see `storage random-uuid`).
    #[arg(long = "cluster-id", short = 't', value_name = "ID")]
    cluster_id: String,
    /// Leave directories already formatted for this cluster and node as they are, and format the others.
    #[arg(long = "ignore-formatted", short = 'g')]
    ignore_formatted: bool,
    #[command(flatten)]
    config: ServeArgs,
}

#[derive(Debug, Clone, clap::Args)]
struct DevArgs {
    /// How many nodes, each with both roles (broker and controller).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// The first client port; node i listens on base+i-1, its controller on base+N+i-1.
    #[arg(long = "base-port", default_value_t = 9092)]
    base_port: u16,
    /// The folder of the nodes' data (node-<id>) and of the cluster id.
    #[arg(long, default_value = "gregor-dev")]
    dir: PathBuf,
    /// Set one config key on every node, over the launcher's settings (repeatable).
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// A config file: Java properties, or YAML when it ends in .yaml or .yml.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one config key, over the file and the environment (repeatable).
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// glibc's allocator returns a freed block above its mmap threshold (128 KiB at
/// first) to the kernel at once, and trims the heap above its trim threshold, so each
/// megabyte-sized request frame cost 256 fresh page faults, each zeroing a page (in a
/// VM, often a host fault too): about a tenth of the broker's CPU when producing 1 MiB
/// batches. Fixed thresholds keep freed request-sized blocks in the heap for reuse;
/// what stays is bounded by the requests the bounded queues let in at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_request_memory() {
    const MMAP_THRESHOLD_BYTES: libc::c_int = 32 * 1024 * 1024;
    const TRIM_THRESHOLD_BYTES: libc::c_int = 256 * 1024 * 1024;
    // SAFETY: mallopt only changes allocator parameters; it is called before any
    // other thread exists, as glibc recommends.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_request_memory() {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => {
            keep_freed_request_memory();
            args
        }
        // The load tool reports on stdout and stderr itself: no broker logging set-up.
        Some(Command::Perf(args)) => return gregor_perf::run(args).map_err(anyhow::Error::from),
        Some(Command::Storage(command)) => std::process::exit(storage(command)?),
        Some(Command::Dev(args)) => {
            let options = dev_cluster::DevOptions {
                nodes: args.nodes,
                base_port: args.base_port,
                dir: args.dir,
                overrides: parse_overrides(&args.overrides)?,
            };
            std::process::exit(dev_cluster::run(options)?);
        }
        None => {
            keep_freed_request_memory();
            cli.serve
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GREGOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    raise_open_files_limit();

    let loaded = load_config(&args)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let config = loaded.config;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Handlers first: a SIGTERM sent as soon as the ready line appears (a launcher,
        // a test) must stop the broker cleanly, not kill it by the default action.
        let mut stop_signals = StopSignals::install()?;
        let server = tokio::select! {
            server = gregor_broker::run(config) => server.context("cannot start")?,
            // Before it is ready the broker stops at once, as the signal's default
            // action did: what it opened is recovered at the next start, as after a crash.
            status = stop_signals.recv() => {
                eprintln!("gregor: stopped by a signal before it was ready");
                std::process::exit(status);
            }
        };
        let broker = std::sync::Arc::clone(&server.broker);
        let addresses: Vec<String> = server.addresses.iter().map(ToString::to_string).collect();
        println!(
            "gregor ready in {} ms: node {}, cluster {}, listening on {}",
            server.started_in.as_millis(),
            broker.node_id,
            broker.cluster_id,
            addresses.join(", ")
        );
        stop_signals.recv().await;
        tracing::info!("shutting down");
        server.shutdown().await.context("shutdown")?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

fn parse_overrides(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(key, value)| (key.trim().to_owned(), value.to_owned()))
                .with_context(|| format!("--override {pair:?} is not key=value"))
        })
        .collect()
}

/// The configuration from the file, the environment and the overrides; an invalid
/// one ends the process with status 2 and the reason.
fn load_config(args: &ServeArgs) -> anyhow::Result<LoadedConfig> {
    let overrides = parse_overrides(&args.overrides)?;
    let sources = ConfigSources { file: args.config.clone(), env: std::env::vars().collect(), overrides };
    match BrokerConfig::load(&sources) {
        Ok(loaded) => Ok(loaded),
        Err(error) => {
            eprintln!("gregor: {error}");
            std::process::exit(2);
        }
    }
}

/// The configuration for a storage command, its warnings on stderr (there is no
/// logging set up for these commands).
fn load_storage_config(args: &ServeArgs) -> anyhow::Result<BrokerConfig> {
    let loaded = load_config(args)?;
    for warning in &loaded.warnings {
        eprintln!("gregor storage: {warning}");
    }
    Ok(loaded.config)
}

/// `gregor storage ...`; returns the exit status (1 for a refusal or a problem found).
fn storage(command: StorageCommand) -> anyhow::Result<i32> {
    use gregor_broker::storage_tool;
    match command {
        StorageCommand::RandomUuid => {
            println!("{}", storage_tool::random_cluster_id());
            Ok(0)
        }
        StorageCommand::Info(args) => {
            let (text, ok) = storage_tool::info(&load_storage_config(&args)?);
            print!("{text}");
            Ok(if ok { 0 } else { 1 })
        }
        StorageCommand::Format(args) => {
            let config = load_storage_config(&args.config)?;
            match storage_tool::format(&config, &args.cluster_id, args.ignore_formatted) {
                Ok(text) => {
                    print!("{text}");
                    Ok(0)
                }
                Err(error) => {
                    eprintln!("gregor storage format: {error}");
                    Ok(1)
                }
            }
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        })
    }

    /// Waits for either; returns the exit status a shell reports for it (128 + signal).
    async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.terminate.recv() => 128 + libc::SIGTERM,
            _ = self.interrupt.recv() => 128 + libc::SIGINT,
        }
    }
}

/// Every partition's active segment and the sockets of every client count
/// against RLIMIT_NOFILE, whose usual soft default (1024) is far below what a
/// broker needs: as Kafka's packaging does, the soft limit goes up to the hard
/// one. The log manager then sizes its file budget from the raised limit.
fn raise_open_files_limit() {
    match gregor_storage::raise_nofile_limit() {
        Ok((before, after, hard)) if before != after => {
            tracing::info!("raised the open files limit (RLIMIT_NOFILE) from {before} to {after} (hard limit {hard})")
        }
        Ok((soft, _, hard)) => tracing::info!("open files limit (RLIMIT_NOFILE): {soft} (hard limit {hard})"),
        Err(error) => tracing::warn!("cannot raise the open files limit (RLIMIT_NOFILE): {error}"),
    }
}
