//! HTTP over `wasi:http`: starting a request, reading a response, and
//! mapping S3 answers to typed storage errors (reads and writes apart: a
//! write that may have happened is unknown-outcome, never unavailable).

use url::Url;
use wasi::http::outgoing_handler::{self, FutureIncomingResponse};
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

use crate::exports::sesshost::plugin::storage::StorageError;

/// Response status, headers we need, and body.
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) length: Option<u64>,
    /// Without the quotes.
    pub(crate) etag: Option<String>,
}

/// `"abc"` -> `abc` (also a weak `W/"abc"`).
pub(crate) fn unquote(e: &str) -> String {
    let e = e.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(e)
        .to_string()
}

pub(crate) fn net_error(url: &Url, e: ErrorCode) -> StorageError {
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
pub(crate) fn start(
    method: Method,
    url: &Url,
    headers: &[(&str, String)],
    with_body: bool,
) -> Result<(Option<OutgoingBody>, FutureIncomingResponse), StorageError> {
    start_with(method, url, headers, with_body, None)
}

/// A request whose whole (small) body is written and finished before the
/// request is handed to the host, so it goes out with the headers: a server
/// that answers early (s3s-fs sends 412 before reading the body, then
/// closes) cannot cut the request short and lose its answer.
pub(crate) fn start_whole(
    method: Method,
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<FutureIncomingResponse, StorageError> {
    start_with(method, url, headers, true, Some(body)).map(|(_, fut)| fut)
}

fn start_with(
    method: Method,
    url: &Url,
    headers: &[(&str, String)],
    with_body: bool,
    whole: Option<&[u8]>,
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
    let mut body = if with_body {
        Some(
            req.body()
                .map_err(|_| StorageError::Other("request body taken twice".into()))?,
        )
    } else {
        None
    };
    if let Some(bytes) = whole
        && let Some(out) = body.take()
    {
        {
            let stream = out
                .write()
                .map_err(|_| StorageError::Other("request body stream taken twice".into()))?;
            // At most 4096 bytes (the caller's limit): one write, which
            // the host buffers until the request goes out.
            stream.blocking_write_and_flush(bytes).map_err(|e| {
                StorageError::Other(format!("buffering the request body failed: {e:?}"))
            })?;
        }
        OutgoingBody::finish(out, None).map_err(|e| net_error(url, e))?;
    }
    let fut = outgoing_handler::handle(req, None).map_err(|e| net_error(url, e))?;
    Ok((body, fut))
}

/// Waits for the response and reads its whole body (only used for small
/// responses: errors, listings, ranged reads bounded by the host).
pub(crate) fn finish(url: &Url, fut: FutureIncomingResponse) -> Result<Resp, StorageError> {
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

pub(crate) fn send(
    method: Method,
    url: &Url,
    headers: &[(&str, String)],
) -> Result<Resp, StorageError> {
    let (_, fut) = start(method, url, headers, false)?;
    finish(url, fut)
}

pub(crate) fn xml_tag<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let i = body.find(&open)? + open.len();
    let j = body[i..].find("</")?;
    Some(&body[i..i + j])
}

/// Maps a non-2xx response to a typed error.
pub(crate) fn status_error(what: &str, bucket: &str, r: &Resp) -> StorageError {
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
pub(crate) fn write_outcome(e: StorageError) -> StorageError {
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
pub(crate) fn write_status_error(
    what: &str,
    bucket: &str,
    r: &Resp,
    if_match: bool,
) -> StorageError {
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
