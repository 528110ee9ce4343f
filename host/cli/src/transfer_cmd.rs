//! `host export` / `host import`: flags → one engine call → what was done,
//! on stderr (stdout stays free for scripts).

use anyhow::Result;
use sessbundle::PublicKey;
use sessbundle::keys::hex;
use sesshost_engine::{Engine, ExportRequest, FileFormat, ImportRequest, SanitizeRequest};

use crate::args::transfer::{ExportArgs, FileFormat as FormatArg, ImportArgs};
use crate::progress::Progress;
use crate::requests;
use crate::secrets;

fn format(f: FormatArg) -> FileFormat {
    match f {
        FormatArg::Sessbundle => FileFormat::Sessbundle,
        FormatArg::Playwright => FileFormat::Playwright,
        FormatArg::CookiesTxt => FileFormat::CookiesTxt,
    }
}

fn warn_all(what: &str, warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {what}: {w}");
    }
}

pub async fn export(engine: &Engine, a: ExportArgs) -> Result<()> {
    let format = format(a.format);
    let seal = if format == FileFormat::Sessbundle {
        requests::seal_spec(&a.seal)?
    } else {
        // Plaintext formats take no keys; a --sign is refused by the engine.
        sesshost_engine::bundle_io::SealSpec {
            slots: vec![],
            argon2: requests::argon2(&a.seal.kdf)?,
            sign: a
                .seal
                .sign
                .as_deref()
                .map(sessbundle::SigningKey::read)
                .transpose()?,
            signer: String::new(),
        }
    };
    let progress = Progress::start(&format!("exporting {}", a.name), None);
    let report = engine
        .export(ExportRequest {
            name: a.name.clone(),
            output: a.output.clone(),
            format,
            seal,
            sanitize: SanitizeRequest {
                plugins: a.sanitize.clone(),
                config: a.sanitize_config.clone(),
            },
            force: a.force,
            progress: Some(progress.counter()),
        })
        .await;
    progress.finish();
    let report = report?;
    for r in &report.sanitizers {
        eprintln!("sanitiser {}: {}", r.plugin, r.summary);
        for f in &r.findings {
            eprintln!("  {:?} {} ({})", f.action, f.location, f.reason);
        }
    }
    match report.bundle_id {
        Some(id) => eprintln!(
            "exported session {} to {} ({} bytes of state, bundle id {}{})",
            a.name,
            a.output.display(),
            report.plain_bytes,
            hex(&id),
            if report.signed { ", signed" } else { "" }
        ),
        None => {
            warn_all("the target format cannot hold everything", &report.warnings);
            eprintln!(
                "exported session {} to {} (plaintext, mode 0600: it holds secrets; {} warnings)",
                a.name,
                a.output.display(),
                report.warnings.len()
            );
        }
    }
    Ok(())
}

pub async fn import(engine: &Engine, a: ImportArgs) -> Result<()> {
    let require_signature = a
        .require_signature
        .as_deref()
        .map(PublicKey::read)
        .transpose()?;
    let total = std::fs::metadata(&a.file).ok().map(|m| m.len());
    let progress = Progress::start(&format!("importing {}", a.file.display()), total);
    let report = engine
        .import(ImportRequest {
            file: a.file.clone(),
            name: a.name.clone(),
            require_signature,
            format: a.format.map(format),
            unlock: Box::new(secrets::unlock_later(&a.keys)),
            force: a.force,
            limits: a.limits.limits(),
            interop: Default::default(),
            progress: Some(progress.counter()),
        })
        .await;
    progress.finish();
    let report = report?;
    if let Some(s) = &report.signed {
        eprintln!("good signature by key {}: {}", hex(&s.key_id), s.comment);
    }
    warn_all("import", &report.warnings);
    eprintln!(
        "imported {} as session {} ({} cookies, {} origins, {} tabs; {} bytes)",
        a.file.display(),
        report.name,
        report.cookies,
        report.origins,
        report.tabs,
        report.stored.logical_bytes
    );
    Ok(())
}
