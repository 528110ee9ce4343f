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
