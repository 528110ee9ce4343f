//! Untyped DevTools commands.
//!
//! chromiumoxide's generated types follow CDP revision 1566079; Chromium 156
//! has moved on. Every command this crate issues goes through [`Raw`], whose
//! params and result are plain JSON, so a field Chromium added or dropped
//! cannot break parsing.

use std::borrow::Cow;

use chromiumoxide::types::{Command, Method, MethodId};
use chromiumoxide::{Browser, Page};
use serde_json::Value;

use crate::error::{BrowserError, Result};

/// A CDP command given by name with JSON params.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: &'static str,
    pub params: Value,
}

impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.params.serialize(s)
    }
}

impl Method for Raw {
    fn identifier(&self) -> MethodId {
        Cow::Borrowed(self.method)
    }
}

impl Command for Raw {
    type Response = Value;
}

fn map_err(method: &str, e: chromiumoxide::error::CdpError) -> BrowserError {
    match e {
        chromiumoxide::error::CdpError::Chrome(err) => BrowserError::Cdp {
            method: method.to_string(),
            message: err.message,
        },
        other => other.into(),
    }
}

/// Run a browser-level command.
pub async fn browser_cmd(browser: &Browser, method: &'static str, params: Value) -> Result<Value> {
    browser
        .execute(Raw { method, params })
        .await
        .map(|r| r.result)
        .map_err(|e| map_err(method, e))
}

/// `Target.createTarget` with raw `params`; returns the new target's id.
pub async fn create_target(browser: &Browser, params: Value) -> Result<String> {
    let r = browser_cmd(browser, "Target.createTarget", params).await?;
    Ok(r["targetId"].as_str().unwrap_or("").to_string())
}

/// `Fetch.fulfillRequest` params for a `code` response with `body`, of
/// `content_type`, never cached.
pub fn fulfil_params(request_id: &str, code: u16, content_type: &str, body: &str) -> Value {
    use base64::Engine as _;
    serde_json::json!({
        "requestId": request_id,
        "responseCode": code,
        "responseHeaders": [
            { "name": "Content-Type", "value": content_type },
            { "name": "Cache-Control", "value": "no-store" },
        ],
        "body": base64::engine::general_purpose::STANDARD.encode(body.as_bytes()),
    })
}

/// Run a command in a page's session.
pub async fn page_cmd(page: &Page, method: &'static str, params: Value) -> Result<Value> {
    page.execute(Raw { method, params })
        .await
        .map(|r| r.result)
        .map_err(|e| map_err(method, e))
}

/// Evaluate `expr` in the page's main world, await it, and return its value
/// (which must be JSON-serialisable).
pub async fn eval(page: &Page, expr: &str) -> Result<Value> {
    let r = page_cmd(
        page,
        "Runtime.evaluate",
        serde_json::json!({
            "expression": expr,
            "awaitPromise": true,
            "returnByValue": true,
        }),
    )
    .await?;
    if let Some(ex) = r.get("exceptionDetails") {
        let msg = ex
            .pointer("/exception/description")
            .and_then(Value::as_str)
            .or_else(|| ex.get("text").and_then(Value::as_str))
            .unwrap_or("exception")
            .to_string();
        return Err(BrowserError::Cdp {
            method: "Runtime.evaluate".into(),
            message: msg,
        });
    }
    Ok(r.pointer("/result/value").cloned().unwrap_or(Value::Null))
}
