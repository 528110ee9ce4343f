//! Store behaviour on a real directory: dedup, tamper detection, cleanup,
//! history/rollback, locks, names, host key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sessbundle::records::normalize_cookie_order;
use sessbundle::state::*;
use sesshost_store::*;

const T0: i64 = 1_790_000_000_000;

fn rich_state(origins: usize, tag: &str) -> SessionState {
    let mut s = SessionState::new("ignored", 1);
    s.meta.user_agent = Some("UA/1".into());
    s.meta.locale = Some("en-GB".into());
    for i in 0..origins {
        s.cookies.push(Cookie {
            name: format!("sid{i}"),
            value: format!("SECRET-COOKIE-{i}-{tag}"),
            domain: format!(".site{i}.test"),
            path: "/".into(),
            expires: if i % 2 == 0 { Some(2e9) } else { None },
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            partition_key: (i == 1).then(|| PartitionKey {
                top_level_site: "https://top.test".into(),
                has_cross_site_ancestor: true,
            }),
            ..Default::default()
        });
        s.origins.push(OriginState {
            origin: format!("https://site{i}.test"),
            local_storage: (0..50)
                .map(|k| StorageItem {
                    key: format!("k{k}"),
                    value: format!("value {k} of origin {i}"),
                })
                .collect(),
            indexed_db: vec![IdbDatabase {
                name: "db".into(),
                version: 3,
                object_stores: vec![IdbObjectStore {
                    name: "things".into(),
                    key_path: Some(KeyPath::Single("id".into())),
                    records: vec![IdbRecord {
                        key: JsValue::Number(JsNumber(1.0)),
                        value: JsValue::Object(vec![
                            ("id".into(), JsValue::Number(JsNumber(1.0))),
                            ("when".into(), JsValue::Date(JsNumber(1.7e12))),
                            ("raw".into(), JsValue::ArrayBuffer(Bytes(vec![1, 2, 3]))),
                            (
                                "set".into(),
                                JsValue::Set(vec![JsValue::String("a".into())]),
                            ),
                        ]),
                    }],
                    ..Default::default()
                }],
            }],
        });
    }
    s.tabs.push(Tab {
        url: "https://site0.test/wizard".into(),
        title: "Wizard".into(),
        session_storage: vec![OriginStorage {
            origin: "https://site0.test".into(),
            items: vec![StorageItem {
                key: "step".into(),
                value: "3".into(),
            }],
        }],
        ..Default::default()
    });
    s
}

fn home() -> (tempfile::TempDir, Home) {
    let d = tempfile::tempdir().unwrap();
    let h = Home::new(d.path().join("home"));
    (d, h)
}

fn new_session(name: &str) -> NewSession {
    NewSession {
        name: name.into(),
        ..Default::default()
    }
}

/// What `load` must give back for a saved state.
fn expected(mut s: SessionState, info: &SessionInfo) -> SessionState {
    normalize_cookie_order(&mut s);
    s.meta.name = info.name.clone();
    s.meta.created_at = info.created_at;
    s.meta.updated_at = info.updated_at;
    s.meta.last_used_at = info.last_used_at;
    s.meta.expires_at = info.expires_at;
    s.meta.ttl_secs = info.ttl_secs;
    s
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn save_and_load_round_trip_everything() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    let info = st
        .create(
            &NewSession {
                name: "work".into(),
                ttl: Some(Duration::from_secs(3600)),
                user_agent: Some("UA/2".into()),
                viewport: Some(Viewport {
                    width: 1280,
                    height: 720,
                    device_scale_factor: 1.0,
                }),
                locale: Some("fr-FR".into()),
                timezone: Some("Europe/Paris".into()),
            },
            T0,
        )
        .unwrap();
    assert_eq!(info.snapshots.len(), 1);
    assert_eq!(info.expires_at, Some(T0 + 3_600_000));
    let first = st.load("work").unwrap();
    assert_eq!(first.meta.user_agent.as_deref(), Some("UA/2"));
    assert_eq!(first.meta.timezone.as_deref(), Some("Europe/Paris"));
    assert!(first.cookies.is_empty());

    let s = rich_state(3, "a");
    let r = st.save("work", &s, T0 + 10).unwrap();
    assert_eq!(r.seq, 2);
    assert!(r.chunks_written > 0);
    let back = st.load("work").unwrap();
    let info = st.show("work").unwrap();
    assert_eq!(info.updated_at, T0 + 10);
    assert_eq!(back, expected(s, &info));
    let latest = info.latest().unwrap();
    assert_eq!(latest.summary.cookies, 3);
    assert_eq!(latest.summary.origins, 3);
    assert_eq!(latest.summary.local_storage_items, 150);
    assert_eq!(latest.summary.idb_records, 3);
    assert_eq!(latest.summary.tabs, 1);
    assert!(info.stored_bytes > 0);

    // No secret value is stored in plaintext anywhere.
    for f in files_under(h.dir()) {
        let bytes = fs::read(&f).unwrap();
        for needle in [&b"SECRET-COOKIE"[..], b"value 7 of origin", b"Wizard"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                f.display()
            );
        }
    }
}

#[test]
fn second_save_with_one_changed_origin_writes_only_that_origin() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("s"), T0).unwrap();
    let s1 = rich_state(10, "x");
    let first = st.save("s", &s1, T0 + 1).unwrap();
    let mut s2 = s1.clone();
    s2.origins[4].local_storage[0].value = "changed".into();
    let second = st.save("s", &s2, T0 + 2).unwrap();
    assert_eq!(second.chunks_total, first.chunks_total);
    assert_eq!(second.chunks_written, 1, "{second:?}");
    assert!(
        second.bytes_written < first.bytes_written / 3,
        "{first:?} {second:?}"
    );
    // An identical save writes no chunk at all.
    let third = st.save("s", &s2, T0 + 3).unwrap();
    assert_eq!(third.chunks_written, 0);
    let info = st.show("s").unwrap();
    assert_eq!(expected(s2.clone(), &info), st.load("s").unwrap());
    // Older snapshot still loads with its own content.
    let old = st.load_snapshot("s", 2).unwrap();
    assert_eq!(old.origins[4].local_storage[0].value, "value 0 of origin 4");
    // Chunks lost outside the store are written again by the next save.
    fs::remove_dir_all(h.store_dir().join("chunks")).unwrap();
    let fourth = st.save("s", &s2, T0 + 4).unwrap();
    assert_eq!(fourth.chunks_written, fourth.chunks_total, "{fourth:?}");
    st.load("s").unwrap();
}

#[test]
fn large_indexeddb_is_cut_and_mostly_deduplicated() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("big"), T0).unwrap();
    let mut s = rich_state(1, "b");
    let mut x = 7u32;
    let blob: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    s.origins[0].indexed_db[0].object_stores[0]
        .records
        .push(IdbRecord {
            key: JsValue::Number(JsNumber(2.0)),
            value: JsValue::Blob(JsBlob {
                mime: "application/octet-stream".into(),
                bytes: Bytes(blob.clone()),
            }),
        });
    let a = st.save("big", &s, T0 + 1).unwrap();
    assert!(a.chunks_total > 10);
    // Change a few bytes in the middle: only the chunks around it are new.
    if let JsValue::Blob(b) = &mut s.origins[0].indexed_db[0].object_stores[0].records[1].value {
        b.bytes.0[1_000_000] ^= 0xff;
    }
    let b = st.save("big", &s, T0 + 2).unwrap();
    assert!(b.chunks_written <= 3, "{b:?}");
    let info = st.show("big").unwrap();
    assert_eq!(st.load("big").unwrap(), expected(s, &info));
}

#[test]
fn tampered_chunk_is_a_clear_error_and_cleanup_removes_only_what_it_breaks() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    let chunks = || files_under(&h.store_dir().join("chunks"));
    st.create(&new_session("bystander"), T0).unwrap();
    let f0 = chunks();
    st.save("bystander", &rich_state(1, "b"), T0 + 1).unwrap();
    // The chunks of the bystander's latest snapshot.
    let bystander_files: Vec<PathBuf> = chunks().into_iter().filter(|p| !f0.contains(p)).collect();
    st.create(&new_session("victim"), T0).unwrap();
    let f1 = chunks();
    st.save("victim", &rich_state(2, "v"), T0 + 1).unwrap();
    // The chunks only the victim's latest snapshot uses.
    let victim_only: Vec<PathBuf> = chunks().into_iter().filter(|p| !f1.contains(p)).collect();
    assert!(!victim_only.is_empty());
    for p in &victim_only {
        let mut b = fs::read(p).unwrap();
        let n = b.len();
        b[n - 20] ^= 0x01;
        fs::write(p, b).unwrap();
    }
    let err = st.load("victim").unwrap_err();
    assert!(err.is_corrupt(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("damaged or was changed"), "{msg}");
    assert!(msg.contains("host session cleanup"), "{msg}");

    // A chunk file renamed to another id is caught too.
    let ids: Vec<PathBuf> = bystander_files.clone();
    assert!(ids.len() >= 2);
    let tmp = fs::read(&ids[0]).unwrap();
    fs::write(&ids[0], fs::read(&ids[1]).unwrap()).unwrap();
    assert!(st.load("bystander").unwrap_err().is_corrupt());
    fs::write(&ids[0], tmp).unwrap();
    st.load("bystander").unwrap();

    let list = st.list(T0 + 2).unwrap();
    assert_eq!(list.len(), 2);

    let report = st.cleanup(T0 + 2).unwrap();
    // Snapshot 2 (the tampered one) goes; snapshot 1 (empty) stays intact.
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.name == "victim" && r.seq == Some(2) && r.reason.contains("damaged")),
        "{report:?}"
    );
    assert!(report.removed.iter().all(|r| r.name == "victim"));
    assert!(
        report.gc.chunks_deleted >= victim_only.len() as u64,
        "{report:?}"
    );
    assert!(st.load("victim").unwrap().cookies.is_empty());
    st.load("bystander").unwrap();
}

#[test]
fn cleanup_removes_corrupt_and_expired_sessions_and_orphans() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("broken-record"), T0).unwrap();
    st.create(
        &NewSession {
            ttl: Some(Duration::from_secs(60)),
            ..new_session("short")
        },
        T0,
    )
    .unwrap();
    st.create(&new_session("keep"), T0).unwrap();
    st.create(&new_session("no-snapshots"), T0).unwrap();
    st.save("keep", &rich_state(1, "k"), T0 + 1).unwrap();
    fs::write(h.store_dir().join("sessions/broken-record"), b"garbage").unwrap();
    fs::remove_dir_all(h.store_dir().join("snapshots/no-snapshots")).unwrap();
    // An orphan snapshot directory (as an interrupted delete leaves).
    fs::create_dir_all(h.store_dir().join("snapshots/ghost")).unwrap();
    fs::copy(
        h.store_dir().join("snapshots/keep/0000000001"),
        h.store_dir().join("snapshots/ghost/0000000001"),
    )
    .unwrap();

    fs::write(h.store_dir().join("snapshots/keep/stray"), b"x").unwrap();
    assert!(
        st.gc(Duration::ZERO).unwrap().skipped.is_some(),
        "a stray object blocks GC"
    );
    // `list` reads the index, not records: a damaged record shows in
    // `show` (and `cleanup`); a missing index entry of it does in `list`.
    assert!(st.show("broken-record").unwrap_err().is_corrupt());
    fs::remove_file(h.store_dir().join("index/broken-record")).unwrap();
    let listed = st.list(T0 + 120_000).unwrap();
    let broken = listed.iter().find(|i| i.name == "broken-record").unwrap();
    assert!(broken.problem.as_deref().unwrap().contains("damaged"));
    assert!(listed.iter().find(|i| i.name == "short").unwrap().expired);

    let r = st.cleanup(T0 + 120_000).unwrap();
    let reason = |n: &str| {
        r.removed
            .iter()
            .find(|x| x.name == n && x.seq.is_none())
            .map(|x| x.reason.clone())
            .unwrap_or_else(|| panic!("{n} not removed: {r:?}"))
    };
    assert!(reason("broken-record").contains("damaged"));
    assert!(reason("short").contains("expired"));
    assert!(reason("no-snapshots").contains("no intact snapshot"));
    assert!(reason("ghost").contains("without a session record"));
    assert!(reason("keep").contains("unexpected object"));
    assert!(!h.store_dir().join("snapshots/keep/stray").exists());
    assert_eq!(r.removed.iter().filter(|x| x.name == "keep").count(), 1);
    assert!(r.gc.skipped.is_none(), "{r:?}");
    let names: Vec<String> = st.list(T0).unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, vec!["keep"]);
    assert!(!h.store_dir().join("snapshots/ghost").exists());
    st.load("keep").unwrap();
    assert_eq!(st.cleanup(T0 + 120_000).unwrap().removed, vec![]);
}

#[test]
fn history_keeps_five_and_gc_frees_pruned_chunks() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("h"), T0).unwrap();
    for i in 0..7 {
        let r = st
            .save("h", &rich_state(1, &format!("v{i}")), T0 + i)
            .unwrap();
        if i >= 4 {
            assert_eq!(r.pruned.len(), 1, "{r:?}");
            // A save never collects: that is GC's job, apart.
            assert_eq!(r.gc.chunks_deleted, 0, "{r:?}");
        }
    }
    assert!(st.gc(Duration::ZERO).unwrap().chunks_deleted >= 2);
    let hist = st.history("h").unwrap();
    assert_eq!(
        hist.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8]
    );
    // Chunk count equals the distinct chunks of the kept snapshots.
    let mut ids = std::collections::BTreeSet::new();
    for s in &hist {
        let st2 = st.load_snapshot("h", s.seq).unwrap();
        assert_eq!(
            st2.cookies[0].value,
            format!("SECRET-COOKIE-0-v{}", s.seq - 2)
        );
        ids.insert(s.seq);
    }
    let chunk_files = files_under(&h.store_dir().join("chunks")).len();
    // meta (shared) + per version: cookies, origin, tab (tab shared).
    // meta, origin and tab records are the same in every version; the
    // cookies differ: 3 shared chunks + 5 cookie chunks, nothing else.
    assert_eq!(chunk_files, 3 + 5);
    assert_eq!(ids.len(), 5);
}

#[test]
fn save_over_replaces_the_newest_snapshot_and_frees_its_chunks() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("r"), T0).unwrap();
    let first = st.save("r", &rich_state(1, "a"), T0 + 1).unwrap();
    // Autosaves of one open replace that open's snapshot...
    let again = st
        .save_over("r", &rich_state(1, "b"), T0 + 2, Some(first.seq))
        .unwrap();
    assert_eq!(again.seq, first.seq);
    let last = st
        .save_over("r", &rich_state(1, "c"), T0 + 3, Some(first.seq))
        .unwrap();
    assert_eq!(last.seq, first.seq);
    assert!(st.gc(Duration::ZERO).unwrap().chunks_deleted >= 1);
    assert_eq!(st.load("r").unwrap().cookies[0].value, "SECRET-COOKIE-0-c");
    let seqs: Vec<u64> = st.history("r").unwrap().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![first.seq - 1, first.seq]);
    // ...but never an older one: asking to replace a stale number adds one.
    let next = st
        .save_over("r", &rich_state(1, "d"), T0 + 4, Some(first.seq - 1))
        .unwrap();
    assert_eq!(next.seq, first.seq + 1);
}

#[test]
fn rollback_restores_an_earlier_snapshot_as_a_new_one() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("r"), T0).unwrap();
    let good = rich_state(2, "good");
    let bad = rich_state(2, "bad");
    st.save("r", &good, T0 + 1).unwrap();
    st.save("r", &bad, T0 + 2).unwrap();
    let rep = st.rollback("r", None, T0 + 3).unwrap();
    assert_eq!(rep.seq, 4);
    assert_eq!(rep.chunks_written, 0);
    let info = st.show("r").unwrap();
    assert_eq!(st.load("r").unwrap(), expected(good.clone(), &info));
    let hist = st.history("r").unwrap();
    assert_eq!(hist.last().unwrap().note, "rollback to 2");
    // Roll back the rollback, to an explicit snapshot.
    st.rollback("r", Some(3), T0 + 4).unwrap();
    let info = st.show("r").unwrap();
    assert_eq!(st.load("r").unwrap(), expected(bad, &info));
    let e = st.rollback("r", Some(99), T0 + 5).unwrap_err();
    assert!(
        matches!(e, StoreError::SnapshotNotFound { seq: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("host session history r"));
    st.create(&new_session("fresh"), T0).unwrap();
    assert!(matches!(
        st.rollback("fresh", None, T0).unwrap_err(),
        StoreError::NoEarlierSnapshot { .. }
    ));
}

#[test]
fn extend_and_delete() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(
        &NewSession {
            ttl: Some(Duration::from_secs(10)),
            ..new_session("e")
        },
        T0,
    )
    .unwrap();
    let i = st.extend("e", Duration::from_secs(3600), T0 + 1).unwrap();
    assert_eq!(i.expires_at, Some(T0 + 10_000 + 3_600_000));
    // Already expired: extends from now.
    let late = T0 + 100_000_000;
    let i = st.extend("e", Duration::from_secs(60), late).unwrap();
    assert_eq!(i.expires_at, Some(late + 60_000));
    st.create(&new_session("forever"), T0).unwrap();
    assert_eq!(
        st.extend("forever", Duration::from_secs(60), T0)
            .unwrap()
            .expires_at,
        None
    );

    st.save("e", &rich_state(2, "d"), T0).unwrap();
    st.delete("e").unwrap();
    assert!(matches!(
        st.load("e").unwrap_err(),
        StoreError::SessionNotFound { .. }
    ));
    assert!(!h.store_dir().join("snapshots/e").exists());
    st.gc(Duration::ZERO).unwrap();
    // Only the chunks of "forever" (its meta record) remain.
    assert_eq!(files_under(&h.store_dir().join("chunks")).len(), 1);
    let e = st.delete("e").unwrap_err();
    assert!(e.to_string().contains("host session list"), "{e}");
}

#[test]
fn names_are_validated_and_unknown_names_are_clear() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    for bad in ["../etc", "a/b", ".x", "-x", "", "a..b"] {
        let e = st.create(&new_session(bad), T0).unwrap_err();
        assert!(matches!(e, StoreError::InvalidName { .. }), "{bad}: {e}");
        assert!(matches!(
            st.load(bad).unwrap_err(),
            StoreError::InvalidName { .. }
        ));
        assert!(matches!(
            st.delete(bad).unwrap_err(),
            StoreError::InvalidName { .. }
        ));
    }
    assert!(!h.dir().join("etc").exists());
    let e = st.show("nope").unwrap_err();
    assert!(matches!(e, StoreError::SessionNotFound { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("\"nope\"") && msg.contains("host session list"),
        "{msg}"
    );
    st.create(&new_session("dup"), T0).unwrap();
    let e = st.create(&new_session("dup"), T0).unwrap_err();
    assert!(matches!(e, StoreError::SessionExists { .. }), "{e}");
}

#[test]
fn open_lock_is_exclusive_and_blocks_delete() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("locked"), T0).unwrap();
    let lock = h.lock_session("locked").unwrap();
    let e = h.lock_session("locked").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "session \"locked\" is already open (pid {})",
            std::process::id()
        )),
        "{msg}"
    );
    assert!(matches!(
        st.delete("locked").unwrap_err(),
        StoreError::SessionOpen { .. }
    ));
    assert!(matches!(
        st.rollback("locked", None, T0).unwrap_err(),
        StoreError::SessionOpen { .. }
    ));
    // The holder itself can still save (the `open` process autosaves).
    st.save("locked", &rich_state(1, "l"), T0 + 1).unwrap();
    let c = st.cleanup(T0 + 1).unwrap();
    assert_eq!(c.skipped_open, vec!["locked".to_string()]);
    drop(lock);
    let again = h.lock_session("locked").unwrap();
    drop(again);
    st.delete("locked").unwrap();
}

#[test]
fn lock_of_another_process_blocks_and_dies_with_it() {
    let (_d, h) = home();
    let _ = h.lock_session("x").unwrap(); // creates the lock file, released at once
    let path = h.locks_dir().join("x.lock");
    // util-linux flock(1) holds the same kind of lock in another process.
    let mut child = std::process::Command::new("flock")
        .arg("-x")
        .arg("--no-fork")
        .arg(&path)
        .arg("sleep")
        .arg("60")
        .spawn()
        .expect("flock(1) from util-linux");
    // Wait until the child holds it (poll by trying; not a timed assertion).
    let mut held = false;
    for _ in 0..500 {
        match h.lock_session("x") {
            Err(StoreError::SessionOpen { .. }) => {
                held = true;
                break;
            }
            Ok(l) => drop(l),
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(held, "the child never took the lock");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut freed = false;
    for _ in 0..500 {
        if h.lock_session("x").is_ok() {
            freed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(freed, "a dead process's lock must be free");
}

#[test]
fn host_key_is_private_and_shared_by_concurrent_first_uses() {
    let (_d, h) = home();
    let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                s.spawn(move || *h.host_key().unwrap().as_bytes())
            })
            .collect();
        hs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    let mode = fs::metadata(h.host_key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(*h.host_key().unwrap().as_bytes(), keys[0]);
    // No temporary files left.
    let names: Vec<String> = fs::read_dir(h.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["host.key"]);

    fs::set_permissions(h.host_key_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let e = h.host_key().unwrap_err();
    assert!(e.to_string().contains("chmod 600"), "{e}");
    fs::set_permissions(h.host_key_path(), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(h.host_key_path(), "nonsense").unwrap();
    assert!(
        h.host_key()
            .unwrap_err()
            .to_string()
            .contains("not a host key")
    );
}

#[test]
fn another_key_cannot_read_the_store() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("k"), T0).unwrap();
    let other = Store::new(
        Box::new(LocalDirBackend::new(h.store_dir())),
        &RepoKey::from_bytes([1; 32]),
    );
    let e = other.load("k").unwrap_err();
    assert!(e.is_corrupt());
    assert!(e.to_string().contains("host key"), "{e}");
}

#[test]
fn manifest_cannot_be_moved_to_another_session() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(&new_session("a"), T0).unwrap();
    st.create(&new_session("b"), T0).unwrap();
    st.save("a", &rich_state(1, "a"), T0 + 1).unwrap();
    fs::copy(
        h.store_dir().join("snapshots/a/0000000002"),
        h.store_dir().join("snapshots/b/0000000002"),
    )
    .unwrap();
    assert!(st.load("b").unwrap_err().is_corrupt());
}

#[test]
fn import_state_never_overwrites_unless_asked() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    let mut s = rich_state(2, "imp");
    s.meta.created_at = T0 - 5000;
    s.meta.expires_at = Some(T0 + 9000);
    let r = st.import_state("imported", &s, false, T0).unwrap();
    assert_eq!(r.seq, 1);
    let info = st.show("imported").unwrap();
    assert_eq!(info.created_at, T0 - 5000);
    assert_eq!(info.expires_at, Some(T0 + 9000));
    assert_eq!(info.latest().unwrap().note, "import");
    assert_eq!(st.load("imported").unwrap(), expected(s.clone(), &info));
    let e = st.import_state("imported", &s, false, T0).unwrap_err();
    assert!(matches!(e, StoreError::SessionExists { .. }), "{e}");
    let other = rich_state(1, "other");
    st.import_state("imported", &other, true, T0 + 1).unwrap();
    let info = st.show("imported").unwrap();
    assert_eq!(info.snapshots.len(), 1);
    assert_eq!(st.load("imported").unwrap().cookies.len(), 1);
    // The replaced session's own chunks are collected (by GC).
    st.gc(Duration::ZERO).unwrap();
    assert!(files_under(&h.store_dir().join("chunks")).len() <= 4);
}

#[test]
fn concurrent_saves_and_deletes_from_two_store_handles_keep_every_snapshot_whole() {
    // Two handles = two lock file descriptions, as two processes have. The
    // store lock keeps B's garbage collection from deleting chunks that A
    // has written but not yet referenced from a manifest.
    let (_d, h) = home();
    let a = h.store().unwrap();
    let b = h.store().unwrap();
    a.create(&new_session("a"), T0).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..15 {
                a.save("a", &rich_state(3, &format!("a{i}")), T0 + i)
                    .unwrap();
            }
        });
        s.spawn(|| {
            for i in 0..15 {
                b.create(&new_session("b"), T0).unwrap();
                b.save("b", &rich_state(2, &format!("b{i}")), T0 + i)
                    .unwrap();
                b.delete("b").unwrap();
            }
        });
    });
    let hist = a.history("a").unwrap();
    assert_eq!(hist.len(), KEEP_SNAPSHOTS);
    for s in hist {
        a.load_snapshot("a", s.seq).unwrap();
    }
    assert_eq!(a.cleanup(T0).unwrap().removed, vec![]);
}

#[test]
fn exact_snapshots_are_create_only_and_keep_what_they_were_given() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    let mut a = rich_state(1, "epoch1");
    a.meta.name = "c".into();
    a.meta.created_at = T0;
    a.meta.expires_at = Some(T0 + 60_000);
    a.meta.ttl_secs = Some(60);
    a.extra
        .entry("sesshost".into())
        .or_default()
        .insert("lifecycle".into(), "{\"ttl_secs\":60}".into());
    // A fresh session: save_exact creates its record.
    let r = st
        .save_exact("c", &a, T0 + 1, 7)
        .unwrap()
        .expect("seq 7 free");
    assert!(r.bytes_written > 0, "{r:?}");
    // Seq 7 is taken: a second writer (an older epoch) gets None and
    // changes nothing.
    let b = rich_state(1, "stale");
    assert!(st.save_exact("c", &b, T0 + 2, 7).unwrap().is_none());
    let got = st.load_exact("c", 7).unwrap();
    assert_eq!(got.cookies[0].value, "SECRET-COOKIE-0-epoch1");
    // The manifest's meta keeps fixed lifecycle values (STORE.md), so a
    // caller carries its own in `extra`, which comes back as written.
    assert_eq!(got.extra["sesshost"]["lifecycle"], "{\"ttl_secs\":60}");
    // Later numbers prune those KEEP (5) or more below.
    for seq in 8..=13 {
        let s = rich_state(1, &format!("s{seq}"));
        assert!(
            st.save_exact("c", &s, T0 + seq as i64, seq)
                .unwrap()
                .is_some()
        );
    }
    let seqs: Vec<u64> = st.history("c").unwrap().iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![9, 10, 11, 12, 13]);
    assert_eq!(
        st.load_exact("c", 13).unwrap().cookies[0].value,
        "SECRET-COOKIE-0-s13"
    );
    // A number never written is a clear error, not a panic.
    assert!(st.load_exact("c", 99).is_err());
    // Bad names are refused as in every store call.
    assert!(st.save_exact("../x", &a, T0, 1).is_err());
}

#[test]
fn show_indexed_matches_show_rebuilds_a_lost_entry_and_names_a_missing_session() {
    let (_d, h) = home();
    let st = h.store().unwrap();
    st.create(
        &NewSession {
            ttl: Some(Duration::from_secs(60)),
            ..new_session("a")
        },
        T0,
    )
    .unwrap();
    st.save("a", &rich_state(2, "one"), T0 + 1).unwrap();
    st.save("a", &rich_state(3, "two"), T0 + 2).unwrap();
    let same = |at: i64| {
        let (exact, indexed) = (st.info("a", at).unwrap(), st.show_indexed("a", at).unwrap());
        assert_eq!(
            exact, indexed,
            "the index entry is what show reads from the manifests"
        );
        indexed
    };
    // A save shows at once.
    let n = same(T0 + 3).snapshots.len();
    st.save("a", &rich_state(4, "three"), T0 + 3).unwrap();
    assert_eq!(same(T0 + 3).snapshots.len(), n + 1);
    assert!(!same(T0 + 3).expired);
    assert!(
        same(T0 + 120_000).expired,
        "expiry is judged at the given time"
    );
    // Every change rewrites the entry: an extension shows at once.
    st.extend("a", Duration::from_secs(3600), T0 + 4).unwrap();
    assert!(!same(T0 + 120_000).expired);
    // A lost or damaged entry is rebuilt from the manifests.
    fs::remove_file(h.store_dir().join("index/a")).unwrap();
    same(T0 + 5);
    fs::write(h.store_dir().join("index/a"), b"garbage").unwrap();
    same(T0 + 5);
    assert!(h.store_dir().join("index/a").exists());
    let e = st.show_indexed("nope", T0).unwrap_err();
    assert!(
        matches!(e, StoreError::SessionNotFound { .. }),
        "a missing session is named as such: {e}"
    );
    assert!(st.show_indexed("../x", T0).is_err(), "names are validated");
}
