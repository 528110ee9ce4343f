//! Host bindings generated from `wit/plugin.wit` (one module per world) and
//! the conversions between `sessbundle::state` and the WIT types.

#![allow(clippy::all, missing_docs)]

pub(crate) mod sanitizer {
    wasmtime::component::bindgen!({
        world: "sanitizer",
        path: "../../wit",
        exports: { default: async },
        // Parameters borrow from the host's `SessionState` (no deep clone
        // of every string before a call: ~40k allocations for 10k cookies).
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

pub(crate) mod storage {
    wasmtime::component::bindgen!({
        world: "storage-backend",
        path: "../../wit",
        exports: { default: async },
    });
}

/// Storage contract 0.2.0 (conditional writes; `wit/storage-0.2`).
pub(crate) mod storage2 {
    wasmtime::component::bindgen!({
        world: "storage-backend",
        path: "../../wit/storage-0.2",
        exports: { default: async },
    });
}

/// A prepared storage plugin of either contract version.
pub enum StoragePre {
    V1(storage::StorageBackendPre<crate::host::HostState>),
    V2(storage2::StorageBackendPre<crate::host::HostState>),
}

pub(crate) mod cleanup {
    wasmtime::component::bindgen!({
        world: "cleanup-strategy",
        path: "../../wit",
        exports: { default: async },
    });
}

use bumpalo::Bump;
use sanitizer::sesshost::plugin::types as w;
use sessbundle::state as s;

/// Why a returned state cannot be accepted.
pub(crate) type Malformed = String;

/// Borrowed view of a `SessionState` for a call: strings point into the
/// host's state, slices live in `bump` (a few allocations in total instead
/// of one per string).
pub(crate) fn state_to_wit<'a>(
    st: &'a s::SessionState,
    bump: &'a Bump,
) -> w::SessionStateParam<'a> {
    w::SessionStateParam {
        meta: meta_to_wit(&st.meta, bump),
        cookies: bump.alloc_slice_fill_iter(st.cookies.iter().map(cookie_to_wit)),
        origins: bump.alloc_slice_fill_iter(st.origins.iter().map(|o| w::OriginStateParam {
            origin: &o.origin,
            local_storage: items_to_wit(&o.local_storage, bump),
            indexed_db:
                bump.alloc_slice_fill_iter(o.indexed_db.iter().map(|db| db_to_wit(db, bump))),
        })),
        tabs: bump.alloc_slice_fill_iter(st.tabs.iter().map(|t| w::TabParam {
            url: &t.url,
            title: &t.title,
            session_storage: bump.alloc_slice_fill_iter(t.session_storage.iter().map(|os| {
                w::OriginStorageParam {
                    origin: &os.origin,
                    items: items_to_wit(&os.items, bump),
                }
            })),
            history: bump.alloc_slice_fill_iter(t.history.iter().map(|h| w::HistoryEntryParam {
                url: &h.url,
                title: &h.title,
            })),
            current_index: t.current_index,
        })),
        extra: bump.alloc_slice_fill_iter(st.extra.iter().map(|(ns, kv)| w::ExtraNamespaceParam {
            namespace: ns,
            entries: bump.alloc_slice_fill_iter(kv.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        })),
    }
}

fn items_to_wit<'a>(items: &'a [s::StorageItem], bump: &'a Bump) -> &'a [w::StorageItemParam<'a>] {
    bump.alloc_slice_fill_iter(items.iter().map(|i| w::StorageItemParam {
        key: &i.key,
        value: &i.value,
    }))
}

pub(crate) fn state_from_wit(st: w::SessionStateResult) -> Result<s::SessionState, Malformed> {
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

fn meta_to_wit<'a>(m: &'a s::Meta, bump: &'a Bump) -> w::MetaParam<'a> {
    w::MetaParam {
        name: &m.name,
        created_at: m.created_at,
        updated_at: m.updated_at,
        last_used_at: m.last_used_at,
        expires_at: m.expires_at,
        ttl_secs: m.ttl_secs,
        browser: m.browser.as_ref().map(|b| w::BrowserInfoParam {
            product: &b.product,
            version: &b.version,
        }),
        user_agent: m.user_agent.as_deref(),
        viewport: m.viewport.as_ref().map(|v| w::Viewport {
            width: v.width,
            height: v.height,
            device_scale_factor: v.device_scale_factor,
        }),
        locale: m.locale.as_deref(),
        timezone: m.timezone.as_deref(),
        tags: bump.alloc_slice_fill_iter(m.tags.iter().map(String::as_str)),
        labels: bump.alloc_slice_fill_iter(m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }
}

fn meta_from_wit(m: w::MetaResult) -> s::Meta {
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

fn cookie_to_wit(c: &s::Cookie) -> w::CookieParam<'_> {
    w::CookieParam {
        name: &c.name,
        value: &c.value,
        domain: &c.domain,
        path: &c.path,
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
        partition_key: c.partition_key.as_ref().map(|p| w::PartitionKeyParam {
            top_level_site: &p.top_level_site,
            has_cross_site_ancestor: p.has_cross_site_ancestor,
        }),
    }
}

fn cookie_from_wit(c: w::CookieResult) -> s::Cookie {
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

fn item_from_wit(i: w::StorageItemResult) -> s::StorageItem {
    s::StorageItem {
        key: i.key,
        value: i.value,
    }
}

fn key_path_to_wit<'a>(k: &'a s::KeyPath, bump: &'a Bump) -> w::KeyPathParam<'a> {
    match k {
        s::KeyPath::Single(p) => w::KeyPathParam::Single(p),
        s::KeyPath::Compound(v) => {
            w::KeyPathParam::Compound(bump.alloc_slice_fill_iter(v.iter().map(String::as_str)))
        }
    }
}

fn key_path_from_wit(k: w::KeyPathResult) -> s::KeyPath {
    match k {
        w::KeyPathResult::Single(p) => s::KeyPath::Single(p),
        w::KeyPathResult::Compound(v) => s::KeyPath::Compound(v),
    }
}

fn js_json(v: &s::JsValue) -> String {
    // Serialising a JsValue to JSON cannot fail (no maps with non-string
    // keys, no non-finite floats: JsNumber handles those).
    serde_json::to_string(v).unwrap_or_else(|_| r#"{"t":"undefined"}"#.to_string())
}

fn db_to_wit<'a>(db: &'a s::IdbDatabase, bump: &'a Bump) -> w::IdbDatabaseParam<'a> {
    w::IdbDatabaseParam {
        name: &db.name,
        version: db.version,
        object_stores: bump.alloc_slice_fill_iter(db.object_stores.iter().map(|st| {
            w::IdbObjectStoreParam {
                name: &st.name,
                key_path: st.key_path.as_ref().map(|k| key_path_to_wit(k, bump)),
                auto_increment: st.auto_increment,
                key_generator: st.key_generator,
                indexes: bump.alloc_slice_fill_iter(st.indexes.iter().map(|i| w::IdbIndexParam {
                    name: &i.name,
                    key_path: key_path_to_wit(&i.key_path, bump),
                    unique: i.unique,
                    multi_entry: i.multi_entry,
                })),
                records: bump.alloc_slice_fill_iter(st.records.iter().map(|r| w::IdbRecordParam {
                    key_json: bump.alloc_str(&js_json(&r.key)),
                    value_json: bump.alloc_str(&js_json(&r.value)),
                })),
            }
        })),
    }
}

fn db_from_wit(db: w::IdbDatabaseResult, origin: &str) -> Result<s::IdbDatabase, Malformed> {
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
    fn bad_record_json_is_malformed() {
        let mut w = w::SessionStateResult {
            meta: w::MetaResult {
                name: "m".into(),
                created_at: 0,
                updated_at: 0,
                last_used_at: None,
                expires_at: None,
                ttl_secs: None,
                browser: None,
                user_agent: None,
                viewport: None,
                locale: None,
                timezone: None,
                tags: vec![],
                labels: vec![],
            },
            cookies: vec![],
            origins: vec![],
            tabs: vec![],
            extra: vec![],
        };
        w.origins.push(w::OriginStateResult {
            origin: "https://x".into(),
            local_storage: vec![],
            indexed_db: vec![w::IdbDatabaseResult {
                name: "d".into(),
                version: 1,
                object_stores: vec![w::IdbObjectStoreResult {
                    name: "s".into(),
                    key_path: None,
                    auto_increment: false,
                    key_generator: None,
                    indexes: vec![],
                    records: vec![w::IdbRecordResult {
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
