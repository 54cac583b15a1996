//! A throw-away etcd cluster on loopback: members on free ports, data in a temporary
//! directory, stopped when the value is dropped. The tests of every crate that runs on etcd
//! start one; `scripts/etcd-cluster.sh` does the same from a shell for trying it out.
//!
//! The `etcd` binary is Debian's `etcd-server` (`scripts/setup.sh` installs it), or the one
//! `CHRONODB_ETCD_BIN` names. Members allow 10,000 operations and 16 MiB per request (the
//! engine's defaults fit under both) and elect a leader in about half a second.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono_storage::{Error, Result};

/// One member.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    process: Option<Child>,
}

/// A local etcd cluster; see the module documentation.
pub struct LocalCluster {
    dir: tempfile::TempDir,
    token: String,
    members: Vec<Member>,
}

/// A loopback port free now, below Linux's ephemeral range (32768 and up): a port the
/// kernel handed out for `bind(0)` may be taken by another test's outgoing connection
/// before etcd binds it, and the member then exits.
fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..500 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Engine(format!("no free loopback port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Engine(format!("no free loopback port: {e}")))
}

/// The `etcd` binary to run.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("CHRONODB_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// One HTTP/1.0 request to a member's client port; the body of the answer.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

impl LocalCluster {
    /// Starts `members` members and waits until the cluster has a leader. A member that
    /// exits while it starts (a port taken after all) makes it start again on other ports,
    /// three times at most.
    pub fn start(members: usize) -> Result<LocalCluster> {
        let mut failed = None;
        for _ in 0..3 {
            let mut cluster = Self::launch(members)?;
            // Generous: test files start several clusters at once on a loaded two-core
            // machine, where an election took longer than 30 s.
            match cluster.wait_started(Duration::from_secs(90)) {
                Ok(()) => return Ok(cluster),
                Err(e) => failed = Some(e),
            }
        }
        Err(failed.unwrap_or_else(|| Error::Engine("the etcd cluster did not start".into())))
    }

    /// Waits for a leader as [`wait_for_leader`](Self::wait_for_leader) does, failing at
    /// once when a member has exited.
    fn wait_started(&mut self, within: Duration) -> Result<()> {
        let until = Instant::now() + within;
        loop {
            for m in &mut self.members {
                if let Some(p) = &mut m.process
                    && let Ok(Some(status)) = p.try_wait()
                {
                    return Err(Error::Engine(format!(
                        "etcd member {} exited while starting ({status}); see {}",
                        m.name,
                        self.dir.path().join(format!("{}.log", m.name)).display()
                    )));
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.no_leader(within));
            }
            if self
                .wait_for_leader(left.min(Duration::from_secs(1)))
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    fn launch(members: usize) -> Result<LocalCluster> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::Engine(format!("no temporary directory for etcd: {e}")))?;
        let mut all = Vec::with_capacity(members);
        for i in 0..members {
            all.push(Member {
                name: format!("m{i}"),
                client_port: free_port()?,
                peer_port: free_port()?,
                process: None,
            });
        }
        let token = format!(
            "chronodb-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        );
        let mut cluster = LocalCluster {
            dir,
            token,
            members: all,
        };
        for i in 0..members {
            cluster.spawn(i, "new")?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<()> {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect();
        let m = &self.members[i];
        let data = self.dir.path().join(&m.name);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name)))
            .map_err(|e| Error::Engine(format!("etcd log file: {e}")))?;
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(etcd_binary())
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", state])
            .args(["--max-txn-ops", "10000", "--max-request-bytes", "16777216"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                Error::Engine(format!(
                    "cannot run {} (install Debian's etcd-server: scripts/setup.sh, or set \
                     CHRONODB_ETCD_BIN): {e}",
                    etcd_binary().display()
                ))
            })?;
        self.members[i].process = Some(child);
        Ok(())
    }

    /// The client URLs of every member (stopped ones included: clients fail over).
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The index of the member that leads now, if a running member knows one.
    pub fn leader(&self) -> Option<usize> {
        for m in self.members.iter().filter(|m| m.process.is_some()) {
            let Some(body) = http(m.client_port, "POST", "/v3/maintenance/status", "{}") else {
                continue;
            };
            // {"header":{…,"member_id":"…",…},…,"leader":"…",…}
            let field = |name: &str| {
                let at = body.find(&format!("\"{name}\":\""))? + name.len() + 4;
                let end = body[at..].find('"')? + at;
                Some(body[at..end].to_string())
            };
            let (Some(me), Some(leader)) = (field("member_id"), field("leader")) else {
                continue;
            };
            if me == leader {
                return self.members.iter().position(|x| x.name == m.name);
            }
        }
        None
    }

    /// Waits until a running member is the leader and every running member is healthy.
    pub fn wait_for_leader(&self, within: Duration) -> Result<usize> {
        let until = Instant::now() + within;
        loop {
            if let Some(l) = self.leader() {
                let healthy = self
                    .members
                    .iter()
                    .filter(|m| m.process.is_some())
                    .all(|m| {
                        http(m.client_port, "GET", "/health", "")
                            .is_some_and(|b| b.contains("\"health\":\"true\""))
                    });
                if healthy {
                    return Ok(l);
                }
            }
            if Instant::now() > until {
                return Err(self.no_leader(within));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The error of a cluster without a healthy leader after `waited`.
    fn no_leader(&self, waited: Duration) -> Error {
        // etcd preallocates its log files; on a nearly full disk its members start but
        // never become healthy, which their logs say less plainly than this.
        let disk = match free_bytes(self.dir.path()) {
            Some(free) if free < LOW_DISK_BYTES => {
                format!("; only {} MiB are free on its file system", free >> 20)
            }
            _ => String::new(),
        };
        Error::Engine(format!(
            "the etcd cluster in {} has no healthy leader after {waited:?} (see the members' \
             logs there){disk}",
            self.dir.path().display()
        ))
    }

    /// Kills member `i` at once (SIGKILL: no goodbye to the others).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// Starts member `i` again on its data; it catches up with the others.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.members[i].process.is_none() {
            self.spawn(i, "existing")?;
        }
        Ok(())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True for a cluster of no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Below this much free space a cluster that finds no leader says so: each member
/// preallocates 64 MiB log segments and needs room for its database.
const LOW_DISK_BYTES: u64 = 1 << 30;

/// Bytes free for an unprivileged writer on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string and `stats` points at writable memory of
    // the structure's size; the call writes it in full when it returns 0.
    let stats = unsafe {
        if libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    /// The free space of a real file system is read (and is not zero on a machine that runs
    /// the tests); a path that does not exist gives none.
    #[test]
    fn free_space_is_read_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::free_bytes(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(super::free_bytes(&dir.path().join("missing")), None);
    }
}
