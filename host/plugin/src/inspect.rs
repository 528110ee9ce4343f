//! `host plugin inspect P.wasm [--json]`: what a plugin is (world,
//! contract version), what it exports, and which capabilities it imports,
//! without running it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::manifest;
use crate::runtime::{Runtime, versions_of};

/// A description of a plugin file.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// File name, e.g. `s3.wasm`.
    pub name: String,
    pub path: PathBuf,
    /// Hex BLAKE3 of the file (what a manifest pins).
    pub blake3: String,
    pub size_bytes: u64,
    /// `sanitizer`, `storage-backend`, `cleanup-strategy`; `None` when it
    /// exports no sesshost:plugin interface.
    pub world: Option<String>,
    /// The contract version it was built against, e.g. `0.1.0`.
    pub version: Option<String>,
    /// Whether this host can load it (world known, version supported, all
    /// imports provided).
    pub loadable: bool,
    /// Why it cannot be loaded, if not.
    pub problem: Option<String>,
    /// Exported names (interfaces and functions).
    pub exports: Vec<String>,
    /// Imported interfaces, e.g. `wasi:http/outgoing-handler@0.2.4`.
    pub imports: Vec<String>,
    /// The imports in plain words, e.g. `network (wasi:http)`. What the
    /// plugin *can ask for*; the operator still has to grant it.
    pub capabilities: Vec<String>,
    /// The manifest beside it, if any.
    pub manifest: Option<PathBuf>,
}

/// The (world, version) a component implements, from its exports.
pub(crate) fn kind_of(engine: &Engine, c: &Component) -> Option<(String, String)> {
    for (name, _) in c.component_type().exports(engine) {
        let Some(rest) = name.strip_prefix("sesshost:plugin/") else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, "unversioned"));
        let world = match iface {
            "sanitize" => "sanitizer",
            "storage" => "storage-backend",
            "cleanup" => "cleanup-strategy",
            other => other,
        };
        return Some((world.to_string(), version.to_string()));
    }
    None
}

/// Extracts the import named in a linker error, if that is what it is.
pub(crate) fn import_from_error(e: &str) -> Option<String> {
    let i = e.find("import")?;
    let rest = &e[i..];
    let a = rest.find('`')? + 1;
    let b = rest[a..].find('`')?;
    Some(rest[a..a + b].to_string())
}

fn capability(import: &str) -> Option<&'static str> {
    let iface = import.split('@').next().unwrap_or(import);
    Some(match iface {
        "wasi:http/outgoing-handler" => "network: outgoing HTTP (wasi:http; needs --allow-host)",
        i if i.starts_with("wasi:sockets/") => "network: sockets (always denied by this host)",
        i if i.starts_with("wasi:filesystem/") => "filesystem (needs --allow-dir)",
        "wasi:cli/environment" => "environment variables and arguments (only those passed)",
        "wasi:cli/stdin" => "stdin (empty)",
        "wasi:cli/stdout" | "wasi:cli/stderr" => "stdout/stderr (to the host log)",
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => "clocks",
        i if i.starts_with("wasi:random/") => "random numbers",
        _ => return None,
    })
}

pub(crate) fn describe(
    rt: &Runtime,
    path: &Path,
    name: &str,
    bytes: &[u8],
    hash: &blake3::Hash,
    c: &Component,
) -> PluginInfo {
    let engine = &rt.inner.engine;
    let ty = c.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut exports = Vec::new();
    for (n, item) in ty.exports(engine) {
        exports.push(n.to_string());
        if let wasmtime::component::types::ComponentItem::ComponentInstance(inst) = item.ty {
            for (f, _) in inst.exports(engine) {
                exports.push(format!("{n}#{f}"));
            }
        }
    }
    let mut capabilities: Vec<String> = imports
        .iter()
        .filter_map(|i| capability(i))
        .map(str::to_string)
        .collect();
    capabilities.sort();
    capabilities.dedup();
    let kind = kind_of(engine, c);
    let problem = match &kind {
        None => Some("it exports no sesshost:plugin interface".to_string()),
        Some((w, v)) if !versions_of(w).contains(&v.as_str()) => Some(format!(
            "contract version {v} is not supported (this host supports {} for {w})",
            versions_of(w).join(", ")
        )),
        Some(_) => match rt.inner.linker.instantiate_pre(c) {
            Ok(_) => None,
            Err(e) => {
                let e = format!("{e:#}");
                Some(match import_from_error(&e) {
                    Some(i) => format!("it imports {i}, which this host does not provide"),
                    None => e,
                })
            }
        },
    };
    let mpath = manifest::manifest_path(path);
    PluginInfo {
        name: name.to_string(),
        path: path.to_path_buf(),
        blake3: hash.to_hex().to_string(),
        size_bytes: bytes.len() as u64,
        world: kind.as_ref().map(|k| k.0.clone()),
        version: kind.map(|k| k.1),
        loadable: problem.is_none(),
        problem,
        exports,
        imports,
        capabilities,
        manifest: mpath.exists().then_some(mpath),
    }
}

impl std::fmt::Display for PluginInfo {
    /// The human form of `host plugin inspect`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} ({} bytes, blake3 {})",
            self.name, self.size_bytes, self.blake3
        )?;
        match (&self.world, &self.version) {
            (Some(w), Some(v)) => writeln!(f, "  world:   {w} (sesshost:plugin@{v})")?,
            _ => writeln!(f, "  world:   none")?,
        }
        match &self.problem {
            None => writeln!(f, "  status:  loadable")?,
            Some(p) => writeln!(f, "  status:  NOT loadable: {p}")?,
        }
        writeln!(f, "  exports:")?;
        for e in &self.exports {
            writeln!(f, "    {e}")?;
        }
        writeln!(f, "  capabilities it can ask for:")?;
        if self.capabilities.is_empty() {
            writeln!(f, "    none")?;
        }
        for c in &self.capabilities {
            writeln!(f, "    {c}")?;
        }
        if let Some(m) = &self.manifest {
            writeln!(f, "  manifest: {}", m.display())?;
        }
        Ok(())
    }
}
