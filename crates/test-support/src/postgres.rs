//! A real PostgreSQL server for the tests (the `postgres` feature): one
//! per test process, started on first use in a temporary directory with
//! Debian's `initdb` and `pg_ctl`, listening only on a Unix socket there
//! (and with TLS on 127.0.0.1 for [`PostgresServer::start_tls`]),
//! and a fresh database per call. A watchdog stops the server and removes
//! the directory when the test process is gone, however it ended.
//!
//! Without the binaries the caller panics with the package to install:
//! a PostgreSQL test never passes by skipping.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where Debian's packages put the server binaries, one directory per
/// major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// The user the server runs as when the tests run as root (initdb refuses
/// root); Debian's `postgresql` package creates it.
const SERVER_USER: &str = "postgres";

/// A PostgreSQL server in a temporary directory. The tests' shared one is
/// behind [`postgres_url`]; [`PostgresServer::start`] makes a private one
/// a test may stop and start (stopped and removed when dropped, or by the
/// watchdog when the process ends).
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    as_root: bool,
    databases: AtomicU32,
    /// Private servers are removed on drop; the shared one lives as long
    /// as the process.
    private: bool,
    /// Runs with fsync and synchronous commit on (for benchmarks), and
    /// with `pg_stat_statements` loaded.
    durable: bool,
    /// Also on 127.0.0.1 with TLS only ([`PostgresServer::start_tls`]).
    tls: Option<TlsFiles>,
}

/// The certificates of a [`PostgresServer::start_tls`] server: a CA of its
/// own, the server's certificate for `localhost` only (so 127.0.0.1 does
/// not match its name), and a client certificate for the `postgres` user.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The TCP port on 127.0.0.1 (and the socket's number).
    pub port: u16,
    /// The CA certificate that signed both (PEM).
    pub ca: PathBuf,
    /// A client certificate for the user `postgres` (PEM) and its key.
    pub client_cert: PathBuf,
    /// The client certificate's key (PEM, PKCS#8).
    pub client_key: PathBuf,
    /// A second CA, which signed nothing here: a root that must not be
    /// trusted for this server.
    pub other_ca: PathBuf,
}

type Server = PostgresServer;

static SERVER: OnceLock<Server> = OnceLock::new();

/// The URL of a fresh, empty database on this process's PostgreSQL server
/// (started on the first call). Panics, naming the Debian package, when
/// PostgreSQL is not installed.
pub fn postgres_url() -> String {
    SERVER.get_or_init(|| Server::boot(false)).database()
}

/// Runs `sql` in the database at `url` (one of [`postgres_url`]'s) with
/// `psql`, as the server's superuser; returns whether it succeeded and its
/// output (stdout then stderr): rows unaligned without headers, errors
/// with their SQLSTATE (`ERROR:  23505: ...`). For tests that read or
/// tamper with the database behind the registry's back.
pub fn psql_at(url: &str, sql: &str) -> (bool, String) {
    let url_dir = url.split('@').nth(1).and_then(|h| h.split('/').next());
    let db = url.rsplit('/').next().unwrap_or("postgres");
    match SERVER.get() {
        Some(shared) if url_dir == Some(encode(&shared.dir).as_str()) => shared.try_psql(db, sql),
        _ => {
            // A private server's URL: psql finds the socket in its host.
            let dir = url_dir.map(decode).unwrap_or_default();
            let bin = find_bin().unwrap_or_else(|| panic!("PostgreSQL is not installed"));
            let (dir, port) = match dir.rsplit_once(':') {
                Some((d, p)) if p.parse::<u16>().is_ok() => {
                    (d.to_owned(), p.parse().unwrap_or(5432))
                }
                _ => (dir, 5432),
            };
            run_psql(&bin, Path::new(&dir), port, db, sql)
        }
    }
}

impl PostgresServer {
    /// A private server of this test's own, started now. Panics, naming
    /// the Debian package, when PostgreSQL is not installed.
    pub fn start() -> PostgresServer {
        Server::boot(true)
    }

    /// A private server as [`PostgresServer::start`]'s, but durable, as in
    /// production: fsync, synchronous commit and full-page writes on. It
    /// also loads `pg_stat_statements` (a database still needs `CREATE
    /// EXTENSION pg_stat_statements` to read it) and times I/O
    /// (`track_io_timing`, `track_wal_io_timing`). For benchmarks.
    pub fn start_durable() -> PostgresServer {
        Server::boot_with(true, true, false)
    }

    /// A private server that also listens on 127.0.0.1 (a free port),
    /// where it accepts TLS only, and only with a client certificate
    /// signed by its CA (`hostssl ... cert`; plaintext TCP is rejected).
    /// The certificates are made here with rcgen: [`PostgresServer::tls`].
    pub fn start_tls() -> PostgresServer {
        Server::boot_with(true, false, true)
    }

    /// The TLS server's certificates and port.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A fresh database, and its URL over TCP to `host` (`localhost` or
    /// `127.0.0.1`) with `query` appended (the TLS settings under test).
    pub fn tcp_database(&self, host: &str, query: &str) -> String {
        let port = self.tls.as_ref().map_or(5432, |t| t.port);
        let url = self.database();
        let db = url.rsplit('/').next().unwrap_or("postgres");
        format!("postgresql://{SERVER_USER}@{host}:{port}/{db}?{query}")
    }

    /// Runs `sql` in database `db` as the superuser, over the socket.
    pub fn sql(&self, db: &str, sql: &str) -> (bool, String) {
        self.try_psql(db, sql)
    }

    /// The URL of a fresh, empty database on this server.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst) + 1;
        let name = format!("t_{n}");
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Stops the server at once (`-m immediate`: as a crash or a pulled
    /// cable looks to its clients).
    pub fn stop(&self) {
        self.must(self.pg_ctl().args(["-m", "immediate", "-w", "stop"]));
    }

    /// Starts the stopped server again, on the same socket and data.
    pub fn resume(&self) {
        let options = self.options();
        self.must(self.pg_ctl().args(["-o", &options, "-w", "start"]));
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"));
        cmd
    }

    /// Tests need no durability; a socket only, in our directory.
    fn options(&self) -> String {
        if let Some(t) = &self.tls {
            let tls = self.dir.join("tls");
            return format!(
                "-k {} -c listen_addresses=127.0.0.1 -c port={} -c ssl=on \
                 -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={} \
                 -c fsync=off -c synchronous_commit=off -c max_connections=200",
                self.dir.display(),
                t.port,
                tls.join("server.pem").display(),
                tls.join("server.key").display(),
                t.ca.display(),
            );
        }
        if self.durable {
            return format!(
                "-k {} -c listen_addresses='' -c fsync=on -c synchronous_commit=on \
                 -c full_page_writes=on -c max_connections=200 \
                 -c shared_preload_libraries=pg_stat_statements -c track_io_timing=on \
                 -c track_wal_io_timing=on",
                self.dir.display()
            );
        }
        format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.dir.display()
        )
    }

    fn boot(private: bool) -> Server {
        Server::boot_with(private, false, false)
    }

    fn boot_with(private: bool, durable: bool, tls: bool) -> Server {
        let bin = find_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's initdb and pg_ctl are not installed (looked in {DEBIAN_ROOT}/*/bin): \
                 install the Debian package `postgresql` (apt-get install postgresql), \
                 which `cargo xtask test` does when run as root"
            )
        });
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Short: a Unix socket path has at most 107 bytes.
        let dir = PathBuf::from(format!("/tmp/aifn-pg-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let server = Server {
            bin,
            dir,
            as_root,
            databases: AtomicU32::new(0),
            private,
            durable,
            tls: None,
        };
        if as_root {
            server.must(
                Command::new("chown")
                    .arg(format!("{SERVER_USER}:"))
                    .arg(&server.dir),
            );
        }
        // The watchdog first: a failure below still leaves nothing behind.
        server.watch(std::process::id());
        let data = server.dir.join("data");
        server.must(server.tool("initdb").args([
            "-D".as_ref(),
            data.as_os_str(),
            "-U".as_ref(),
            SERVER_USER.as_ref(),
            "-A".as_ref(),
            "trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--locale=C.UTF-8".as_ref(),
            "--no-sync".as_ref(),
        ]));
        let mut server = server;
        if tls {
            server.tls = Some(server.make_tls(&data));
        }
        server.resume();
        server
    }

    /// A server binary, run as the server's user when we are root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", SERVER_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    #[track_caller]
    fn must(&self, cmd: &mut Command) {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{}{}\nserver log:\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server and removes the directory once `pid` is gone.
    /// In its own session, so a Ctrl-C to the tests' process group does
    /// not stop the cleanup with them.
    fn watch(&self, pid: u32) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_root {
            format!("runuser -u {SERVER_USER} -- {} ", pg_ctl.display())
        } else {
            format!("{} ", pg_ctl.display())
        };
        let dir = self.dir.display();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; \
             {stop} -D {dir}/data -m immediate stop >/dev/null 2>&1; rm -rf {dir}"
        );
        let spawned = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            panic!("cannot start the PostgreSQL watchdog: {e}");
        }
    }

    fn url(&self, db: &str) -> String {
        match &self.tls {
            Some(t) => format!(
                "postgresql://{SERVER_USER}@{}:{}/{db}",
                encode(&self.dir),
                t.port
            ),
            None => format!("postgresql://{SERVER_USER}@{}/{db}", encode(&self.dir)),
        }
    }

    fn try_psql(&self, db: &str, sql: &str) -> (bool, String) {
        let port = self.tls.as_ref().map_or(5432, |t| t.port);
        run_psql(&self.bin, &self.dir, port, db, sql)
    }

    /// Certificates, a key the server may read, and a pg_hba.conf that
    /// takes TCP connections over TLS with a client certificate only.
    fn make_tls(&self, data: &Path) -> TlsFiles {
        let dir = self.dir.join("tls");
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let files = tls_certificates(&dir);
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 cert\n\
             host all all 127.0.0.1/32 reject\n",
        )
        .unwrap_or_else(|e| panic!("write pg_hba.conf: {e}"));
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", key.display()));
        if self.as_root {
            self.must(
                Command::new("chown")
                    .arg(format!("{SERVER_USER}:"))
                    .arg(&key)
                    .arg(data.join("pg_hba.conf")),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        TlsFiles { port, ..files }
    }

    #[track_caller]
    fn psql(&self, db: &str, sql: &str) {
        let (ok, text) = self.try_psql(db, sql);
        assert!(ok, "psql {sql:?} failed: {text}");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.private {
            let _ = self
                .pg_ctl()
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run_psql(bin: &Path, socket_dir: &Path, port: u16, db: &str, sql: &str) -> (bool, String) {
    let out = Command::new(bin.join("psql"))
        .arg("-h")
        .arg(socket_dir)
        .arg("-p")
        .arg(port.to_string())
        .args(["-U", SERVER_USER, "-d", db, "-X", "-q", "-t", "-A"])
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A CA, the server's certificate for `localhost` and its key, a client
/// certificate for `postgres`, and a second, unrelated CA, in `dir`.
fn tls_certificates(dir: &Path) -> TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let fail = |e: rcgen::Error| -> ! { panic!("make test certificates: {e}") };
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    };
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let mut params = CertificateParams::new(Vec::new()).unwrap_or_else(|e| fail(e));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap_or_else(|e| fail(e));
        (cert.pem(), Issuer::new(params, key))
    };
    let leaf = |issuer: &Issuer<'_, KeyPair>, names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let mut params = CertificateParams::new(names).unwrap_or_else(|e| fail(e));
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, issuer).unwrap_or_else(|e| fail(e));
        (cert.pem(), key.serialize_pem())
    };
    let (ca_pem, issuer) = ca("aifn test CA");
    let (other_pem, _) = ca("aifn unrelated CA");
    let (server_pem, server_key) = leaf(&issuer, vec!["localhost".into()], "localhost");
    let (client_pem, client_key) = leaf(&issuer, Vec::new(), SERVER_USER);
    write("server.pem", server_pem);
    write("server.key", server_key);
    TlsFiles {
        port: 0,
        ca: write("ca.pem", ca_pem),
        client_cert: write("client.pem", client_pem),
        client_key: write("client.key", client_key),
        other_ca: write("other-ca.pem", other_pem),
    }
}

/// The newest `/usr/lib/postgresql/<major>/bin` with initdb and pg_ctl.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            let usable = ["initdb", "pg_ctl", "psql"]
                .iter()
                .all(|t| bin.join(t).is_file());
            usable.then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// [`encode`] undone.
fn decode(host: &str) -> String {
    let bytes = host.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], host.get(i + 1..i + 3)) {
            (b'%', Some(hex)) if u8::from_str_radix(hex, 16).is_ok() => {
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'%'));
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A socket directory as a URL host: percent-encoded, so the driver reads
/// it as a path.
fn encode(dir: &Path) -> String {
    dir.to_string_lossy()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
