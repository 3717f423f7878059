//! The branch layout: each tree becomes nested `if`/`else` code with thresholds as
//! immediates, so a split costs one load, one compare and one predicted branch.
//!
//! Trees are emitted into "chunk" functions of bounded size, `(row, acc) -> acc`, each
//! adding its trees' leaf values to `acc` in tree order. Engines refuse function bodies
//! past about 7.6 MB and compile huge functions slowly, so chunks stay small.

use fresco_trees::{
    CategoricalFlavor, Comparison, Ensemble, Missing, Node, Precision, SplitTest, Tree,
};
use wasm_encoder::{BlockType, Function, InstructionSink, MemArg, ValType};

use crate::layout::largest_below;

/// Most split nodes in one chunk function.
pub const NODES_PER_CHUNK: usize = 512;

/// Chunk-function locals beyond the two parameters.
const X: u32 = 2; // f64
const C: u32 = 3; // i32
const W: u32 = 4; // i32

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
                MemArg {
                    offset,
                    align: 3,
                    memory_index: 0,
                }
            }
            Precision::F32 => {
                self.pool.extend_from_slice(&(v as f32).to_le_bytes());
                self.pool.extend_from_slice(&[0; 4]);
                MemArg {
                    offset,
                    align: 2,
                    memory_index: 0,
                }
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

/// Emits one chunk function. Category bitsets are appended to `bitsets`, which will be
/// placed at byte address `bitsets_base`.
pub fn chunk_function(ensemble: &Ensemble, chunk: &Chunk, data: &mut Data) -> Function {
    let mut f = Function::new([(1, ValType::F64), (2, ValType::I32)]);
    let mut s = f.instructions();
    s.local_get(1);
    for &t in &chunk.trees {
        tree(&mut s, ensemble, &ensemble.trees[t], data);
        match ensemble.precision {
            Precision::F64 => s.f64_add(),
            Precision::F32 => s.f32_add(),
        };
    }
    s.end();
    f
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
fn tree(s: &mut InstructionSink<'_>, e: &Ensemble, tree: &Tree, data: &mut Data) {
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
        if height(tree, i as u32, BRANCHLESS_HEIGHT + 1) <= BRANCHLESS_HEIGHT {
            branchless(s, e, tree, i as u32, data);
            match e.precision {
                Precision::F64 => s.f64_reinterpret_i64(),
                Precision::F32 => s.f32_reinterpret_i32(),
            };
            s.br(depth);
            continue;
        }
        let (then, otherwise) = arms(e, split);
        condition(s, e, split, data);
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

/// Height of the subtree at `i`, counting splits; stops counting at `cap`.
fn height(tree: &Tree, i: u32, cap: u32) -> u32 {
    match &tree.nodes[i as usize] {
        Node::Leaf(_) => 0,
        Node::Split(_) if cap == 0 => 1,
        Node::Split(split) => {
            1 + height(tree, split.left, cap - 1).max(height(tree, split.right, cap - 1))
        }
    }
}

/// Pushes the bit pattern of the leaf that the subtree at `i` selects (recursion depth
/// is bounded by [`BRANCHLESS_HEIGHT`]).
fn branchless(s: &mut InstructionSink<'_>, e: &Ensemble, tree: &Tree, i: u32, data: &mut Data) {
    match &tree.nodes[i as usize] {
        Node::Leaf(v) => data.bits(s, e.precision, *v),
        Node::Split(split) => {
            let (then, otherwise) = arms(e, split);
            branchless(s, e, tree, then, data);
            branchless(s, e, tree, otherwise, data);
            condition(s, e, split, data);
            s.select();
        }
    }
}

/// Normalized `<=` threshold and whether NaN goes left, for a numeric split.
fn numeric_plan(e: &Ensemble, n: &fresco_trees::NumericSplit) -> (f64, bool) {
    let t = match n.comparison {
        Comparison::LessOrEqual => n.threshold,
        Comparison::Less => largest_below(n.threshold, e.precision),
    };
    // NaN → 0 compared against t is the same as a fixed default branch.
    let default_left = if n.missing == Missing::NanToZero {
        0.0 <= t
    } else {
        n.default_left
    };
    (t, default_left)
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
fn condition(
    s: &mut InstructionSink<'_>,
    e: &Ensemble,
    split: &fresco_trees::Split,
    data: &mut Data,
) {
    let feature = MemArg {
        offset: u64::from(split.feature) * 8,
        align: 3,
        memory_index: 0,
    };
    match &split.test {
        SplitTest::Numeric(n) => {
            let (t, default_left) = numeric_plan(e, n);
            match n.missing {
                Missing::NanIsMissing | Missing::NanToZero => {
                    s.local_get(0).f64_load(feature);
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
                    s.local_get(0)
                        .f64_load(feature)
                        .local_tee(X)
                        .local_get(X)
                        .f64_ne();
                    s.if_(BlockType::Result(ValType::F64))
                        .f64_const(0.0.into())
                        .else_()
                        .local_get(X)
                        .end();
                    s.local_tee(X).f64_const(t.into()).f64_le();
                    s.local_get(X)
                        .f64_abs()
                        .f64_const(fresco_trees::eval::ZERO_THRESHOLD.into())
                        .f64_le();
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
                    s.local_get(X).f64_const((-1.0).into()).f64_gt();
                    s.local_get(X)
                        .f64_const(2_147_483_648.0.into())
                        .f64_lt()
                        .i32_and();
                    s.if_(BlockType::Result(ValType::I32));
                    bit(s, address, words);
                    s.else_().i32_const(0).end();
                }
                CategoricalFlavor::XgBoost => {
                    // NaN → default; c < 0 or c >= 2^24 → left; bit set → right.
                    s.local_get(X)
                        .local_get(X)
                        .f64_ne()
                        .if_(BlockType::Result(ValType::I32));
                    s.i32_const(i32::from(c.default_left)).else_();
                    s.local_get(X).f64_const(0.0.into()).f64_ge();
                    s.local_get(X)
                        .f64_const(fresco_trees::eval::XGB_MAX_CATEGORY.into())
                        .f64_lt()
                        .i32_and();
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
    s.local_get(X)
        .i32_trunc_sat_f64_u()
        .local_tee(C)
        .i32_const(5)
        .i32_shr_u()
        .local_tee(W);
    s.i32_const(words)
        .i32_lt_u()
        .if_(BlockType::Result(ValType::I32));
    s.local_get(W).i32_const(2).i32_shl().i32_load(MemArg {
        offset: u64::from(address),
        align: 2,
        memory_index: 0,
    });
    s.local_get(C).i32_shr_u().i32_const(1).i32_and();
    s.else_().i32_const(0).end();
}
