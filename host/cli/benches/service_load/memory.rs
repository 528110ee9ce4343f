//! Memory of a process tree: `host run` and every Chromium process it
//! started. PSS (proportional set size, /proc/PID/smaps_rollup) rather
//! than RSS, because Chromium's processes share most of their pages and
//! RSS would count the shared ones once per process.

use std::collections::HashMap;

/// Pids of `root` and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the `(comm)`, which may hold spaces: state ppid ...
        let Some(after) = stat.rsplit(')').next() else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// One `kB` field of a /proc file (`Pss:`, `VmRSS:`), in bytes.
fn field_kb(path: &str, name: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// PSS of `root`'s whole tree, bytes.
pub fn tree_pss(root: u32) -> u64 {
    tree(root)
        .iter()
        .map(|p| field_kb(&format!("/proc/{p}/smaps_rollup"), "Pss:"))
        .sum()
}

/// RSS of `pid` alone, bytes.
pub fn rss(pid: u32) -> u64 {
    field_kb(&format!("/proc/{pid}/status"), "VmRSS:")
}
