//! Finding and spawning Chromium; owning its process group.
//!
//! Chromium is spawned by us (not by chromiumoxide's launcher) so that:
//! - it runs in its own process group (`setpgid(0, 0)`), and the whole group
//!   is SIGKILLed when the [`ChromiumProcess`] is dropped (at once; reaping
//!   and deleting the profile happen on a thread of their own);
//! - it gets `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it when the
//!   host dies, even by SIGKILL (no destructor runs then). The death signal
//!   fires when the *thread* that forked dies, so every spawn happens on one
//!   dedicated thread that lives as long as the process.
//!
//! Chromium's helper processes (zygote, renderers, GPU/network utilities)
//! stay in its process group and exit on their own when the browser process
//! is gone (their IPC channel closes); the drop path kills the group anyway.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::error::{BrowserError, Result};
use crate::profile::Profile;

/// Names looked up on `PATH`, in order, when `SESSHOST_CHROMIUM` is unset.
pub const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Find the Chromium binary: `SESSHOST_CHROMIUM` if set, else the first of
/// [`CHROMIUM_NAMES`] found on `PATH`.
pub fn find_chromium() -> Result<PathBuf> {
    find_chromium_in(
        std::env::var_os("SESSHOST_CHROMIUM"),
        std::env::var_os("PATH"),
    )
}

/// [`find_chromium`] with the environment passed in (for tests).
pub fn find_chromium_in(explicit: Option<OsString>, path: Option<OsString>) -> Result<PathBuf> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(BrowserError::BadChromiumPath(p))
        };
    }
    let path = path.unwrap_or_default();
    for name in CHROMIUM_NAMES {
        for dir in std::env::split_paths(&path) {
            let cand = dir.join(name);
            if is_executable(&cand) {
                return Ok(cand);
            }
        }
    }
    Err(BrowserError::ChromiumNotFound)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to start Chromium: plain data, parsed before anything runs.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// The binary; `None` = [`find_chromium`].
    pub chromium: Option<PathBuf>,
    /// Show windows. Cost: needs a display (`DISPLAY`/Wayland); without one
    /// Chromium exits at once and launch fails.
    pub headed: bool,
    /// Browser-wide emulation applied through command-line flags and
    /// environment (every tab, including ones opened later by the user or a
    /// CDP client), and again per tab through CDP for the tabs we open.
    pub emulation: Emulation,
    /// Extra environment for the Chromium process (e.g. `DISPLAY` for
    /// headed mode under Xvfb). Cost: none.
    pub env: Vec<(OsString, OsString)>,
    /// Extra command-line arguments, appended last. Cost: they can undo the
    /// isolation flags; meant for debugging.
    pub extra_args: Vec<String>,
    /// How long to wait for the DevTools endpoint. `None` = 30 s. A cold
    /// start takes ~1 s; CI outliers of 5-8 s are common.
    pub startup_timeout: Option<Duration>,
    /// Where the private profile directory goes (created 0700 if
    /// missing); `None` = `$TMPDIR`. The engine passes
    /// `$SESSHOST_HOME/run/` and calls
    /// [`crate::profile::sweep_stale_profiles`] on it at every start, so a
    /// profile left by a SIGKILLed host is deleted. Cost: none.
    pub profile_root: Option<PathBuf>,
}

/// User agent, viewport, locale and time zone of a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Emulation {
    pub user_agent: Option<String>,
    pub viewport: Option<sessbundle::state::Viewport>,
    /// BCP 47, e.g. `en-GB`.
    pub locale: Option<String>,
    /// IANA, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
}

impl Emulation {
    /// The emulation recorded in a session's meta.
    pub fn from_meta(meta: &sessbundle::state::Meta) -> Self {
        Emulation {
            user_agent: meta.user_agent.clone(),
            viewport: meta.viewport.clone(),
            locale: meta.locale.clone(),
            timezone: meta.timezone.clone(),
        }
    }
}

/// The flags every session gets (besides the profile dir and headless).
/// Together they keep Chromium off the network except for what pages ask
/// for, and make it start the same way every time.
pub const BASE_FLAGS: &[&str] = &[
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--password-store=basic",
    "--use-mock-keychain",
    // Restored history entries are placeholders served without the network;
    // going back must reload the real page, never show a cached placeholder.
    // WebUIOmniboxPopup and WebUIOmniboxAimPopup: Chromium 156 builds the
    // address bar's popup as two WebUI pages in a renderer of their own
    // when a browser opens its first window, headless too, where nobody
    // ever sees it. Cost, measured on the 2-core VM by
    // `host/browser/benches/first_window_cpu.sh` (machine CPU over the
    // first window and the 1.5 s after): 1.15-1.4 s with them, 0.33 s
    // without; every pooled browser pays it once. A headed window falls
    // back to the native popup.
    "--disable-features=BackForwardCache,Translate,MediaRouter,OptimizationHints,\
     WebUIOmniboxPopup,WebUIOmniboxAimPopup",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    // Start-up and first-page work a session never needs (the set
    // Playwright passes): no field-trial configs, crash reporter, hang
    // monitor, search-engine screen or background-page extensions; no
    // throttling of background tabs (restored tabs load in background).
    "--disable-field-trial-config",
    "--disable-breakpad",
    "--disable-hang-monitor",
    "--disable-ipc-flooding-protection",
    "--disable-component-extensions-with-background-pages",
    "--disable-search-engine-choice-screen",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--no-service-autorun",
    "--metrics-recording-only",
];

/// A running Chromium that we spawned. Dropping it SIGKILLs its whole
/// process group at once and reaps it and deletes its private profile on a
/// short-lived thread of its own (never blocking the caller, e.g. an async
/// executor); [`ChromiumProcess::kill_in_background`] returns a receiver to
/// await that.
pub struct ChromiumProcess {
    child: Option<Child>,
    pid: i32,
    ws_url: String,
    profile: Option<Profile>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for ChromiumProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromiumProcess")
            .field("pid", &self.pid)
            .field("ws_url", &self.ws_url)
            .finish_non_exhaustive()
    }
}

impl ChromiumProcess {
    /// Spawn Chromium with a fresh private profile and wait for its DevTools
    /// endpoint.
    pub fn spawn(opts: &LaunchOptions) -> Result<Self> {
        let binary = match &opts.chromium {
            Some(b) => b.clone(),
            None => find_chromium()?,
        };
        let profile = Profile::create(opts.profile_root.as_deref())?;
        let mut cmd = Command::new(&binary);
        cmd.args(chromium_args(opts, profile.path()));
        if let Some(tz) = &opts.emulation.timezone {
            cmd.env("TZ", tz);
        }
        if let Some(l) = &opts.emulation.locale {
            let posix = l.replace('-', "_");
            cmd.env("LANGUAGE", &posix)
                .env("LANG", format!("{posix}.UTF-8"));
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = match spawn_on_reaper_thread(cmd) {
            Ok(c) => c,
            Err(source) => {
                profile.remove();
                return Err(BrowserError::Spawn {
                    binary: binary.clone(),
                    source,
                });
            }
        };
        let pid = child.id() as i32;
        let stderr = child.stderr.take();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let tail2 = tail.clone();
        // From here on dropping `proc` kills and cleans up.
        let mut proc = ChromiumProcess {
            child: Some(child),
            pid,
            ws_url: String::new(),
            profile: Some(profile),
            stderr_tail: tail.clone(),
        };
        let Some(stderr) = stderr else {
            return Err(BrowserError::NoDevToolsEndpoint {
                reason: "Chromium's stderr was not captured".into(),
                stderr_tail: String::new(),
            });
        };
        std::thread::Builder::new()
            .name("chromium-stderr".into())
            .spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("DevTools listening on ")
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(rest.trim().to_string());
                    }
                    tracing::trace!(target: "sesshost_browser::chromium", "{line}");
                    let mut t = tail2.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() >= 20 {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            })
            .map_err(|source| BrowserError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let timeout = opts.startup_timeout.unwrap_or(Duration::from_secs(30));
        match rx.recv_timeout(timeout) {
            Ok(url) => proc.ws_url = url,
            Err(e) => {
                let reason = match e {
                    mpsc::RecvTimeoutError::Timeout => format!("no endpoint after {timeout:?}"),
                    mpsc::RecvTimeoutError::Disconnected => "the process exited".to_string(),
                };
                let stderr_tail = proc.stderr_tail();
                return Err(BrowserError::NoDevToolsEndpoint {
                    reason,
                    stderr_tail,
                });
            }
        }
        Ok(proc)
    }

    /// `ws://127.0.0.1:PORT/devtools/browser/ID`.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The browser process id (also its process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The private profile directory (deleted on drop).
    pub fn profile_dir(&self) -> &Path {
        self.profile
            .as_ref()
            .map(|p| p.path())
            .unwrap_or(Path::new(""))
    }

    /// The last lines Chromium wrote to stderr (for error messages).
    pub fn stderr_tail(&self) -> String {
        let t = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Kill the whole process group, reap the browser, delete the profile,
    /// and wait for all of it (blocking, up to ~1 s).
    pub fn kill(&mut self) {
        let (tx, rx) = mpsc::channel();
        if self.start_cleanup(move || {
            let _ = tx.send(());
        }) {
            let _ = rx.recv();
        }
    }

    /// SIGKILL the process group now; reap the browser and delete the
    /// profile on a thread of its own. Returns at once (~0.1 ms) with a
    /// receiver that fires when the cleanup is done (`None` if it already
    /// happened).
    pub fn kill_in_background(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.start_cleanup(move || {
            let _ = tx.send(());
        })
        .then_some(rx)
    }

    /// Kill the group now, clean up on a thread, call `done` after; false
    /// if there was nothing to do.
    fn start_cleanup(&mut self, done: impl FnOnce() + Send + 'static) -> bool {
        let child = self.child.take();
        let profile = self.profile.take();
        if child.is_none() && profile.is_none() {
            return false;
        }
        let pid = self.pid;
        if child.is_some() {
            kill_group(pid);
        }
        let cleanup = move || {
            if let Some(mut child) = child {
                let _ = child.kill();
                let _ = child.wait();
                // Helpers that were still starting may have outlived the
                // first signal; the group id stays valid while any lives.
                kill_group(pid);
            }
            if let Some(p) = profile {
                p.remove();
            }
            done();
        };
        // A plain thread, not `spawn_blocking`: a runtime shutting down
        // right after the drop would not run a queued blocking task.
        let spawned = std::thread::Builder::new()
            .name("chromium-reaper".into())
            .spawn(cleanup);
        if let Err(e) = spawned {
            // Out of threads: the group is killed already; the profile is
            // left for the next sweep (its lock dies with this process).
            tracing::debug!("could not start the cleanup thread: {e}");
        }
        true
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        let _ = self.kill_in_background();
    }
}

/// The full argument list for a launch.
pub fn chromium_args(opts: &LaunchOptions, profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if !opts.headed {
        args.push("--headless=new".into());
    }
    // As root Chromium refuses to start with its sandbox on. The profile is
    // private and the debugging port local-only.
    if is_root() {
        args.push("--no-sandbox".into());
    }
    args.extend(BASE_FLAGS.iter().map(|s| s.to_string()));
    args.push(format!("--user-data-dir={}", profile.display()));
    let e = &opts.emulation;
    if let Some(ua) = &e.user_agent {
        args.push(format!("--user-agent={ua}"));
    }
    if let Some(l) = &e.locale {
        args.push(format!("--lang={l}"));
        args.push(format!("--accept-lang={l}"));
    }
    if let Some(v) = &e.viewport {
        args.push(format!("--window-size={},{}", v.width, v.height));
        if v.device_scale_factor > 0.0 && v.device_scale_factor != 1.0 {
            args.push(format!(
                "--force-device-scale-factor={}",
                v.device_scale_factor
            ));
        }
    }
    args.extend(opts.extra_args.iter().cloned());
    if opts.headed {
        args.push("about:blank".into());
    } else {
        // No start tab (as Playwright does): one renderer less to start
        // before DevTools answers; restore opens the tabs it needs.
        args.push("--no-startup-window".into());
    }
    args
}

fn is_root() -> bool {
    // The effective uid from /proc (libc::geteuid would need `unsafe`).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// SIGKILL every process in group `pgid` (one `kill(2)`, no waiting).
#[allow(unsafe_code)]
fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) has no memory preconditions; a negative pid names
        // the process group, which is ours (we created it with setpgid).
        let _ = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawn `cmd` on the process-lifetime spawner thread, in a new process
/// group, with `PR_SET_PDEATHSIG = SIGKILL`.
fn spawn_on_reaper_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("chromium-spawner".into())
            .spawn(move || {
                // This thread never returns while the process lives: the
                // death signal of every child is tied to it.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_with_deathsig(&mut cmd));
                }
            })
            .expect("spawning a thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("chromium spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("chromium spawner thread is gone"))?
}

// `pre_exec` is the only way to set the parent-death signal of a child; the
// workspace denies unsafe code, allowed here alone. The closure calls only
// async-signal-safe functions (prctl, getppid, _exit).
#[allow(unsafe_code)]
fn spawn_with_deathsig(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    cmd.process_group(0);
    // SAFETY: runs in the forked child before exec; prctl/getppid/_exit are
    // async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}
