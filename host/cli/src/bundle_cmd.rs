//! The bundle commands: keygen, seal, unseal, sign, verify, inspect, rekey.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use sessbundle::atomic::AtomicFile;
use sessbundle::format::{Layout, Slot};
use sessbundle::keys::{OsRandom, hex};
use sessbundle::{BundleReader, SealOptions, SigningKey, SymmetricKey};

use crate::args::KeyArgs;
use crate::args::bundle::{InspectArgs, KeygenArgs, RekeyArgs, SealArgs, UnsealArgs};
use crate::progress::Progress;
use crate::requests;
use crate::secrets::{self, Purpose};
use sesshost_engine::bundle_io::{refuse_overwrite, seal_json_file};

pub fn keygen(a: &KeygenArgs) -> Result<()> {
    let (output, symmetric, force) = (a.output.as_path(), a.symmetric, a.force);
    refuse_overwrite(output, force)?;
    if a.identity {
        return keygen_identity(output, force);
    }
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
    let pub_path = pub_path(output);
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

/// `keygen --identity`: ID (secret, 0600) and ID.pub (one line).
fn keygen_identity(output: &Path, force: bool) -> Result<()> {
    let pub_path = pub_path(output);
    refuse_overwrite(&pub_path, force)?;
    let id = sessbundle::Identity::generate(&mut OsRandom);
    let mut s = AtomicFile::create(output, 0o600)?;
    s.write_all(id.to_file_string().as_bytes())?;
    let mut p = AtomicFile::create(&pub_path, 0o644)?;
    p.write_all(id.public().to_file_string().as_bytes())?;
    s.commit()?;
    p.commit()?;
    eprintln!(
        "wrote identity {} (secret, mode 0600) and recipient {}: give the .pub to whoever sends you bundles (`--recipient {}`), open them with `--identity {}`",
        output.display(),
        pub_path.display(),
        pub_path.display(),
        output.display()
    );
    Ok(())
}

fn pub_path(output: &Path) -> std::path::PathBuf {
    let mut p = output.as_os_str().to_owned();
    p.push(".pub");
    std::path::PathBuf::from(p)
}

pub fn seal(a: &SealArgs) -> Result<()> {
    let (input, output) = (a.input.as_path(), a.output.as_path());
    refuse_overwrite(output, a.force)?;
    let spec = requests::seal_spec(&a.seal)?;
    let opts = SealOptions {
        argon2: spec.argon2,
        ..Default::default()
    };
    let progress = Progress::start(&format!("sealing {}", input.display()), None);
    let summary = seal_json_file(input, output, &spec, opts, Some(&progress.counter()));
    progress.finish();
    let summary = summary?;
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
        if spec.sign.is_some() {
            ", signed (embedded)"
        } else {
            ""
        }
    );
    Ok(())
}

/// An opened bundle whose reads show progress (as a bar over the file size)
/// until it is dropped.
pub use sesshost_engine::bundle_io::OpenBundle;

/// Open a bundle through the engine's one reading path (header checked
/// before a secret is asked for, every read under `limits`), with a
/// progress bar over the file size.
pub fn open_bundle(
    path: &Path,
    keys: &KeyArgs,
    limits: &sessbundle::ReaderLimits,
    what: &str,
) -> Result<(OpenBundle, Progress)> {
    let total = std::fs::metadata(path).ok().map(|m| m.len());
    let progress = Progress::start(what, total);
    let (r, _) = sesshost_engine::bundle_io::open_bundle(
        path,
        None,
        secrets::unlock_later(keys),
        limits,
        Some(&progress.counter()),
    )?;
    Ok((r, progress))
}

pub fn unseal(a: &UnsealArgs) -> Result<()> {
    let (input, output) = (a.input.as_path(), a.output.as_path());
    refuse_overwrite(output, a.force)?;
    let (mut r, progress) = open_bundle(
        input,
        &a.keys,
        &a.limits.limits(),
        &format!("unsealing {}", input.display()),
    )?;
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
    let out = sessbundle::sign::sign_detached(input, &key, &requests::signer_name(signer))?;
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
        crate::outln!(
            "{}",
            json!({"ok": true, "key_id": hex(&v.key_id), "source": source, "trusted_comment": v.comment,
                   "other_signatures": v.others.iter().map(|k| hex(k)).collect::<Vec<_>>()})
        );
    } else {
        crate::outln!("good signature by key {} ({source})", hex(&v.key_id));
        crate::outln!("trusted comment: {}", v.comment);
        for o in &v.others {
            crate::outln!(
                "(also signed by key {}, not checked: no public key given for it)",
                hex(o)
            );
        }
    }
    Ok(())
}

pub fn inspect(a: &InspectArgs) -> Result<()> {
    let (input, as_json, decrypt, keys) = (a.input.as_path(), a.json, a.decrypt, &a.keys);
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
            Slot::X25519 { .. } => json!({"type": "recipient", "kem": "x25519"}),
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
        let (mut r, _progress) = open_bundle(input, keys, &a.limits.limits(), "reading")?;
        out["content"] = content_summary(&mut r)?;
    }
    if as_json {
        crate::outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    crate::outln!(
        "{}: {}, {} bytes",
        input.display(),
        out["format"].as_str().unwrap_or(""),
        layout.file_len
    );
    crate::outln!("bundle id:  {}", out["bundle_id"].as_str().unwrap_or(""));
    for s in &h.slots {
        crate::outln!("key slot:   {}", s.describe());
    }
    crate::outln!(
        "payload:    {payload} bytes in {} segments of 64 KiB",
        out["segments"]
    );
    if out["signatures"]
        .as_array()
        .map_or(&[][..], |v| v.as_slice())
        .is_empty()
    {
        crate::outln!("signature:  none (add one with `host sign`)");
    }
    for s in out["signatures"]
        .as_array()
        .map_or(&[][..], |v| v.as_slice())
    {
        crate::outln!(
            "signature:  {} by key {} (not verified: use `host verify --key KEY.pub`), trusted comment: {}",
            s["source"].as_str().unwrap_or(""),
            s["key_id"].as_str().unwrap_or(""),
            s["trusted_comment"].as_str().unwrap_or("")
        );
    }
    if let Some(c) = out.get("content") {
        crate::outln!("content (authenticated):");
        crate::outln!("  session:    {}", c["name"].as_str().unwrap_or(""));
        crate::outln!("  sealed at:  {} ms since epoch", c["sealed_ms"]);
        crate::outln!(
            "  cookies:    {} across {} sites",
            c["cookies"],
            c["cookie_sites"]
        );
        crate::outln!(
            "  origins:    {}",
            c["origins"].as_array().map_or(0, |a| a.len())
        );
        for o in c["origins"].as_array().into_iter().flatten() {
            crate::outln!(
                "    {}  localStorage {} items, IndexedDB {} databases / {} records, {} bytes",
                o["origin"].as_str().unwrap_or(""),
                o["local_storage_items"],
                o["indexeddb_databases"],
                o["indexeddb_records"],
                o["bytes"]
            );
        }
        crate::outln!("  tabs:       {}", c["tabs"]);
        crate::outln!(
            "  records:    {} ({} bytes decoded; {} distinct chunks, {} bytes plain, {} stored)",
            c["records"],
            c["plain_bytes"],
            c["chunks"],
            c["chunk_bytes"],
            c["stored_bytes"]
        );
        crate::outln!(
            "  state JSON: {} bytes (the size `host unseal` writes)",
            c["json_bytes"]
        );
        for s in c["sanitizers"].as_array().into_iter().flatten() {
            crate::outln!(
                "  sanitised by {} (blake3 {})",
                s["name"].as_str().unwrap_or(""),
                s["blake3"].as_str().unwrap_or("")
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
pub fn rekey(a: &RekeyArgs) -> Result<()> {
    let (input, output, keys, kdf, force) = (&a.input, &a.output, &a.keys, &a.kdf, a.force);
    refuse_overwrite(output, force)?;
    let unlock = secrets::one_unlock(keys)?;
    let new = KeyArgs {
        passphrase_file: a.new_passphrase_file.clone(),
        passphrase_env: a.new_passphrase_env.clone(),
        key_file: a.new_key_file.clone(),
        identity: vec![],
    };
    let mut new_unlocks: Vec<sessbundle::SlotSpec> = secrets::unlocks(&new, Purpose::New, false)?
        .into_iter()
        .filter_map(|u| match u {
            sessbundle::Unlock::Passphrase(p) => Some(sessbundle::SlotSpec::Passphrase(p)),
            sessbundle::Unlock::Key(k) => Some(sessbundle::SlotSpec::Key(k)),
            sessbundle::Unlock::Identity(_) => None,
        })
        .collect();
    new_unlocks.extend(
        secrets::recipients(&a.recipients)?
            .into_iter()
            .map(sessbundle::SlotSpec::Recipient),
    );
    if new_unlocks.is_empty() {
        crate::usage!(
            "give the new keys: --new-passphrase-file, --new-passphrase-env, --new-key-file or --recipient"
        );
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
            requests::argon2(kdf)?,
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
