//! CPU time from /proc, shared by the benches: on a 2-core machine wall
//! times move with whatever else runs, the CPU a phase costs does not.

/// The machine's CPU seconds so far, from /proc/stat's `cpu` line (user
/// nice system idle iowait irq softirq steal …, in 1/100 s), and the
/// cores it has.
fn cpu_line() -> (Vec<f64>, usize) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let f = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse::<f64>().unwrap_or(0.0) / 100.0)
        .collect();
    (f, cores.max(1))
}

/// CPU seconds the whole machine spent busy so far (every process and the
/// kernel: user, nice, system, irq, softirq, steal), and the cores it has:
/// a phase cannot take less wall time than its busy seconds over the cores.
pub fn busy() -> (f64, usize) {
    let (f, cores) = cpu_line();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7), cores)
}

/// CPU seconds the hypervisor took from this VM so far (steal, all
/// cores): on a shared VM the tail of a latency figure follows it.
#[allow(dead_code)] // not every bench uses it
pub fn steal() -> f64 {
    cpu_line().0.get(7).copied().unwrap_or(0.0)
}

/// CPU seconds process `pid` used itself (all threads, not its children).
#[allow(dead_code)] // not every bench uses it
pub fn process(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<f64> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime: fields 14 and 15 (12 and 13 after the name).
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}
