//! Structural checks on a module before and after compilation: WebAssembly header, no
//! imports, one metadata section within the size cap, and the ABI v1 exports.

use fresco_abi::{MAX_METADATA_BYTES, METADATA_SECTION, MetadataError, ModelMetadata, exports};
use wasmparser::{Parser, Payload};
use wasmtime::{ExternType, ValType};

use crate::error::{Error, Result};

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Reads the metadata section of `bytes` and checks the module is import-free.
///
/// This walks section headers only; function bodies are validated by wasmtime when it
/// compiles the module.
pub(crate) fn read_metadata(bytes: &[u8], origin: &str) -> Result<ModelMetadata> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(Error::NotWasm { origin: origin.to_owned() });
    }
    let invalid =
        |e: wasmparser::BinaryReaderError| Error::InvalidWasm { origin: origin.to_owned(), reason: e.to_string() };
    let mut metadata: Option<&[u8]> = None;
    let mut metadata_sections = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding: wasmparser::Encoding::Component, .. } => {
                return Err(Error::InvalidWasm {
                    origin: origin.to_owned(),
                    reason: "this is a component; fresco models are core modules".into(),
                });
            }
            Payload::ImportSection(reader) => {
                if let Some(import) = reader.into_imports().next() {
                    let import = import.map_err(invalid)?;
                    return Err(Error::HasImports {
                        origin: origin.to_owned(),
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                    });
                }
            }
            Payload::CustomSection(section) if section.name() == METADATA_SECTION => {
                metadata_sections += 1;
                let data = section.data();
                if data.len() > MAX_METADATA_BYTES {
                    return Err(Error::Metadata {
                        origin: origin.to_owned(),
                        source: MetadataError::TooLarge { bytes: data.len() },
                    });
                }
                metadata = Some(data);
            }
            _ => {}
        }
    }
    if metadata_sections > 1 {
        return Err(Error::DuplicateMetadata { origin: origin.to_owned(), count: metadata_sections });
    }
    let data = metadata.ok_or_else(|| Error::MissingMetadata { origin: origin.to_owned() })?;
    ModelMetadata::from_json(data).map_err(|source| Error::Metadata { origin: origin.to_owned(), source })
}

/// Checks that the compiled module has the ABI v1 exports with the right types.
pub(crate) fn check_exports(module: &wasmtime::Module, model: &str) -> Result<()> {
    let memory = export(module, model, exports::MEMORY)?;
    match memory {
        ExternType::Memory(m) if !m.is_64() && !m.is_shared() => {}
        other => {
            return Err(Error::ExportType {
                model: model.to_owned(),
                export: exports::MEMORY,
                expected: "an unshared 32-bit memory",
                found: describe(&other),
            });
        }
    }
    check_func(module, model, exports::ABI_VERSION, &[], "func () -> i32")?;
    check_func(module, model, exports::ALLOC, &[ValType::I32], "func (i32) -> i32")?;
    check_func(
        module,
        model,
        exports::PREDICT,
        &[ValType::I32, ValType::I32, ValType::I32],
        "func (i32, i32, i32) -> i32",
    )
}

fn export(module: &wasmtime::Module, model: &str, name: &'static str) -> Result<ExternType> {
    module.get_export(name).ok_or_else(|| Error::MissingExport { model: model.to_owned(), export: name })
}

fn check_func(
    module: &wasmtime::Module,
    model: &str,
    name: &'static str,
    params: &[ValType],
    expected: &'static str,
) -> Result<()> {
    let ty = export(module, model, name)?;
    let ok = match &ty {
        ExternType::Func(f) => {
            let p: Vec<ValType> = f.params().collect();
            let r: Vec<ValType> = f.results().collect();
            p.len() == params.len()
                && p.iter().zip(params).all(|(a, b)| ValType::eq(a, b))
                && r.len() == 1
                && r[0].is_i32()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::ExportType { model: model.to_owned(), export: name, expected, found: describe(&ty) })
    }
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => {
            let list = |it: &mut dyn Iterator<Item = ValType>| it.map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
            format!("func ({}) -> ({})", list(&mut f.params()), list(&mut f.results()))
        }
        ExternType::Memory(m) => {
            format!("a {}-bit{} memory", if m.is_64() { 64 } else { 32 }, if m.is_shared() { " shared" } else { "" })
        }
        ExternType::Global(_) => "a global".into(),
        ExternType::Table(_) => "a table".into(),
        ExternType::Tag(_) => "a tag".into(),
    }
}
