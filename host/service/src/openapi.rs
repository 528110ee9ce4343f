//! The OpenAPI 3.1 document served at `/v1/openapi.json` (kept next to the
//! router; a test checks that every route the router serves is in it).

pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_json_with_every_route() {
        let v: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        let src = include_str!("routes/mod.rs");
        for line in src
            .lines()
            .filter(|l| l.trim_start().starts_with(".route(\""))
        {
            let path = line.split('"').nth(1).unwrap();
            assert!(
                v["paths"].get(path).is_some(),
                "{path} is served but not in openapi.json"
            );
        }
    }
}
