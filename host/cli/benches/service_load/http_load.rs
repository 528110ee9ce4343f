//! A keep-alive HTTP/1.1 load generator for the metadata routes: plain
//! threads and TcpStreams, no client library between the figure and the
//! wire.
//!
//! Open loop: each connection sends on a fixed schedule and a request's
//! latency is counted from the time it was *due*, not from when it was
//! sent, so a stalled server cannot hide its queue (no coordinated
//! omission).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One keep-alive connection that sends the same GET again and again.
struct Conn {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl Conn {
    fn open(addr: &str, path: &str, key: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect to host run");
        s.set_nodelay(true).expect("TCP_NODELAY");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n")
                .into_bytes();
        Conn {
            reader: BufReader::new(s),
            request,
        }
    }

    /// Send once and read the whole response; the status code.
    fn get(&mut self) -> u16 {
        self.reader
            .get_mut()
            .write_all(&self.request)
            .expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).expect("body");
        status
    }
}

type Load = std::thread::JoinHandle<(Vec<f64>, usize)>;

/// Every thread's latencies and non-200 count, together.
fn join(handles: Vec<Load>) -> (Vec<f64>, usize) {
    let mut latencies_ms = Vec::new();
    let mut non_200 = 0;
    for h in handles {
        let (l, b) = h.join().expect("load thread");
        latencies_ms.extend(l);
        non_200 += b;
    }
    (latencies_ms, non_200)
}

/// What one load step saw.
pub struct Step {
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub latencies_ms: Vec<f64>,
    pub non_200: usize,
}

/// `rate` requests per second over `conns` connections for `secs`.
pub fn open_loop(addr: &str, path: &str, key: &str, rate: f64, conns: usize, secs: f64) -> Step {
    let per_conn = rate / conns as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let n = (per_conn * secs) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let handles: Vec<Load> = (0..conns)
        .map(|i| {
            let (addr, path, key) = (addr.to_string(), path.to_string(), key.to_string());
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr, &path, &key);
                // Stagger the connections across one interval.
                let offset = interval.mul_f64(i as f64 / conns as f64);
                let mut lat = Vec::with_capacity(n);
                let mut bad = 0;
                for k in 0..n {
                    let due = start + offset + interval * k as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if c.get() != 200 {
                        bad += 1;
                    }
                    lat.push(due.elapsed().as_secs_f64() * 1e3);
                }
                (lat, bad)
            })
        })
        .collect();
    let (latencies_ms, non_200) = join(handles);
    let elapsed = start.elapsed().as_secs_f64();
    Step {
        target_rate: rate,
        achieved_rate: latencies_ms.len() as f64 / elapsed,
        latencies_ms,
        non_200,
    }
}

/// As fast as `conns` connections go for `secs` (each sends its next
/// request when the last answer is in): the highest rate the host holds.
pub fn closed_loop(addr: &str, path: &str, key: &str, conns: usize, secs: f64) -> Step {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<Load> = (0..conns)
        .map(|_| {
            let (addr, path, key) = (addr.to_string(), path.to_string(), key.to_string());
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr, &path, &key);
                let mut lat = Vec::new();
                let mut bad = 0;
                while Instant::now() < end {
                    let t = Instant::now();
                    if c.get() != 200 {
                        bad += 1;
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                (lat, bad)
            })
        })
        .collect();
    let (latencies_ms, non_200) = join(handles);
    let elapsed = start.elapsed().as_secs_f64();
    Step {
        target_rate: f64::INFINITY,
        achieved_rate: latencies_ms.len() as f64 / elapsed,
        latencies_ms,
        non_200,
    }
}
