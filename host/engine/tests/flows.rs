//! The engine as a service would use it: many flows at once from tasks of
//! one multi-thread runtime, on one home. Real store, real files.

use std::path::Path;

use sessbundle::state::{Cookie, OriginState, StorageItem};
use sessbundle::{Argon2Params, Identity, Passphrase, SessionState, SlotSpec, Unlock};
use sesshost_engine::bundle_io::SealSpec;
use sesshost_engine::{
    Engine, Error, ExportRequest, FileFormat, HomeMode, ImportRequest, SanitizeRequest,
};
use sesshost_store::NewSession;

fn state(n: usize) -> SessionState {
    let mut s = SessionState::default();
    s.cookies.push(Cookie {
        name: "sid".into(),
        value: format!("secret-{n}"),
        domain: "shop.test".into(),
        path: "/".into(),
        ..Default::default()
    });
    s.origins.push(OriginState {
        origin: "https://shop.test".into(),
        local_storage: vec![StorageItem {
            key: "n".into(),
            value: n.to_string(),
        }],
        ..Default::default()
    });
    s
}

fn cheap() -> Argon2Params {
    Argon2Params {
        m_kib: 1024,
        t: 1,
        p: 1,
    }
}

async fn put(engine: &Engine, name: &str, n: usize) {
    engine
        .create(NewSession {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (e, name, s) = (engine.clone(), name.to_string(), state(n));
    let store = e.store().clone();
    tokio::task::spawn_blocking(move || store.save(&name, &s, sesshost_store::now_ms()).unwrap())
        .await
        .unwrap();
}

fn export_req(name: &str, out: &Path, slots: Vec<SlotSpec>) -> ExportRequest {
    ExportRequest {
        name: name.into(),
        output: out.into(),
        format: FileFormat::Sessbundle,
        seal: SealSpec {
            slots,
            argon2: cheap(),
            sign: None,
            signer: "test".into(),
        },
        sanitize: SanitizeRequest::default(),
        force: false,
        progress: None,
    }
}

fn import_req(file: &Path, name: &str, unlock: Unlock, force: bool) -> ImportRequest {
    ImportRequest {
        file: file.into(),
        name: Some(name.into()),
        require_signature: None,
        format: None,
        unlock: Box::new(move || Ok(unlock)),
        force,
        limits: Default::default(),
        interop: Default::default(),
        progress: None,
    }
}

/// 16 sessions exported and re-imported concurrently from one engine;
/// every import holds what its export carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_exports_and_imports_at_once() {
    let d = tempfile::tempdir().unwrap();
    let engine = Engine::open(&d.path().join("home"), HomeMode::Create).unwrap();
    for i in 0..16 {
        put(&engine, &format!("s{i}"), i).await;
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (e, dir) = (engine.clone(), d.path().to_path_buf());
        tasks.push(tokio::spawn(async move {
            let out = dir.join(format!("s{i}.sessbundle"));
            let pw = || Passphrase::new(format!("pw {i}"));
            e.export(export_req(
                &format!("s{i}"),
                &out,
                vec![SlotSpec::Passphrase(pw())],
            ))
            .await
            .unwrap();
            let r = e
                .import(import_req(
                    &out,
                    &format!("copy{i}"),
                    Unlock::Passphrase(pw()),
                    false,
                ))
                .await
                .unwrap();
            assert_eq!((r.cookies, r.origins), (1, 1));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for i in 0..16 {
        let name = format!("copy{i}");
        let store = engine.store().clone();
        let s = tokio::task::spawn_blocking(move || store.load(&name).unwrap())
            .await
            .unwrap();
        assert_eq!(s.cookies[0].value, format!("secret-{i}"));
        assert_eq!(s.origins[0].local_storage[0].value, i.to_string());
    }
}

/// Sealed to a recipient: the identity opens it, another identity is an
/// authentication failure, and a read-only engine refuses a missing home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_and_missing_homes() {
    let d = tempfile::tempdir().unwrap();
    let engine = Engine::open(&d.path().join("a"), HomeMode::Create).unwrap();
    put(&engine, "shop", 7).await;
    let id = Identity::generate(&mut sessbundle::keys::OsRandom);
    let other = Identity::generate(&mut sessbundle::keys::OsRandom);
    let out = d.path().join("to-b.sessbundle");
    engine
        .export(export_req(
            "shop",
            &out,
            vec![SlotSpec::Recipient(id.public())],
        ))
        .await
        .unwrap();
    let b = Engine::open(&d.path().join("b"), HomeMode::Create).unwrap();
    let e = b
        .import(import_req(&out, "shop", Unlock::Identity(other), false))
        .await
        .err()
        .expect("another identity must not open it");
    assert!(e.is_auth_failure(), "{e}");
    b.import(import_req(&out, "shop", Unlock::Identity(id), false))
        .await
        .unwrap();
    assert_eq!(b.show("shop").await.unwrap().name, "shop");

    let missing = d.path().join("nowhere");
    match Engine::open(&missing, HomeMode::Existing) {
        Err(Error::NoHome(p)) => assert_eq!(p, missing),
        other => panic!("expected NoHome, got {:?}", other.err()),
    }
    assert!(!missing.exists());
}

/// Two imports of one name racing: exactly one wins; `force` replaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_imports_of_one_name() {
    let d = tempfile::tempdir().unwrap();
    let engine = Engine::open(&d.path().join("home"), HomeMode::Create).unwrap();
    put(&engine, "src", 1).await;
    let key = sessbundle::SymmetricKey::generate(&mut sessbundle::keys::OsRandom);
    let out = d.path().join("x.sessbundle");
    engine
        .export(export_req("src", &out, vec![SlotSpec::Key(key.clone())]))
        .await
        .unwrap();
    for round in 0..6 {
        let name = format!("dup{round}");
        let (a, b) = tokio::join!(
            engine.import(import_req(&out, &name, Unlock::Key(key.clone()), false)),
            engine.import(import_req(&out, &name, Unlock::Key(key.clone()), false)),
        );
        assert_eq!(
            [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count(),
            1,
            "round {round}: {:?} / {:?}",
            a.err().map(|e| e.to_string()),
            b.err().map(|e| e.to_string())
        );
    }
    engine
        .import(import_req(&out, "dup0", Unlock::Key(key), true))
        .await
        .unwrap();
}
