//! `host seal`/`host unseal` against `tar | zstd -1 | age` on a session-like
//! state, and the peak RSS of both at two sizes (unseal's must not grow with
//! them; seal holds the input file).
//! Run: `cargo bench -p sesshost-cli --bench seal_pipeline` (needs age,
//! age-keygen, zstd and tar on PATH; installed by .ci/setup). It prints wall
//! times and the machine CPU seconds of each command (run it idle).

#[path = "shared/machine.rs"]
mod machine;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const HOST: &str = env!("CARGO_BIN_EXE_host");

fn sh(cmd: &str, dir: &Path) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "failed: {cmd}");
}

/// Median wall time and median machine CPU time of 3 runs of `cmd`.
fn time3(cmd: &str, dir: &Path) -> (f64, f64) {
    let mut t = Vec::new();
    let mut c = Vec::new();
    for _ in 0..3 {
        let (s, b) = (Instant::now(), machine::busy().0);
        sh(cmd, dir);
        t.push(s.elapsed().as_secs_f64());
        c.push(machine::busy().0 - b);
    }
    t.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    (t[1], c[1])
}

/// Peak RSS (KiB) of one run of `host` with `args`, by GNU time (`%M`, the
/// child's ru_maxrss).
fn peak_rss_kib(args: &str, dir: &Path) -> u64 {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "/usr/bin/time -f %M {HOST} {args} 2>&1 >/dev/null | tail -1"
        ))
        .current_dir(dir)
        .output()
        .expect("run /usr/bin/time");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or(0) // 0: no GNU time (apt-get install time)
}

fn run(dir: &Path, mb: usize, recipient: &str) -> (f64, f64, f64, f64, u64) {
    let state = sessbundle::sample::session_like(42, 400, mb * 1_000_000 * 7 / 10);
    let json = serde_json::to_vec(&state).expect("json");
    let bytes = json.len() as f64;
    std::fs::write(dir.join("STATE.json"), &json).expect("write state");
    drop((state, json));
    let mbs = |t: f64| bytes / t / 1e6;
    let (seal, seal_cpu) = time3(
        &format!("{HOST} seal STATE.json -o X.sessbundle --key-file K --force"),
        dir,
    );
    let (unseal, unseal_cpu) = time3(
        &format!("{HOST} unseal X.sessbundle -o OUT.json --key-file K --force"),
        dir,
    );
    let (pseal, pseal_cpu) = time3(
        &format!("tar -c STATE.json | zstd -1 -q | age -r {recipient} > Y.age"),
        dir,
    );
    let (punseal, punseal_cpu) = time3(
        "mkdir -p x && age -d -i ID Y.age | zstd -d -q | tar -x -C x",
        dir,
    );
    let rss = peak_rss_kib("unseal X.sessbundle -o OUT.json --key-file K --force", dir);
    let seal_rss = peak_rss_kib("seal STATE.json -o X.sessbundle --key-file K --force", dir);
    println!(
        "{:>4.0} MB state: seal {:>6.1} MB/s vs pipeline {:>6.1} MB/s ({:.2}x) | unseal {:>6.1} MB/s vs pipeline {:>6.1} MB/s ({:.2}x) | peak RSS seal {} MiB, unseal {} MiB",
        bytes / 1e6,
        mbs(seal),
        mbs(pseal),
        pseal / seal,
        mbs(unseal),
        mbs(punseal),
        punseal / unseal,
        seal_rss / 1024,
        rss / 1024
    );
    // On a machine this small both sides are CPU-bound: the CPU each
    // spends (all its processes and the kernel's part) is what a faster
    // wall time has to come out of.
    println!(
        "{:>4.0} MB state: CPU s, whole machine: seal {:.2} vs pipeline {:.2} | unseal {:.2} vs pipeline {:.2}",
        bytes / 1e6,
        seal_cpu,
        pseal_cpu,
        unseal_cpu,
        punseal_cpu
    );
    (mbs(seal), mbs(pseal), mbs(unseal), mbs(punseal), rss)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    sh(&format!("{HOST} keygen --symmetric -o K"), d);
    sh("age-keygen -o ID 2>/dev/null", d);
    let id = std::fs::read_to_string(d.join("ID")).expect("age identity");
    let recipient = id
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen prints the public key")
        .to_string();
    for mb in [100, 25] {
        run(d, mb, &recipient);
    }
}
