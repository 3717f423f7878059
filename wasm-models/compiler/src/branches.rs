//! The branch layout: each tree becomes nested `if`/`else` code. A numeric split
//! compares the row's threshold rank of its feature (see [`crate::ranks`]) with an
//! immediate, so it costs one integer compare and one predicted branch; splits the
//! ranks do not cover compare the input with a threshold from a constant pool.
//!
//! Trees are emitted into "chunk" functions of bounded size, `(row, rows, score, ranks)`,
//! each looping over a block of rows and adding its trees' leaf values to each row's
//! score in tree order. Engines refuse function bodies past about 7.6 MB and compile
//! huge functions slowly, so chunks stay bounded; within that bound, longer chunks let
//! the branch predictor see more of one row's trees in a row.

use fresco_trees::{CategoricalFlavor, Ensemble, Missing, Node, Precision, SplitTest, Tree};
use wasm_encoder::{BlockType, Function, InstructionSink, MemArg, ValType};

use crate::ranks::{RANK_BYTES, Ranks};
use crate::splits::{lightgbm_code_in_range, numeric_plan};

/// Most nodes in one chunk function (see `benches/README.md` for the measurements).
pub const NODES_PER_CHUNK: usize = 2048;

/// Chunk-function parameters after the row pointer (local 0), and locals.
const ROWS: u32 = 1; // i32
const SCORE: u32 = 2; // i32
const RANKS: u32 = 3; // i32
const X: u32 = 4; // f64
const C: u32 = 5; // i32
const W: u32 = 6; // i32

/// Data the emitted code refers to: category bitsets, and a pool of thresholds and
/// leaf values. Comparing against a value loaded from memory lets the engine fold the
/// load into the compare instruction, where an immediate `f64.const` costs two
/// instructions to materialize.
pub struct Data {
    /// Bitset words, placed at `bitsets_base`.
    pub bitsets: Vec<u32>,
    /// Byte address of the first bitset word.
    pub bitsets_base: u32,
    /// Pool bytes (8 per value), placed at `pool_base`.
    pub pool: Vec<u8>,
    /// Byte address of the pool.
    pub pool_base: u32,
}

impl Data {
    /// Appends `v` in the given precision to the pool (8-byte slots) and pushes the
    /// address base; returns the load's memory argument.
    fn slot(&mut self, s: &mut InstructionSink<'_>, precision: Precision, v: f64) -> MemArg {
        let offset = u64::from(self.pool_base) + self.pool.len() as u64;
        s.i32_const(0);
        match precision {
            Precision::F64 => {
                self.pool.extend_from_slice(&v.to_le_bytes());
                MemArg { offset, align: 3, memory_index: 0 }
            }
            Precision::F32 => {
                self.pool.extend_from_slice(&(v as f32).to_le_bytes());
                self.pool.extend_from_slice(&[0; 4]);
                MemArg { offset, align: 2, memory_index: 0 }
            }
        }
    }

    /// Pushes the bit pattern of `v` (an i64, or an i32 for f32), loaded from the pool.
    fn bits(&mut self, s: &mut InstructionSink<'_>, precision: Precision, v: f64) {
        let at = self.slot(s, precision, v);
        match precision {
            Precision::F64 => s.i64_load(at),
            Precision::F32 => s.i32_load(at),
        };
    }

    /// Pushes `v` in the given precision, loaded from the pool.
    fn value(&mut self, s: &mut InstructionSink<'_>, precision: Precision, v: f64) {
        let at = self.slot(s, precision, v);
        match precision {
            Precision::F64 => s.f64_load(at),
            Precision::F32 => s.f32_load(at),
        };
    }
}

/// Pool bytes an ensemble needs at most: one 8-byte slot per node.
pub fn pool_bytes(ensemble: &Ensemble) -> usize {
    8 * ensemble.n_nodes()
}

/// One chunk: which trees (indices into the ensemble) it sums.
pub struct Chunk {
    /// Tree indices, in summation order.
    pub trees: Vec<usize>,
}

/// Splits each group's trees into chunks: `result[g]` lists the group's chunks in order.
pub fn chunks(ensemble: &Ensemble) -> Vec<Vec<Chunk>> {
    ensemble
        .trees_by_group()
        .into_iter()
        .map(|trees| {
            let mut out: Vec<Chunk> = Vec::new();
            let mut size = 0usize;
            for t in trees {
                let n = ensemble.trees[t].nodes.len();
                if out.is_empty() || size + n > NODES_PER_CHUNK {
                    out.push(Chunk { trees: Vec::new() });
                    size = 0;
                }
                size += n;
                if let Some(last) = out.last_mut() {
                    last.trees.push(t);
                }
            }
            out
        })
        .collect()
}

/// Row strides a chunk function walks with.
pub struct Strides {
    /// Bytes from one input row to the next.
    pub input: u32,
    /// Bytes from one row's group score to the next.
    pub score: u32,
    /// Bytes from one row's threshold ranks to the next.
    pub ranks: u32,
}

/// What the code of one chunk reads besides the row: the ensemble, its threshold ranks,
/// and the locals holding the row's ranks of the features the chunk splits on often.
struct Context<'a> {
    e: &'a Ensemble,
    ranks: &'a Ranks,
    rank_locals: Vec<Option<u32>>,
}

/// Emits one chunk function `(row, rows, score, ranks)`: for each of `rows` rows, adds
/// the chunk's trees to the f64 score at `score` (rows `strides` apart). Looping inside
/// the chunk keeps the call, and the engine's entry checks, out of the per-row path.
/// Category bitsets and constants are appended to `data`.
pub fn chunk_function(
    ensemble: &Ensemble,
    chunk: &Chunk,
    strides: &Strides,
    ranks: &Ranks,
    data: &mut Data,
) -> Function {
    let mut uses = vec![0usize; ensemble.n_features()];
    for &t in &chunk.trees {
        for node in &ensemble.trees[t].nodes {
            if let Node::Split(split) = node
                && let Some(n) = uses.get_mut(split.feature as usize)
            {
                *n += 1;
            }
        }
    }
    // A rank read more than once is kept in a local (a register, where the engine can).
    let mut n_rank_locals = 0u32;
    let rank_locals = uses
        .iter()
        .enumerate()
        .map(|(feature, &n)| {
            (n >= 2 && ranks.is_ranked(feature)).then(|| {
                n_rank_locals += 1;
                W + n_rank_locals
            })
        })
        .collect();
    let cx = Context { e: ensemble, ranks, rank_locals };
    // The running sum's locals follow the rank locals.
    let sum = W + n_rank_locals + 1;
    let sum32 = sum + 1;
    let mut f =
        Function::new([(1, ValType::F64), (2 + n_rank_locals, ValType::I32), (1, ValType::F64), (1, ValType::F32)]);
    let mut s = f.instructions();
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.local_get(ROWS).i32_eqz().br_if(1);
    for (feature, local) in cx.rank_locals.iter().enumerate() {
        if let Some(l) = local {
            s.local_get(RANKS).i32_load(mem(RANK_BYTES * feature as u32, 2)).local_set(*l);
        }
    }
    s.local_get(SCORE).f64_load(mem(0, 3));
    if ensemble.precision == Precision::F32 {
        s.f32_demote_f64().local_tee(sum32);
    }
    // The running sum is written back after every tree. The add is pure, so without a
    // use there Cranelift computes it where the sum is first needed, at the row's final
    // store: every tree's leaf then stays live to the end of the row (spilled to the
    // stack, reloaded, and added in one chain after the last tree). The store pins each
    // add behind its own tree, where it overlaps the next tree's compares, and the sum
    // keeps to one register. The slot's final bytes are the last store's, as before.
    for &t in &chunk.trees {
        tree(&mut s, &cx, &ensemble.trees[t], data);
        match ensemble.precision {
            Precision::F64 => s.f64_add().local_tee(sum).local_get(SCORE).local_get(sum).f64_store(mem(0, 3)),
            Precision::F32 => s.f32_add().local_tee(sum32).local_get(SCORE).local_get(sum32).f32_store(mem(0, 2)),
        };
    }
    s.drop();
    if ensemble.precision == Precision::F32 {
        // The f32 stores above wrote the slot's low half: the f64 sum goes last.
        s.local_get(SCORE).local_get(sum32).f64_promote_f32().f64_store(mem(0, 3));
    }
    for (local, stride) in [(0, strides.input), (SCORE, strides.score), (RANKS, strides.ranks)] {
        s.local_get(local).i32_const(stride as i32).i32_add().local_set(local);
    }
    s.local_get(ROWS).i32_const(1).i32_sub().local_set(ROWS);
    s.br(0).end().end();
    s.end();
    f
}

fn mem(offset: u32, align: u32) -> MemArg {
    MemArg { offset: u64::from(offset), align, memory_index: 0 }
}

enum Step {
    /// Emit a node; the number is its nesting depth inside the tree's block.
    Node(u32, u32),
    Else,
    End,
}

/// Pushes the tree's leaf value for the row in local 0.
///
/// The tree is one `block` yielding the leaf value; splits are result-less `if`s and
/// each leaf branches straight out of the block, so reaching a leaf costs one jump
/// rather than one per level on the way back up.
fn tree(s: &mut InstructionSink<'_>, cx: &Context<'_>, tree: &Tree, data: &mut Data) {
    let e = cx.e;
    s.block(BlockType::Result(match e.precision {
        Precision::F64 => ValType::F64,
        Precision::F32 => ValType::F32,
    }));
    // An explicit stack: trees can be far deeper than Rust's call stack allows.
    let mut steps = vec![Step::Node(0, 0)];
    while let Some(step) = steps.pop() {
        let (i, depth) = match step {
            Step::Else => {
                s.else_();
                continue;
            }
            Step::End => {
                s.end();
                continue;
            }
            Step::Node(i, depth) => (i as usize, depth),
        };
        let split = match &tree.nodes[i] {
            Node::Leaf(v) => {
                data.value(s, e.precision, *v);
                s.br(depth);
                continue;
            }
            Node::Split(split) => split,
        };
        // Small subtrees become branch-free: every condition is evaluated and the leaf
        // chosen by `select`s, trading a few compares for unpredictable branches.
        if !is_branch(tree, i as u32) {
            branchless(s, cx, tree, i as u32, data);
            match e.precision {
                Precision::F64 => s.f64_reinterpret_i64(),
                Precision::F32 => s.f32_reinterpret_i32(),
            };
            s.br(depth);
            continue;
        }
        let (then, otherwise) = arms(e, split);
        condition(s, cx, split, data);
        s.if_(BlockType::Empty);
        steps.push(Step::End);
        steps.push(Step::Node(otherwise, depth + 1));
        steps.push(Step::Else);
        steps.push(Step::Node(then, depth + 1));
    }
    // Every path has branched out with its leaf value.
    s.unreachable().end();
}

/// Subtrees up to this height (splits on the longest path) are emitted without branches.
pub const BRANCHLESS_HEIGHT: u32 = 3;

/// Whether the split at `i` is emitted as a branch (its subtree is too tall to be
/// emitted without branches).
pub(crate) fn is_branch(tree: &Tree, i: u32) -> bool {
    height(tree, i, BRANCHLESS_HEIGHT + 1) > BRANCHLESS_HEIGHT
}

/// Height of the subtree at `i`, counting splits; stops counting at `cap`.
fn height(tree: &Tree, i: u32, cap: u32) -> u32 {
    match &tree.nodes[i as usize] {
        Node::Leaf(_) => 0,
        Node::Split(_) if cap == 0 => 1,
        Node::Split(split) => 1 + height(tree, split.left, cap - 1).max(height(tree, split.right, cap - 1)),
    }
}

/// Pushes the bit pattern of the leaf that the subtree at `i` selects (recursion depth
/// is bounded by [`BRANCHLESS_HEIGHT`]).
fn branchless(s: &mut InstructionSink<'_>, cx: &Context<'_>, tree: &Tree, i: u32, data: &mut Data) {
    let e = cx.e;
    match &tree.nodes[i as usize] {
        Node::Leaf(v) => data.bits(s, e.precision, *v),
        Node::Split(split) => {
            let (then, otherwise) = arms(e, split);
            branchless(s, cx, tree, then, data);
            branchless(s, cx, tree, otherwise, data);
            condition(s, cx, split, data);
            s.select();
        }
    }
}

/// `(then, otherwise)`: the child taken when [`condition`] pushes 1, and the other.
fn arms(e: &Ensemble, split: &fresco_trees::Split) -> (u32, u32) {
    match &split.test {
        SplitTest::Numeric(n) if n.missing != Missing::ZeroIsMissing && numeric_plan(e, n).1 => {
            (split.right, split.left)
        }
        _ => (split.left, split.right),
    }
}

/// Pushes the split's condition as an i32 (see [`arms`] for which child 1 means).
fn condition(s: &mut InstructionSink<'_>, cx: &Context<'_>, split: &fresco_trees::Split, data: &mut Data) {
    let e = cx.e;
    let feature = MemArg { offset: u64::from(split.feature) * 8, align: 3, memory_index: 0 };
    if let SplitTest::Numeric(n) = &split.test
        && let Some(j) = cx.ranks.split_index(e, split)
    {
        let (_, default_left) = numeric_plan(e, n);
        match cx.rank_locals.get(split.feature as usize) {
            Some(Some(l)) => s.local_get(*l),
            _ => s.local_get(RANKS).i32_load(mem(RANK_BYTES * split.feature, 2)),
        };
        s.i32_const(j);
        if default_left {
            // right when rank > j; NaN (i32::MIN) goes left
            s.i32_gt_s();
        } else {
            // left when rank <= j; NaN (huge unsigned) goes right
            s.i32_le_u();
        }
        return;
    }
    if let Some(bits) = cx.ranks.category_bits(split) {
        // left when the category word is below 32 and its bit is set (see `ranks`)
        s.local_get(RANKS).i32_load(mem(RANK_BYTES * split.feature, 2)).local_tee(C);
        s.i32_const(32).i32_lt_u();
        s.i32_const(bits as i32).local_get(C).i32_shr_u().i32_const(1).i32_and();
        s.i32_and();
        return;
    }
    match &split.test {
        SplitTest::Numeric(n) => {
            let (t, default_left) = numeric_plan(e, n);
            match n.missing {
                Missing::NanIsMissing | Missing::NanToZero => {
                    s.local_get(0).f64_load(feature);
                    if t.is_nan() {
                        // `x < -inf`: never true; only NaN can take the default branch.
                        if default_left {
                            s.local_tee(X).local_get(X).f64_eq();
                        } else {
                            s.drop().i32_const(0);
                        }
                        return;
                    }
                    data.value(s, Precision::F64, t);
                    if default_left {
                        // right when x > t; NaN and x <= t go left
                        s.f64_gt();
                    } else {
                        s.f64_le();
                    }
                }
                Missing::ZeroIsMissing => {
                    // x' = NaN ? 0 : x; left = |x'| <= 1e-35 ? default_left : x' <= t
                    s.i32_const(i32::from(n.default_left));
                    s.local_get(0).f64_load(feature).local_tee(X).local_get(X).f64_ne();
                    s.if_(BlockType::Result(ValType::F64)).f64_const(0.0.into()).else_().local_get(X).end();
                    s.local_tee(X).f64_const(t.into()).f64_le();
                    s.local_get(X).f64_abs().f64_const(fresco_trees::eval::ZERO_THRESHOLD.into()).f64_le();
                    s.select();
                }
            }
        }
        SplitTest::Categorical(c) => {
            let address = data.bitsets_base + 4 * data.bitsets.len() as u32;
            let words = c.categories.len() as i32;
            data.bitsets.extend_from_slice(&c.categories);
            s.local_get(0).f64_load(feature).local_set(X);
            match c.flavor {
                CategoricalFlavor::LightGbm => {
                    // NaN, c <= -1 and c >= 2^31 go right; otherwise bit set → left.
                    lightgbm_code_in_range(s, X);
                    s.if_(BlockType::Result(ValType::I32));
                    bit(s, address, words);
                    s.else_().i32_const(0).end();
                }
                CategoricalFlavor::XgBoost => {
                    // NaN → default; c < 0 or c >= 2^24 → left; bit set → right.
                    s.local_get(X).local_get(X).f64_ne().if_(BlockType::Result(ValType::I32));
                    s.i32_const(i32::from(c.default_left)).else_();
                    s.local_get(X).f64_const(0.0.into()).f64_ge();
                    s.local_get(X).f64_const(fresco_trees::eval::XGB_MAX_CATEGORY.into()).f64_lt().i32_and();
                    s.if_(BlockType::Result(ValType::I32));
                    bit(s, address, words);
                    s.i32_eqz().else_().i32_const(1).end();
                    s.end();
                }
            }
        }
    }
}

/// Pushes bit `trunc(X)` of the `words`-word bitset at `address` (0 past its end).
fn bit(s: &mut InstructionSink<'_>, address: u32, words: i32) {
    s.local_get(X).i32_trunc_sat_f64_u().local_tee(C).i32_const(5).i32_shr_u().local_tee(W);
    s.i32_const(words).i32_lt_u().if_(BlockType::Result(ValType::I32));
    s.local_get(W).i32_const(2).i32_shl().i32_load(MemArg { offset: u64::from(address), align: 2, memory_index: 0 });
    s.local_get(C).i32_shr_u().i32_const(1).i32_and();
    s.else_().i32_const(0).end();
}
