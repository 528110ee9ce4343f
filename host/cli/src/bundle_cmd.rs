//! The bundle commands: keygen, seal, unseal, sign, verify, inspect, rekey.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;
use sessbundle::atomic::AtomicFile;
use sessbundle::format::{Layout, Slot};
use sessbundle::keys::{OsRandom, hex};
use sessbundle::{Argon2Params, BundleReader, SealOptions, SessionState, SigningKey, SymmetricKey};

use crate::args::{KdfArgs, KeyArgs};
use crate::progress::{Counted, Progress};
use crate::secrets::{self, Purpose};

pub fn refuse_overwrite(path: &Path, force: bool) -> Result<()> {
    if !force && path.exists() {
        bail!(
            "{} already exists: choose another path or pass --force to replace it",
            path.display()
        );
    }
    Ok(())
}

fn signer_name(s: Option<String>) -> String {
    s.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn argon2(k: &KdfArgs) -> Result<Argon2Params> {
    let p = Argon2Params {
        m_kib: k.argon2_memory.saturating_mul(1024),
        t: k.argon2_time,
        p: k.argon2_parallelism,
    };
    p.check()?;
    Ok(p)
}

pub fn keygen(output: &Path, symmetric: bool, force: bool) -> Result<()> {
    refuse_overwrite(output, force)?;
    if symmetric {
        let key = SymmetricKey::generate(&mut OsRandom);
        let mut f = AtomicFile::create(output, 0o600)?;
        f.write_all(key.to_file_string().as_bytes())?;
        f.commit()?;
        eprintln!(
            "wrote symmetric key {} (id {}); keep it secret, use it with --key-file",
            output.display(),
            hex(&key.key_id())
        );
        return Ok(());
    }
    let mut pub_path = output.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = std::path::PathBuf::from(pub_path);
    refuse_overwrite(&pub_path, force)?;
    let key = SigningKey::generate(&mut OsRandom);
    let mut s = AtomicFile::create(output, 0o600)?;
    s.write_all(key.to_file_string().as_bytes())?;
    let mut p = AtomicFile::create(&pub_path, 0o644)?;
    p.write_all(key.public().to_file_string().as_bytes())?;
    s.commit()?;
    p.commit()?;
    eprintln!(
        "wrote signing key {} (secret, mode 0600) and {} (public), key id {}",
        output.display(),
        pub_path.display(),
        hex(&key.public().key_id())
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn seal(
    input: &Path,
    output: &Path,
    sign: Option<&Path>,
    signer: Option<String>,
    keys: &KeyArgs,
    kdf: &KdfArgs,
    force: bool,
) -> Result<()> {
    refuse_overwrite(output, force)?;
    let json = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let sign_key = sign.map(SigningKey::read).transpose()?;
    let unlocks = secrets::unlocks(keys, Purpose::New, true)?;
    let opts = SealOptions {
        argon2: argon2(kdf)?,
        ..Default::default()
    };
    let mut f = AtomicFile::create(output, 0o644)?;
    let progress = Progress::start(&format!("sealing {}", input.display()), None);
    let summary = {
        let w = BufWriter::with_capacity(256 * 1024, progress.writer(f.file()));
        let bw = sessbundle::BundleWriter::new(w, &unlocks, opts, &mut OsRandom)?;
        let (mut w, summary) = sessbundle::state_json::seal_from_json(&json, input, bw)?;
        w.flush()?;
        summary
    };
    progress.finish();
    drop(json);
    if let Some(k) = &sign_key {
        sessbundle::sign::append_embedded(f.file(), k, &signer_name(signer))?;
    }
    f.commit()?;
    eprintln!(
        "sealed {} ({} records, {} bytes of state) into {} ({} bytes), bundle id {}{}",
        input.display(),
        summary.records,
        summary.plain_bytes,
        output.display(),
        std::fs::metadata(output)
            .map(|m| m.len())
            .unwrap_or(summary.file_bytes),
        hex(&summary.bundle_id),
        if sign_key.is_some() {
            ", signed (embedded)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Seal `state` into `output` atomically (temp file, fsync, rename), with an
/// embedded signature when `sign_key` is given, showing progress as `what`.
/// Shared by `seal` and `export`.
pub fn write_bundle(
    what: &str,
    state: &SessionState,
    output: &Path,
    unlocks: &[sessbundle::Unlock],
    opts: SealOptions,
    sign_key: Option<&SigningKey>,
    signer: Option<String>,
) -> Result<sessbundle::SealSummary> {
    let mut f = AtomicFile::create(output, 0o644)?;
    let progress = Progress::start(what, None);
    let summary = {
        let w = BufWriter::with_capacity(256 * 1024, progress.writer(f.file()));
        let (mut w, summary) = sessbundle::seal(state, w, unlocks, opts)?;
        w.flush()?;
        summary
    };
    progress.finish();
    if let Some(k) = sign_key {
        sessbundle::sign::append_embedded(f.file(), k, &signer_name(signer))?;
    }
    f.commit()?;
    Ok(summary)
}

/// An opened bundle whose reads show progress (as a bar over the file size)
/// until it is dropped.
pub type OpenBundle = BundleReader<std::io::BufReader<Counted<std::fs::File>>>;

pub fn open_bundle(path: &Path, keys: &KeyArgs, what: &str) -> Result<(OpenBundle, Progress)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // Read the header first so a non-bundle fails before asking for a
    // passphrase (`BundleReader::open` seeks back to the start).
    Layout::read(&mut f)?;
    let unlock = secrets::one_unlock(keys)?;
    let progress = Progress::start(what, f.metadata().ok().map(|m| m.len()));
    let r = BundleReader::open(
        std::io::BufReader::with_capacity(128 * 1024, progress.reader(f)),
        &unlock,
    )?;
    Ok((r, progress))
}

pub fn unseal(input: &Path, output: &Path, keys: &KeyArgs, force: bool) -> Result<()> {
    refuse_overwrite(output, force)?;
    let (mut r, progress) = open_bundle(input, keys, &format!("unsealing {}", input.display()))?;
    let mut f = AtomicFile::create(output, 0o600)?;
    let report = {
        let mut w = BufWriter::with_capacity(256 * 1024, f.file());
        let report = sessbundle::state_json::unseal_to_json(&mut r, &mut w)?;
        w.flush()?;
        report
    };
    progress.finish();
    f.commit()?;
    eprintln!(
        "unsealed {} into {} ({} records, {} bytes of JSON; mode 0600: it holds secrets)",
        input.display(),
        output.display(),
        report.records,
        report.json_bytes
    );
    Ok(())
}

pub fn sign(input: &Path, key: &Path, signer: Option<String>) -> Result<()> {
    let key = SigningKey::read(key)?;
    let out = sessbundle::sign::sign_detached(input, &key, &signer_name(signer))?;
    eprintln!(
        "wrote {} (key id {})",
        out.display(),
        hex(&key.public().key_id())
    );
    Ok(())
}

pub fn verify(input: &Path, key: &Path, as_json: bool) -> Result<()> {
    let key = sessbundle::PublicKey::read(key)?;
    let v = sessbundle::sign::verify_file(input, &key)?;
    let source = match v.source {
        sessbundle::sign::SignatureSource::Embedded => "embedded",
        sessbundle::sign::SignatureSource::Detached => "detached",
    };
    if as_json {
        println!(
            "{}",
            json!({"ok": true, "key_id": hex(&v.key_id), "source": source, "trusted_comment": v.comment,
                   "other_signatures": v.others.iter().map(|k| hex(k)).collect::<Vec<_>>()})
        );
    } else {
        println!("good signature by key {} ({source})", hex(&v.key_id));
        println!("trusted comment: {}", v.comment);
        for o in &v.others {
            println!(
                "(also signed by key {}, not checked: no public key given for it)",
                hex(o)
            );
        }
    }
    Ok(())
}

pub fn inspect(input: &Path, as_json: bool, decrypt: bool, keys: &KeyArgs) -> Result<()> {
    let mut f =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let layout = Layout::read(&mut f)?;
    let h = &layout.header;
    let slots: Vec<_> = h
        .slots
        .iter()
        .map(|s| match s {
            Slot::Argon2id { m_kib, t, p, .. } => {
                json!({"type": "passphrase", "kdf": "argon2id", "m_kib": m_kib, "t": t, "p": p})
            }
            Slot::Key { key_id, .. } => json!({"type": "key-file", "key_id": hex(&key_id.0)}),
        })
        .collect();
    let detached = sessbundle::sign::sig_path(input);
    let detached_block = std::fs::read(&detached)
        .ok()
        .and_then(|b| sessbundle::sign::SignatureBlock::parse(&b).ok());
    let sigs: Vec<_> = [(layout.trailer.as_ref(), "embedded"), (detached_block.as_ref(), "detached")]
        .into_iter()
        .filter_map(|(b, s)| {
            b.map(|b| json!({"source": s, "key_id": hex(&b.key_id), "trusted_comment": b.comment, "verified": false}))
        })
        .collect();
    let payload = layout.payload_end - layout.payload_start;
    let mut out = json!({
        "file": input.display().to_string(),
        "file_bytes": layout.file_len,
        "format": format!("sessbundle {}.{}", sessbundle::format::MAJOR, h.minor),
        "bundle_id": hex(&h.bundle_id()),
        "key_slots": slots,
        "payload_bytes": payload,
        "segments": payload.div_ceil(sessbundle::stream::SEGMENT_CT as u64),
        "signatures": sigs,
    });
    if decrypt || !keys.is_empty() {
        let (mut r, _progress) = open_bundle(input, keys, "reading")?;
        out["content"] = content_summary(&mut r)?;
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: {}, {} bytes",
        input.display(),
        out["format"].as_str().unwrap(),
        layout.file_len
    );
    println!("bundle id:  {}", out["bundle_id"].as_str().unwrap());
    for s in &h.slots {
        println!("key slot:   {}", s.describe());
    }
    println!(
        "payload:    {payload} bytes in {} segments of 64 KiB",
        out["segments"]
    );
    if out["signatures"].as_array().unwrap().is_empty() {
        println!("signature:  none (add one with `host sign`)");
    }
    for s in out["signatures"].as_array().unwrap() {
        println!(
            "signature:  {} by key {} (not verified: use `host verify --key KEY.pub`), trusted comment: {}",
            s["source"].as_str().unwrap(),
            s["key_id"].as_str().unwrap(),
            s["trusted_comment"].as_str().unwrap()
        );
    }
    if let Some(c) = out.get("content") {
        println!("content (authenticated):");
        println!("  session:    {}", c["name"].as_str().unwrap_or(""));
        println!("  sealed at:  {} ms since epoch", c["sealed_ms"]);
        println!(
            "  cookies:    {} across {} sites",
            c["cookies"], c["cookie_sites"]
        );
        println!(
            "  origins:    {}",
            c["origins"].as_array().map_or(0, |a| a.len())
        );
        for o in c["origins"].as_array().into_iter().flatten() {
            println!(
                "    {}  localStorage {} items, IndexedDB {} databases / {} records, {} bytes",
                o["origin"].as_str().unwrap(),
                o["local_storage_items"],
                o["indexeddb_databases"],
                o["indexeddb_records"],
                o["bytes"]
            );
        }
        println!("  tabs:       {}", c["tabs"]);
        println!(
            "  records:    {} ({} bytes decoded; {} distinct chunks, {} bytes plain, {} stored)",
            c["records"], c["plain_bytes"], c["chunks"], c["chunk_bytes"], c["stored_bytes"]
        );
        println!(
            "  state JSON: {} bytes (the size `host unseal` writes)",
            c["json_bytes"]
        );
        for s in c["sanitizers"].as_array().into_iter().flatten() {
            println!(
                "  sanitised by {} (blake3 {})",
                s["name"].as_str().unwrap(),
                s["blake3"].as_str().unwrap()
            );
        }
    }
    Ok(())
}

/// Counts and sizes only: never a cookie value, storage value or URL.
/// Goes through `sessbundle::state_json::inspect`, which checks the records
/// as `import` does.
fn content_summary<R: std::io::Read + std::io::Seek>(
    r: &mut BundleReader<R>,
) -> Result<serde_json::Value> {
    let i = sessbundle::state_json::inspect(r)?;
    let c = &i.content;
    Ok(json!({
        "name": c.name,
        "sealed_ms": i.sealed_ms,
        "cookies": c.cookies,
        "cookie_sites": c.cookie_sites,
        "origins": c.origins.iter().map(|o| json!({"origin": o.origin, "local_storage_items": o.local_storage_items,
            "indexeddb_databases": o.indexeddb_databases, "indexeddb_records": o.indexeddb_records, "bytes": o.bytes})).collect::<Vec<_>>(),
        "tabs": c.tabs,
        "records": c.records,
        "chunks": i.chunks,
        "plain_bytes": c.record_bytes,
        "chunk_bytes": i.chunk_bytes,
        "stored_bytes": i.stored_bytes,
        "json_bytes": c.json_bytes,
        "sanitizers": i.sanitizers.iter().map(|(n, b)| json!({"name": n, "blake3": hex(b)})).collect::<Vec<_>>(),
    }))
}

#[allow(clippy::too_many_arguments)]
pub fn rekey(
    input: &Path,
    output: &Path,
    keys: &KeyArgs,
    new_passphrase_file: Option<std::path::PathBuf>,
    new_passphrase_env: Option<String>,
    new_key_file: Vec<std::path::PathBuf>,
    kdf: &KdfArgs,
    force: bool,
) -> Result<()> {
    refuse_overwrite(output, force)?;
    let unlock = secrets::one_unlock(keys)?;
    let new = KeyArgs {
        passphrase_file: new_passphrase_file,
        passphrase_env: new_passphrase_env,
        key_file: new_key_file,
    };
    let new_unlocks = secrets::unlocks(&new, Purpose::New, false)?;
    if new_unlocks.is_empty() {
        bail!("give the new keys: --new-passphrase-file, --new-passphrase-env or --new-key-file");
    }
    let src =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let mut f = AtomicFile::create(output, 0o644)?;
    {
        let w = BufWriter::new(f.file());
        let mut w = sessbundle::rekey::rekey(
            std::io::BufReader::new(src),
            &unlock,
            &new_unlocks,
            argon2(kdf)?,
            w,
            &mut OsRandom,
        )?;
        w.flush()?;
    }
    f.commit()?;
    eprintln!(
        "wrote {} with {} new key slot(s); any signature was dropped: re-sign it",
        output.display(),
        new_unlocks.len()
    );
    Ok(())
}
