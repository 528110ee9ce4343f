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
//! `*.amazonaws.com`, else `true`).

wit_bindgen::generate!({ world: "storage-backend", path: "../../wit" });

use std::cell::RefCell;
use std::time::Duration;

use exports::sesshost::plugin::storage::{
    Guest, GuestReader, GuestWriter, Reader, StorageError, Writer,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;
use wasi::http::outgoing_handler::{self, FutureIncomingResponse};
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::{OutputStream, StreamError};

/// How long a presigned URL stays valid (S3 checks it when the request
/// starts, so a long upload is fine).
const SIGN_FOR: Duration = Duration::from_secs(3600);

struct Conf {
    bucket: Bucket,
    creds: Credentials,
    prefix: String,
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

    fn finish(&self) -> Result<(), StorageError> {
        let (stream, body, fut) = self
            .state
            .borrow_mut()
            .take()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        drop(stream);
        OutgoingBody::finish(body, None).map_err(|e| net_error(&self.url, e))?;
        let r = finish(&self.url, fut)?;
        if !(200..300).contains(&r.status) {
            return Err(status_error(&format!("put {}", self.key), &self.bucket, &r));
        }
        Ok(())
    }
}

struct Download {
    url: Url,
    key: String,
    bucket: String,
    size: u64,
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
        let mut body = r.body;
        // A server ignoring Range answers 200 with everything.
        if r.status == 200 && body.len() as u64 == self.size {
            body = body[pos as usize..=end as usize].to_vec();
        }
        *self.pos.borrow_mut() = pos + body.len() as u64;
        Ok(body)
    }
}

struct S3;

impl Guest for S3 {
    type Writer = Upload;
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
        CONF.with(|c| {
            *c.borrow_mut() = Some(Conf {
                bucket,
                creds,
                prefix,
            })
        });
        Ok(())
    }

    fn put(key: String, size: u64) -> Result<Writer, StorageError> {
        check_key(&key)?;
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
            Ok(Writer::new(Upload {
                state: RefCell::new(Some((stream, body, fut))),
                url,
                key,
                bucket: c.bucket.name().to_string(),
            }))
        })
    }

    fn get(key: String) -> Result<(Reader, u64), StorageError> {
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
            let url = c.bucket.get_object(Some(&c.creds), &full).sign(SIGN_FOR);
            let d = Download {
                url,
                key,
                bucket: c.bucket.name().to_string(),
                size,
                pos: RefCell::new(0),
            };
            Ok((Reader::new(d), size))
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
}

export!(S3);
