//! Starting and stopping the service: open the home, make the default
//! tenant's key on first start, reconcile the catalog with the store, fill
//! the warm pool, serve, and on the stop signal persist every live session.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

use sesshost_engine::{Engine, HomeMode};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::audit::Audit;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::ServiceError;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::ratelimit::RateLimiter;
use crate::slots::Slots;
use crate::tenants::Registry;

/// What `host run` was given.
#[derive(Default)]
pub struct RunOptions {
    pub home: PathBuf,
    /// Overrides the config file's `listen`.
    pub listen: Option<SocketAddr>,
    pub config: Option<PathBuf>,
    /// A storage-backend plugin as the durable tier (`--plugin`), with
    /// its grants and the repository key.
    pub durable: Option<sesshost_engine::Remote>,
    /// `--cluster`: share the durable tier's bucket with other hosts
    /// (needs `durable`).
    pub cluster: Option<crate::cluster::ClusterOptions>,
}

/// The service's own files under the home.
pub fn service_dir(home: &Path) -> PathBuf {
    home.join("service")
}

fn io(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Startup(format!("{what}: {e}"))
}

/// The tenant registry (the home's, or with `--cluster` the bucket's),
/// after its first-start check: on the first start of a home or a bucket,
/// tenant `default` and one key are made and the key printed on stderr
/// once. On a bucket this is create-only, so of hosts starting together
/// exactly one makes (and prints) the key.
async fn open_registry(
    engine: &Engine,
    home: &Path,
    bucket: Option<&(PathBuf, sesshost_plugin::Grants)>,
) -> Result<Registry, ServiceError> {
    let (registry, more) = match bucket {
        None => (
            Registry::open(home)?,
            "host key create --tenant default".to_string(),
        ),
        Some((plugin, grants)) => (
            Registry::open_cluster(engine, plugin, grants).await?,
            format!(
                "host key create --tenant default --cluster --plugin {} --plugin-config …",
                plugin.display()
            ),
        ),
    };
    // A bucket's calls block: off the async workers.
    let (registry, key) = tokio::task::spawn_blocking(move || {
        let key = registry.ensure_default();
        key.map(|k| (registry, k))
    })
    .await
    .map_err(|e| io("the first-start check of the tenant registry failed", e))??;
    if let Some(key) = key {
        eprintln!(
            "created tenant `default` and its first API key (shown once; only its hash is stored):\n\n    {}\n\nuse it as `Authorization: Bearer <key>`; more keys: `{more}`",
            key.expose()
        );
    }
    Ok(registry)
}

/// Run until `stop` resolves, then shut down gracefully. `ready` gets the
/// bound address once the service accepts connections.
pub async fn run(
    opts: RunOptions,
    stop: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServiceError> {
    let mut config = match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = opts.listen {
        config.listen = l;
    }
    let engine =
        Engine::open(&opts.home, HomeMode::Create).map_err(|e| io("cannot open the home", e))?;
    if opts.cluster.is_some() && opts.durable.is_none() {
        return Err(ServiceError::Startup(
            "--cluster needs the bucket: add --plugin s3.wasm with its --plugin-config and the repository key".into(),
        ));
    }
    // With --cluster, tenants and API keys live in the bucket (so every
    // host accepts every key): the same plugin and grants open it raw.
    let bucket_of = match (&opts.cluster, &opts.durable) {
        (Some(_), Some(r)) => Some((r.plugin.clone(), r.grants.clone())),
        _ => None,
    };
    let mut tier = None;
    if let Some(remote) = opts.durable {
        let plugin = remote.plugin.display().to_string();
        let t = engine.remote_tier(remote).await.map_err(|e| {
            io(
                &format!(
                    "cannot open the durable tier through {plugin} (check --plugin-config, --allow-host / --allow-dir and the repository key)"
                ),
                e,
            )
        })?;
        tier = Some((plugin, t));
    }
    let durable = match (&tier, &opts.cluster) {
        (Some((plugin, t)), None) => {
            tracing::info!("durable tier: {plugin} (write-through, read-through on a miss)");
            Some(Arc::new(crate::durable::Durable::new(
                t.clone(),
                service_dir(&opts.home).join("durable.json"),
            )))
        }
        _ => None,
    };
    let stored: Vec<String> = engine
        .list()
        .await
        .map_err(|e| io("cannot list the stored sessions", e))?
        .into_iter()
        .map(|i| i.name)
        .collect();
    let catalog =
        Catalog::open(&opts.home, &stored).map_err(|e| io("cannot open the session catalog", e))?;
    let audit = Audit::open(&service_dir(&opts.home).join("audit.log"))?;
    let max_live = config.max_live_browsers();
    let pool = Pool::new(config.pool.size, engine.run_dir());
    let limiter = RateLimiter::new(config.limits.create_per_minute, config.limits.create_burst);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| io(&format!("cannot listen on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| io("no local address", e))?;
    let bucket_calls = tier.as_ref().map(|(_, t)| t.calls());
    let cluster = match (&opts.cluster, tier) {
        (Some(o), Some((_, t))) => Some(crate::cluster::Cluster::start(t, o, addr).await?),
        _ => None,
    };
    // After the cluster's probe, so nothing is written to a bucket that
    // lacks atomic conditional writes.
    let registry = open_registry(&engine, &opts.home, bucket_of.as_ref()).await?;
    let app = Arc::new(App {
        engine,
        config,
        registry,
        audit,
        metrics: Metrics::new(),
        limiter,
        catalog,
        slots: Slots::default(),
        pool: pool.clone(),
        live_sem: Arc::new(Semaphore::new(max_live)),
        max_live,
        queued: AtomicUsize::new(0),
        shutting_down: AtomicBool::new(false),
        started: Instant::now(),
        durable: durable.clone(),
        cluster: cluster.clone(),
        history: Default::default(),
    });
    if let Some(calls) = bucket_calls {
        let _ = app.metrics.bucket_calls.set(calls);
    }
    if let Some(d) = durable {
        tokio::spawn(d.run(app.clone()));
    }
    if let Some(c) = &cluster {
        c.attach(&app);
        tokio::spawn(c.clone().run(app.clone()));
        tokio::spawn(c.clone().autosave(app.clone()));
        tokio::spawn(c.clone().collect(app.clone()));
    }
    tokio::spawn(pool.clone().refill());
    crate::background::spawn_all(&app);
    tracing::info!(
        "sesshost service on http://{addr} ({} sessions stored, up to {max_live} live browsers, pool of {})",
        app.catalog.len(),
        app.config.pool.size
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = crate::routes::router(app.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    ready(addr);
    stop.await;
    tracing::info!("stopping: no new connections; saving every live session");
    let _ = tx.send(());
    crate::background::shutdown(&app).await;
    if let Some(c) = &cluster {
        c.leave(&app).await;
    }
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) | Err(_) => {}
        Ok(Ok(Err(e))) => tracing::warn!("server: {e}"),
        Ok(Err(e)) => tracing::warn!("server task: {e}"),
    }
    tracing::info!("stopped");
    Ok(())
}
