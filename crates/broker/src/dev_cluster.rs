//! `gregor dev --nodes N`: a local cluster of N Gregor processes in one command.
//!
//! Node `i` (1..=N) serves clients on `127.0.0.1:base+i-1` and the controller on
//! `127.0.0.1:base+N+i-1`, keeps its data in `<dir>/node-<i>`, and all nodes share
//! one cluster id, made on first use and kept in `<dir>/cluster.id` (handed to each
//! node through the apache/kafka image's `CLUSTER_ID`, so a node formatted for
//! another cluster refuses to start). The launcher forwards each node's log lines
//! prefixed with `[node i]`, prints one ready line once every node is ready, and on
//! Ctrl-C or SIGTERM stops every node (SIGTERM, then SIGKILL after 30 s).

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most nodes one `gregor dev` starts: each is a full process.
pub const NODES_MAX: u16 = 32;
/// The file in the dev folder that keeps the cluster id between runs.
pub const CLUSTER_ID_FILE: &str = "cluster.id";
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// When to say which nodes are not ready yet (a node waiting for its quorum may take long).
const WAITING_NOTE_AFTER: Duration = Duration::from_secs(30);
const READY_PREFIX: &str = "gregor ready";

/// What `gregor dev` was asked for.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub nodes: u16,
    pub base_port: u16,
    pub dir: PathBuf,
    /// `key=value` pairs given with `--override`, applied to every node after (over)
    /// the launcher's own settings.
    pub overrides: Vec<(String, String)>,
}

/// One node of the dev cluster: its ports, folder and the arguments of its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevNode {
    pub node_id: i32,
    pub client_port: u16,
    pub controller_port: u16,
    pub log_dir: PathBuf,
    /// The arguments after the executable: `serve --override key=value ...`.
    pub args: Vec<String>,
}

/// The launcher's own settings for every node of an `nodes`-node cluster, before the
/// node-specific ones. Replication as Kafka users expect of a small cluster: internal
/// topics and new topics with `min(3, N)` replicas, `min.insync.replicas=1` so one
/// live replica still takes writes while nodes are stopped and started,
/// `transaction.state.log.min.isr=min(2, N)` (Kafka's 2 where it fits), and no
/// initial rebalance delay (as Kafka's own docker examples set for development).
pub fn shared_settings(nodes: u16) -> Vec<(String, String)> {
    let replicas = nodes.min(3).to_string();
    [
        ("process.roles", "broker,controller".to_owned()),
        ("controller.listener.names", "CONTROLLER".to_owned()),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned()),
        ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
        ("offsets.topic.replication.factor", replicas.clone()),
        ("transaction.state.log.replication.factor", replicas.clone()),
        ("default.replication.factor", replicas),
        ("transaction.state.log.min.isr", nodes.min(2).to_string()),
        ("min.insync.replicas", "1".to_owned()),
        ("group.initial.rebalance.delay.ms", "0".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// The nodes of the cluster `options` describes, with their command lines.
pub fn plan(options: &DevOptions) -> anyhow::Result<Vec<DevNode>> {
    let n = options.nodes;
    if n == 0 || n > NODES_MAX {
        bail!("--nodes must be between 1 and {NODES_MAX}, not {n}");
    }
    let last_port = u32::from(options.base_port) + 2 * u32::from(n) - 1;
    if options.base_port == 0 || last_port > u32::from(u16::MAX) {
        bail!(
            "--base-port {} leaves no room for {n} client and {n} controller ports (ports {}..={last_port})",
            options.base_port,
            options.base_port
        );
    }
    let client_port = |i: u16| options.base_port + (i - 1);
    let controller_port = |i: u16| options.base_port + (n + i - 1);
    let voters = (1..=n).map(|i| format!("{i}@127.0.0.1:{}", controller_port(i))).collect::<Vec<_>>().join(",");
    let mut nodes = Vec::with_capacity(usize::from(n));
    for i in 1..=n {
        let log_dir = options.dir.join(format!("node-{i}"));
        let mut settings = vec![
            ("node.id".to_owned(), i.to_string()),
            (
                "listeners".to_owned(),
                format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", client_port(i), controller_port(i)),
            ),
            ("controller.quorum.voters".to_owned(), voters.clone()),
            ("log.dirs".to_owned(), log_dir.display().to_string()),
        ];
        settings.extend(shared_settings(n));
        settings.extend(options.overrides.iter().cloned());
        let mut args = vec!["serve".to_owned()];
        for (key, value) in settings {
            args.push("--override".to_owned());
            args.push(format!("{key}={value}"));
        }
        nodes.push(DevNode {
            node_id: i32::from(i),
            client_port: client_port(i),
            controller_port: controller_port(i),
            log_dir,
            args,
        });
    }
    Ok(nodes)
}

/// The bootstrap string of the nodes' client listeners.
pub fn bootstrap(nodes: &[DevNode]) -> String {
    nodes.iter().map(|node| format!("127.0.0.1:{}", node.client_port)).collect::<Vec<_>>().join(",")
}

/// The cluster id kept in `dir`, made (and kept) when there is none yet.
pub fn cluster_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(CLUSTER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_owned();
            gregor_broker::meta_properties::validate_cluster_id(&id)
                .map_err(|reason| anyhow::anyhow!("{}: {reason}; delete the file to make a new one", path.display()))?;
            Ok(id)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let id = gregor_broker::storage_tool::random_cluster_id();
            std::fs::write(&path, format!("{id}\n")).with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

enum Event {
    Ready(usize),
    Signal,
}

/// Runs the cluster until a signal or a node's early exit; returns the exit code.
pub fn run(options: DevOptions) -> anyhow::Result<i32> {
    let nodes = plan(&options)?;
    let cluster_id = cluster_id(&options.dir)?;
    let executable = std::env::current_exe().context("cannot find the gregor executable")?;
    let (events, received) = mpsc::channel();
    watch_signals(events.clone())?;

    let mut children: Vec<Option<Child>> = Vec::with_capacity(nodes.len());
    let mut forwarders = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let spawned = spawn_node(&executable, node, &cluster_id);
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                stop_all(&mut children);
                return Err(error.context(format!("cannot start node {}", node.node_id)));
            }
        };
        let prefix = format!("[node {}]", node.node_id);
        if let Some(stdout) = child.stdout.take() {
            let (events, prefix) = (events.clone(), prefix.clone());
            forwarders.push(std::thread::spawn(move || forward(stdout, &prefix, Some((events, index)))));
        }
        if let Some(stderr) = child.stderr.take() {
            forwarders.push(std::thread::spawn(move || forward(stderr, &prefix, None)));
        }
        children.push(Some(child));
    }
    drop(events);

    let started = Instant::now();
    let mut ready = vec![false; nodes.len()];
    let mut announced = false;
    let mut waiting_noted = false;
    let code = loop {
        match received.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Ready(index)) => {
                if let Some(flag) = ready.get_mut(index) {
                    *flag = true;
                }
                if !announced && ready.iter().all(|r| *r) {
                    announced = true;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(
                        out,
                        "gregor dev cluster ready: bootstrap {} ({} node{}, data in {})",
                        bootstrap(&nodes),
                        nodes.len(),
                        if nodes.len() == 1 { "" } else { "s" },
                        options.dir.display()
                    );
                    let _ = out.flush();
                }
            }
            Ok(Event::Signal) => {
                eprintln!("gregor dev: stopping {} node(s)", nodes.len());
                break 0;
            }
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Some((node, status)) = exited(&mut children, &nodes) {
            eprintln!("gregor dev: node {node} exited early ({status}); stopping the others");
            break 1;
        }
        if !announced && !waiting_noted && started.elapsed() > WAITING_NOTE_AFTER {
            waiting_noted = true;
            let waiting: Vec<String> = nodes
                .iter()
                .zip(&ready)
                .filter(|(_, ready)| !**ready)
                .map(|(node, _)| node.node_id.to_string())
                .collect();
            eprintln!("gregor dev: still waiting for node(s) {} to be ready", waiting.join(", "));
        }
    };
    stop_all(&mut children);
    for forwarder in forwarders {
        let _ = forwarder.join();
    }
    Ok(code)
}

fn spawn_node(executable: &Path, node: &DevNode, cluster_id: &str) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(executable);
    command
        .args(&node.args)
        .env(gregor_broker::meta_properties::CLUSTER_ID_ENV, cluster_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches the launcher only, which
        // then stops the nodes in order.
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent; it makes
    // the kernel send SIGTERM to the node if the launcher dies without stopping it.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().with_context(|| format!("cannot run {}", executable.display()))
}

/// Copies a node's output to stderr line by line under `prefix`; on stdout it also
/// reports the node's ready line.
fn forward(stream: impl std::io::Read, prefix: &str, ready: Option<(mpsc::Sender<Event>, usize)>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                eprintln!("{prefix} {text}");
                if let Some((events, index)) = &ready {
                    if text.starts_with(READY_PREFIX) {
                        let _ = events.send(Event::Ready(*index));
                    }
                }
            }
        }
    }
}

/// The first node found to have exited, with its status.
fn exited(children: &mut [Option<Child>], nodes: &[DevNode]) -> Option<(i32, ExitStatus)> {
    for (slot, node) in children.iter_mut().zip(nodes) {
        if let Some(child) = slot {
            if let Ok(Some(status)) = child.try_wait() {
                *slot = None;
                return Some((node.node_id, status));
            }
        }
    }
    None
}

/// SIGTERM to every running node, then wait; SIGKILL to those still running after
/// the stop timeout.
fn stop_all(children: &mut [Option<Child>]) {
    for child in children.iter().flatten() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill only sends a signal to the child this launcher started.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let mut running = 0;
        for slot in children.iter_mut() {
            if let Some(child) = slot {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => *slot = None,
                    Ok(None) => running += 1,
                }
            }
        }
        if running == 0 {
            return;
        }
        if Instant::now() >= deadline {
            for child in children.iter_mut().flatten() {
                eprintln!("gregor dev: process {} still running after {:?}; killing it", child.id(), STOP_TIMEOUT);
                let _ = child.kill();
                let _ = child.wait();
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-C and SIGTERM become an [`Event::Signal`], from a small runtime of their own.
fn watch_signals(events: mpsc::Sender<Event>) -> anyhow::Result<()> {
    let (registered, confirmed) = mpsc::channel();
    std::thread::Builder::new()
        .name("gregor-dev-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = registered.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let handlers = signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)));
                let (mut terminate, mut interrupt) = match handlers {
                    Ok(handlers) => handlers,
                    Err(error) => {
                        let _ = registered.send(Err(anyhow::Error::from(error)));
                        return;
                    }
                };
                let _ = registered.send(Ok(()));
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
                let _ = events.send(Event::Signal);
            });
        })
        .context("cannot start the signal thread")?;
    confirmed.recv().context("the signal thread stopped")?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(node: &'a DevNode, key: &str) -> Option<&'a str> {
        let prefix = format!("{key}=");
        // The last setting of a key wins, as with repeated --override.
        node.args.iter().rev().find_map(|arg| arg.strip_prefix(&prefix))
    }

    #[test]
    fn three_nodes_on_consecutive_ports() {
        let options = DevOptions {
            nodes: 3,
            base_port: 9092,
            dir: PathBuf::from("gregor-dev"),
            overrides: vec![("num.partitions".into(), "6".into()), ("min.insync.replicas".into(), "2".into())],
        };
        let nodes = plan(&options).expect("plan");
        assert_eq!(nodes.len(), 3);
        assert_eq!(bootstrap(&nodes), "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094");
        let voters = "1@127.0.0.1:9095,2@127.0.0.1:9096,3@127.0.0.1:9097";
        for (i, node) in nodes.iter().enumerate() {
            let id = i as i32 + 1;
            assert_eq!(node.node_id, id);
            assert_eq!(node.args[0], "serve");
            assert!(node.args[1..].chunks(2).all(|pair| pair[0] == "--override"), "{:?}", node.args);
            assert_eq!(value(node, "node.id"), Some(id.to_string().as_str()));
            assert_eq!(
                value(node, "listeners").map(str::to_owned),
                Some(format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", 9091 + id, 9094 + id))
            );
            assert_eq!(value(node, "controller.quorum.voters"), Some(voters));
            assert_eq!(value(node, "process.roles"), Some("broker,controller"));
            assert_eq!(node.log_dir, PathBuf::from(format!("gregor-dev/node-{id}")));
            assert_eq!(value(node, "log.dirs").map(PathBuf::from), Some(node.log_dir.clone()));
            assert_eq!(value(node, "offsets.topic.replication.factor"), Some("3"));
            assert_eq!(value(node, "transaction.state.log.replication.factor"), Some("3"));
            assert_eq!(value(node, "default.replication.factor"), Some("3"));
            assert_eq!(value(node, "transaction.state.log.min.isr"), Some("2"));
            // The user's overrides come last and win.
            assert_eq!(value(node, "min.insync.replicas"), Some("2"));
            assert_eq!(value(node, "num.partitions"), Some("6"));
            // Every node's settings form a valid configuration.
            let overrides: Vec<(String, String)> = node.args[1..]
                .chunks(2)
                .filter_map(|pair| pair[1].split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect();
            let sources = gregor_config::ConfigSources { overrides, ..Default::default() };
            let config = gregor_config::BrokerConfig::load(&sources).expect("valid config").config;
            assert!(!config.is_single_node_local());
            assert_eq!(config.controller_listener().map(|l| l.port), Some(node.controller_port));
            assert_eq!(config.client_listeners().iter().map(|l| l.port).collect::<Vec<_>>(), vec![node.client_port]);
        }
    }

    #[test]
    fn one_node_and_the_bounds() {
        let options = |nodes, base_port| DevOptions { nodes, base_port, dir: PathBuf::from("d"), overrides: vec![] };
        let nodes = plan(&options(1, 19092)).expect("one node");
        assert_eq!((nodes[0].client_port, nodes[0].controller_port), (19092, 19093));
        assert_eq!(value(&nodes[0], "controller.quorum.voters"), Some("1@127.0.0.1:19093"));
        assert_eq!(value(&nodes[0], "offsets.topic.replication.factor"), Some("1"));
        assert_eq!(value(&nodes[0], "transaction.state.log.min.isr"), Some("1"));
        assert!(plan(&options(0, 9092)).is_err());
        assert!(plan(&options(NODES_MAX + 1, 9092)).is_err());
        assert!(plan(&options(3, 65531)).is_err());
        assert!(plan(&options(3, 65530)).is_ok());
    }

    #[test]
    fn the_cluster_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("dev");
        let first = cluster_id(&root).expect("made");
        assert_eq!(first.len(), 22);
        assert_eq!(cluster_id(&root).expect("kept"), first);
        std::fs::write(root.join(CLUSTER_ID_FILE), "not valid\n").expect("write");
        assert!(cluster_id(&root).is_err());
    }
}
