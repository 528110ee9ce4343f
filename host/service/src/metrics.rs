//! A small Prometheus registry (text exposition format 0.0.4, no extra
//! crate): [`Counter`], [`Gauge`], [`Histogram`] on atomics (f64 values as
//! `AtomicU64` bits), their labelled forms [`CounterVec`], [`GaugeVec`],
//! [`HistogramVec`], and [`Metrics`], the service's named series. Every
//! series is prefixed `sesshost_`. A labelled family keeps at most
//! [`MAX_SERIES`] label sets; values past it are counted in a detached
//! series that is not rendered (so hostile label values cannot grow memory).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Label sets per labelled family at most.
pub const MAX_SERIES: usize = 1000;
const PREFIX: &str = "sesshost_";

fn add_f64(a: &AtomicU64, v: f64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some((f64::from_bits(bits) + v).to_bits())
    });
}

/// A number in the text format (`+Inf`, `-Inf`, `NaN` spelled out).
fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Escapes a label value per the text format (`\\`, `\"`, `\n`).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn label_str(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label_value(v)))
        .collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{}\"", escape_label_value(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn add(&self, v: f64) {
        add_f64(&self.0, v);
    }
    pub fn inc(&self) {
        self.add(1.0);
    }
    pub fn dec(&self) {
        self.add(-1.0);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted into fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Per-bucket (not cumulative) counts; the last is `+Inf`.
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (sorted, deduplicated; non-finite
    /// bounds dropped; `+Inf` is implicit).
    pub fn new(bounds: &[f64]) -> Histogram {
        let mut b: Vec<f64> = bounds.iter().copied().filter(|v| v.is_finite()).collect();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let counts = (0..=b.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            bounds: b,
            counts,
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    /// Records one value (NaN is ignored).
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&self.sum, v);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }

    /// The upper bounds (without the implicit `+Inf`).
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Per-bucket (not cumulative) counts, the last one `+Inf`.
    pub fn bucket_counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    fn render_series(&self, out: &mut String, name: &str, names: &[&str], values: &[String]) {
        let mut cum = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or("+Inf".to_string(), |b| fmt_f64(*b));
            let labels = label_str(names, values, Some(("le", &le)));
            let _ = writeln!(out, "{PREFIX}{name}_bucket{labels} {cum}");
        }
        let labels = label_str(names, values, None);
        let _ = writeln!(out, "{PREFIX}{name}_sum{labels} {}", fmt_f64(self.sum()));
        let _ = writeln!(out, "{PREFIX}{name}_count{labels} {}", self.count());
    }
}

/// A family of series of one kind, keyed by label values.
#[derive(Debug)]
pub struct Family<T> {
    labels: &'static [&'static str],
    make: fn() -> T,
    series: Mutex<BTreeMap<Vec<String>, Arc<T>>>,
}

impl<T> Family<T> {
    fn new(labels: &'static [&'static str], make: fn() -> T) -> Family<T> {
        Family {
            labels,
            make,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// The series of these label values (missing values are empty, extra
    /// ones ignored). Past [`MAX_SERIES`] a detached series is returned.
    pub fn with_labels(&self, values: &[&str]) -> Arc<T> {
        let key: Vec<String> = (0..self.labels.len())
            .map(|i| values.get(i).copied().unwrap_or("").to_string())
            .collect();
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(&key) {
            return s.clone();
        }
        let s = Arc::new((self.make)());
        if map.len() < MAX_SERIES {
            map.insert(key, s.clone());
        }
        s
    }

    /// Drops every series (for gauges set afresh at each scrape).
    pub fn reset(&self) {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn snapshot(&self) -> Vec<(Vec<String>, Arc<T>)> {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

pub type CounterVec = Family<Counter>;
pub type GaugeVec = Family<Gauge>;

impl CounterVec {
    pub fn counter(labels: &'static [&'static str]) -> CounterVec {
        Family::new(labels, Counter::default)
    }
    pub fn inc(&self, values: &[&str]) {
        self.with_labels(values).inc();
    }
    pub fn inc_by(&self, values: &[&str], n: u64) {
        self.with_labels(values).inc_by(n);
    }
}

impl GaugeVec {
    pub fn gauge(labels: &'static [&'static str]) -> GaugeVec {
        Family::new(labels, Gauge::default)
    }
    pub fn set(&self, values: &[&str], v: f64) {
        self.with_labels(values).set(v);
    }
}

/// Labelled histograms sharing one set of buckets.
#[derive(Debug)]
pub struct HistogramVec {
    bounds: Vec<f64>,
    series: Mutex<BTreeMap<Vec<String>, Arc<Histogram>>>,
    labels: &'static [&'static str],
}

impl HistogramVec {
    pub fn new(labels: &'static [&'static str], bounds: &[f64]) -> HistogramVec {
        HistogramVec {
            bounds: bounds.to_vec(),
            series: Mutex::new(BTreeMap::new()),
            labels,
        }
    }

    /// The histogram of these label values (see [`Family::with_labels`]).
    pub fn with_labels(&self, values: &[&str]) -> Arc<Histogram> {
        let key: Vec<String> = (0..self.labels.len())
            .map(|i| values.get(i).copied().unwrap_or("").to_string())
            .collect();
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(&key) {
            return s.clone();
        }
        let s = Arc::new(Histogram::new(&self.bounds));
        if map.len() < MAX_SERIES {
            map.insert(key, s.clone());
        }
        s
    }

    pub fn observe(&self, values: &[&str], v: f64) {
        self.with_labels(values).observe(v);
    }
}

/// Seconds buckets for lease acquisition: 5 ms .. 30 s.
pub const ACQUIRE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Seconds buckets for session lifetimes: 1 s .. 1 day.
pub const LIFETIME_BUCKETS: &[f64] = &[
    1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];
/// Seconds buckets for plugin calls: 1 ms .. 5 s.
pub const PLUGIN_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
/// Seconds buckets for HTTP requests: 1 ms .. 10 s.
pub const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Sessions by `state` (set at scrape time by the caller: `reset` then `set`).
    pub sessions: GaugeVec,
    pub created_total: Counter,
    pub expired_total: Counter,
    pub deleted_total: Counter,
    pub lifetime_seconds: Histogram,
    pub acquire_seconds: Histogram,
    pub queue_length: Gauge,
    pub pool_size: Gauge,
    pub pool_busy: Gauge,
    pub live_browsers: Gauge,
    /// `direction` = `client_to_browser` | `browser_to_client`.
    pub cdp_proxy_bytes_total: CounterVec,
    /// `plugin`, `call`.
    pub plugin_call_seconds: HistogramVec,
    /// `plugin`, `call`.
    pub plugin_failures_total: CounterVec,
    /// `tier` = `local` | `durable`, `result` = `hit` | `miss`.
    pub tier_requests_total: CounterVec,
    /// `route`, `status`.
    pub http_requests_total: CounterVec,
    /// `route`.
    pub http_request_seconds: HistogramVec,
    pub auth_failures_total: Counter,
    pub rate_limited_total: Counter,
    /// `--cluster`: requests sent on to the host holding their session.
    pub cluster_forwarded_total: Counter,
    /// `--cluster`: sessions taken over from a host judged dead.
    pub cluster_takeovers_total: Counter,
    /// `--cluster`: commits by `result` = `ok` | `fenced` | `error`.
    pub cluster_commits_total: CounterVec,
    /// `--cluster`: collections of the bucket run by this host (the holder
    /// of `cluster/gc`) by `result` = `ok` | `stopped` | `error`.
    pub cluster_gc_runs_total: CounterVec,
    /// `--cluster`: chunks this host's collections deleted from the bucket.
    pub cluster_gc_chunks_deleted_total: Counter,
    /// Calls to the bucket (the durable tier, or the cluster's bucket), by
    /// kind; set once at start when there is one.
    pub bucket_calls:
        std::sync::OnceLock<std::sync::Arc<sesshost_store::backend::counting::CallCounts>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            sessions: GaugeVec::gauge(&["state"]),
            created_total: Counter::default(),
            expired_total: Counter::default(),
            deleted_total: Counter::default(),
            lifetime_seconds: Histogram::new(LIFETIME_BUCKETS),
            acquire_seconds: Histogram::new(ACQUIRE_BUCKETS),
            queue_length: Gauge::default(),
            pool_size: Gauge::default(),
            pool_busy: Gauge::default(),
            live_browsers: Gauge::default(),
            cdp_proxy_bytes_total: CounterVec::counter(&["direction"]),
            plugin_call_seconds: HistogramVec::new(&["plugin", "call"], PLUGIN_BUCKETS),
            plugin_failures_total: CounterVec::counter(&["plugin", "call"]),
            tier_requests_total: CounterVec::counter(&["tier", "result"]),
            http_requests_total: CounterVec::counter(&["route", "status"]),
            http_request_seconds: HistogramVec::new(&["route"], HTTP_BUCKETS),
            auth_failures_total: Counter::default(),
            rate_limited_total: Counter::default(),
            cluster_forwarded_total: Counter::default(),
            cluster_takeovers_total: Counter::default(),
            cluster_commits_total: CounterVec::counter(&["result"]),
            cluster_gc_runs_total: CounterVec::counter(&["result"]),
            cluster_gc_chunks_deleted_total: Counter::default(),
            bucket_calls: std::sync::OnceLock::new(),
        }
    }

    /// Everything in the text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let counter = |o: &mut String, name: &str, help: &str, c: &Counter| {
            header(o, name, help, "counter");
            let _ = writeln!(o, "{PREFIX}{name} {}", c.get());
        };
        let gauge = |o: &mut String, name: &str, help: &str, g: &Gauge| {
            header(o, name, help, "gauge");
            let _ = writeln!(o, "{PREFIX}{name} {}", fmt_f64(g.get()));
        };
        let hist = |o: &mut String, name: &str, help: &str, h: &Histogram| {
            header(o, name, help, "histogram");
            h.render_series(o, name, &[], &[]);
        };
        let counter_vec = |o: &mut String, name: &str, help: &str, v: &CounterVec| {
            header(o, name, help, "counter");
            for (vals, c) in v.snapshot() {
                let _ = writeln!(
                    o,
                    "{PREFIX}{name}{} {}",
                    label_str(v.labels, &vals, None),
                    c.get()
                );
            }
        };
        let hist_vec = |o: &mut String, name: &str, help: &str, v: &HistogramVec| {
            header(o, name, help, "histogram");
            let snap: Vec<_> = {
                let map = v.series.lock().unwrap_or_else(|p| p.into_inner());
                map.iter().map(|(k, h)| (k.clone(), h.clone())).collect()
            };
            for (vals, h) in snap {
                h.render_series(o, name, v.labels, &vals);
            }
        };
        header(&mut o, "sessions", "Sessions by state.", "gauge");
        for (vals, g) in self.sessions.snapshot() {
            let _ = writeln!(
                o,
                "{PREFIX}sessions{} {}",
                label_str(self.sessions.labels, &vals, None),
                fmt_f64(g.get())
            );
        }
        counter(
            &mut o,
            "created_total",
            "Sessions created.",
            &self.created_total,
        );
        counter(
            &mut o,
            "expired_total",
            "Sessions removed on expiry.",
            &self.expired_total,
        );
        counter(
            &mut o,
            "deleted_total",
            "Sessions deleted by request.",
            &self.deleted_total,
        );
        hist(
            &mut o,
            "lifetime_seconds",
            "Session lifetime at removal, seconds.",
            &self.lifetime_seconds,
        );
        hist(
            &mut o,
            "acquire_seconds",
            "Time to acquire a leased browser, seconds.",
            &self.acquire_seconds,
        );
        gauge(
            &mut o,
            "queue_length",
            "Lease requests waiting for a browser.",
            &self.queue_length,
        );
        gauge(
            &mut o,
            "pool_size",
            "Warm browsers in the pool.",
            &self.pool_size,
        );
        gauge(
            &mut o,
            "pool_busy",
            "Pool browsers in use.",
            &self.pool_busy,
        );
        gauge(
            &mut o,
            "live_browsers",
            "Browsers running.",
            &self.live_browsers,
        );
        counter_vec(
            &mut o,
            "cdp_proxy_bytes_total",
            "Bytes relayed by the CDP proxy.",
            &self.cdp_proxy_bytes_total,
        );
        hist_vec(
            &mut o,
            "plugin_call_seconds",
            "Plugin call duration, seconds.",
            &self.plugin_call_seconds,
        );
        counter_vec(
            &mut o,
            "plugin_failures_total",
            "Failed plugin calls.",
            &self.plugin_failures_total,
        );
        counter_vec(
            &mut o,
            "tier_requests_total",
            "Store tier reads by tier and result.",
            &self.tier_requests_total,
        );
        counter_vec(
            &mut o,
            "http_requests_total",
            "HTTP requests by route and status.",
            &self.http_requests_total,
        );
        hist_vec(
            &mut o,
            "http_request_seconds",
            "HTTP request duration by route, seconds.",
            &self.http_request_seconds,
        );
        counter(
            &mut o,
            "auth_failures_total",
            "Requests refused for a missing or bad API key.",
            &self.auth_failures_total,
        );
        counter(
            &mut o,
            "rate_limited_total",
            "Requests refused by the rate limiter.",
            &self.rate_limited_total,
        );
        counter(
            &mut o,
            "cluster_forwarded_total",
            "Requests forwarded to the host that holds their session (--cluster).",
            &self.cluster_forwarded_total,
        );
        counter(
            &mut o,
            "cluster_takeovers_total",
            "Sessions taken over from a host judged dead (--cluster).",
            &self.cluster_takeovers_total,
        );
        counter_vec(
            &mut o,
            "cluster_commits_total",
            "Commits to the cluster's bucket by result: ok, fenced (a newer epoch owns the session), error (--cluster).",
            &self.cluster_commits_total,
        );
        counter_vec(
            &mut o,
            "cluster_gc_runs_total",
            "Collections of the bucket this host ran as holder of the GC lease, by result: ok, stopped (lost the lease or shutting down), error (--cluster).",
            &self.cluster_gc_runs_total,
        );
        counter(
            &mut o,
            "cluster_gc_chunks_deleted_total",
            "Chunks this host's collections deleted from the bucket (--cluster).",
            &self.cluster_gc_chunks_deleted_total,
        );
        if let Some(calls) = self.bucket_calls.get() {
            header(
                &mut o,
                "bucket_calls_total",
                "Calls to the bucket (durable tier or --cluster) by op; over the s3 plugin each is one S3 request, except list, which pages by 1000 keys.",
                "counter",
            );
            for (op, n) in calls.snapshot() {
                let _ = writeln!(o, "{PREFIX}bucket_calls_total{{op=\"{op}\"}} {n}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Parses one sample line: (name, labels, value).
    fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.find('{') {
            None => (series.to_string(), vec![]),
            Some(i) => {
                assert!(series.ends_with('}'), "{line}");
                let body = &series[i + 1..series.len() - 1];
                let mut labels = vec![];
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let k: String = chars.by_ref().take_while(|&c| c != '=').collect();
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut v = String::new();
                    loop {
                        match chars.next().expect("closed quote") {
                            '\\' => match chars.next() {
                                Some('n') => v.push('\n'),
                                Some(c @ ('\\' | '"')) => v.push(c),
                                other => panic!("bad escape {other:?} in {line}"),
                            },
                            '"' => break,
                            '\n' => panic!("raw newline"),
                            c => v.push(c),
                        }
                    }
                    labels.push((k, v));
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (series[..i].to_string(), labels)
            }
        };
        (name, labels, value)
    }

    #[test]
    fn counters_gauges_histograms() {
        let h = Histogram::new(&[1.0, 0.5, f64::NAN, 1.0]);
        h.observe(0.1);
        h.observe(0.7);
        h.observe(5.0);
        h.observe(f64::NAN);
        assert_eq!(h.count(), 3);
        assert!((h.sum() - 5.8).abs() < 1e-9);
        let g = Gauge::default();
        g.inc();
        g.inc();
        g.dec();
        g.add(0.5);
        assert_eq!(g.get(), 1.5);
        let v = CounterVec::counter(&["a"]);
        for i in 0..MAX_SERIES + 50 {
            v.inc(&[&i.to_string()]);
        }
        assert_eq!(v.snapshot().len(), MAX_SERIES);
        v.inc(&[]); // missing label value: empty, no panic
        v.inc(&["x", "extra"]);
    }

    #[test]
    fn bucket_calls_render_once_set() {
        let m = Metrics::new();
        let backend = sesshost_store::backend::counting::Counting::new(
            sesshost_store::backend::memory::MemoryBackend::new(),
        );
        let _ = m.bucket_calls.set(backend.counts());
        use sesshost_store::backend::Backend;
        let _ = backend.get("x");
        let _ = backend.get("y");
        let text = m.render();
        assert!(
            text.contains("# TYPE sesshost_bucket_calls_total counter"),
            "{text}"
        );
        assert!(
            text.contains("sesshost_bucket_calls_total{op=\"get\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sesshost_bucket_calls_total{op=\"put_if\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn render_is_valid_text_format() {
        let m = Metrics::new();
        m.created_total.inc_by(3);
        m.sessions.set(&["live"], 2.0);
        m.sessions.set(&["stored"], 7.0);
        m.acquire_seconds.observe(0.003);
        m.acquire_seconds.observe(0.2);
        m.acquire_seconds.observe(100.0);
        m.cdp_proxy_bytes_total.inc_by(&["client_to_browser"], 10);
        m.plugin_call_seconds
            .observe(&["we\"ird\\name\n", "capture"], 0.02);
        m.http_requests_total.inc(&["/v1/sessions", "200"]);
        m.http_request_seconds.observe(&["/v1/sessions"], 0.004);
        let text = m.render();

        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = vec![];
        for line in text.lines() {
            assert!(!line.is_empty());
            if let Some(rest) = line.strip_prefix("# HELP ") {
                assert!(rest.starts_with(PREFIX), "{line}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "dup {name}"
                );
            } else {
                let (name, labels, value) = parse_sample(line);
                assert!(name.starts_with(PREFIX), "{line}");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                    "{line}"
                );
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|b| types.get(*b).is_some_and(|k| k == "histogram"))
                    })
                    .unwrap_or(name.as_str())
                    .to_string();
                assert!(types.contains_key(&base), "sample before its TYPE: {line}");
                samples.push((name, labels, value));
            }
        }
        // 18 + the five cluster families; bucket_calls_total only once set.
        assert_eq!(types.len(), 23, "{types:?}");
        assert!(!types.contains_key("sesshost_bucket_calls_total"));
        let get = |n: &str, l: &[(&str, &str)]| {
            samples
                .iter()
                .find(|(name, labels, _)| {
                    name == n
                        && labels.len() == l.len()
                        && l.iter()
                            .all(|(k, v)| labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|s| s.2)
        };
        assert_eq!(get("sesshost_created_total", &[]), Some(3.0));
        assert_eq!(get("sesshost_sessions", &[("state", "stored")]), Some(7.0));
        // Cumulative buckets ending in +Inf == _count.
        let buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|(n, _, _)| n == "sesshost_acquire_seconds_bucket")
            .map(|(_, l, v)| {
                let le = &l.iter().find(|(k, _)| k == "le").unwrap().1;
                (
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    },
                    *v,
                )
            })
            .collect();
        assert_eq!(buckets.len(), ACQUIRE_BUCKETS.len() + 1);
        assert_eq!(buckets.first().unwrap(), &(0.005, 1.0));
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 3.0));
        assert_eq!(get("sesshost_acquire_seconds_count", &[]), Some(3.0));
        assert!((get("sesshost_acquire_seconds_sum", &[]).unwrap() - 100.203).abs() < 1e-9);
        // Escaped label values round-trip.
        assert_eq!(
            get(
                "sesshost_plugin_call_seconds_count",
                &[("plugin", "we\"ird\\name\n"), ("call", "capture")]
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "sesshost_http_requests_total",
                &[("route", "/v1/sessions"), ("status", "200")]
            ),
            Some(1.0)
        );
    }
}
