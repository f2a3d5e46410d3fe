//! What a WebAssembly component says made it: the `producers` custom
//! sections (of the component and of every core module inside it) name the
//! source languages, the tools that processed it (the compiler,
//! `wit-component`) and the SDKs it was built with (`wit-bindgen`), each
//! with its version. A component's SBOM lists them.

use wasmparser::{KnownCustom, Parser, Payload};

/// One value of a `producers` field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Producer {
    /// `language`, `processed-by` or `sdk`.
    pub field: String,
    pub name: String,
    pub version: String,
}

/// Every producer the component's sections name, once each, in order.
pub fn of(bytes: &[u8]) -> Vec<Producer> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CustomSection(section)) = payload else { continue };
        let KnownCustom::Producers(fields) = section.as_known() else { continue };
        for field in fields.into_iter().flatten() {
            for value in field.values.into_iter().flatten() {
                found.push(Producer {
                    field: field.name.into(),
                    name: value.name.into(),
                    version: value.version.into(),
                });
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rust_component_names_the_tools_that_made_it() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/guest/tool_component.wasm");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (make guests builds it)", path.display()));
        let producers = super::of(&bytes);
        let named = |field: &str, name: &str| producers.iter().any(|p| p.field == field && p.name == name);
        // Built stripped (the guest profile): rustc's own entries go with the
        // debug sections; what wit-component adds after stays.
        assert!(named("processed-by", "wit-bindgen-rust") && named("processed-by", "wit-component"), "{producers:?}");
        assert!(producers.iter().all(|p| !p.version.is_empty()), "{producers:?}");
        assert!(super::of(b"not wasm").is_empty());
    }
}
