#![no_main]
//! Fuzzes registry manifests, which every replica reads and people edit by hand: a
//! manifest that parses names plain directory names and reads back as itself.

use fresco::registry::Manifest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_json(data) {
        let names = std::iter::once(&manifest.serving).chain(&manifest.previous);
        for name in names {
            assert!(!name.contains('/') && !name.starts_with('.'), "{name:?} climbs out of the registry");
        }
        let again = Manifest::from_json(&manifest.to_json()).expect("a manifest reads back");
        assert_eq!(again, manifest);
    }
});
