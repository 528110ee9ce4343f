//! `s3`: the reference storage backend speaking the S3 REST API.
//!
//! Requests are SigV4 presigned URLs (crate `rusty-s3`, sans-IO) sent over
//! `wasi:http`, so the host's allow-list sees every connection. Blobs
//! stream: a put is one PUT whose body is written chunk by chunk as the host
//! hands them over (`Content-Length` known up front); a get is a HEAD and
//! then ranged GETs of at most the size the host asks for.
//!
//! Config keys: `endpoint` (e.g. `http://127.0.0.1:9000`, required),
//! `bucket` (required), `region` (default `us-east-1`), `access_key_id`,
//! `secret_access_key` (both required), `prefix` (prepended to every key,
//! e.g. `team1/`), `path_style` (`true`|`false`; default `false` for
//! `*.amazonaws.com`, else `true`), `etag_quotes` (`auto`|`quoted`|
//! `unquoted`, default `auto`: how an `If-Match` ETag is sent; Ceph RGW
//! compares it unquoted, AWS and the RFC quoted; `auto` sends it quoted
//! and, on 412, once more unquoted).
//!
//! Contract `sesshost:plugin/storage@0.2.0`. Conditional writes
//! (`If-None-Match: *`, `If-Match`) are signed: rusty-s3 signs every header
//! put in `headers_mut()` (a server such as RGW refuses a request whose
//! signed conditional header was dropped on the way). A conditional upload
//! is buffered and sent at `finish` (such objects are small: leases, heads,
//! the config), so `auto` can resend it. Answers: 412, and 404 to an
//! `If-Match`, = precondition-failed; 409 = conflict; 5xx or a connection
//! lost after sending a write = unknown-outcome (RGW answers 500 to many
//! losers of a race). ETags cross without their quotes.

wit_bindgen::generate!({ world: "storage-backend", path: "../../wit/storage-0.2" });

use std::cell::RefCell;
use std::time::Duration;

use exports::sesshost::plugin::storage::{
    Capability, Guest, GuestReader, GuestWriter, ListEntry, ObjectInfo, Page, Precondition, Reader,
    StorageError, Writer,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;
use wasi::http::outgoing_handler::{self, FutureIncomingResponse};
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::{OutputStream, StreamError};

/// How long a presigned URL stays valid (S3 checks it when the request
/// starts, so a long upload is fine).
const SIGN_FOR: Duration = Duration::from_secs(3600);

/// Largest conditional upload (buffered in the plugin until `finish`).
const MAX_CONDITIONAL: u64 = 64 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Quotes {
    Auto,
    Quoted,
    Unquoted,
}

struct Conf {
    bucket: Bucket,
    creds: Credentials,
    prefix: String,
    quotes: Quotes,
}

thread_local! {
    static CONF: RefCell<Option<Conf>> = const { RefCell::new(None) };
}

fn with_conf<R>(f: impl FnOnce(&Conf) -> Result<R, StorageError>) -> Result<R, StorageError> {
    CONF.with(|c| match &*c.borrow() {
        Some(conf) => f(conf),
        None => Err(StorageError::Invalid("s3: not configured".into())),
    })
}

fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(StorageError::Invalid(format!("invalid key `{key}`")));
    }
    Ok(())
}

/// Response status, headers we need, and body.
struct Resp {
    status: u16,
    body: Vec<u8>,
    length: Option<u64>,
    /// Without the quotes.
    etag: Option<String>,
}

/// `"abc"` -> `abc` (also a weak `W/"abc"`).
fn unquote(e: &str) -> String {
    let e = e.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(e)
        .to_string()
}

fn net_error(url: &Url, e: ErrorCode) -> StorageError {
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    );
    match e {
        ErrorCode::HttpRequestDenied => StorageError::Denied(format!(
            "the host refused the connection to {host} (not an allowed host)"
        )),
        other => StorageError::Unavailable(format!("request to {host} failed: {other:?}")),
    }
}

/// Starts a request; returns the body (if any) and the pending response.
fn start(
    method: Method,
    url: &Url,
    headers: &[(&str, String)],
    with_body: bool,
) -> Result<(Option<OutgoingBody>, FutureIncomingResponse), StorageError> {
    let fields = Fields::from_list(
        &headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| StorageError::Other(format!("bad header: {e:?}")))?;
    let req = OutgoingRequest::new(fields);
    let scheme = if url.scheme() == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    let mut pq = url.path().to_string();
    if let Some(q) = url.query() {
        pq.push('?');
        pq.push_str(q);
    }
    let bad = |_| StorageError::Invalid(format!("s3: cannot build a request for {url}"));
    req.set_method(&method).map_err(bad)?;
    req.set_scheme(Some(&scheme)).map_err(bad)?;
    req.set_authority(Some(&authority)).map_err(bad)?;
    req.set_path_with_query(Some(&pq)).map_err(bad)?;
    let body = if with_body {
        Some(
            req.body()
                .map_err(|_| StorageError::Other("request body taken twice".into()))?,
        )
    } else {
        None
    };
    let fut = outgoing_handler::handle(req, None).map_err(|e| net_error(url, e))?;
    Ok((body, fut))
}

/// Waits for the response and reads its whole body (only used for small
/// responses: errors, listings, ranged reads bounded by the host).
fn finish(url: &Url, fut: FutureIncomingResponse) -> Result<Resp, StorageError> {
    fut.subscribe().block();
    let resp = match fut.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(net_error(url, e)),
        _ => return Err(StorageError::Other("response already taken".into())),
    };
    let status = resp.status();
    let length = resp
        .headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
    let etag = resp
        .headers()
        .get("etag")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok().map(unquote));
    let mut body = Vec::new();
    if let Ok(incoming) = resp.consume() {
        if let Ok(stream) = incoming.stream() {
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(StorageError::Unavailable(format!(
                            "reading the response failed: {}",
                            e.to_debug_string()
                        )));
                    }
                }
            }
            drop(stream);
        }
        drop(incoming);
    }
    Ok(Resp {
        status,
        body,
        length,
        etag,
    })
}

fn send(method: Method, url: &Url, headers: &[(&str, String)]) -> Result<Resp, StorageError> {
    let (_, fut) = start(method, url, headers, false)?;
    finish(url, fut)
}

fn xml_tag<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let i = body.find(&open)? + open.len();
    let j = body[i..].find("</")?;
    Some(&body[i..i + j])
}

/// Maps a non-2xx response to a typed error.
fn status_error(what: &str, bucket: &str, r: &Resp) -> StorageError {
    let text = String::from_utf8_lossy(&r.body);
    let code = xml_tag(&text, "Code").unwrap_or("").to_string();
    let detail = if code.is_empty() {
        format!("HTTP {}", r.status)
    } else {
        format!("HTTP {} {code}", r.status)
    };
    match (r.status, code.as_str()) {
        (404, "NoSuchBucket") => StorageError::Invalid(format!(
            "{what}: bucket `{bucket}` does not exist ({detail}); create it or fix the `bucket` config key"
        )),
        (404, _) => StorageError::NotFound(format!("{what}: {detail}")),
        (401 | 403, _) => StorageError::Denied(format!(
            "{what}: {detail}; check access_key_id / secret_access_key and the bucket policy"
        )),
        (400, _) => StorageError::Invalid(format!("{what}: {detail}")),
        (s, _) if s >= 500 => StorageError::Unavailable(format!("{what}: {detail}")),
        _ => StorageError::Other(format!("{what}: {detail}")),
    }
}

/// A failed write: after the request went out, a lost connection or a
/// 5xx leaves the outcome unknown.
fn write_outcome(e: StorageError) -> StorageError {
    match e {
        StorageError::Unavailable(d)
            if !d.contains("ConnectionRefused") && !d.contains("DnsError") =>
        {
            StorageError::UnknownOutcome(d)
        }
        e => e,
    }
}

/// Maps a non-2xx answer to a write.
fn write_status_error(what: &str, bucket: &str, r: &Resp, if_match: bool) -> StorageError {
    match r.status {
        412 => StorageError::PreconditionFailed(format!("{what}: HTTP 412")),
        404 if if_match && !String::from_utf8_lossy(&r.body).contains("NoSuchBucket") => {
            StorageError::PreconditionFailed(format!("{what}: HTTP 404 (no object to match)"))
        }
        409 => StorageError::Conflict(format!("{what}: HTTP 409; re-read and retry")),
        s if s >= 500 => StorageError::UnknownOutcome(format!(
            "{what}: HTTP {s}; the write may or may not have happened: re-read the key"
        )),
        _ => status_error(what, bucket, r),
    }
}

/// Sends one whole conditional PUT.
fn put_whole(
    c: &Conf,
    key: &str,
    body: &[u8],
    header: Option<(&str, String)>,
) -> Result<Resp, StorageError> {
    let full = format!("{}{key}", c.prefix);
    let mut action = c.bucket.put_object(Some(&c.creds), &full);
    if let Some((name, value)) = &header {
        action.headers_mut().insert(*name, value.clone());
    }
    let url = action.sign(SIGN_FOR);
    let mut headers = vec![("content-length", body.len().to_string())];
    if let Some((name, value)) = header {
        headers.push((name, value));
    }
    let (out, fut) = start(Method::Put, &url, &headers, true)?;
    let out = out.ok_or_else(|| StorageError::Other("no request body".into()))?;
    {
        let stream = out
            .write()
            .map_err(|_| StorageError::Other("request body stream taken twice".into()))?;
        for part in body.chunks(4096) {
            stream.blocking_write_and_flush(part).map_err(|_| {
                StorageError::UnknownOutcome(format!("upload of {key}: connection lost"))
            })?;
        }
    }
    OutgoingBody::finish(out, None).map_err(|e| write_outcome(net_error(&url, e)))?;
    finish(&url, fut).map_err(write_outcome)
}

/// A conditional upload: buffered, sent whole at `finish`.
struct CondUpload {
    key: String,
    size: u64,
    pre: Precondition,
    buf: RefCell<Option<Vec<u8>>>,
}

impl GuestWriter for CondUpload {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StorageError> {
        let mut b = self.buf.borrow_mut();
        let b = b
            .as_mut()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        if (b.len() + chunk.len()) as u64 > self.size {
            return Err(StorageError::Invalid(format!(
                "{}: more than the {} bytes announced",
                self.key, self.size
            )));
        }
        b.extend_from_slice(&chunk);
        Ok(())
    }

    fn finish(&self) -> Result<String, StorageError> {
        let body = self
            .buf
            .borrow_mut()
            .take()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        let what = format!("put {}", self.key);
        with_conf(|c| {
            let forms: Vec<Option<(&str, String)>> = match &self.pre {
                Precondition::None => vec![None],
                Precondition::IfAbsent => vec![Some(("if-none-match", "*".to_string()))],
                Precondition::IfMatch(e) => {
                    let e = unquote(e);
                    let q = Some(("if-match", format!("\"{e}\"")));
                    let u = Some(("if-match", e));
                    match c.quotes {
                        Quotes::Quoted => vec![q],
                        Quotes::Unquoted => vec![u],
                        Quotes::Auto => vec![q, u],
                    }
                }
            };
            let if_match = matches!(self.pre, Precondition::IfMatch(_));
            let n = forms.len();
            for (i, h) in forms.into_iter().enumerate() {
                let r = put_whole(c, &self.key, &body, h)?;
                if (200..300).contains(&r.status) {
                    return r.etag.ok_or_else(|| {
                        StorageError::Other(format!("{what}: the server sent no ETag"))
                    });
                }
                let e = write_status_error(&what, c.bucket.name(), &r, if_match);
                // `auto`: a 412 to the quoted form may be RGW's quirk; the
                // unquoted form decides.
                if i + 1 < n && matches!(e, StorageError::PreconditionFailed(_)) {
                    continue;
                }
                return Err(e);
            }
            Err(StorageError::Other(format!("{what}: no request sent")))
        })
    }
}

struct Upload {
    state: RefCell<Option<(OutputStream, OutgoingBody, FutureIncomingResponse)>>,
    url: Url,
    key: String,
    bucket: String,
}

impl GuestWriter for Upload {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StorageError> {
        let st = self.state.borrow();
        let (stream, _, _) = st
            .as_ref()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        for part in chunk.chunks(4096) {
            stream.blocking_write_and_flush(part).map_err(|e| match e {
                StreamError::LastOperationFailed(e) => StorageError::Unavailable(format!(
                    "upload of {} failed: {}",
                    self.key,
                    e.to_debug_string()
                )),
                StreamError::Closed => {
                    StorageError::Unavailable(format!("upload of {}: connection closed", self.key))
                }
            })?;
        }
        Ok(())
    }

    fn finish(&self) -> Result<String, StorageError> {
        let (stream, body, fut) = self
            .state
            .borrow_mut()
            .take()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        drop(stream);
        OutgoingBody::finish(body, None).map_err(|e| write_outcome(net_error(&self.url, e)))?;
        let r = finish(&self.url, fut).map_err(write_outcome)?;
        if !(200..300).contains(&r.status) {
            return Err(write_status_error(
                &format!("put {}", self.key),
                &self.bucket,
                &r,
                false,
            ));
        }
        r.etag.ok_or_else(|| {
            StorageError::Other(format!("put {}: the server sent no ETag", self.key))
        })
    }
}

struct Download {
    url: Url,
    key: String,
    bucket: String,
    size: u64,
    etag: Option<String>,
    pos: RefCell<u64>,
}

impl GuestReader for Download {
    fn read(&self, max: u32) -> Result<Vec<u8>, StorageError> {
        let pos = *self.pos.borrow();
        if pos >= self.size || max == 0 {
            return Ok(Vec::new());
        }
        let end = (pos + u64::from(max)).min(self.size) - 1;
        let r = send(
            Method::Get,
            &self.url,
            &[("range", format!("bytes={pos}-{end}"))],
        )?;
        if !(200..300).contains(&r.status) {
            return Err(status_error(&format!("get {}", self.key), &self.bucket, &r));
        }
        if let (Some(want), Some(got)) = (&self.etag, &r.etag)
            && want != got
        {
            return Err(StorageError::Conflict(format!(
                "get {}: the object was replaced while being read; read it again",
                self.key
            )));
        }
        let mut body = r.body;
        // A server ignoring Range answers 200 with everything.
        if r.status == 200 && body.len() as u64 == self.size {
            body = body[pos as usize..=end as usize].to_vec();
        }
        *self.pos.borrow_mut() = pos + body.len() as u64;
        Ok(body)
    }
}

/// A PUT in progress: streamed, or (conditional) buffered.
enum AnyUpload {
    Stream(Upload),
    Cond(CondUpload),
}

impl GuestWriter for AnyUpload {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StorageError> {
        match self {
            AnyUpload::Stream(u) => u.write(chunk),
            AnyUpload::Cond(u) => u.write(chunk),
        }
    }
    fn finish(&self) -> Result<String, StorageError> {
        match self {
            AnyUpload::Stream(u) => u.finish(),
            AnyUpload::Cond(u) => u.finish(),
        }
    }
}

fn head_of(c: &Conf, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
    let url = c
        .bucket
        .head_object(Some(&c.creds), &format!("{}{key}", c.prefix))
        .sign(SIGN_FOR);
    let r = send(Method::Head, &url, &[])?;
    match r.status {
        200..300 => Ok(Some(ObjectInfo {
            size: r
                .length
                .ok_or_else(|| StorageError::Other(format!("head {key}: no content-length")))?,
            etag: r
                .etag
                .ok_or_else(|| StorageError::Other(format!("head {key}: no ETag")))?,
        })),
        404 if !String::from_utf8_lossy(&r.body).contains("NoSuchBucket") => Ok(None),
        _ => Err(status_error(&format!("head {key}"), c.bucket.name(), &r)),
    }
}

struct S3;

impl Guest for S3 {
    type Writer = AnyUpload;
    type Reader = Download;

    fn configure(config: Vec<(String, String)>) -> Result<(), StorageError> {
        let get = |k: &str| config.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let need = |k: &str| {
            get(k).ok_or_else(|| {
                StorageError::Invalid(format!(
                    "s3: missing config key `{k}`; pass it with --plugin-config {k}=..."
                ))
            })
        };
        let endpoint = need("endpoint")?;
        let endpoint: Url = endpoint.parse().map_err(|e| {
            StorageError::Invalid(format!("s3: endpoint `{endpoint}` is not a URL: {e}"))
        })?;
        let path_style = match get("path_style").as_deref() {
            Some("true") => true,
            Some("false") => false,
            None => !endpoint.host_str().unwrap_or("").ends_with("amazonaws.com"),
            Some(o) => {
                return Err(StorageError::Invalid(format!(
                    "s3: path_style must be true or false, not `{o}`"
                )));
            }
        };
        let style = if path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket_name = need("bucket")?;
        let region = get("region").unwrap_or_else(|| "us-east-1".into());
        let bucket = Bucket::new(endpoint, style, bucket_name.clone(), region).map_err(|e| {
            StorageError::Invalid(format!("s3: bucket `{bucket_name}` at this endpoint: {e}"))
        })?;
        let creds = Credentials::new(need("access_key_id")?, need("secret_access_key")?);
        let prefix = get("prefix").unwrap_or_default();
        let quotes = match get("etag_quotes").as_deref() {
            None | Some("auto") => Quotes::Auto,
            Some("quoted") => Quotes::Quoted,
            Some("unquoted") => Quotes::Unquoted,
            Some(o) => {
                return Err(StorageError::Invalid(format!(
                    "s3: etag_quotes must be auto, quoted or unquoted, not `{o}`"
                )));
            }
        };
        CONF.with(|c| {
            *c.borrow_mut() = Some(Conf {
                bucket,
                creds,
                prefix,
                quotes,
            })
        });
        Ok(())
    }

    fn capabilities() -> Vec<Capability> {
        // What the protocol offers; whether the server applies it
        // atomically is for the host's bucket probe to find out.
        vec![Capability::AtomicConditionalWrites, Capability::ListEtags]
    }

    fn put_if(key: String, size: u64, pre: Precondition) -> Result<Writer, StorageError> {
        check_key(&key)?;
        if !matches!(pre, Precondition::None) {
            if size > MAX_CONDITIONAL {
                return Err(StorageError::Invalid(format!(
                    "put {key}: a conditional write holds at most {MAX_CONDITIONAL} bytes, not {size}"
                )));
            }
            return Ok(Writer::new(AnyUpload::Cond(CondUpload {
                key,
                size,
                pre,
                buf: RefCell::new(Some(Vec::with_capacity(size as usize))),
            })));
        }
        with_conf(|c| {
            let full = format!("{}{key}", c.prefix);
            let url = c.bucket.put_object(Some(&c.creds), &full).sign(SIGN_FOR);
            let (body, fut) = start(
                Method::Put,
                &url,
                &[("content-length", size.to_string())],
                true,
            )?;
            let body = body.ok_or_else(|| StorageError::Other("no request body".into()))?;
            let stream = body
                .write()
                .map_err(|_| StorageError::Other("request body stream taken twice".into()))?;
            Ok(Writer::new(AnyUpload::Stream(Upload {
                state: RefCell::new(Some((stream, body, fut))),
                url,
                key,
                bucket: c.bucket.name().to_string(),
            })))
        })
    }

    fn get(key: String) -> Result<(Reader, ObjectInfo), StorageError> {
        check_key(&key)?;
        with_conf(|c| {
            let full = format!("{}{key}", c.prefix);
            let head = c.bucket.head_object(Some(&c.creds), &full).sign(SIGN_FOR);
            let r = send(Method::Head, &head, &[])?;
            if !(200..300).contains(&r.status) {
                return Err(status_error(&format!("get {key}"), c.bucket.name(), &r));
            }
            let size = r
                .length
                .ok_or_else(|| StorageError::Other(format!("get {key}: no content-length")))?;
            let etag = r
                .etag
                .ok_or_else(|| StorageError::Other(format!("get {key}: no ETag")))?;
            let url = c.bucket.get_object(Some(&c.creds), &full).sign(SIGN_FOR);
            let d = Download {
                url,
                key,
                bucket: c.bucket.name().to_string(),
                size,
                etag: Some(etag.clone()),
                pos: RefCell::new(0),
            };
            Ok((Reader::new(d), ObjectInfo { size, etag }))
        })
    }

    fn has(key: String) -> Result<bool, StorageError> {
        check_key(&key)?;
        with_conf(|c| {
            let url = c
                .bucket
                .head_object(Some(&c.creds), &format!("{}{key}", c.prefix))
                .sign(SIGN_FOR);
            let r = send(Method::Head, &url, &[])?;
            match r.status {
                200..300 => Ok(true),
                404 => Ok(false),
                _ => Err(status_error(&format!("has {key}"), c.bucket.name(), &r)),
            }
        })
    }

    fn delete(key: String) -> Result<(), StorageError> {
        check_key(&key)?;
        with_conf(|c| {
            let url = c
                .bucket
                .delete_object(Some(&c.creds), &format!("{}{key}", c.prefix))
                .sign(SIGN_FOR);
            let r = send(Method::Delete, &url, &[])?;
            match r.status {
                200..300 => Ok(()),
                404 if !String::from_utf8_lossy(&r.body).contains("NoSuchBucket") => Ok(()),
                _ => Err(status_error(&format!("delete {key}"), c.bucket.name(), &r)),
            }
        })
    }

    fn list(prefix: String) -> Result<Vec<String>, StorageError> {
        with_conf(|c| {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut action = c.bucket.list_objects_v2(Some(&c.creds));
                action.with_prefix(format!("{}{prefix}", c.prefix));
                if let Some(t) = &token {
                    action.with_continuation_token(t.clone());
                }
                let url = action.sign(SIGN_FOR);
                let r = send(Method::Get, &url, &[])?;
                if !(200..300).contains(&r.status) {
                    return Err(status_error(&format!("list {prefix}"), c.bucket.name(), &r));
                }
                let text = String::from_utf8_lossy(&r.body);
                let parsed =
                    rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
                        StorageError::Other(format!("list {prefix}: unreadable listing: {e}"))
                    })?;
                keys.extend(
                    parsed
                        .contents
                        .into_iter()
                        .filter_map(|o| o.key.strip_prefix(&c.prefix).map(str::to_string)),
                );
                match parsed.next_continuation_token {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
            keys.sort();
            Ok(keys)
        })
    }

    fn head(key: String) -> Result<Option<ObjectInfo>, StorageError> {
        check_key(&key)?;
        with_conf(|c| head_of(c, &key))
    }

    fn list_info(
        prefix: String,
        start_after: Option<String>,
        max: u32,
    ) -> Result<Page, StorageError> {
        with_conf(|c| {
            let mut action = c.bucket.list_objects_v2(Some(&c.creds));
            action.with_prefix(format!("{}{prefix}", c.prefix));
            if let Some(s) = &start_after {
                action.with_start_after(format!("{}{s}", c.prefix));
            }
            let max = max.clamp(1, 1000);
            action.with_max_keys(max as usize);
            let url = action.sign(SIGN_FOR);
            let r = send(Method::Get, &url, &[])?;
            if !(200..300).contains(&r.status) {
                return Err(status_error(&format!("list {prefix}"), c.bucket.name(), &r));
            }
            let text = String::from_utf8_lossy(&r.body);
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
                StorageError::Other(format!("list {prefix}: unreadable listing: {e}"))
            })?;
            let more = parsed
                .next_continuation_token
                .as_deref()
                .is_some_and(|t| !t.is_empty());
            let mut entries = Vec::new();
            for o in parsed.contents {
                let Some(key) = o.key.strip_prefix(&c.prefix).map(str::to_string) else {
                    continue;
                };
                let (size, etag) = match o.etag {
                    Some(e) if !e.is_empty() => (o.size.unwrap_or(0), Some(unquote(&e))),
                    // Listings without ETags (s3s-fs 0.14): one HEAD each.
                    _ => match head_of(c, &key)? {
                        Some(info) => (info.size, Some(info.etag)),
                        None => continue,
                    },
                };
                entries.push(ListEntry { key, size, etag });
            }
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            entries.truncate(max as usize);
            let next_start_after = if more {
                entries.last().map(|e| e.key.clone())
            } else {
                None
            };
            Ok(Page {
                entries,
                next_start_after,
            })
        })
    }
}

export!(S3);
