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
//!
//! Modules: `http` (requests over `wasi:http`, response reading, error
//! mapping for reads and writes), `cond` (buffered conditional PUTs and
//! `etag_quotes`); this file: configuration, streamed PUT, ranged GET,
//! HEAD, listings, and the exported `Guest`.

wit_bindgen::generate!({ world: "storage-backend", path: "../../wit/storage-0.2" });

mod cond;
mod http;

use std::cell::RefCell;
use std::time::Duration;

use cond::CondUpload;
use http::{
    finish, net_error, send, start, status_error, unquote, write_outcome, write_status_error,
};

use exports::sesshost::plugin::storage::{
    Capability, Guest, GuestReader, GuestWriter, ListEntry, ObjectInfo, Page, Precondition, Reader,
    StorageError, Writer,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;
use wasi::http::outgoing_handler::FutureIncomingResponse;
use wasi::http::types::{Method, OutgoingBody};
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
