//! One sandboxed instance of a model: a wasmtime `Store` with its memory limit, the
//! typed ABI functions, and input/output buffers reused across calls.

use fresco_abi::{exports, status};
use wasmtime::{ResourceLimiter, Store, Trap, TypedFunc};

use crate::engine::EngineInner;
use crate::error::{Error, Result};

/// Largest table a model may grow to. Models have no reason to grow tables at all.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Per-store state: the memory limiter and what it refused.
pub(crate) struct StoreState {
    memory_limit: usize,
    refused_memory: Option<usize>,
}

impl ResourceLimiter for StoreState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            // Trap rather than return -1 from memory.grow: a model that needs more memory
            // than allowed cannot produce a correct answer, and the trap carries the reason.
            self.refused_memory = Some(desired);
            return Err(wasmtime::format_err!("memory limit of {} bytes exceeded", self.memory_limit));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

pub(crate) struct Instance {
    store: Store<StoreState>,
    memory: wasmtime::Memory,
    alloc: TypedFunc<i32, i32>,
    predict: TypedFunc<(i32, i32, i32), i32>,
    abi_version: TypedFunc<(), i32>,
    /// Offsets of the reusable buffers and how many rows they hold.
    in_ptr: usize,
    out_ptr: usize,
    capacity_rows: usize,
}

impl Instance {
    pub(crate) fn new(engine: &EngineInner, module: &wasmtime::Module, model: &str) -> Result<Self> {
        let mut store = Store::new(
            &engine.wasmtime,
            StoreState { memory_limit: engine.limits.max_memory_bytes, refused_memory: None },
        );
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        store.set_epoch_deadline(engine.limits.deadline_ticks());
        let instance = wasmtime::Instance::new(&mut store, module, &[]).map_err(|e| {
            match classify(&mut store, e, engine, model) {
                Error::Trap { model, trap } => Error::Instantiate { model, reason: trap },
                other => other,
            }
        })?;
        let mistyped = |export: &'static str, e: wasmtime::Error| Error::ExportType {
            model: model.to_owned(),
            export,
            expected: "the ABI v1 signature",
            found: format!("{e:#}"),
        };
        let memory = instance
            .get_memory(&mut store, exports::MEMORY)
            .ok_or_else(|| Error::MissingExport { model: model.to_owned(), export: exports::MEMORY })?;
        let alloc = instance.get_typed_func(&mut store, exports::ALLOC).map_err(|e| mistyped(exports::ALLOC, e))?;
        let predict =
            instance.get_typed_func(&mut store, exports::PREDICT).map_err(|e| mistyped(exports::PREDICT, e))?;
        let abi_version =
            instance.get_typed_func(&mut store, exports::ABI_VERSION).map_err(|e| mistyped(exports::ABI_VERSION, e))?;
        engine.counters.instances_created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Instance { store, memory, alloc, predict, abi_version, in_ptr: 0, out_ptr: 0, capacity_rows: 0 })
    }

    /// Calls `fresco_abi_version()`.
    pub(crate) fn abi_version(&mut self, engine: &EngineInner, model: &str) -> Result<i32> {
        self.store.set_epoch_deadline(engine.limits.deadline_ticks());
        self.abi_version.call(&mut self.store, ()).map_err(|e| classify(&mut self.store, e, engine, model))
    }

    /// Scores `rows` rows: `input` holds `rows * n_in` values, `output` receives
    /// `rows * n_out` values.
    pub(crate) fn score(
        &mut self,
        engine: &EngineInner,
        model: &str,
        input: &[f64],
        rows: usize,
        output: &mut [f64],
    ) -> Result<()> {
        let n_in = input.len() / rows;
        let n_out = output.len() / rows;
        if rows > self.capacity_rows {
            self.reserve(engine, model, rows, n_in, n_out)?;
        }
        let in_bytes = input.len() * 8;
        let out_bytes = output.len() * 8;
        {
            let mem = self.memory.data_mut(&mut self.store);
            let memory = mem.len();
            let Some(dst) = mem.get_mut(self.in_ptr..self.in_ptr + in_bytes) else {
                return Err(Error::BadAllocation {
                    model: model.to_owned(),
                    bytes: in_bytes,
                    offset: self.in_ptr as i64,
                    memory,
                });
            };
            for (chunk, v) in dst.chunks_exact_mut(8).zip(input) {
                chunk.copy_from_slice(&v.to_le_bytes());
            }
        }
        self.store.set_epoch_deadline(engine.limits.deadline_ticks());
        // Offsets and counts fit in i32: `reserve` checked them against the memory cap,
        // which is below 4 GiB for a 32-bit memory.
        let code = self
            .predict
            .call(&mut self.store, (self.in_ptr as i32, rows as i32, self.out_ptr as i32))
            .map_err(|e| classify(&mut self.store, e, engine, model))?;
        if code != status::OK {
            return Err(Error::ModelStatus {
                model: model.to_owned(),
                code,
                meaning: status::describe(code).unwrap_or("model-defined"),
            });
        }
        let mem = self.memory.data(&self.store);
        let Some(src) = mem.get(self.out_ptr..self.out_ptr + out_bytes) else {
            return Err(Error::BadAllocation {
                model: model.to_owned(),
                bytes: out_bytes,
                offset: self.out_ptr as i64,
                memory: mem.len(),
            });
        };
        for (v, chunk) in output.iter_mut().zip(src.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            let x = f64::from_le_bytes(b);
            // Which NaN a computation made differs by CPU: the host hands out one NaN
            // (design.md, "Hosts").
            *v = if x.is_nan() { f64::NAN } else { x };
        }
        Ok(())
    }

    /// Asks the model for buffers holding at least `rows` rows, growing geometrically so
    /// that a slowly rising batch size does not allocate on every call.
    fn reserve(&mut self, engine: &EngineInner, model: &str, rows: usize, n_in: usize, n_out: usize) -> Result<()> {
        let limit = engine.limits.max_memory_bytes;
        let row_bytes = (n_in + n_out) * 8;
        let too_large = |rows: usize| Error::BatchTooLarge {
            model: model.to_owned(),
            rows,
            bytes: rows.saturating_mul(row_bytes),
            limit,
        };
        if rows.saturating_mul(row_bytes) > limit || rows > i32::MAX as usize {
            return Err(too_large(rows));
        }
        let max_rows = limit.checked_div(row_bytes).unwrap_or(rows);
        let wanted = rows.max(self.capacity_rows.saturating_mul(2)).max(16).min(max_rows).max(rows);
        self.in_ptr = self.alloc(engine, model, wanted * n_in * 8)?;
        self.out_ptr = self.alloc(engine, model, wanted * n_out * 8)?;
        self.capacity_rows = wanted;
        Ok(())
    }

    fn alloc(&mut self, engine: &EngineInner, model: &str, bytes: usize) -> Result<usize> {
        self.store.set_epoch_deadline(engine.limits.deadline_ticks());
        let request = i32::try_from(bytes).map_err(|_| Error::BatchTooLarge {
            model: model.to_owned(),
            rows: 0,
            bytes,
            limit: engine.limits.max_memory_bytes,
        })?;
        let offset =
            self.alloc.call(&mut self.store, request).map_err(|e| classify(&mut self.store, e, engine, model))?;
        let memory = self.memory.data_size(&self.store);
        // The guest returns a signed i32; a valid offset is non-negative as an unsigned
        // 32-bit address and leaves room for the whole region.
        let start = offset as u32 as usize;
        if offset == 0 && bytes > 0 || start.checked_add(bytes).is_none_or(|end| end > memory) {
            return Err(Error::BadAllocation { model: model.to_owned(), bytes, offset: i64::from(offset), memory });
        }
        Ok(start)
    }
}

/// Turns a wasmtime error into the typed error that explains it.
fn classify(store: &mut Store<StoreState>, err: wasmtime::Error, engine: &EngineInner, model: &str) -> Error {
    if let Some(requested) = store.data_mut().refused_memory.take() {
        return Error::MemoryLimit { model: model.to_owned(), requested, limit: engine.limits.max_memory_bytes };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Error::DeadlineExceeded { model: model.to_owned(), deadline: engine.limits.deadline },
        Some(Trap::StackOverflow) => Error::StackOverflow { model: model.to_owned() },
        Some(trap) => Error::Trap { model: model.to_owned(), trap: trap.to_string() },
        None => Error::Trap { model: model.to_owned(), trap: format!("{err:#}") },
    }
}
