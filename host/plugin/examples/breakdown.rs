//! Where the time of sanitising 10,000 cookies goes: transfer only
//! (hostile pass-through) vs redact. `cargo run --release --example breakdown`.

use std::path::PathBuf;
use std::time::Instant;

use sessbundle::state::{Cookie, SessionState};
use sesshost_plugin::{Grants, Pooling, Runtime, RuntimeConfig, SanitizeContext};

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/target/wasm32-wasip2/release");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut st = SessionState::new("bench", 0);
    st.cookies = (0..10_000)
        .map(|i| Cookie {
            name: if i % 2 == 0 {
                format!("session_{i}")
            } else {
                format!("pref_{i}")
            },
            value: format!("value-{i}-0123456789abcdef"),
            domain: format!(".site{}.example", i % 97),
            path: "/".into(),
            expires: Some(1.9e9),
            secure: true,
            ..Default::default()
        })
        .collect();
    let ctx = SanitizeContext::default();
    let t = Instant::now();
    for _ in 0..30 {
        std::hint::black_box(st.clone());
    }
    println!(
        "host-side clone of the state (reference for conversion cost): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / 30.0
    );
    for (name, pooling) in [
        ("hostile", Pooling::Auto),
        ("redact", Pooling::Auto),
        ("hostile", Pooling::Off),
        ("redact", Pooling::Off),
    ] {
        let rt = Runtime::new(RuntimeConfig {
            pooling,
            ..Default::default()
        })
        .unwrap();
        let p = rt
            .load_sanitizer(&dir.join(format!("{name}.wasm")), &Grants::default())
            .unwrap();
        let mut v: Vec<f64> = tokio.block_on(async {
            let mut v = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                p.sanitize(&st, &ctx).await.unwrap();
                v.push(t.elapsed().as_secs_f64() * 1e3);
            }
            v
        });
        v.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.2} ms, min {:.2} ms",
            v[v.len() / 2],
            v[0]
        );
    }
}
