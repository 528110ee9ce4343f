//! Helpers shared by the Chromium tests: /proc lookups, launching, tabs.
#![allow(dead_code)]

use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use sesshost_browser::{BrowserSession, LaunchOptions};

/// Process ids in process group `pgid` (from /proc).
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the ")" of the command name: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && f.first() != Some(&"Z") {
            out.push(pid);
        }
    }
    out
}

/// Processes (not zombies) whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle) && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out
}

pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() == Some("Z"))
        })
        .unwrap_or(true)
}

pub async fn launch() -> BrowserSession {
    BrowserSession::launch(LaunchOptions::default())
        .await
        .expect("launch Chromium (apt-get install chromium)")
}

pub async fn open(s: &BrowserSession, url: &str) -> Page {
    s.cdp()
        .new_page(CreateTargetParams::new(url))
        .await
        .expect("open tab")
}

pub async fn eval_str(page: &Page, js: &str) -> String {
    let v: serde_json::Value = page
        .evaluate(js)
        .await
        .expect("evaluate")
        .into_value()
        .expect("value");
    match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Poll a JS condition until it is true (bounded; not a timing assertion).
pub async fn wait_for(page: &Page, cond: &str) {
    for _ in 0..300 {
        if let Ok(r) = page.evaluate(cond).await
            && r.into_value::<bool>().unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never became true: {cond}");
}
