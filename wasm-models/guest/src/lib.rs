//! Write fresco models in Rust.
//!
//! A model author implements one function, `predict(row, out)`, writes the metadata as
//! JSON, and invokes [`export_model!`]. Built for `wasm32-unknown-unknown` as a `cdylib`,
//! the crate becomes a fresco ABI v1 module: the `fresco_abi_version`, `fresco_alloc`
//! and `fresco_predict` exports, and a `fresco.model` custom section holding the JSON.
//!
//! ```
//! /// Expected minutes: 4 per km plus preparation time; unknown preparation counts as 10.
//! fn predict(row: &[f64], out: &mut [f64]) {
//!     let prep = if row[1].is_nan() { 10.0 } else { row[1] };
//!     out[0] = 4.0 * row[0] + prep;
//! }
//!
//! fresco_guest::export_model! {
//!     metadata: br#"{"name": "eta-rule", "version": "1", "abi": 1, "kind": "custom",
//!         "inputs": [{"name": "distance_km", "type": "f64"}, {"name": "prep_min", "type": "f64"}],
//!         "outputs": ["eta_min"], "source": {"format": "rust"}}"#,
//!     inputs: 2,
//!     outputs: 1,
//!     predict: predict,
//! }
//!
//! // On the host the exports are not generated, but the pieces can be tested:
//! let mut out = [0.0];
//! predict(&[2.0, f64::NAN], &mut out);
//! assert_eq!(out, [18.0]);
//! fresco_guest::check_metadata(FRESCO_MODEL_METADATA, 2, 1).unwrap();
//! ```
//!
//! Build it with `cargo build --release --target wasm32-unknown-unknown`; the module is
//! `target/wasm32-unknown-unknown/release/<crate>.wasm`.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;

pub use fresco_abi as abi;

/// Returns the start of a fresh, 8-byte aligned region of `bytes` bytes, or 0 when
/// `bytes` is negative. Regions are never freed: hosts allocate their buffers once per
/// instance and reuse them.
pub fn alloc(bytes: i32) -> i32 {
    let Ok(bytes) = usize::try_from(bytes) else { return 0 };
    let words: Vec<u64> = Vec::with_capacity(bytes.div_ceil(8).max(1));
    let ptr = words.leak().as_mut_ptr();
    ptr as usize as i32
}

/// Runs `predict` over `n_rows` rows at `in_ptr`, writing to `out_ptr`; returns an ABI
/// status code.
///
/// # Safety
///
/// `in_ptr` and `out_ptr` must be regions returned by [`alloc()`] large enough for
/// `n_rows * N_IN` and `n_rows * N_OUT` `f64` values. The host guarantees this.
pub unsafe fn run<const N_IN: usize, const N_OUT: usize>(
    in_ptr: i32,
    n_rows: i32,
    out_ptr: i32,
    predict: fn(&[f64], &mut [f64]),
) -> i32 {
    let Ok(rows) = usize::try_from(n_rows) else { return abi::status::INVALID_ARGUMENT };
    let (input, output) = (in_ptr as usize as *const f64, out_ptr as usize as *mut f64);
    if input.align_offset(8) != 0 || output.align_offset(8) != 0 {
        return abi::status::INVALID_ARGUMENT;
    }
    // SAFETY: the caller guarantees both regions are valid, aligned, and disjoint.
    let (input, output) = unsafe {
        (core::slice::from_raw_parts(input, rows * N_IN), core::slice::from_raw_parts_mut(output, rows * N_OUT))
    };
    if N_IN == 0 {
        output.chunks_exact_mut(N_OUT).for_each(|out| predict(&[], out));
    } else {
        for (row, out) in input.chunks_exact(N_IN).zip(output.chunks_exact_mut(N_OUT)) {
            predict(row, out);
        }
    }
    abi::status::OK
}

/// Copies a byte string into an array, for placing it in a custom section.
#[doc(hidden)]
pub const fn __to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Checks that a metadata document parses, validates, and declares `n_inputs` inputs
/// and `n_outputs` outputs. Call it from a host-side test of the model crate.
pub fn check_metadata(json: &[u8], n_inputs: usize, n_outputs: usize) -> Result<(), abi::MetadataError> {
    let meta = abi::ModelMetadata::from_json(json)?;
    for (field, declared, handled) in
        [("inputs", meta.inputs.len(), n_inputs), ("outputs", meta.outputs.len(), n_outputs)]
    {
        if declared != handled {
            return Err(abi::MetadataError::Invalid {
                field,
                reason: alloc::format!("{declared} declared; the code handles {handled}"),
            });
        }
    }
    Ok(())
}

/// Generates the ABI v1 exports and the `fresco.model` section for a model.
///
/// Arguments: `metadata`, a byte string constant with the JSON metadata (e.g.
/// `include_bytes!("../model.json")`); `inputs` and `outputs`, the row widths; `predict`,
/// a `fn(&[f64], &mut [f64])` scoring one row. Also defines the constant
/// `FRESCO_MODEL_METADATA` so that tests can check the document.
///
/// The exports are generated only when compiling for `wasm32`; see the crate docs.
#[macro_export]
macro_rules! export_model {
    (metadata: $meta:expr, inputs: $n_in:expr, outputs: $n_out:expr, predict: $predict:path $(,)?) => {
        /// The model's `fresco.model` metadata document.
        pub const FRESCO_MODEL_METADATA: &[u8] = $meta;

        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "fresco.model")]
        #[used]
        static __FRESCO_MODEL_SECTION: [u8; FRESCO_MODEL_METADATA.len()] = $crate::__to_array(FRESCO_MODEL_METADATA);

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        /// ABI v1: returns the ABI version.
        pub extern "C" fn fresco_abi_version() -> i32 {
            $crate::abi::ABI_VERSION
        }

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        /// ABI v1: reserves a region for the host to write to.
        pub extern "C" fn fresco_alloc(bytes: i32) -> i32 {
            $crate::alloc(bytes)
        }

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        /// ABI v1: scores `n_rows` rows.
        pub extern "C" fn fresco_predict(in_ptr: i32, n_rows: i32, out_ptr: i32) -> i32 {
            // SAFETY: the host passes regions it obtained from `fresco_alloc`, sized for
            // `n_rows` rows, as ABI v1 requires.
            unsafe { $crate::run::<{ $n_in }, { $n_out }>(in_ptr, n_rows, out_ptr, $predict) }
        }
    };
}
