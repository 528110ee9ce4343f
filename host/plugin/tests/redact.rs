//! The `redact` reference sanitiser through the crate's API on real wasmtime.

mod common;

use common::*;
use sesshost_plugin::{Error, FindingAction, Grants, SanitizeContext};

async fn run(
    config: &[&str],
) -> sesshost_plugin::Result<(sessbundle::SessionState, sesshost_plugin::Report)> {
    let rt = runtime();
    let grants = Grants::default().with_config(config.iter().copied())?;
    let p = rt.load_sanitizer(&wasm("redact"), &grants)?;
    p.sanitize(
        &sample_state(),
        &SanitizeContext {
            purpose: "export".into(),
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn default_patterns_drop_every_planted_secret() {
    let input = sample_state();
    let (out, report) = run(&[]).await.unwrap();
    let text = json(&out);
    for s in SECRETS {
        assert!(!text.contains(s), "{s} survived: {text}");
    }
    // Harmless data stays.
    for keep in [
        "theme", "lang", "cart", "3 items", "\"step\"", "item=4", "#top", "\"ann\"",
    ] {
        assert!(text.contains(keep), "{keep} was removed: {text}");
    }
    assert_eq!(out.cookies.len(), 2);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.action == FindingAction::Dropped)
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.location.contains("sessionid") && f.reason.contains("`session`")),
        "{report:?}"
    );
    assert!(
        report.summary.starts_with("redact: 8 dropped"),
        "{}",
        report.summary
    );
    // The report names items, never values.
    let r = format!("{report:?}");
    assert!(SECRETS.iter().all(|s| !r.contains(s)), "{r}");
    assert_eq!(report.plugin, "redact.wasm");
    assert_eq!(report.blake3.len(), 64);
    // The input was not touched.
    assert_eq!(input, sample_state());
}

#[tokio::test]
async fn redact_mode_keeps_names_and_replaces_values() {
    let (out, report) = run(&["mode=redact"]).await.unwrap();
    let text = json(&out);
    assert!(SECRETS.iter().all(|s| !text.contains(s)), "{text}");
    assert_eq!(out.cookies.len(), 5);
    let sid = out.cookies.iter().find(|c| c.name == "sessionid").unwrap();
    assert_eq!(sid.value, "REDACTED");
    assert!(
        out.tabs[0].url.contains("token=REDACTED"),
        "{}",
        out.tabs[0].url
    );
    assert!(
        text.contains(r#"["password",{"t":"string","v":"REDACTED"}]"#),
        "{text}"
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.action == FindingAction::Redacted)
    );
}

#[tokio::test]
async fn patterns_replace_and_extra_patterns_extend() {
    let (out, _) = run(&["patterns=theme"]).await.unwrap();
    let names: Vec<_> = out.cookies.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["sessionid", "auth_token", "lang", "X-Api-Key"]);
    let (out, _) = run(&["extra_patterns=lang, theme"]).await.unwrap();
    assert!(out.cookies.is_empty(), "{:?}", out.cookies);
}

#[tokio::test]
async fn keep_domains_are_untouched_and_only_domains_filter() {
    let (out, _) = run(&["keep_domains=bank.example"]).await.unwrap();
    let text = json(&out);
    assert!(
        text.contains("S3CRET-AUTH") && text.contains("S3CRET-SSN"),
        "{text}"
    );
    assert!(!text.contains("S3CRET-SID"));

    let (out, report) = run(&["only_domains=shop.example"]).await.unwrap();
    assert!(
        out.cookies
            .iter()
            .all(|c| c.domain.ends_with("shop.example")),
        "{:?}",
        out.cookies
    );
    assert_eq!(out.origins.len(), 1);
    assert_eq!(out.origins[0].origin, "https://shop.example");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.action == FindingAction::Filtered && f.location.contains("bank.example"))
    );
}

#[tokio::test]
async fn bad_mode_rejects_the_export_with_the_reason() {
    let e = run(&["mode=shred"]).await.unwrap_err();
    assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("redact.wasm refused the export") && msg.contains("`shred`"),
        "{msg}"
    );
}

#[tokio::test]
async fn call_config_overrides_plugin_config() {
    let rt = runtime();
    let p = rt
        .load_sanitizer(
            &wasm("redact"),
            &Grants::default().with_config(["mode=drop"]).unwrap(),
        )
        .unwrap();
    let ctx = SanitizeContext {
        purpose: "export".into(),
        config: vec![("mode".into(), "redact".into())],
        ..Default::default()
    };
    let (out, _) = p.sanitize(&sample_state(), &ctx).await.unwrap();
    assert_eq!(out.cookies.len(), 5);
}

/// The example in plugins/README.md (built as plugins/notrack) does what the
/// README says.
#[tokio::test]
async fn readme_example_sanitizer_works() {
    let rt = runtime();
    let grants = Grants::default()
        .with_config(["trackers=shop.example"])
        .unwrap();
    let p = rt.load_sanitizer(&wasm("notrack"), &grants).unwrap();
    let (out, report) = p
        .sanitize(&sample_state(), &SanitizeContext::default())
        .await
        .unwrap();
    assert_eq!(out.cookies.len(), 3);
    assert!(
        out.cookies
            .iter()
            .all(|c| !c.domain.ends_with("shop.example"))
    );
    assert_eq!(report.summary, "notrack: dropped 2 tracking cookies");
    let mut private = sample_state();
    private.meta.tags.push("private".into());
    let e = p
        .sanitize(&private, &SanitizeContext::default())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("notrack.wasm refused the export: session is tagged private"),
        "{e}"
    );
}
