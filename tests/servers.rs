//! The servers tests start stop with their tests: nothing a handle started outlives it,
//! also when the test that held it panics.

use std::time::Duration;

use crate::support::process::{self, Server};
use crate::support::registry::{Auth, Registry};

#[test]
fn test_servers_stop_with_their_tests_registry_dropped() {
    for auth in [Auth::Open, Auth::TokenAnonymous] {
        let registry = Registry::start(auth);
        let config = registry.config.clone();
        let running = process::with_argument(config.as_os_str());
        // `timeout` and the registry itself both name the config.
        assert_eq!(running.len(), 2, "{running:?}");
        drop(registry);
        let left = process::with_argument(config.as_os_str());
        assert!(left.is_empty(), "outlived their registry: {left:?}");
    }
}

#[test]
fn test_servers_stop_with_their_tests_on_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml").into_os_string();
    let probe = config.clone();
    let outcome = std::thread::spawn(move || {
        let registry = Registry::start(Auth::Open);
        std::fs::copy(&registry.config, &probe).unwrap();
        // A second process naming a path of ours, in a process group of its own.
        let mut command = std::process::Command::new("timeout");
        command.args(["600", "tail", "-f"]).arg(&probe);
        let _tail = Server::spawn(command).unwrap();
        assert_eq!(running(&probe, 2).len(), 2);
        panic!("the test fails while its servers run");
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    assert!(process::with_argument(&config).is_empty());
}

#[test]
fn test_servers_stop_with_their_tests_grandchildren_ignoring_sigterm() {
    // A leader that ignores SIGTERM and a child that does too: the group's SIGKILL ends
    // both, two seconds after the SIGTERM.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("stubborn").into_os_string();
    std::fs::write(&marker, "").unwrap();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("trap '' TERM; tail -f \"$0\" & wait")
        .arg(&marker);
    let server = Server::spawn(command).unwrap();
    assert_eq!(running(&marker, 2).len(), 2, "sh and its tail run");
    drop(server);
    // SIGKILL is delivered at once but a process under load takes a moment to die.
    let left = running(&marker, 0);
    assert!(left.is_empty(), "{left:?}");
}

/// The processes naming `arg`, once exactly `count` of them run (or after five
/// seconds). Exactly: a shell that forks its background job passes through a moment
/// with one process more (the fork, before it becomes the job).
fn running(arg: &std::ffi::OsStr, count: usize) -> Vec<(u32, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let found = process::with_argument(arg);
        if found.len() == count || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
