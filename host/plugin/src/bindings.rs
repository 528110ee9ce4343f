//! Host bindings generated from `wit/plugin.wit` (one module per world) and
//! the conversions between `sessbundle::state` and the WIT types.

#![allow(clippy::all, missing_docs)]

pub(crate) mod sanitizer {
    wasmtime::component::bindgen!({
        world: "sanitizer",
        path: "../../wit",
        exports: { default: async },
    });
}

pub(crate) mod storage {
    wasmtime::component::bindgen!({
        world: "storage-backend",
        path: "../../wit",
        exports: { default: async },
    });
}

pub(crate) mod cleanup {
    wasmtime::component::bindgen!({
        world: "cleanup-strategy",
        path: "../../wit",
        exports: { default: async },
    });
}

use sanitizer::sesshost::plugin::types as w;
use sessbundle::state as s;

/// Why a returned state cannot be accepted.
pub(crate) type Malformed = String;

pub(crate) fn state_to_wit(st: &s::SessionState) -> w::SessionState {
    w::SessionState {
        meta: meta_to_wit(&st.meta),
        cookies: st.cookies.iter().map(cookie_to_wit).collect(),
        origins: st
            .origins
            .iter()
            .map(|o| w::OriginState {
                origin: o.origin.clone(),
                local_storage: o.local_storage.iter().map(item_to_wit).collect(),
                indexed_db: o.indexed_db.iter().map(db_to_wit).collect(),
            })
            .collect(),
        tabs: st
            .tabs
            .iter()
            .map(|t| w::Tab {
                url: t.url.clone(),
                title: t.title.clone(),
                session_storage: t
                    .session_storage
                    .iter()
                    .map(|os| w::OriginStorage {
                        origin: os.origin.clone(),
                        items: os.items.iter().map(item_to_wit).collect(),
                    })
                    .collect(),
                history: t
                    .history
                    .iter()
                    .map(|h| w::HistoryEntry {
                        url: h.url.clone(),
                        title: h.title.clone(),
                    })
                    .collect(),
                current_index: t.current_index,
            })
            .collect(),
        extra: st
            .extra
            .iter()
            .map(|(ns, kv)| w::ExtraNamespace {
                namespace: ns.clone(),
                entries: kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            })
            .collect(),
    }
}

pub(crate) fn state_from_wit(st: w::SessionState) -> Result<s::SessionState, Malformed> {
    let mut origins = Vec::with_capacity(st.origins.len());
    for o in st.origins {
        let mut dbs = Vec::with_capacity(o.indexed_db.len());
        for db in o.indexed_db {
            dbs.push(db_from_wit(db, &o.origin)?);
        }
        origins.push(s::OriginState {
            origin: o.origin,
            local_storage: o.local_storage.into_iter().map(item_from_wit).collect(),
            indexed_db: dbs,
        });
    }
    let mut tabs = Vec::with_capacity(st.tabs.len());
    for t in st.tabs {
        if !t.history.is_empty() && t.current_index as usize >= t.history.len() {
            return Err(format!(
                "tab {}: current-index {} is outside its {} history entries",
                t.url,
                t.current_index,
                t.history.len()
            ));
        }
        tabs.push(s::Tab {
            url: t.url,
            title: t.title,
            session_storage: t
                .session_storage
                .into_iter()
                .map(|os| s::OriginStorage {
                    origin: os.origin,
                    items: os.items.into_iter().map(item_from_wit).collect(),
                })
                .collect(),
            history: t
                .history
                .into_iter()
                .map(|h| s::HistoryEntry {
                    url: h.url,
                    title: h.title,
                })
                .collect(),
            current_index: t.current_index,
        });
    }
    let mut extra = std::collections::BTreeMap::new();
    for ns in st.extra {
        extra
            .entry(ns.namespace)
            .or_insert_with(std::collections::BTreeMap::new)
            .extend(ns.entries);
    }
    Ok(s::SessionState {
        meta: meta_from_wit(st.meta),
        cookies: st.cookies.into_iter().map(cookie_from_wit).collect(),
        origins,
        tabs,
        extra,
    })
}

fn meta_to_wit(m: &s::Meta) -> w::Meta {
    w::Meta {
        name: m.name.clone(),
        created_at: m.created_at,
        updated_at: m.updated_at,
        last_used_at: m.last_used_at,
        expires_at: m.expires_at,
        ttl_secs: m.ttl_secs,
        browser: m.browser.as_ref().map(|b| w::BrowserInfo {
            product: b.product.clone(),
            version: b.version.clone(),
        }),
        user_agent: m.user_agent.clone(),
        viewport: m.viewport.as_ref().map(|v| w::Viewport {
            width: v.width,
            height: v.height,
            device_scale_factor: v.device_scale_factor,
        }),
        locale: m.locale.clone(),
        timezone: m.timezone.clone(),
        tags: m.tags.clone(),
        labels: m
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn meta_from_wit(m: w::Meta) -> s::Meta {
    s::Meta {
        name: m.name,
        created_at: m.created_at,
        updated_at: m.updated_at,
        last_used_at: m.last_used_at,
        expires_at: m.expires_at,
        ttl_secs: m.ttl_secs,
        browser: m.browser.map(|b| s::BrowserInfo {
            product: b.product,
            version: b.version,
        }),
        user_agent: m.user_agent,
        viewport: m.viewport.map(|v| s::Viewport {
            width: v.width,
            height: v.height,
            device_scale_factor: v.device_scale_factor,
        }),
        locale: m.locale,
        timezone: m.timezone,
        tags: m.tags,
        labels: m.labels.into_iter().collect(),
    }
}

fn cookie_to_wit(c: &s::Cookie) -> w::Cookie {
    w::Cookie {
        name: c.name.clone(),
        value: c.value.clone(),
        domain: c.domain.clone(),
        path: c.path.clone(),
        expires: c.expires,
        http_only: c.http_only,
        secure: c.secure,
        same_site: c.same_site.map(|x| match x {
            s::SameSite::Strict => w::SameSite::Strict,
            s::SameSite::Lax => w::SameSite::Lax,
            s::SameSite::None => w::SameSite::None,
        }),
        priority: c.priority.map(|x| match x {
            s::CookiePriority::Low => w::CookiePriority::Low,
            s::CookiePriority::Medium => w::CookiePriority::Medium,
            s::CookiePriority::High => w::CookiePriority::High,
        }),
        source_scheme: c.source_scheme.map(|x| match x {
            s::SourceScheme::Unset => w::SourceScheme::Unset,
            s::SourceScheme::NonSecure => w::SourceScheme::NonSecure,
            s::SourceScheme::Secure => w::SourceScheme::Secure,
        }),
        source_port: c.source_port,
        partition_key: c.partition_key.as_ref().map(|p| w::PartitionKey {
            top_level_site: p.top_level_site.clone(),
            has_cross_site_ancestor: p.has_cross_site_ancestor,
        }),
    }
}

fn cookie_from_wit(c: w::Cookie) -> s::Cookie {
    s::Cookie {
        name: c.name,
        value: c.value,
        domain: c.domain,
        path: c.path,
        expires: c.expires,
        http_only: c.http_only,
        secure: c.secure,
        same_site: c.same_site.map(|x| match x {
            w::SameSite::Strict => s::SameSite::Strict,
            w::SameSite::Lax => s::SameSite::Lax,
            w::SameSite::None => s::SameSite::None,
        }),
        priority: c.priority.map(|x| match x {
            w::CookiePriority::Low => s::CookiePriority::Low,
            w::CookiePriority::Medium => s::CookiePriority::Medium,
            w::CookiePriority::High => s::CookiePriority::High,
        }),
        source_scheme: c.source_scheme.map(|x| match x {
            w::SourceScheme::Unset => s::SourceScheme::Unset,
            w::SourceScheme::NonSecure => s::SourceScheme::NonSecure,
            w::SourceScheme::Secure => s::SourceScheme::Secure,
        }),
        source_port: c.source_port,
        partition_key: c.partition_key.map(|p| s::PartitionKey {
            top_level_site: p.top_level_site,
            has_cross_site_ancestor: p.has_cross_site_ancestor,
        }),
    }
}

fn item_to_wit(i: &s::StorageItem) -> w::StorageItem {
    w::StorageItem {
        key: i.key.clone(),
        value: i.value.clone(),
    }
}

fn item_from_wit(i: w::StorageItem) -> s::StorageItem {
    s::StorageItem {
        key: i.key,
        value: i.value,
    }
}

fn key_path_to_wit(k: &s::KeyPath) -> w::KeyPath {
    match k {
        s::KeyPath::Single(p) => w::KeyPath::Single(p.clone()),
        s::KeyPath::Compound(v) => w::KeyPath::Compound(v.clone()),
    }
}

fn key_path_from_wit(k: w::KeyPath) -> s::KeyPath {
    match k {
        w::KeyPath::Single(p) => s::KeyPath::Single(p),
        w::KeyPath::Compound(v) => s::KeyPath::Compound(v),
    }
}

fn js_json(v: &s::JsValue) -> String {
    // Serialising a JsValue to JSON cannot fail (no maps with non-string
    // keys, no non-finite floats: JsNumber handles those).
    serde_json::to_string(v).unwrap_or_else(|_| r#"{"t":"undefined"}"#.to_string())
}

fn db_to_wit(db: &s::IdbDatabase) -> w::IdbDatabase {
    w::IdbDatabase {
        name: db.name.clone(),
        version: db.version,
        object_stores: db
            .object_stores
            .iter()
            .map(|st| w::IdbObjectStore {
                name: st.name.clone(),
                key_path: st.key_path.as_ref().map(key_path_to_wit),
                auto_increment: st.auto_increment,
                key_generator: st.key_generator,
                indexes: st
                    .indexes
                    .iter()
                    .map(|i| w::IdbIndex {
                        name: i.name.clone(),
                        key_path: key_path_to_wit(&i.key_path),
                        unique: i.unique,
                        multi_entry: i.multi_entry,
                    })
                    .collect(),
                records: st
                    .records
                    .iter()
                    .map(|r| w::IdbRecord {
                        key_json: js_json(&r.key),
                        value_json: js_json(&r.value),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn db_from_wit(db: w::IdbDatabase, origin: &str) -> Result<s::IdbDatabase, Malformed> {
    let mut stores = Vec::with_capacity(db.object_stores.len());
    for st in db.object_stores {
        let mut records = Vec::with_capacity(st.records.len());
        for (i, r) in st.records.into_iter().enumerate() {
            let parse = |what: &str, j: &str| {
                serde_json::from_str::<s::JsValue>(j).map_err(|e| {
                    format!("IndexedDB {origin} {}/{} record {i}: {what} is not a JsValue in JSON form ({e})", db.name, st.name)
                })
            };
            records.push(s::IdbRecord {
                key: parse("key-json", &r.key_json)?,
                value: parse("value-json", &r.value_json)?,
            });
        }
        stores.push(s::IdbObjectStore {
            name: st.name,
            key_path: st.key_path.map(key_path_from_wit),
            auto_increment: st.auto_increment,
            key_generator: st.key_generator,
            indexes: st
                .indexes
                .into_iter()
                .map(|i| s::IdbIndex {
                    name: i.name,
                    key_path: key_path_from_wit(i.key_path),
                    unique: i.unique,
                    multi_entry: i.multi_entry,
                })
                .collect(),
            records,
        });
    }
    Ok(s::IdbDatabase {
        name: db.name,
        version: db.version,
        object_stores: stores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_wit_types() {
        let mut st = s::SessionState::new("rt", 1_700_000_000_000);
        st.meta.labels.insert("team".into(), "a".into());
        st.cookies.push(s::Cookie {
            name: "sid".into(),
            value: "v".into(),
            domain: ".a.example".into(),
            path: "/".into(),
            expires: Some(1.5),
            same_site: Some(s::SameSite::Lax),
            partition_key: Some(s::PartitionKey {
                top_level_site: "https://a.example".into(),
                has_cross_site_ancestor: true,
            }),
            ..Default::default()
        });
        st.origins.push(s::OriginState {
            origin: "https://a.example".into(),
            local_storage: vec![s::StorageItem {
                key: "k".into(),
                value: "v".into(),
            }],
            indexed_db: vec![s::IdbDatabase {
                name: "db".into(),
                version: 3,
                object_stores: vec![s::IdbObjectStore {
                    name: "os".into(),
                    key_path: Some(s::KeyPath::Compound(vec!["a".into(), "b".into()])),
                    records: vec![s::IdbRecord {
                        key: s::JsValue::Number(s::JsNumber(f64::NAN)),
                        value: s::JsValue::Object(vec![(
                            "x".into(),
                            s::JsValue::BigInt("-12".into()),
                        )]),
                    }],
                    ..Default::default()
                }],
            }],
        });
        st.tabs.push(s::Tab {
            url: "https://a.example/".into(),
            history: vec![s::HistoryEntry {
                url: "https://a.example/".into(),
                title: "A".into(),
            }],
            ..Default::default()
        });
        st.extra
            .entry("wf".into())
            .or_default()
            .insert("id".into(), "42".into());
        assert_eq!(state_from_wit(state_to_wit(&st)).unwrap(), st);
    }

    #[test]
    fn bad_record_json_is_malformed() {
        let mut w = state_to_wit(&s::SessionState::new("m", 0));
        w.origins.push(w::OriginState {
            origin: "https://x".into(),
            local_storage: vec![],
            indexed_db: vec![w::IdbDatabase {
                name: "d".into(),
                version: 1,
                object_stores: vec![w::IdbObjectStore {
                    name: "s".into(),
                    key_path: None,
                    auto_increment: false,
                    key_generator: None,
                    indexes: vec![],
                    records: vec![w::IdbRecord {
                        key_json: "1".into(),
                        value_json: "{}".into(),
                    }],
                }],
            }],
        });
        let e = state_from_wit(w).unwrap_err();
        assert!(e.contains("https://x d/s record 0: key-json"), "{e}");
    }
}
