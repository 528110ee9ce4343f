//! Browser lifecycle against real Chromium: dropping never blocks the
//! executor and still cleans up; profiles left by a SIGKILLed host are
//! swept, live ones are not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sesshost_browser::{BrowserSession, LaunchOptions, sweep_stale_profiles};

mod common;
use common::{group_members, processes_mentioning};

/// Poll `cond` every 50 ms for up to `secs`.
fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

// The default test runtime is current-thread: a blocking drop would stall
// the only executor thread.
#[tokio::test]
async fn dropping_returns_at_once_and_still_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let s = BrowserSession::launch(LaunchOptions {
        profile_root: Some(root.path().to_path_buf()),
        ..Default::default()
    })
    .await
    .expect("launch Chromium (apt-get install chromium)");
    let pid = s.pid().unwrap();
    let profile = s.profile_dir().unwrap().to_path_buf();
    assert!(profile.starts_with(root.path()), "{}", profile.display());
    assert!(profile.join(sesshost_browser::profile::LOCK_FILE).is_file());
    assert!(!group_members(pid).is_empty());
    let t = Instant::now();
    drop(s);
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "drop blocked for {took:?}"
    );
    assert!(
        eventually(10, || group_members(pid).is_empty() && !profile.exists()),
        "after drop: group {:?}, profile exists {}",
        group_members(pid),
        profile.exists()
    );
}

#[tokio::test]
async fn profile_root_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("home/run");
    let s = BrowserSession::launch(LaunchOptions {
        profile_root: Some(root.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
    s.shutdown().await;
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

/// Child mode of the sweep test: hold a browser under the given profile
/// root and wait to be killed.
#[test]
#[ignore = "run by a_sigkilled_hosts_profile_is_swept_a_live_one_is_not as its child"]
fn profile_holder() {
    let Some(root) = std::env::var_os("SESSHOST_TEST_PROFILE_ROOT") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = BrowserSession::launch(LaunchOptions {
            profile_root: Some(PathBuf::from(root)),
            ..Default::default()
        })
        .await
        .unwrap();
        println!(
            "HOLDING {} {}",
            s.pid().unwrap(),
            s.profile_dir().unwrap().display()
        );
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

fn spawn_holder(root: &Path) -> (std::process::Child, i32, PathBuf) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "profile_holder",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SESSHOST_TEST_PROFILE_ROOT", root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("HOLDING ").map(|(_, rest)| rest.to_string()))
        .expect("holder reports its browser");
    let (pid, profile) = line.split_once(' ').unwrap();
    (child, pid.parse().unwrap(), PathBuf::from(profile))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_hosts_profile_is_swept_a_live_one_is_not() {
    let root = tempfile::tempdir().unwrap();
    let live = BrowserSession::launch(LaunchOptions {
        profile_root: Some(root.path().to_path_buf()),
        ..Default::default()
    })
    .await
    .unwrap();
    let live_profile = live.profile_dir().unwrap().to_path_buf();
    let (mut child, pgid, dead_profile) = spawn_holder(root.path());
    assert!(dead_profile.starts_with(root.path()));
    // While its host lives, nothing is swept.
    let r = sweep_stale_profiles(root.path()).unwrap();
    assert!(r.removed.is_empty(), "{r:?}");
    assert_eq!(r.live, 2, "{r:?}");
    child.kill().unwrap(); // SIGKILL: no destructor runs in the holder.
    child.wait().unwrap();
    let profile_str = dead_profile.display().to_string();
    assert!(
        eventually(10, || processes_mentioning(&profile_str).is_empty()
            && group_members(pgid).is_empty()),
        "the dead host's Chromium lives on"
    );
    assert!(dead_profile.is_dir(), "a SIGKILLed host cannot clean up");
    let r = sweep_stale_profiles(root.path()).unwrap();
    assert_eq!(r.removed, vec![dead_profile.clone()], "{r:?}");
    assert_eq!(r.live, 1, "{r:?}");
    assert!(r.failed.is_empty(), "{r:?}");
    assert!(!dead_profile.exists());
    assert!(live_profile.is_dir(), "the live profile was swept");
    // The live browser still works after the sweep.
    live.cdp().pages().await.unwrap();
    live.shutdown().await;
    assert!(!live_profile.exists());
    // A missing root is an empty sweep.
    let r = sweep_stale_profiles(&root.path().join("nope")).unwrap();
    assert!(r.removed.is_empty() && r.live == 0);
}
