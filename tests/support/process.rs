//! Processes the tests start (registries, the `OpenAPI` proxy, `repin serve`) and how they
//! stop: each is spawned as the leader of its own process group and marked with
//! [`MARKER`] in its environment; dropping its [`Server`] handle sends `SIGTERM` to the
//! whole group, waits up to two seconds, then sends `SIGKILL` to the group and reaps the
//! leader. So a child's own children (`timeout`'s command, `prism`'s node workers) stop
//! with it, also when a test panics, since unwinding drops the handle.
//!
//! The one case a handle cannot cover is the test process itself being killed
//! (`SIGKILL`, an abort): for that, servers still run under `timeout 600` as a watchdog of
//! last resort. `.ci/run` then looks for any process carrying [`MARKER`]
//! (`scripts/test-leftovers`) and fails if one outlived the suite.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The environment variable (set to `1`) that marks every process the tests start; kept
/// in step with `scripts/test-leftovers`.
pub const MARKER: &str = "REPIN_TEST_SERVER";

/// A process the tests started, stopped with its whole process group on drop.
pub struct Server {
    child: Child,
}

impl Server {
    /// Spawns `command` in a new process group, marked with [`MARKER`].
    pub fn spawn(mut command: Command) -> std::io::Result<Self> {
        command.process_group(0).env(MARKER, "1");
        Ok(Self {
            child: command.spawn()?,
        })
    }

    /// The group leader's process ID (also the group's ID).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The underlying child, for its pipes and `try_wait`.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Stops the group now: `SIGTERM`, two seconds' grace, then `SIGKILL`.
    pub fn stop(&mut self) {
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the
        // group this handle's child leads, which no other process can lead while the
        // leader is unreaped (we reap it only below).
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever is left of the group (the leader, or children that ignored SIGTERM).
        // SAFETY: as above; once the leader is reaped, the group may still hold members
        // (its ID stays reserved while any member lives), and only they get the signal.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Live processes whose command line has an argument equal to `arg`, as
/// `(pid, command line)`; read from `/proc`.
pub fn with_argument(arg: &OsStr) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&arg.as_encoded_bytes()) && !is_zombie(pid) {
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// A zombie has exited and only waits to be reaped by its parent.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(false)
}
