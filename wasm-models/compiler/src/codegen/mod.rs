//! WebAssembly code generation: ABI v1 exports over the node tables of [`layout`].
//!
//! Memory map (bytes):
//!
//! ```text
//! 0 .. 1024          unused (keeps small offsets invalid)
//! NODES ..           node records, 16 bytes each (or the branch layout's constant pool)
//! ROOTS ..           root node index per tree slot (u32)
//! DEPTHS ..          height per tree slot (u32)
//! BITSETS ..         category bitset words (u32)
//! EXPF ..            glibc expf table (32 × u64), when an f32 transform needs it
//! SCRATCH ..         group scores of the block of rows being scored (f64 each)
//! RANK TABLES ..     per ranked feature, its sorted thresholds as integer keys
//! RANKS ..           threshold ranks of the block's rows (two i32 per feature)
//! ORDER ..           the branch layout's row order (see `order`): the block's rows
//!                    sorted (i32 indices, twice), the sort's counts, each row's
//!                    position, and the rows' inputs and ranks in that order
//! HEAP ..            fresco_alloc's bump allocator
//! ```
//!
//! Generated functions mirror `fresco_trees::eval` and `fresco_trees::math` step by
//! step, so a compiled module and the native evaluator agree bit for bit.

use fresco_trees::{Ensemble, Precision, Transform, math};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, InstructionSink, MemArg, MemorySection, MemoryType, Module, TypeSection, ValType,
};

use crate::branches;
use crate::layout::{NODE_BYTES, Placement, Tables, kind};
use crate::ranks::{Ranks, Selection};

mod order;
mod tables;
mod transforms;

use tables::{rank_row, rank_walk, table_walk};
use transforms::{exp, expf, sigmoidf, transform};

/// How trees become code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Nested branches with immediate thresholds (fast; code grows with the model).
    Branches,
    /// Node tables in linear memory walked by one loop (compact; loads fast at any size).
    Tables,
}

/// Models up to this many nodes use [`Layout::Branches`]; larger ones [`Layout::Tables`],
/// whose load time does not grow with the model (see `benches/README.md`).
pub const BRANCHES_MAX_NODES: usize = 300_000;

impl Layout {
    /// The layout chosen by model size.
    pub fn for_size(total_nodes: usize) -> Layout {
        if total_nodes <= BRANCHES_MAX_NODES { Layout::Branches } else { Layout::Tables }
    }
}

/// How one group's sum is computed.
enum GroupCode {
    /// Walk tree slots `start..end` of the node tables.
    Table(u32, u32),
    /// Call these chunk functions in order.
    Chunks(Vec<u32>),
}

const DATA_BASE: u32 = 1024;
const PAGE: u64 = 65536;

/// Function indices.
mod func {
    pub const ABI_VERSION: u32 = 0;
    pub const ALLOC: u32 = 1;
    pub const PREDICT: u32 = 2;
    pub const EXP: u32 = 3;
    pub const EXPF: u32 = 4;
    pub const SIGMOIDF: u32 = 5;
    /// First of the per-ensemble scoring functions.
    pub const FIRST_ENSEMBLE: u32 = 6;
}

/// Type indices.
mod ty {
    pub const VOID_I32: u32 = 0; // () -> i32
    pub const I32_I32: u32 = 1; // (i32) -> i32
    pub const PREDICT: u32 = 2; // (i32, i32, i32) -> i32
    pub const F64_F64: u32 = 3;
    pub const F32_F32: u32 = 4;
    pub const ENSEMBLE: u32 = 5; // (in: i32, rows: i32, out: i32) -> ()
    pub const CHUNK: u32 = 6; // (row: i32, rows: i32, score: i32, ranks: i32) -> ()
}

/// Addresses of the regions in the memory map, and the row-block geometry.
struct Map {
    nodes: u32,
    roots: u32,
    /// Height of each tree slot (u32), for the lockstep walk.
    depths: u32,
    expf: u32,
    /// Group scores of a block of rows: `block × max_groups` f64 values.
    groups: u32,
    max_groups: u32,
    /// Rows scored together: each chunk of trees runs over the whole block while its
    /// code is hot in the instruction cache.
    block: u32,
    /// Bytes per input row and per output row.
    in_stride: u32,
    out_stride: u32,
    /// Threshold ranks of a block of rows: `block × rank_stride` bytes.
    ranks: u32,
    rank_stride: u32,
    /// The branch layout's row order ([`order`]): `block` i32 row indices, then as
    /// many for the sort's passes.
    order: u32,
    /// The sort's count per rank (i32 each).
    order_counts: u32,
    /// Each row's position in the order (i32 each).
    positions: u32,
    /// The block's inputs and ranks, rows in the order.
    sorted_in: u32,
    sorted_ranks: u32,
    /// Leaf value per tree slot of the row being walked (f64), then a spare slot.
    tree_values: u32,
    /// The spare slot's index: where a lane with no tree left writes.
    parked: u32,
    heap: u32,
}

/// Group scores held per block: the block shrinks for models with many groups.
const BLOCK_GROUP_SLOTS: usize = 16_384;
/// Bytes of a block's rows that every pass of a chunk or tree over the block reads (the
/// rows' ranks, inputs and group scores): the block holds as many rows as fit, so that
/// they can stay in a core's L2 cache from one pass to the next (twice as many rows of
/// 30 inputs cost the small benchmark model 5–7 % on a 2 MiB L2). The block shrinks for
/// models with many inputs: 2,048 rows of 30 inputs, 8,192 of 7.
const BLOCK_BYTES: usize = 1 << 20;
/// Blocks of [`BLOCK_BYTES`] are rounded down to a multiple of this many rows.
const BLOCK_ROUNDING: usize = 256;
/// Most rows per block. Each tree's code or node records are fetched once per block and
/// then serve every row of it, so large blocks pay once the model outgrows the caches
/// (2,048 rows: 1.4× the throughput of 64 on a 500-tree model, 2.2× on 2,000 trees), and
/// a block sorted by rank has longer runs of one rank (8,192 rows of 7 inputs instead of
/// 2,048: 1.37× → 1.5× lleaves on the ETA-like 500-tree model); see `benches/README.md`.
const MAX_BLOCK: usize = 8192;

/// Rows per block for rows of `rank_stride` bytes of ranks, `n_inputs` inputs and
/// `max_groups` group scores (see [`BLOCK_BYTES`]).
fn block_rows(rank_stride: usize, n_inputs: usize, max_groups: usize) -> usize {
    let row_bytes = rank_stride + 8 * n_inputs + 8 * max_groups;
    let rows = (BLOCK_GROUP_SLOTS / max_groups.max(1)).min(BLOCK_BYTES / row_bytes.max(1));
    let rounded = if rows >= BLOCK_ROUNDING { rows - rows % BLOCK_ROUNDING } else { rows };
    rounded.clamp(1, MAX_BLOCK)
}

/// Generates the module's code and data; `metadata` becomes the `fresco.model` section.
pub fn generate(
    ensembles: &[&Ensemble],
    metadata: &str,
    layout: Layout,
    mut progress: impl FnMut(usize),
) -> Result<Vec<u8>, String> {
    let n_inputs = ensembles.first().map_or(0, |e| e.n_features());
    let bitset_words = Tables::bitset_words(ensembles);
    let tables_mode = layout == Layout::Tables;
    let n_nodes: usize = if tables_mode { Tables::node_slots(ensembles) } else { 0 };
    // The branch layout keeps its constant pool where the node tables would be.
    let pool_bytes: usize = if tables_mode { 0 } else { ensembles.iter().map(|e| branches::pool_bytes(e)).sum() };
    let n_trees: usize = if tables_mode { ensembles.iter().map(|e| e.trees.len()).sum() } else { 0 };
    let max_groups = ensembles.iter().map(|e| e.n_groups).max().unwrap_or(1);
    // The branch layout compares ranks of inputs among thresholds (see `ranks`).
    // The node tables do so only where every split can, ranking every feature (or
    // giving it a category word).
    let mut ranks: Vec<Ranks> = ensembles
        .iter()
        .map(|e| {
            if !tables_mode {
                return Ranks::build(e, 0, Selection::Profitable);
            }
            let all = Ranks::build(e, 0, Selection::All);
            if all.complete(e) { all } else { Ranks::build(e, 0, Selection::None) }
        })
        .collect();
    let rank_table_bytes: usize = ranks.iter().map(|r| r.data.len()).sum();

    let size = |n: usize, each: usize| n.checked_mul(each).and_then(|b| u32::try_from(b).ok());
    let too_large = || "the model's tables do not fit in a 4 GiB memory".to_string();
    let nodes_bytes = size(n_nodes * NODE_BYTES as usize + pool_bytes, 1).ok_or_else(too_large)?;
    let roots_bytes = size(n_trees, 4).ok_or_else(too_large)?;
    let bitset_bytes = size(bitset_words, 4).ok_or_else(too_large)?;
    // One more word than the features' ranks: the zero word of rank-walked leaves.
    let rank_stride = crate::layout::zero_rank_word(n_inputs) + crate::ranks::RANK_BYTES;
    let block = block_rows(rank_stride as usize, n_inputs, max_groups);
    let scratch_bytes = size(max_groups * block, 8).ok_or_else(too_large)?;
    let n_outputs: usize = ensembles.iter().map(|e| e.n_outputs()).sum();
    let add = |a: u32, b: u32| a.checked_add(b).map(|v| v.next_multiple_of(8)).ok_or_else(too_large);
    let nodes = DATA_BASE;
    let roots = add(nodes, nodes_bytes)?;
    let depths = add(roots, roots_bytes)?;
    let bitsets = add(depths, roots_bytes)?;
    let expf_table = add(bitsets, bitset_bytes)?;
    let scratch = add(expf_table, 32 * 8)?;
    let rank_tables = add(scratch, scratch_bytes)?;
    let rank_scratch = add(rank_tables, size(rank_table_bytes, 1).ok_or_else(too_large)?)?;
    let rank_scratch_bytes =
        if ranks.iter().any(Ranks::any) { size(block, rank_stride as usize).ok_or_else(too_large)? } else { 0 };
    // The branch layout takes a block's rows in an order sorted by rank (see `order`).
    let orders: Vec<Vec<order::Key>> =
        ensembles.iter().zip(&ranks).map(|(e, r)| if tables_mode { Vec::new() } else { order::keys(e, r) }).collect();
    let sorts = orders.iter().any(|k| !k.is_empty());
    let per_block = |each: usize| if sorts { size(block, each).ok_or_else(too_large) } else { Ok(0) };
    let row_order = add(rank_scratch, rank_scratch_bytes)?;
    let order_counts = add(row_order, per_block(8)?)?;
    let most_distinct = orders.iter().flatten().map(|k| k.distinct() as usize).max().unwrap_or(0);
    let positions = add(order_counts, size(most_distinct, 4).ok_or_else(too_large)?)?;
    let sorted_in = add(positions, per_block(4)?)?;
    let sorted_ranks = add(sorted_in, per_block(n_inputs * 8)?)?;
    // One leaf value per tree slot (and a spare), for rows walked through trees in lanes.
    let tree_values = add(sorted_ranks, per_block(rank_stride as usize)?)?;
    let tree_values_bytes = if tables_mode { size(n_trees + 1, 8).ok_or_else(too_large)? } else { 0 };
    let heap = add(tree_values, tree_values_bytes)?;
    let mut rank_data = Vec::with_capacity(rank_table_bytes);
    for r in &mut ranks {
        r.base = rank_tables + rank_data.len() as u32;
        rank_data.extend_from_slice(&r.data);
    }
    let map = Map {
        nodes,
        roots,
        depths,
        expf: expf_table,
        groups: scratch,
        max_groups: max_groups as u32,
        block: block as u32,
        in_stride: (n_inputs * 8) as u32,
        out_stride: (n_outputs * 8) as u32,
        ranks: rank_scratch,
        rank_stride,
        order: row_order,
        order_counts,
        positions,
        sorted_in,
        sorted_ranks,
        tree_values,
        parked: n_trees as u32,
        heap,
    };

    // Per ensemble, per group: how the group's sum is computed; plus the chunk functions.
    let mut group_code: Vec<Vec<GroupCode>> = Vec::new();
    let mut chunk_functions: Vec<(u32, Function)> = Vec::new();
    let (node_data, root_data, depth_data, bitset_data) = if tables_mode {
        let tables =
            Tables::build(ensembles, &Placement { bitsets_base: bitsets, nodes_base: nodes }, &ranks, progress)?;
        group_code = tables.groups.iter().map(|g| g.iter().map(|&(a, b)| GroupCode::Table(a, b)).collect()).collect();
        (tables.nodes, tables.roots, tables.depths, tables.bitsets)
    } else {
        let mut data = branches::Data {
            bitsets: Vec::with_capacity(bitset_words),
            bitsets_base: bitsets,
            pool: Vec::with_capacity(pool_bytes),
            pool_base: map.nodes,
        };
        let mut next = func::FIRST_ENSEMBLE + ensembles.len() as u32;
        let strides = branches::Strides { input: map.in_stride, score: map.max_groups * 8, ranks: map.rank_stride };
        let mut done = 0usize;
        for (i, e) in ensembles.iter().enumerate() {
            let mut groups = Vec::with_capacity(e.n_groups);
            for group in branches::chunks(e) {
                let mut calls = Vec::with_capacity(group.len());
                for chunk in &group {
                    chunk_functions
                        .push((ty::CHUNK, branches::chunk_function(e, chunk, &strides, &ranks[i], &mut data)));
                    calls.push(next);
                    next += 1;
                    done += chunk.trees.len();
                    progress(done);
                }
                groups.push(GroupCode::Chunks(calls));
            }
            group_code.push(groups);
        }
        (data.pool, Vec::new(), Vec::new(), data.bitsets)
    };

    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32, ValType::I32, ValType::I32], [ValType::I32]);
    types.ty().function([ValType::F64], [ValType::F64]);
    types.ty().function([ValType::F32], [ValType::F32]);
    types.ty().function([ValType::I32, ValType::I32, ValType::I32], []);
    types.ty().function([ValType::I32, ValType::I32, ValType::I32, ValType::I32], []);
    module.section(&types);

    let mut functions = FunctionSection::new();
    for t in [ty::VOID_I32, ty::I32_I32, ty::PREDICT, ty::F64_F64, ty::F32_F32, ty::F32_F32] {
        functions.function(t);
    }
    for _ in ensembles {
        functions.function(ty::ENSEMBLE);
    }
    for (t, _) in &chunk_functions {
        functions.function(*t);
    }
    module.section(&functions);

    let pages = (u64::from(map.heap) + PAGE).div_ceil(PAGE);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType { minimum: pages, maximum: None, memory64: false, shared: false, page_size_log2: None });
    module.section(&memories);

    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType { val_type: ValType::I32, mutable: true, shared: false },
        &ConstExpr::i32_const(map.heap as i32),
    );
    module.section(&globals);

    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("fresco_abi_version", ExportKind::Func, func::ABI_VERSION);
    exports.export("fresco_alloc", ExportKind::Func, func::ALLOC);
    exports.export("fresco_predict", ExportKind::Func, func::PREDICT);
    module.section(&exports);

    let mut code = CodeSection::new();
    code.function(&abi_version());
    code.function(&alloc());
    code.function(&predict(ensembles, n_inputs, &map));
    code.function(&exp());
    code.function(&expf(&map));
    code.function(&sigmoidf());
    let mut first_output = 0u32;
    for (i, ensemble) in ensembles.iter().enumerate() {
        let keys = orders.get(i).map_or(&[][..], Vec::as_slice);
        code.function(&score_ensemble(ensemble, &group_code[i], ranks.get(i), keys, &map, first_output));
        first_output += ensemble.n_outputs() as u32;
    }
    for (_, f) in &chunk_functions {
        code.function(f);
    }
    module.section(&code);

    let mut data = DataSection::new();
    let le32 = |words: &[u32]| words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    let expf_bytes: Vec<u8> = math::expf_table().iter().flat_map(|w| w.to_le_bytes()).collect();
    // Node tables, or the branch layout's constant pool.
    data.active(0, &ConstExpr::i32_const(map.nodes as i32), node_data);
    if tables_mode {
        data.active(0, &ConstExpr::i32_const(map.roots as i32), le32(&root_data));
        data.active(0, &ConstExpr::i32_const(map.depths as i32), le32(&depth_data));
    }
    data.active(0, &ConstExpr::i32_const(bitsets as i32), le32(&bitset_data));
    data.active(0, &ConstExpr::i32_const(map.expf as i32), expf_bytes);
    if !rank_data.is_empty() {
        data.active(0, &ConstExpr::i32_const(rank_tables as i32), rank_data);
    }
    module.section(&data);

    module.section(&wasm_encoder::CustomSection { name: "fresco.model".into(), data: metadata.as_bytes().into() });
    Ok(module.finish())
}

fn mem(offset: u32, align: u32) -> MemArg {
    MemArg { offset: u64::from(offset), align, memory_index: 0 }
}

fn f64c(s: &mut InstructionSink<'_>, v: f64) {
    s.f64_const(v.into());
}

fn f32c(s: &mut InstructionSink<'_>, v: f32) {
    s.f32_const(v.into());
}

fn abi_version() -> Function {
    let mut f = Function::new([]);
    f.instructions().i32_const(fresco_abi::ABI_VERSION).end();
    f
}

/// Bump allocator: 8-byte aligned regions, growing memory as needed; 0 on failure.
fn alloc() -> Function {
    // params: 0 bytes; locals: 1 start
    let mut f = Function::new([(1, ValType::I32)]);
    let mut s = f.instructions();
    s.local_get(0).i32_const(0).i32_lt_s().if_(BlockType::Empty).i32_const(0).return_().end();
    s.global_get(0).local_set(1);
    // heap += (bytes + 7) & !7, checking for overflow of the 32-bit address space
    s.global_get(0).local_get(0).i32_const(7).i32_add().i32_const(-8).i32_and().i32_add();
    s.global_set(0);
    s.global_get(0).local_get(1).i32_lt_u().if_(BlockType::Empty).i32_const(0).return_().end();
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    // memory.size * 64 KiB >= heap ? done
    s.memory_size(0).i64_extend_i32_u().i64_const(16).i64_shl().global_get(0).i64_extend_i32_u().i64_ge_u().br_if(1);
    s.i32_const(1).memory_grow(0).i32_const(-1).i32_eq().if_(BlockType::Empty).i32_const(0).return_().end();
    s.br(0).end().end();
    s.local_get(1).end();
    f
}

/// `fresco_predict(in, n, out)`: blocks of rows through each ensemble.
fn predict(ensembles: &[&Ensemble], n_inputs: usize, map: &Map) -> Function {
    // params: 0 in, 1 n, 2 out; locals: 3 start, 4 m (rows in block), 5 block in, 6 block out, 7 j
    let mut f = Function::new([(5, ValType::I32)]);
    let mut s = f.instructions();
    s.local_get(1).i32_const(0).i32_lt_s().if_(BlockType::Empty);
    s.i32_const(fresco_abi::status::INVALID_ARGUMENT).return_().end();
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.local_get(3).local_get(1).i32_ge_s().br_if(1);
    // m = min(block, n - start)
    s.i32_const(map.block as i32).local_get(1).local_get(3).i32_sub().local_tee(4).local_get(4);
    s.i32_const(map.block as i32).i32_gt_s().select().local_set(4);
    s.local_get(0).local_get(3).i32_const(map.in_stride as i32).i32_mul().i32_add().local_set(5);
    s.local_get(2).local_get(3).i32_const(map.out_stride as i32).i32_mul().i32_add().local_set(6);
    // f64 ensembles first, then round the block's inputs to f32 in place for the f32 ones.
    let mut rounded = false;
    let mut order: Vec<usize> = (0..ensembles.len()).collect();
    order.sort_by_key(|&i| ensembles[i].precision == Precision::F32);
    for i in order {
        if ensembles[i].precision == Precision::F32 && !rounded {
            rounded = true;
            s.i32_const(0).local_set(7);
            s.block(BlockType::Empty).loop_(BlockType::Empty);
            s.local_get(7).local_get(4).i32_const(n_inputs as i32).i32_mul().i32_ge_u().br_if(1);
            s.local_get(5).local_get(7).i32_const(3).i32_shl().i32_add();
            s.local_get(5).local_get(7).i32_const(3).i32_shl().i32_add().f64_load(mem(0, 3));
            s.f32_demote_f64().f64_promote_f32().f64_store(mem(0, 3));
            s.local_get(7).i32_const(1).i32_add().local_set(7).br(0).end().end();
        }
        s.local_get(5).local_get(4).local_get(6).call(func::FIRST_ENSEMBLE + i as u32);
    }
    s.local_get(3).i32_const(map.block as i32).i32_add().local_set(3).br(0).end().end();
    s.i32_const(fresco_abi::status::OK).end();
    f
}

/// Locals of an ensemble function `(in, m, out)`.
mod local {
    pub const IN: u32 = 0;
    pub const M: u32 = 1;
    pub const OUT: u32 = 2;
    // i32
    pub const R: u32 = 3;
    pub const ROW: u32 = 4;
    pub const NODE: u32 = 5;
    pub const ADDR: u32 = 6;
    pub const INFO: u32 = 7;
    pub const KIND: u32 = 8;
    pub const LEFT: u32 = 9;
    pub const T: u32 = 10;
    pub const C: u32 = 11;
    pub const W: u32 = 12;
    pub const BEST: u32 = 13;
    /// This row's group scores.
    pub const GRP: u32 = 14;
    /// This row's outputs.
    pub const O: u32 = 15;
    // f64
    pub const X: u32 = 16;
    pub const ACC: u32 = 17;
    pub const MAX: u32 = 18;
    pub const SUM: u32 = 19;
    // f32
    pub const ACC32: u32 = 20;
    pub const MAX32: u32 = 21;
    // i32, lockstep walk
    pub const ROOT: u32 = 22;
    pub const STEPS: u32 = 23;
    /// Node of lane k: `LANE_NODE + k`; row pointer of lane k: `LANE_ROW + k`.
    pub const LANE_NODE: u32 = 24;
    pub const LANE_ROW: u32 = 24 + super::LANES;
    /// Rank search: i64 keys, then i32 positions (`crate::ranks::LANES` each).
    pub const RANK_KEY: u32 = 24 + 2 * super::LANES;
    pub const RANK_POS: u32 = RANK_KEY + crate::ranks::LANES;
    /// This row's threshold ranks (node tables walked by rank).
    pub const RANK_ROW: u32 = RANK_POS + crate::ranks::LANES;
    /// Trees in lanes: the tree slot each lane walks, the next slot to hand out.
    pub const LANE_TREE: u32 = RANK_ROW + 1;
    pub const NEXT_TREE: u32 = LANE_TREE + 2 * super::LANES;
    /// The branch layout's row order: the inputs and ranks its chunks read, and whether
    /// the block was sorted.
    pub const CHUNK_IN: u32 = NEXT_TREE + 1;
    pub const CHUNK_RANKS: u32 = NEXT_TREE + 2;
    pub const SORTED: u32 = NEXT_TREE + 3;
}

/// Emits `for R in 0..M { ROW, GRP, O = this row's input, group scores, outputs; body }`.
fn for_rows(s: &mut InstructionSink<'_>, map: &Map, first_output: u32, body: impl FnOnce(&mut InstructionSink<'_>)) {
    use local::*;
    s.i32_const(0).local_set(R);
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.local_get(R).local_get(M).i32_ge_u().br_if(1);
    s.local_get(IN).local_get(R).i32_const(map.in_stride as i32).i32_mul().i32_add().local_set(ROW);
    s.local_get(R)
        .i32_const((map.max_groups * 8) as i32)
        .i32_mul()
        .i32_const(map.groups as i32)
        .i32_add()
        .local_set(GRP);
    s.local_get(OUT).local_get(R).i32_const(map.out_stride as i32).i32_mul().i32_add();
    s.i32_const((first_output * 8) as i32).i32_add().local_set(O);
    body(s);
    s.local_get(R).i32_const(1).i32_add().local_set(R).br(0).end().end();
}

/// Rows walked through one tree together by the lockstep walk.
const LANES: u32 = 8;

fn score_ensemble(
    e: &Ensemble,
    groups: &[GroupCode],
    ranks: Option<&Ranks>,
    order_keys: &[order::Key],
    map: &Map,
    first_output: u32,
) -> Function {
    use local::*;
    let lockstep = crate::layout::lockstep_eligible(e);
    // Node tables hold rank comparisons when the ranks cover every split.
    let by_rank = ranks.is_some_and(Ranks::any);
    let mut f = Function::new([
        (13, ValType::I32),
        (4, ValType::F64),
        (2, ValType::F32),
        (2 + 2 * LANES, ValType::I32),
        (crate::ranks::LANES, ValType::I64),
        (crate::ranks::LANES + 5 + 2 * LANES, ValType::I32),
    ]);
    let mut s = f.instructions();
    let f32_sums = e.precision == Precision::F32;
    if let Some(ranks) = ranks.filter(|r| r.any()) {
        for_rows(&mut s, map, first_output, |s| {
            s.local_get(R);
            rank_row(s, map, ADDR);
            ranks.emit_row(s, ROW, ADDR, X, RANK_KEY, RANK_POS);
        });
    }
    // The branch layout takes a block's rows in rank order (see `order`).
    let ordered = match ranks {
        Some(ranks) if !order_keys.is_empty() && groups.iter().any(|g| matches!(g, GroupCode::Chunks(_))) => {
            order::emit(&mut s, map, order_keys, &order::RowWords::new(e, ranks));
            true
        }
        _ => false,
    };
    for (g, code) in groups.iter().enumerate() {
        let slot = mem(8 * g as u32, 3);
        // Start every row of the block from the base score.
        for_rows(&mut s, map, first_output, |s| {
            s.local_get(GRP);
            if f32_sums {
                f64c(s, f64::from(e.base_score[g] as f32));
            } else {
                f64c(s, e.base_score[g]);
            }
            s.f64_store(slot);
        });
        let count = match code {
            GroupCode::Table(start, end) => {
                // Blocks of at least LANES rows take the lockstep walk; smaller ones
                // (batch 1) walk row by row, where lanes would only repeat work.
                if by_rank {
                    let masked = ranks.is_some_and(Ranks::has_category_words);
                    rank_walk(&mut s, map, g, (*start, *end), f32_sums, masked);
                } else {
                    table_walk(&mut s, map, g, (*start, *end), f32_sums, lockstep, first_output);
                }
                end - start
            }
            GroupCode::Chunks(calls) => {
                // Chunk by chunk over the block: each chunk's code stays hot for all rows.
                for &chunk in calls {
                    s.local_get(if ordered { CHUNK_IN } else { IN });
                    s.local_get(M).i32_const((map.groups + 8 * g as u32) as i32);
                    if ordered {
                        s.local_get(CHUNK_RANKS);
                    } else {
                        s.i32_const(map.ranks as i32);
                    }
                    s.call(chunk);
                }
                e.trees.iter().filter(|t| t.group == g).count() as u32
            }
        };
        if e.average && count > 0 {
            for_rows(&mut s, map, first_output, |s| {
                s.local_get(GRP).local_get(GRP).f64_load(slot);
                f64c(s, f64::from(count));
                s.f64_div().f64_store(slot);
            });
        }
    }
    for_rows(&mut s, map, first_output, |s| {
        if ordered {
            order::score_of_row(s, map);
        }
        transform(s, e)
    });
    s.end();
    f
}
