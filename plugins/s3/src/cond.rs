//! Conditional PUTs (`If-None-Match: *`, `If-Match`): buffered and sent
//! whole at `finish`, signed, with `etag_quotes` deciding how an `If-Match`
//! ETag goes on the wire (`auto`: quoted, then once more unquoted).

use std::cell::RefCell;

use wasi::http::types::{Method, OutgoingBody};

use crate::exports::sesshost::plugin::storage::{GuestWriter, Precondition, StorageError};
use crate::http::{
    Resp, finish, net_error, start, start_whole, unquote, write_outcome, write_status_error,
};
use crate::{Conf, Quotes, SIGN_FOR, with_conf};
use rusty_s3::S3Action;

/// Sends one whole conditional PUT.
pub(crate) fn put_whole(
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
    if body.len() <= 4096 {
        // One write before the request is handed over (see `start_whole`).
        let fut = start_whole(Method::Put, &url, &headers, body)?;
        return finish(&url, fut).map_err(write_outcome);
    }
    // Larger: streamed after the request started (the host's body buffer
    // is bounded); a server answering before it read the body may then
    // cut the request and leave the outcome unknown.
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
pub(crate) struct CondUpload {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) pre: Precondition,
    pub(crate) buf: RefCell<Option<Vec<u8>>>,
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
