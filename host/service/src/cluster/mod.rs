//! `host run --cluster`: several hosts serve one bucket's sessions (the
//! protocol is `sesshost_cluster`'s; this module wires it into the
//! service).
//!
//! - this file: [`Cluster`] (this host's id, address, lease, its view of
//!   the fleet, the sessions it holds), start-up (the bucket probe, the
//!   first liveness record) and the liveness task (renew every T/3;
//!   stop every browser when the lease lapses; check every held claim
//!   after a pause);
//! - [`sessions`]: a session's claim, fence, restore from the head,
//!   commit (create-only snapshot + compare-and-swap of the head), release,
//!   publish (new sessions), delete;
//! - [`gc`]: the bucket's garbage collection, by the holder of
//!   `cluster/gc` only;
//! - [`forward`]: the middleware that sends a request for a session held
//!   by another live host there (REST and the CDP websocket), waiting for
//!   a frozen holder to be judged dead and then taking over.
//!
//! Where state lives: the bucket is the truth (the head names the
//! committed snapshot); the home is a cache that a host refreshes from the
//! head before it serves a session it does not hold.

pub mod forward;
pub mod gc;
pub mod listing;
pub mod sessions;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sesshost_cluster::clock::{Clock, SystemClock};
use sesshost_cluster::records::{HOSTS, HostRecord, host_key};
use sesshost_cluster::{Fleet, HostLease, Liveness};
use sesshost_engine::RemoteTier;

use crate::app::App;
use crate::error::ServiceError;

/// Default `--lease-seconds`.
pub const DEFAULT_LEASE_SECONDS: u64 = 15;

/// What `host run --cluster` was given.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This process's id in the bucket (`--host-id`, else the host name);
    /// a random suffix makes every start a new host.
    pub host_id: Option<String>,
    /// Where other hosts reach this one (`--advertise`), e.g.
    /// `http://10.0.0.5:8080`; default `http://LISTEN`.
    pub advertise: Option<String>,
    /// T (`--lease-seconds`): renew every T/3, stop serving at 0.8 T,
    /// judged dead by others after 1.5 T.
    pub lease: Duration,
}

/// What this host knows about the sessions of the cluster.
#[derive(Default)]
pub(crate) struct Local {
    /// Sessions whose claim this host holds, with its epoch.
    pub held: HashMap<String, u64>,
    /// The head snapshot each local copy equals.
    pub synced: HashMap<String, u64>,
    /// The local version last committed (see `durable::version_of`).
    pub committed: HashMap<String, String>,
    /// Requests running on a held session that is not live (its claim is
    /// released when the last one ends).
    pub inflight: HashMap<String, usize>,
    /// Another host's claim seen recently: session → (host, addr, epoch, when).
    pub holders: HashMap<String, (String, String, u64, Instant)>,
    /// Claims this host kept while its lease lapsed (released once it
    /// serves again, unless taken over meanwhile).
    pub orphaned: HashSet<String>,
}

pub struct Cluster {
    pub id: String,
    pub addr: String,
    pub ttl: Duration,
    pub(crate) tier: RemoteTier,
    pub(crate) clock: SystemClock,
    pub(crate) lease: Mutex<HostLease>,
    pub(crate) fleet: Mutex<Fleet>,
    pub(crate) local: Mutex<Local>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Claims read for lists, by session (`listing.rs`).
    pub(crate) claims_seen: Mutex<HashMap<String, listing::CachedClaim>>,
    /// This host's part in collecting the bucket (`gc.rs`).
    pub(crate) gc: Mutex<gc::GcView>,
    /// The bucket probe's report (it passed, or the host did not start).
    pub probe: String,
    serving: AtomicBool,
    /// [`HostLease::serving_until`] after the last renewal, in ns of
    /// `clock` (0: none). Read by [`Cluster::serving`] on every request,
    /// so that never waits on the lease's lock, which the liveness task
    /// holds over a renewal's bucket call.
    good_until_ns: AtomicU64,
    pub(crate) client: forward::Client,
    /// The service, once it exists (set by [`Cluster::attach`]).
    app: std::sync::OnceLock<std::sync::Weak<App>>,
}

/// A lock that cannot be poisoned for good (a panic elsewhere must not
/// stop the cluster).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn startup(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Startup(format!("{what}: {e}"))
}

/// `NAME-<8 hex>`: a fresh host id for every start (a restarted process
/// must not inherit its predecessor's record, which others may be judging
/// dead).
fn fresh_host_id(base: Option<&str>) -> Result<String, ServiceError> {
    let base = match base {
        Some(b) => b.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into()),
    };
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    if clean.is_empty() {
        return Err(ServiceError::Startup(
            "--host-id is empty: give a name of letters, digits, '-', '.' or '_'".into(),
        ));
    }
    let suffix =
        crate::catalog::random_hex(4).map_err(|e| startup("no randomness for the host id", e))?;
    Ok(format!("{clean}-{suffix}"))
}

impl Cluster {
    /// Probe the bucket (refusing a server without atomic conditional
    /// writes, naming the failed check), then write this host's first
    /// liveness record.
    pub async fn start(
        tier: RemoteTier,
        opts: &ClusterOptions,
        listen: std::net::SocketAddr,
    ) -> Result<Arc<Cluster>, ServiceError> {
        if opts.lease < Duration::from_secs(3) {
            return Err(ServiceError::Startup(format!(
                "--lease-seconds {} is too short: give at least 3 (renewals every T/3 must fit a bucket round trip with room)",
                opts.lease.as_secs()
            )));
        }
        let report = tier
            .with_backend(|b| sesshost_store::probe::conditional_writes(b))
            .await
            .map_err(|e| startup("cannot probe the bucket", e))?
            .map_err(|e| {
                ServiceError::Startup(format!(
                    "--cluster needs a bucket with atomic conditional writes, and this one failed the probe: {e}"
                ))
            })?;
        let probe = format!("{report:?}");
        let id = fresh_host_id(opts.host_id.as_deref())?;
        let addr = opts
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        let addr = addr.trim_end_matches('/').to_string();
        if !addr.starts_with("http://") {
            return Err(ServiceError::Startup(format!(
                "--advertise {addr}: give an http:// URL other hosts can reach, e.g. http://10.0.0.5:8080"
            )));
        }
        let c = Arc::new(Cluster {
            lease: Mutex::new(HostLease::new(&id, &addr, opts.lease)),
            fleet: Mutex::new(Fleet::new(&id, opts.lease)),
            id,
            addr,
            ttl: opts.lease,
            tier,
            clock: SystemClock::default(),
            local: Mutex::new(Local::default()),
            locks: Mutex::new(HashMap::new()),
            claims_seen: Mutex::new(HashMap::new()),
            gc: Mutex::new(gc::GcView::default()),
            probe,
            serving: AtomicBool::new(false),
            good_until_ns: AtomicU64::new(0),
            client: forward::client(),
            app: std::sync::OnceLock::new(),
        });
        let c2 = c.clone();
        let liv = c
            .tier
            .with_backend(move |b| {
                let l = c2.renew_with(b, false);
                let _ = c2.observe_with(b);
                l
            })
            .await
            .map_err(|e| startup("cannot write this host's liveness record", e))?;
        if liv != Liveness::Serving {
            return Err(ServiceError::Startup(format!(
                "cannot write this host's liveness record {} in the bucket (the bucket did not take the write): check the plugin's grants and the bucket policy",
                host_key(&c.id)
            )));
        }
        c.serving.store(true, Ordering::SeqCst);
        tracing::info!(
            "cluster: host {} at {} (lease {} s; bucket probe passed)",
            c.id,
            c.addr,
            c.ttl.as_secs()
        );
        Ok(c)
    }

    /// Tie the cluster to the service it serves (once, at start).
    pub fn attach(&self, app: &Arc<App>) {
        let _ = self.app.set(Arc::downgrade(app));
    }

    /// The service, while it runs.
    pub fn app(&self) -> Option<Arc<App>> {
        self.app.get()?.upgrade()
    }

    /// Every `autosave_seconds`: commit the held sessions whose local state
    /// changed (the browsers' autosaves), so a takeover loses at most that.
    pub async fn autosave(self: Arc<Self>, app: Arc<App>) {
        let period = Duration::from_secs(app.config.lifecycle.autosave_seconds.max(1));
        loop {
            tokio::time::sleep(period).await;
            if app.is_shutting_down() {
                return;
            }
            if !self.serving() {
                continue;
            }
            let ids: Vec<String> = lock(&self.local).held.keys().cloned().collect();
            for id in ids {
                if let Err(e) = self.commit(&app, &id).await {
                    tracing::debug!("cluster: session {id}: autosave commit: {e:?}");
                }
            }
        }
    }

    /// Whether this host may act for its sessions now.
    pub fn serving(&self) -> bool {
        let until = self.good_until_ns.load(Ordering::SeqCst);
        self.serving.load(Ordering::SeqCst)
            && until != 0
            && (self.clock.now().as_nanos() as u64) < until
    }

    /// Renew (or, with `tick`, renew if due) and publish the result for
    /// [`Cluster::serving`]. Runs on a blocking thread: the lease's lock
    /// is held over the bucket call, and only the liveness task (and the
    /// start) take it.
    fn renew_with(&self, b: &dyn sesshost_store::Backend, tick: bool) -> Liveness {
        let mut lease = lock(&self.lease);
        let l = if tick {
            lease.tick(b, &self.clock)
        } else {
            lease.renew(b, &self.clock)
        };
        let until = lease
            .serving_until()
            .map_or(0, |d| (d.as_nanos() as u64).max(1));
        self.good_until_ns.store(until, Ordering::SeqCst);
        l
    }

    /// List the hosts without holding the fleet's lock over the bucket
    /// call (async request paths take that lock), then note the listing.
    pub(crate) fn observe_with(
        &self,
        b: &dyn sesshost_store::Backend,
    ) -> Result<(), sesshost_store::BackendError> {
        let listed = Fleet::list(b)?;
        lock(&self.fleet).apply(listed, self.clock.now());
        Ok(())
    }

    /// One async lock per session: claims, refreshes and commits of one
    /// session run one at a time.
    pub(crate) async fn session_lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut l = lock(&self.locks);
            if l.len() > 10_000 {
                l.retain(|_, m| Arc::strong_count(m) > 1);
            }
            l.entry(id.to_string()).or_default().clone()
        };
        m.lock_owned().await
    }

    pub fn holds(&self, id: &str) -> bool {
        lock(&self.local).held.contains_key(id)
    }

    /// Whether this host judges `host` dead (its record unchanged for
    /// 1.5 T of this host's clock).
    pub fn is_dead(&self, host: &str) -> bool {
        lock(&self.fleet).is_dead(host, self.clock.now())
    }

    /// [`Cluster::is_dead`] on a fresh view: lists the hosts first when
    /// the last listing is older than T/6 (the run task's tick), so a
    /// host whose own listing task fell behind never judges a live host
    /// dead. A failed listing judges no one.
    pub async fn judge_dead(self: &Arc<Self>, host: &str) -> bool {
        if lock(&self.fleet).stale(self.clock.now(), self.ttl / 6) {
            let c = self.clone();
            let _ = self.tier.with_backend(move |b| c.observe_with(b)).await;
        }
        self.is_dead(host)
    }

    /// The liveness task: renew every T/3 (checked every T/6), observe the
    /// fleet; on a lapse stop every browser; after a pause or a lapse,
    /// check every held claim is still ours.
    pub async fn run(self: Arc<Self>, app: Arc<App>) {
        let tick = self.ttl / 6;
        let mut last = Instant::now();
        let mut was_serving = true;
        loop {
            tokio::time::sleep(tick).await;
            if app.is_shutting_down() {
                return;
            }
            let gap = last.elapsed();
            last = Instant::now();
            let c = self.clone();
            let liv = self
                .tier
                .with_backend(move |b| {
                    let l = c.renew_with(b, true);
                    if let Err(e) = c.observe_with(b) {
                        tracing::debug!("cluster: cannot list the hosts: {e}");
                    }
                    l
                })
                .await
                .unwrap_or(Liveness::Lapsed);
            let paused = gap > self.ttl.mul_f64(0.8);
            match liv {
                Liveness::Serving => {
                    if !was_serving || paused {
                        if paused {
                            tracing::warn!(
                                "cluster: this host was paused for {:.1} s (over 0.8 T): checking every session it holds",
                                gap.as_secs_f64()
                            );
                        }
                        self.verify_held(&app).await;
                    }
                    self.serving.store(true, Ordering::SeqCst);
                    was_serving = true;
                }
                Liveness::Lapsed => {
                    if was_serving {
                        tracing::error!(
                            "cluster: no liveness renewal for 0.8 T ({} s): this host stops its browsers and refuses its sessions until the bucket answers again",
                            self.ttl.mul_f64(0.8).as_secs_f64()
                        );
                        self.serving.store(false, Ordering::SeqCst);
                        self.drop_all_live(&app).await;
                    }
                    was_serving = false;
                }
                Liveness::Demoted => {
                    tracing::error!(
                        "cluster: this host's liveness record {} was replaced or removed by another process: it stops serving for good; restart it (it will join as a new host)",
                        host_key(&self.id)
                    );
                    self.serving.store(false, Ordering::SeqCst);
                    self.drop_all_live(&app).await;
                    return;
                }
            }
        }
    }

    /// Close every live browser without saving (this host may no longer
    /// write its sessions); their claims are released when it serves
    /// again, or taken over by others.
    async fn drop_all_live(&self, app: &Arc<App>) {
        let ids: Vec<String> = {
            let mut l = lock(&self.local);
            let ids: Vec<String> = l.held.keys().cloned().collect();
            l.orphaned.extend(ids.iter().cloned());
            l.synced.clear();
            ids
        };
        for id in ids {
            sessions::close_local(app, &id).await;
        }
    }

    /// The sessions this host holds, with their epochs.
    pub fn held_sessions(&self) -> Vec<serde_json::Value> {
        let l = lock(&self.local);
        let mut v: Vec<_> = l
            .held
            .iter()
            .map(|(id, e)| serde_json::json!({ "id": id, "epoch": e }))
            .collect();
        v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        v
    }

    /// `holder` ({host_id, addr} or null) and `epoch` of session `id`, for
    /// `GET /v1/sessions/{id}`.
    pub async fn holder_json(self: &Arc<Self>, id: &str) -> (serde_json::Value, serde_json::Value) {
        if let Some(e) = lock(&self.local).held.get(id) {
            return (
                serde_json::json!({ "host_id": self.id, "addr": self.addr }),
                serde_json::json!(e),
            );
        }
        let (c, sid) = (self.clone(), id.to_string());
        let claim = self
            .tier
            .with_backend(move |b| sesshost_cluster::Claims::new(b, &c.id, &c.addr).claim(&sid))
            .await;
        match claim {
            Ok(Ok(Some(cl))) => (
                match cl.holder {
                    Some(h) => serde_json::json!({ "host_id": h, "addr": cl.addr }),
                    None => serde_json::Value::Null,
                },
                serde_json::json!(cl.epoch),
            ),
            _ => (serde_json::Value::Null, serde_json::Value::Null),
        }
    }

    /// The hosts this host sees: `(id, addr, alive)`, itself included.
    pub async fn hosts(self: &Arc<Self>) -> Vec<serde_json::Value> {
        let c = self.clone();
        let recs = self
            .tier
            .with_backend(move |b| {
                let mut out = Vec::new();
                for key in b.list(HOSTS).unwrap_or_default() {
                    if let Ok(Some(bytes)) = b.get(&key)
                        && let Ok(r) = serde_json::from_slice::<HostRecord>(&bytes)
                    {
                        out.push(r);
                    }
                }
                let _ = &c;
                out
            })
            .await
            .unwrap_or_default();
        let now = self.clock.now();
        let mut fleet = lock(&self.fleet);
        let mut v: Vec<serde_json::Value> = recs
            .into_iter()
            .map(|r| {
                let alive = !fleet.is_dead(&r.host_id, now);
                serde_json::json!({
                    "host_id": r.host_id,
                    "addr": r.addr,
                    "alive": alive,
                    "self": r.host_id == self.id,
                    "renewals": r.renewals,
                })
            })
            .collect();
        v.sort_by(|a, b| a["host_id"].as_str().cmp(&b["host_id"].as_str()));
        v
    }

    /// On SIGTERM, after every live session was committed and released:
    /// release what is left and remove this host's record.
    pub async fn leave(self: &Arc<Self>, app: &Arc<App>) {
        let ids: Vec<String> = lock(&self.local).held.keys().cloned().collect();
        for id in ids {
            sessions::release_claim(self, app, &id, true).await;
        }
        self.release_gc().await;
        let key = host_key(&self.id);
        let _ = self.tier.with_backend(move |b| b.delete(&key)).await;
        tracing::info!("cluster: host {} left the cluster", self.id);
    }
}
