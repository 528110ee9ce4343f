//! What lives inside each call's `Store`: the WASI context built from the
//! effective grant, the `wasi:http` allow-list hook, the memory limiter,
//! and plugin stdout/stderr forwarded to `tracing` (debug level, capped).
//! Also the per-call diagnostics the runtime reads after a failure to say
//! *why* it failed.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::config::{Grants, HostGrant, Limits};
use crate::error::{Error, Result};

/// Bytes of plugin stdout+stderr kept per call (4 KiB); the rest is
/// dropped, with one debug line saying so. Enough for a panic message and
/// a few lines of diagnostics; a plugin cannot flood the host's log.
pub(crate) const OUTPUT_CAP: usize = 4096;

/// The `tracing` target of plugin output (debug level only: a plugin may
/// print what it was handed, a cookie or a config secret, so its output
/// never reaches warn/info logs or errors).
pub(crate) const GUEST_TARGET: &str = "sesshost_plugin::guest";

/// Facts gathered during one call, readable after the store is gone.
#[derive(Debug, Default)]
pub(crate) struct Diag {
    /// The plugin tried to grow a memory or table past its cap.
    pub oom: bool,
    /// `host:port` destinations the allow-list refused.
    pub denied: Vec<String>,
    /// Bytes of stdout+stderr the plugin wrote and the host kept (at most
    /// [`OUTPUT_CAP`]); counted, never copied into an error.
    pub output_bytes: usize,
    /// The plugin wrote more than [`OUTPUT_CAP`] (the rest was dropped).
    pub output_capped: bool,
}

pub(crate) type SharedDiag = Arc<Mutex<Diag>>;

fn lock(d: &SharedDiag) -> std::sync::MutexGuard<'_, Diag> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `T` of every `Store<T>`.
#[doc(hidden)]
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: AllowList,
    pub(crate) limiter: Limiter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A per-call recipe for [`HostState`]: resolved once at load, so making a
/// store is cheap (no file I/O except opening granted directories).
#[derive(Clone)]
pub(crate) struct StateRecipe {
    pub plugin: Arc<str>,
    pub grants: Arc<Grants>,
    pub limits: Limits,
}

impl StateRecipe {
    pub(crate) fn build(&self, diag: &SharedDiag) -> Result<HostState> {
        let mut b = WasiCtx::builder();
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        b.stdout(LogStream {
            plugin: self.plugin.clone(),
            stderr: false,
            diag: diag.clone(),
        });
        b.stderr(LogStream {
            plugin: self.plugin.clone(),
            stderr: true,
            diag: diag.clone(),
        });
        for (k, v) in &self.grants.env {
            b.env(k, v);
        }
        for d in &self.grants.dirs {
            let perms = if d.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
                Error::Config(format!(
                    "cannot grant {} to {} as {}: {e}; check that the directory exists",
                    d.host.display(),
                    self.plugin,
                    d.guest
                ))
            })?;
        }
        Ok(HostState {
            wasi: b.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: AllowList {
                plugin: self.plugin.clone(),
                hosts: self.grants.clone(),
                diag: diag.clone(),
            },
            limiter: Limiter {
                memory: self.limits.memory_bytes as usize,
                instances: self.limits.max_instances as usize,
                tables: self.limits.max_tables as usize,
                memories: self.limits.max_memories as usize,
                diag: diag.clone(),
            },
        })
    }
}

/// Memory/table/instance caps; records when a cap was hit.
pub(crate) struct Limiter {
    memory: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    diag: SharedDiag,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            lock(&self.diag).oom = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far past any real
        // plugin and small in bytes.
        if desired > 1_000_000 {
            lock(&self.diag).oom = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Enforces `--allow-host` on every outgoing `wasi:http` request. This is
/// the only enforcement point: `wasi:http` does not go through the socket
/// checks of `wasi:sockets`.
struct AllowList {
    plugin: Arc<str>,
    hosts: Arc<Grants>,
    diag: SharedDiag,
}

fn allowed(hosts: &[HostGrant], host: &str, port: u16) -> bool {
    hosts.iter().any(|g| g.allows(host, port))
}

/// Addresses no plugin may reach through a *name*, whatever the allow-list
/// says: link-local (cloud metadata endpoints) and unspecified. An address
/// allowed literally (`--allow-host 169.254.169.254:80`) is still allowed.
fn forbidden_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

impl WasiHttpHooks for AllowList {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                )>,
            > + Send,
    > {
        let uri = request.uri();
        // `http` keeps the brackets of an IPv6 literal; drop them.
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let shown = HostGrant {
            host: host.clone(),
            port,
        }
        .to_string();
        if !allowed(&self.hosts.hosts, &host, port) {
            tracing::warn!(plugin = %self.plugin, target = %shown, "plugin tried to reach a host that is not allowed");
            lock(&self.diag).denied.push(shown);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let literal = host.parse::<IpAddr>().is_ok();
        let diag = self.diag.clone();
        let plugin = self.plugin.clone();
        Box::new(async move {
            if !literal {
                // Re-check what the name resolves to (DNS rebinding onto a
                // metadata endpoint). The connection resolves again; this
                // narrows, not closes, that window.
                let addrs = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|_| wasmtime_wasi_http::Error::DnsError {
                        rcode: None,
                        info_code: None,
                    })?;
                for a in addrs {
                    if forbidden_target(a.ip()) {
                        tracing::warn!(plugin = %plugin, target = %shown, ip = %a.ip(), "allowed name resolves to a forbidden address");
                        lock(&diag)
                            .denied
                            .push(format!("{shown} (resolves to {})", a.ip()));
                        return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
                    }
                }
            }
            let inner = wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
            Pin::from(inner).await
        })
    }
}

/// Plugin stdout/stderr, line by line, into `tracing` at debug level
/// (target [`GUEST_TARGET`], field `plugin`, message `plugin NAME said:
/// ...` with control characters escaped), at most [`OUTPUT_CAP`] bytes per
/// call; nothing reaches the host's own stdout, a warn/info log or an
/// error.
#[derive(Clone)]
struct LogStream {
    plugin: Arc<str>,
    stderr: bool,
    diag: SharedDiag,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            s: self.clone(),
            buf: Vec::new(),
        })
    }
}

/// Buffers one stream up to a newline. `buf` never exceeds [`OUTPUT_CAP`]:
/// bytes are admitted against the call's shared budget first.
struct LineWriter {
    s: LogStream,
    buf: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = crate::error::untrusted(text.trim_end_matches('\r'));
        let stream = if self.s.stderr { "stderr" } else { "stdout" };
        let plugin = &*self.s.plugin;
        tracing::debug!(target: GUEST_TARGET, plugin = %plugin, stream = %stream, "plugin {plugin} said: {text}");
    }

    /// Admits up to the call's remaining budget of `data` into `buf`.
    fn admit(&mut self, data: &[u8]) {
        let first_overflow = {
            let mut d = lock(&self.s.diag);
            let take = OUTPUT_CAP.saturating_sub(d.output_bytes).min(data.len());
            d.output_bytes += take;
            self.buf.extend_from_slice(&data[..take]);
            let over = take < data.len() && !d.output_capped;
            d.output_capped |= take < data.len();
            over
        };
        self.drain_lines(false);
        if first_overflow {
            let plugin = &*self.s.plugin;
            tracing::debug!(target: GUEST_TARGET, plugin = %plugin, "plugin {plugin} printed more than {OUTPUT_CAP} bytes in this call; the rest was dropped");
        }
    }

    fn drain_lines(&mut self, all: bool) {
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            self.emit(line.strip_suffix(b"\n").unwrap_or(&line));
        }
        if all && !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.emit(&line);
        }
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.admit(data);
        // The whole write "succeeds": a plugin over its budget is not
        // told (it would only retry), its output is just not kept.
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.drain_lines(true);
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.drain_lines(true);
    }
}

/// Takes a snapshot of the diagnostics.
pub(crate) fn take(d: &SharedDiag) -> Diag {
    std::mem::take(&mut *lock(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_not_resolve_to_metadata_or_unspecified_addresses() {
        for bad in [
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "fe80::1",
        ] {
            assert!(forbidden_target(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.5",
            "93.184.216.34",
            "::1",
            "2001:db8::1",
        ] {
            assert!(!forbidden_target(ok.parse().unwrap()), "{ok}");
        }
        let hosts = [
            HostGrant::parse("127.0.0.1:9000").unwrap(),
            HostGrant::parse("[::1]:9000").unwrap(),
        ];
        assert!(allowed(&hosts, "127.0.0.1", 9000));
        assert!(allowed(&hosts, "::1", 9000));
        assert!(!allowed(&hosts, "127.0.0.1", 9001));
        assert!(!allowed(&hosts, "localhost", 9000));
    }
}
