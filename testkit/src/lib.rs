//! Test support for the hosted backend: a real local AWS emulator (moto server, from PyPI),
//! installed and started by the tests themselves on 127.0.0.1, and AWS clients pointed at
//! it with dummy credentials.
//!
//! One moto server serves a whole test binary; tests share it without interfering because
//! each creates its own uniquely named resources ([`provision`]). The server is stopped when
//! the test process exits (a watchdog shell kills it when its parent is gone).
//!
//! Also [`TestClock`], the clock tests set by hand.

mod clock;
pub mod iam;

pub use clock::TestClock;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use krafter_shared::hosted::{AwsClients, HostedResources};

/// The moto version the tests run against.
pub const MOTO_VERSION: &str = "5.2.5";

/// The workspace's `target/tools`, where test tools are installed once per checkout.
pub fn tools_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools");
    std::fs::create_dir_all(&dir).expect("create target/tools");
    dir.canonicalize().expect("target/tools")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Python virtual environment `target/tools/<name>` holding exactly `requirements`
/// (pinned PyPI requirements), made unless it is there (under a file lock, so that test
/// binaries running at once make it once). Returns its directory.
pub fn python_venv(name: &str, requirements: &[&str]) -> PathBuf {
    let dir = tools_dir();
    let venv = dir.join(name);
    let script = r#"set -e
venv="$0"; want="$*"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  echo "$want" >"$venv/.installed"
fi"#;
    run(
        Command::new("flock")
            .arg(dir.join(format!("{name}.lock")))
            .args(["bash", "-c", script])
            .arg(&venv)
            .args(requirements),
        &format!("installing {} from PyPI", requirements.join(" ")),
    );
    venv
}

/// The official MCP Python SDK the MCP tests connect with.
pub const MCP_SDK: &str = "mcp==2.3.0";

/// The Python of a venv with the official MCP SDK (`python_venv`).
pub fn mcp_python() -> PathBuf {
    python_venv("mcp-venv", &[MCP_SDK]).join("bin/python")
}

/// Installs moto server into `target/tools/moto-venv` unless it is there (under a file lock,
/// so that test binaries running at once install it once). Returns the venv's Python.
pub fn install_moto() -> PathBuf {
    let dir = tools_dir();
    let venv = dir.join("moto-venv");
    let python = venv.join("bin/python");
    let script = format!(
        r#"set -e
if ! "$0/bin/python" -c 'import moto, sys; sys.exit(moto.__version__ != "{MOTO_VERSION}")' 2>/dev/null; then
  rm -rf "$0"
  python3 -m venv "$0"
  "$0/bin/pip" install --quiet --disable-pip-version-check 'moto[server]=={MOTO_VERSION}'
fi"#
    );
    run(
        Command::new("flock")
            .arg(dir.join("moto-venv.lock"))
            .args(["bash", "-c", &script])
            .arg(&venv),
        "installing moto server from PyPI",
    );
    python
}

/// The launcher of moto's server that serves DynamoDB one request at a time, as the real
/// service is serializable (see the script: moto's transactions are not thread-safe).
fn moto_launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/moto_serial.py")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// A moto server started by [`start_moto`]: its URL, and the watchdog that stops it.
pub struct MotoServer {
    pub url: String,
    /// Kept, never waited for: the watchdog runs until this process exits.
    pub watchdog: std::process::Child,
}

/// Starts a moto server on 127.0.0.1 that lives as long as this process.
pub fn start_moto() -> MotoServer {
    let python = install_moto();
    let port = free_port();
    let args = [
        moto_launcher().display().to_string(),
        "-H".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
    ];
    let watchdog = start_watched(&python, &args, port, "moto", Duration::from_secs(60));
    MotoServer {
        url: format!("http://127.0.0.1:{port}"),
        watchdog,
    }
}

/// Starts `program args` (a server that will listen on 127.0.0.1:`port`) under a watchdog
/// shell that stops it when this test process is gone, and waits until it listens. Its
/// output goes to `target/tools/<name>-<port>.log`. Returns the watchdog, never waited for.
fn start_watched(
    program: &std::path::Path,
    args: &[String],
    port: u16,
    name: &str,
    within: Duration,
) -> std::process::Child {
    let log = tools_dir().join(format!("{name}-{port}.log"));
    let watchdog = r#"
log="$1"; parent="$2"; shift 2
"$@" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
while kill -0 "$parent" 2>/dev/null && kill -0 $server 2>/dev/null; do sleep 0.5; done
"#;
    let child = Command::new("bash")
        .args(["-c", watchdog, "watchdog"])
        .arg(&log)
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not start within {within:?}; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// The moto server of this test process, started on first use. Returns its URL.
pub fn moto() -> &'static str {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    &MOTO.get_or_init(start_moto).url
}

/// SDK configuration for the emulator at `endpoint`: dummy credentials, `us-east-1`.
pub async fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .test_credentials()
        .load()
        .await
}

/// Clients for this process's moto server.
pub async fn clients() -> AwsClients {
    AwsClients::new(&sdk_config(moto()).await)
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Fresh resources (tables, queues, schedule group) on this process's moto server.
pub async fn provision(clients: &AwsClients) -> HostedResources {
    krafter_ops::provision::provision(clients, &unique("t"))
        .await
        .expect("create the hosted resources on moto")
}

/// Installs Debian's `prometheus` unless it is there (under a file lock). Returns its path.
pub fn install_prometheus() -> PathBuf {
    let binary = PathBuf::from("/usr/bin/prometheus");
    let script = r#"set -e
if [ ! -x /usr/bin/prometheus ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends prometheus >/dev/null
  }
fi"#;
    run(
        Command::new("flock")
            .arg(tools_dir().join("prometheus.lock"))
            .args(["bash", "-c", script]),
        "installing prometheus (Debian package)",
    );
    binary
}

/// A Prometheus server on 127.0.0.1 scraping `targets` every second; stopped when dropped.
pub struct Prometheus {
    pub url: String,
    child: std::process::Child,
    _dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second.
pub fn start_prometheus(targets: &[String]) -> Prometheus {
    let binary = install_prometheus();
    let port = free_port();
    let dir = tools_dir().join(format!("prometheus-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a Prometheus directory");
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
         - job_name: krafter\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("the Prometheus config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("the Prometheus log");
    let child = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "prometheus did not start: {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        child,
        _dir: dir,
    }
}

/// Installs Debian's `chromium` and `chromium-driver` unless they are there (under a file
/// lock). Returns the paths of the browser and its WebDriver.
pub fn install_chromium() -> (PathBuf, PathBuf) {
    let script = r#"set -e
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null
  }
fi"#;
    run(
        Command::new("flock")
            .arg(tools_dir().join("chromium.lock"))
            .args(["bash", "-c", script]),
        "installing chromium and chromium-driver (Debian packages)",
    );
    ("/usr/bin/chromium".into(), "/usr/bin/chromedriver".into())
}

/// The axe-core version the accessibility checks run.
pub const AXE_CORE: &str = "axe-core@4.14.1";

/// Installs npm's `axe-core` into `target/tools/axe` unless it is there (under a file
/// lock). Returns the path of `axe.min.js`.
pub fn install_axe() -> PathBuf {
    let dir = tools_dir().join("axe");
    let script = r#"set -e
if [ "$(cat "$0/.installed" 2>/dev/null)" != "$1" ]; then
  rm -rf "$0"; mkdir -p "$0"
  cd "$0" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$1"
  echo "$1" >"$0/.installed"
fi"#;
    run(
        Command::new("flock")
            .arg(tools_dir().join("axe.lock"))
            .args(["bash", "-c", script])
            .arg(&dir)
            .arg(AXE_CORE),
        "installing axe-core from npm",
    );
    dir.join("node_modules/axe-core/axe.min.js")
}

/// A ChromeDriver serving this test process on 127.0.0.1 (stopped when the process ends).
pub struct ChromeDriver {
    pub url: String,
    pub browser: PathBuf,
    /// Kept, never waited for: the watchdog runs until this process exits.
    pub watchdog: std::process::Child,
}

/// The ChromeDriver of this test process, started on first use.
pub fn chromedriver() -> &'static ChromeDriver {
    static DRIVER: OnceLock<ChromeDriver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let (browser, driver) = install_chromium();
        let port = free_port();
        let args = [
            format!("--port={port}"),
            "--allowed-ips=127.0.0.1".to_owned(),
        ];
        let within = Duration::from_secs(30);
        let watchdog = start_watched(&driver, &args, port, "chromedriver", within);
        ChromeDriver {
            url: format!("http://127.0.0.1:{port}"),
            browser,
            watchdog,
        }
    })
}
