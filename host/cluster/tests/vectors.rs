//! format-spec/vectors/cluster: each record parses, writes back to the
//! same JSON value, and an unknown field is refused (STORE.md, cluster
//! objects).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sesshost_cluster::gclease::GcLeaseRecord;
use sesshost_cluster::records::{ClaimRecord, HeadRecord, HostRecord};

fn vector(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../format-spec/vectors/cluster")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let text = vector(name);
    let rec: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let back: serde_json::Value = serde_json::to_value(&rec).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, want, "{name} does not write back the same");
    let mut extra = want.clone();
    extra["surprise"] = serde_json::json!(1);
    assert!(
        serde_json::from_value::<T>(extra).is_err(),
        "{name}: an unknown field was accepted"
    );
    rec
}

#[test]
fn cluster_vectors_parse_and_round_trip() {
    let h: HostRecord = round_trip("host.json");
    assert_eq!(h.renewals, 42);
    let c: ClaimRecord = round_trip("claim.json");
    assert_eq!((c.holder.as_deref(), c.epoch), (Some("host-7f3a"), 3));
    let r: ClaimRecord = round_trip("claim-released.json");
    assert_eq!(r.holder, None);
    let g: GcLeaseRecord = round_trip("gc.json");
    assert_eq!((g.holder.as_deref(), g.epoch), (Some("host-7f3a"), 4));
    let hd: HeadRecord = round_trip("head.json");
    assert_eq!(
        (hd.epoch, hd.seq, hd.prev.as_deref()),
        (3, 17, Some("snap-16-2-9d8c7b6a"))
    );
}
