//! Bundles over HTTP: `GET /v1/sessions/{id}/export` downloads the session
//! sealed to the key the caller gives in a header (signed when the server
//! has `[security] signing_key`); `POST /v1/sessions/import` uploads one
//! (signature required when `[security] trusted_keys` is set; the format's
//! reader caps apply, the upload is capped by `[limits] max_upload_bytes`).
//!
//! Keys travel in headers, never in the URL (URLs end up in logs):
//! `X-Sesshost-Passphrase` (Argon2id slot), `X-Sesshost-Key` (32 bytes,
//! base64: a key slot), `X-Sesshost-Recipient` (a `sessbundle-recipient-v1:`
//! line: seal to a public key, no shared secret); for import also
//! `X-Sesshost-Identity` (the identity line). The audit log records what
//! left or entered: counts of cookies and origins, never values.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use sessbundle::{
    Identity, Passphrase, PublicKey, Recipient, SigningKey, SlotSpec, SymmetricKey, Unlock,
};
use sesshost_engine::bundle_io::SealSpec;
use sesshost_engine::{ExportRequest, FileFormat, ImportRequest, SanitizeRequest};
use sesshost_store::now_ms;

use crate::api::{ApiError, ApiResult};
use crate::app::{App, audit_event};
use crate::catalog::{Record, new_session_id, random_hex};
use crate::http::Auth;

const PASSPHRASE: &str = "x-sesshost-passphrase";
const KEY: &str = "x-sesshost-key";
const RECIPIENT: &str = "x-sesshost-recipient";
const IDENTITY: &str = "x-sesshost-identity";

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::bad_request(name, "must be visible ASCII")),
    }
}

fn raw_key(h: &HeaderMap) -> ApiResult<Option<SymmetricKey>> {
    let Some(k) = header_str(h, KEY)? else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(k)
        .map_err(|_| ApiError::bad_request(KEY, "must be 32 bytes in base64"))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| ApiError::bad_request(KEY, "must be 32 bytes in base64"))?;
    Ok(Some(SymmetricKey::from_bytes(arr)))
}

/// A temp path under the home for one upload or download (same file
/// system as the store; removed when the guard drops).
struct TempFile(PathBuf);

impl TempFile {
    fn new(app: &App, ext: &str) -> ApiResult<TempFile> {
        let dir = app.engine.home_dir().join("service").join("tmp");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("cannot make {}: {e}", dir.display())))?;
        let name = random_hex(12).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(TempFile(dir.join(format!("{name}.{ext}"))))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub async fn export(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    app.record(&p, &id)?;
    let mut slots = Vec::new();
    if let Some(pw) = header_str(&headers, PASSPHRASE)? {
        if pw.is_empty() {
            return Err(ApiError::bad_request(PASSPHRASE, "is empty"));
        }
        slots.push(SlotSpec::Passphrase(Passphrase::new(
            pw.as_bytes().to_vec(),
        )));
    }
    if let Some(k) = raw_key(&headers)? {
        slots.push(SlotSpec::Key(k));
    }
    if let Some(r) = header_str(&headers, RECIPIENT)? {
        let r = Recipient::parse_line(r).map_err(|e| ApiError::bad_request(RECIPIENT, e))?;
        slots.push(SlotSpec::Recipient(r));
    }
    if slots.is_empty() {
        return Err(ApiError::bad_request(
            "headers",
            "say what to seal the bundle to: X-Sesshost-Recipient (a public key line from `host keygen --identity`), X-Sesshost-Key (32 bytes base64) or X-Sesshost-Passphrase",
        ));
    }
    let sign = match &app.config.security.signing_key {
        Some(path) => Some(
            SigningKey::read(path)
                .map_err(|e| ApiError::internal(format!("the server's signing key: {e}")))?,
        ),
        None => None,
    };
    // A live session is saved first, so the bundle holds what its browser shows.
    app.save_if_live(&id, "export").await?;
    let out = TempFile::new(&app, "sessbundle")?;
    let report = app
        .engine
        .export(ExportRequest {
            name: id.clone(),
            output: out.0.clone(),
            format: FileFormat::Sessbundle,
            seal: SealSpec {
                slots,
                argon2: Default::default(),
                sign,
                signer: "sesshost service".into(),
            },
            sanitize: SanitizeRequest::default(),
            force: true,
            progress: None,
        })
        .await?;
    let bytes = tokio::fs::read(&out.0)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the bundle back: {e}")))?;
    let counts = app
        .info(&id)
        .await
        .and_then(|i| i.latest().map(|l| (l.summary.cookies, l.summary.origins)));
    app.audit(audit_event(
        &p,
        "session.export",
        Some(&id),
        "ok",
        json!({"cookies": counts.map(|c| c.0), "origins": counts.map(|c| c.1), "bytes": bytes.len(), "signed": report.signed}),
    ));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.sesshost.sessbundle".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.sessbundle\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    pub name: Option<String>,
}

pub async fn import(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "body",
            "send the .sessbundle's bytes as the request body",
        ));
    }
    app.check_creation(&p.tenant)?;
    let unlock: Option<Unlock> = if let Some(pw) = header_str(&headers, PASSPHRASE)? {
        Some(Unlock::Passphrase(Passphrase::new(pw.as_bytes().to_vec())))
    } else if let Some(k) = raw_key(&headers)? {
        Some(Unlock::Key(k))
    } else if let Some(i) = header_str(&headers, IDENTITY)? {
        Some(Unlock::Identity(
            Identity::parse(i, std::path::Path::new(IDENTITY))
                .map_err(|e| ApiError::bad_request(IDENTITY, e))?,
        ))
    } else {
        None
    };
    let Some(unlock) = unlock else {
        return Err(ApiError::bad_request(
            "headers",
            "give the key that opens the bundle: X-Sesshost-Identity, X-Sesshost-Key or X-Sesshost-Passphrase",
        ));
    };
    let trusted: Vec<PublicKey> = app
        .config
        .security
        .trusted_keys
        .iter()
        .map(|p| {
            PublicKey::read(p)
                .map_err(|e| ApiError::internal(format!("a trusted key of the server: {e}")))
        })
        .collect::<ApiResult<_>>()?;
    if trusted.len() > 1 {
        return Err(ApiError::internal(
            "[security] trusted_keys holds more than one key; this version checks uploads against one",
        ));
    }
    let file = TempFile::new(&app, "upload")?;
    tokio::fs::write(&file.0, &body)
        .await
        .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
    let id = new_session_id().map_err(|e| ApiError::internal(e.to_string()))?;
    let rec = Record {
        id: id.clone(),
        tenant: p.tenant.clone(),
        name: q.name.clone(),
        tags: Vec::new(),
        idle_timeout_seconds: app.config.lifecycle.idle_timeout_seconds,
        auth_check: None,
        created_at_ms: now_ms(),
        needs_auth: false,
        last_check: None,
        failed: None,
    };
    app.catalog
        .put(rec.clone())
        .map_err(|e| ApiError::internal(format!("cannot write the catalog: {e}")))?;
    let limits = sessbundle::ReaderLimits {
        max_total_plaintext: app
            .config
            .limits
            .max_upload_bytes
            .saturating_mul(8)
            .min(sessbundle::ReaderLimits::default().max_total_plaintext),
        // An upload may not make the server derive more than 256 MiB of
        // Argon2id memory (the CLI's reader allows 1 GiB).
        max_argon2_m_kib: 256 * 1024,
        ..Default::default()
    };
    let r = app
        .engine
        .import(ImportRequest {
            file: file.0.clone(),
            name: Some(id.clone()),
            require_signature: trusted.into_iter().next(),
            format: Some(FileFormat::Sessbundle),
            unlock: Box::new(move || Ok(unlock)),
            force: false,
            limits,
            interop: Default::default(),
            progress: None,
        })
        .await;
    let report = match r {
        Ok(r) => r,
        Err(e) => {
            let _ = app.catalog.remove(&id);
            let err = ApiError::from(e);
            app.audit(audit_event(
                &p,
                "session.import",
                None,
                err.code,
                json!({"bytes": body.len()}),
            ));
            return Err(err);
        }
    };
    app.metrics.created_total.inc();
    app.audit(audit_event(
        &p,
        "session.import",
        Some(&id),
        "ok",
        json!({"cookies": report.cookies, "origins": report.origins, "tabs": report.tabs, "bytes": body.len(), "signed": report.signed.is_some()}),
    ));
    let info = app.info(&id).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(crate::routes::sessions::session_json(
            &app,
            &rec,
            info.as_ref(),
        )),
    )
        .into_response())
}
