//! The node-table walks: rank records walked in lanes, float-threshold records walked
//! row by row or in lockstep, and the shared leaf and bitset steps.

use super::*;
use crate::splits::lightgbm_code_in_range;

/// Walks node tables of rank records (see [`Tables::build`]) in [`LANES`] lanes: a block
/// of at least that many rows goes through one tree at a time, `LANES` rows at once (the
/// tree's records stay in cache for the whole block); smaller blocks (batch 1) go row by
/// row through `2 × LANES` trees at once, so that the walks' cache misses overlap. Leaf
/// values are added in tree order, as the native evaluator adds them.
///
/// `masked`: some record is a categorical split, so every step masks the slot word with
/// the record's mask ([`Tables::build`]); numeric-only tables skip the load.
pub(super) fn rank_walk(
    s: &mut InstructionSink<'_>,
    map: &Map,
    g: usize,
    (start, end): (u32, u32),
    f32_sums: bool,
    masked: bool,
) {
    use local::*;
    let score_stride = (map.max_groups * 8) as i32;
    let root_address = |s: &mut InstructionSink<'_>| {
        s.i32_const(2).i32_shl().i32_load(mem(map.roots, 2));
        s.i32_const(NODE_BYTES as i32).i32_mul().i32_const(map.nodes as i32).i32_add();
    };
    // min(a + k, b - 1) with a, b locals: lanes past the end repeat the last one.
    let clamped = |s: &mut InstructionSink<'_>, a: u32, k: u32, b: u32| {
        s.local_get(a).i32_const(k as i32).i32_add().local_get(b).i32_const(1).i32_sub();
        s.local_get(a).i32_const(k as i32).i32_add().local_get(b).i32_const(1).i32_sub().i32_lt_u().select();
    };
    s.local_get(M).i32_const(LANES as i32).i32_ge_u().if_(BlockType::Empty);
    {
        // Rows in lanes, tree by tree.
        s.i32_const(start as i32).local_set(T);
        s.block(BlockType::Empty).loop_(BlockType::Empty);
        s.local_get(T).i32_const(end as i32).i32_ge_u().br_if(1);
        s.local_get(T);
        root_address(s);
        s.local_set(ROOT);
        s.i32_const(0).local_set(R);
        s.block(BlockType::Empty).loop_(BlockType::Empty);
        s.local_get(R).local_get(M).i32_ge_u().br_if(1);
        for k in 0..LANES {
            s.local_get(ROOT).local_set(LANE_NODE + k);
            clamped(s, R, k, M);
            rank_row(s, map, LANE_ROW + k);
        }
        let lanes: Vec<(u32, u32)> = (0..LANES).map(|k| (LANE_NODE + k, LANE_ROW + k)).collect();
        lanes_to_leaves(s, &lanes, masked);
        for k in 0..LANES {
            s.local_get(R).i32_const(k as i32).i32_add().local_get(M).i32_lt_u().if_(BlockType::Empty);
            s.local_get(R).i32_const(k as i32).i32_add().i32_const(score_stride).i32_mul();
            s.i32_const(map.groups as i32).i32_add().local_set(GRP);
            add_leaf(s, g, LANE_NODE + k, f32_sums);
            s.end();
        }
        s.local_get(R).i32_const(LANES as i32).i32_add().local_set(R).br(0).end().end();
        s.local_get(T).i32_const(1).i32_add().local_set(T).br(0).end().end();
    }
    s.else_();
    {
        // Trees in lanes, row by row.
        s.i32_const(0).local_set(R);
        s.block(BlockType::Empty).loop_(BlockType::Empty);
        s.local_get(R).local_get(M).i32_ge_u().br_if(1);
        s.local_get(R);
        rank_row(s, map, RANK_ROW);
        s.local_get(R).i32_const(score_stride).i32_mul().i32_const(map.groups as i32).i32_add().local_set(GRP);
        trees_in_lanes(s, map, (start, end), masked);
        // Add the leaves in tree order, as the native evaluator does.
        s.i32_const(start as i32).local_set(T);
        s.block(BlockType::Empty).loop_(BlockType::Empty);
        s.local_get(T).i32_const(end as i32).i32_ge_u().br_if(1);
        s.local_get(T).i32_const(3).i32_shl().i32_const(map.tree_values as i32).i32_add().local_set(ADDR);
        add_value(
            s,
            g,
            |s| {
                s.local_get(ADDR).f64_load(mem(0, 3));
            },
            f32_sums,
        );
        s.local_get(T).i32_const(1).i32_add().local_set(T).br(0).end().end();
        s.local_get(R).i32_const(1).i32_add().local_set(R).br(0).end().end();
    }
    s.end();
}

/// Sets local `to` to the address of the threshold ranks of the block row on the stack.
pub(super) fn rank_row(s: &mut InstructionSink<'_>, map: &Map, to: u32) {
    s.i32_const(map.rank_stride as i32).i32_mul().i32_const(map.ranks as i32).i32_add().local_set(to);
}

/// Steps every lane (`(node, ranks)`: locals holding a record address and the address
/// of the row's ranks) until none moves: a split takes its first child when its
/// (masked) slot word is at most its limit; a leaf's successor is itself.
pub(super) fn lanes_to_leaves(s: &mut InstructionSink<'_>, lanes: &[(u32, u32)], masked: bool) {
    use local::*;
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.i32_const(1).local_set(C);
    for &(node, ranks) in lanes {
        // next = first child + 16 * (word > limit)
        s.local_get(node).local_tee(ADDR).i32_load(mem(8, 2));
        slot_word(s, ranks, masked);
        s.local_get(ADDR).i32_load(mem(0, 2)).i32_gt_u().i32_const(4).i32_shl().i32_add();
        s.local_tee(node).local_get(ADDR).i32_eq().local_get(C).i32_and().local_set(C);
    }
    s.local_get(C).i32_eqz().br_if(0).end().end();
}

/// Pushes the slot word that the rank record at `ADDR` tests, of the row whose ranks are
/// at local `ranks`: masked by the record's mask where `masked`.
fn slot_word(s: &mut InstructionSink<'_>, ranks: u32, masked: bool) {
    use local::*;
    s.local_get(ranks).local_get(ADDR).i32_load(mem(4, 2)).i32_add().i32_load(mem(0, 2));
    if masked {
        s.local_get(ADDR).i32_load(mem(12, 2)).i32_and();
    }
}

/// Adds the leaf value of the rank record at the address in local `lane` to group `g`'s
/// score of the row whose scores are at `GRP`.
pub(super) fn add_leaf(s: &mut InstructionSink<'_>, g: usize, lane: u32, f32_sums: bool) {
    add_value(s, g, |s| leaf_value(s, lane), f32_sums);
}

/// Pushes the value of the leaf rank record at the address in local `record`: its halves
/// sit in bytes 0..4 and 12..16.
pub(super) fn leaf_value(s: &mut InstructionSink<'_>, record: u32) {
    s.local_get(record).i64_load32_u(mem(0, 2));
    s.local_get(record).i64_load32_u(mem(12, 2)).i64_const(32).i64_shl().i64_or().f64_reinterpret_i64();
}

/// Adds the f64 that `push` pushes to group `g`'s score of the row whose scores are at
/// `GRP` (in f32 for f32 ensembles).
pub(super) fn add_value(
    s: &mut InstructionSink<'_>,
    g: usize,
    push: impl FnOnce(&mut InstructionSink<'_>),
    f32_sums: bool,
) {
    use local::*;
    let slot = mem(8 * g as u32, 3);
    s.local_get(GRP);
    push(s);
    if f32_sums {
        s.f32_demote_f64().local_get(GRP).f64_load(slot).f32_demote_f64().f32_add().f64_promote_f32();
    } else {
        s.local_get(GRP).f64_load(slot).f64_add();
    }
    s.f64_store(slot);
}

/// Walks the row whose ranks are at `RANK_ROW` through tree slots `start..end`, 16 at a
/// time: a lane that reaches a leaf takes the next tree at once, so the walks' cache
/// misses keep overlapping instead of waiting for the deepest tree of a group. Every
/// step stores the lane's record as a leaf value into its tree's slot of `tree_values`;
/// the store at the step that finds the leaf is the last for that tree. Branch-free: a
/// finished lane with no tree left parks on its leaf, writing to the spare slot.
pub(super) fn trees_in_lanes(s: &mut InstructionSink<'_>, map: &Map, (start, end): (u32, u32), masked: bool) {
    use local::*;
    let lanes = 2 * LANES;
    let root_of = |s: &mut InstructionSink<'_>, tree: u32| {
        s.local_get(tree).i32_const(2).i32_shl().i32_load(mem(map.roots, 2));
        s.i32_const(NODE_BYTES as i32).i32_mul().i32_const(map.nodes as i32).i32_add();
    };
    s.i32_const(start as i32).local_set(NEXT_TREE);
    for k in 0..lanes {
        // lane k starts on tree start + k, or parks at once on a short range
        s.local_get(NEXT_TREE).i32_const(map.parked as i32).local_get(NEXT_TREE).i32_const(end as i32).i32_lt_u();
        s.select().local_set(LANE_TREE + k);
        // a parked lane walks the first tree (writing to the spare slot): always valid
        s.local_get(NEXT_TREE).i32_const(start as i32).local_get(NEXT_TREE).i32_const(end as i32).i32_lt_u();
        s.select().local_set(NODE);
        root_of(s, NODE);
        s.local_set(LANE_NODE + k);
        s.local_get(NEXT_TREE).i32_const(1).i32_add().local_set(NEXT_TREE);
    }
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.i32_const(1).local_set(C);
    for k in 0..lanes {
        let (node, tree) = (LANE_NODE + k, LANE_TREE + k);
        // value slot of this lane's tree <- the record read as a leaf
        s.local_get(tree).i32_const(3).i32_shl();
        s.local_get(node).local_set(ADDR);
        leaf_value(s, ADDR);
        s.f64_store(mem(map.tree_values, 3));
        // next = first child + 16 * (word > limit); done = next == node
        s.local_get(ADDR).i32_load(mem(8, 2));
        slot_word(s, RANK_ROW, masked);
        s.local_get(ADDR).i32_load(mem(0, 2)).i32_gt_u().i32_const(4).i32_shl().i32_add().local_set(NODE);
        s.local_get(NODE).local_get(ADDR).i32_eq().local_set(W);
        // take = done && NEXT < end
        s.local_get(W).local_get(NEXT_TREE).i32_const(end as i32).i32_lt_u().i32_and().local_set(LEFT);
        // node = take ? root(NEXT) : next
        root_of(s, NEXT_TREE);
        s.local_get(NODE).local_get(LEFT).select().local_set(node);
        // tree = take ? NEXT : (done ? parked : tree)
        s.local_get(NEXT_TREE);
        s.i32_const(map.parked as i32).local_get(tree).local_get(W).select();
        s.local_get(LEFT).select().local_tee(tree);
        // all parked?
        s.i32_const(map.parked as i32).i32_eq().local_get(C).i32_and().local_set(C);
        s.local_get(NEXT_TREE).local_get(LEFT).i32_add().local_set(NEXT_TREE);
    }
    s.local_get(C).i32_eqz().br_if(0).end().end();
}

/// Walks node tables with thresholds: in lockstep over the block's rows where
/// `lockstep` allows and the block has [`LANES`] rows, else row by row.
pub(super) fn table_walk(
    s: &mut InstructionSink<'_>,
    map: &Map,
    g: usize,
    (start, end): (u32, u32),
    f32_sums: bool,
    lockstep: bool,
    first_output: u32,
) {
    use local::*;
    let slot = mem(8 * g as u32, 3);
    if lockstep {
        s.local_get(M).i32_const(LANES as i32).i32_ge_u().if_(BlockType::Empty);
        lockstep_walk(s, map, g, (start, end), f32_sums);
        s.else_();
    }
    for_rows(s, map, first_output, |s| {
        s.local_get(GRP).f64_load(slot).local_set(ACC);
        if f32_sums {
            s.local_get(ACC).f32_demote_f64().local_set(ACC32);
        }
        s.i32_const(start as i32).local_set(T);
        s.block(BlockType::Empty).loop_(BlockType::Empty);
        s.local_get(T).i32_const(end as i32).i32_ge_u().br_if(1);
        traverse(s, map);
        if f32_sums {
            s.f32_demote_f64().local_get(ACC32).f32_add().local_set(ACC32);
        } else {
            s.local_get(ACC).f64_add().local_set(ACC);
        }
        s.local_get(T).i32_const(1).i32_add().local_set(T).br(0).end().end();
        if f32_sums {
            s.local_get(ACC32).f64_promote_f32().local_set(ACC);
        }
        s.local_get(GRP).local_get(ACC).f64_store(slot);
    });
    if lockstep {
        s.end();
    }
}

/// Tree by tree, walks `LANES` rows of the block at once: independent walks overlap in
/// the pipeline where one walk is a chain of dependent loads. Every lane takes exactly
/// the tree's height in steps; a lane that reaches a leaf early stays on it (a leaf is
/// its own child), so the inner loop has no exit test. Only for ensembles whose splits
/// are all numeric with NaN as missing ([`crate::layout::lockstep_eligible`]).
pub(super) fn lockstep_walk(
    s: &mut InstructionSink<'_>,
    map: &Map,
    g: usize,
    (start, end): (u32, u32),
    f32_sums: bool,
) {
    use local::*;
    let n = map.nodes;
    s.i32_const(start as i32).local_set(T);
    s.block(BlockType::Empty).loop_(BlockType::Empty); // trees
    s.local_get(T).i32_const(end as i32).i32_ge_u().br_if(1);
    s.local_get(T).i32_const(2).i32_shl().i32_load(mem(map.roots, 2)).local_set(ROOT);
    s.i32_const(0).local_set(R);
    s.block(BlockType::Empty).loop_(BlockType::Empty); // groups of LANES rows
    s.local_get(R).local_get(M).i32_ge_u().br_if(1);
    for k in 0..LANES {
        s.local_get(ROOT).local_set(LANE_NODE + k);
        // row min(R + k, M - 1): lanes past the block's end repeat its last row
        s.local_get(R).i32_const(k as i32).i32_add().local_get(M).i32_const(1).i32_sub();
        s.local_get(R).i32_const(k as i32).i32_add().local_get(M).i32_const(1).i32_sub().i32_lt_u().select();
        s.i32_const(map.in_stride as i32).i32_mul().local_get(IN).i32_add().local_set(LANE_ROW + k);
    }
    s.local_get(T).i32_const(2).i32_shl().i32_load(mem(map.depths, 2)).local_set(STEPS);
    s.block(BlockType::Empty).loop_(BlockType::Empty); // steps
    s.local_get(STEPS).i32_eqz().br_if(1);
    // C = 1 while every lane already sits on a leaf: then the walk is over.
    s.i32_const(1).local_set(C);
    for k in 0..LANES {
        s.local_get(LANE_NODE + k).i32_const(4).i32_shl().local_tee(ADDR).i32_load(mem(n + 8, 2)).local_set(INFO);
        // left = (x <= t) | (isnan(x) & kind == NAN_LEFT)
        s.local_get(LANE_ROW + k).local_get(INFO).i32_const(0x00ff_ffff).i32_and().i32_const(3).i32_shl().i32_add();
        s.f64_load(mem(0, 3)).local_tee(X).local_get(ADDR).f64_load(mem(n, 3)).f64_le();
        s.local_get(X).local_get(X).f64_ne().local_get(INFO).i32_const(24).i32_shr_u();
        s.i32_const(kind::NAN_LEFT as i32).i32_eq().i32_and().i32_or();
        // A leaf is its own left child.
        s.local_get(INFO).i32_const(24).i32_shr_u().i32_eqz().local_tee(W).i32_or().local_set(LEFT);
        s.local_get(C).local_get(W).i32_and().local_set(C);
        s.local_get(ADDR).i32_load(mem(n + 12, 2)).i32_const(1).i32_add().local_get(LEFT).i32_sub();
        s.local_set(LANE_NODE + k);
    }
    s.local_get(C).br_if(1);
    s.local_get(STEPS).i32_const(1).i32_sub().local_set(STEPS).br(0).end().end();
    // Add each real lane's leaf to its row's group score.
    for k in 0..LANES {
        s.local_get(R).i32_const(k as i32).i32_add().local_get(M).i32_lt_u().if_(BlockType::Empty);
        s.local_get(R).i32_const(k as i32).i32_add().i32_const((map.max_groups * 8) as i32).i32_mul();
        s.i32_const(map.groups as i32).i32_add().local_tee(GRP);
        s.local_get(LANE_NODE + k).i32_const(4).i32_shl().f64_load(mem(n, 3));
        if f32_sums {
            s.f32_demote_f64()
                .local_get(GRP)
                .f64_load(mem(8 * g as u32, 3))
                .f32_demote_f64()
                .f32_add()
                .f64_promote_f32();
        } else {
            s.local_get(GRP).f64_load(mem(8 * g as u32, 3)).f64_add();
        }
        s.f64_store(mem(8 * g as u32, 3)).end();
    }
    s.local_get(R).i32_const(LANES as i32).i32_add().local_set(R).br(0).end().end();
    s.local_get(T).i32_const(1).i32_add().local_set(T).br(0).end().end();
}

/// Pushes the leaf value of tree slot `T` for the row at `ROW`.
pub(super) fn traverse(s: &mut InstructionSink<'_>, map: &Map) {
    use local::*;
    let n = map.nodes;
    s.local_get(T).i32_const(2).i32_shl().i32_load(mem(map.roots, 2)).local_set(NODE);
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    // addr = node * 16; info = node.info; kind = info >> 24; leaf → exit
    s.local_get(NODE).i32_const(4).i32_shl().local_tee(ADDR).i32_load(mem(n + 8, 2)).local_tee(INFO);
    s.i32_const(24).i32_shr_u().local_tee(KIND).i32_eqz().br_if(1);
    s.local_get(ROW).local_get(INFO).i32_const(0x00ff_ffff).i32_and().i32_const(3).i32_shl().i32_add();
    s.f64_load(mem(0, 3)).local_set(X);
    s.block(BlockType::Empty); // $decided
    {
        // Numeric with NaN as missing: left = (x <= t) | (isnan(x) & kind == NAN_LEFT)
        s.local_get(KIND).i32_const(kind::NAN_LEFT as i32).i32_le_u().if_(BlockType::Empty);
        s.local_get(X).local_get(ADDR).f64_load(mem(n, 3)).f64_le();
        s.local_get(X).local_get(X).f64_ne().local_get(KIND).i32_const(kind::NAN_LEFT as i32).i32_eq().i32_and();
        s.i32_or().local_set(LEFT).br(1).end();
        // LightGBM None / Zero missing types
        s.local_get(KIND).i32_const(kind::ZERO_LEFT as i32).i32_le_u().if_(BlockType::Empty);
        s.local_get(X).local_get(X).f64_ne().if_(BlockType::Empty);
        f64c(s, 0.0);
        s.local_set(X).end();
        s.local_get(KIND).i32_const(kind::ZERO_RIGHT as i32).i32_ge_u();
        s.local_get(X).f64_abs();
        f64c(s, fresco_trees::eval::ZERO_THRESHOLD);
        s.f64_le().i32_and().if_(BlockType::Empty);
        s.local_get(KIND).i32_const(kind::ZERO_LEFT as i32).i32_eq().local_set(LEFT).br(2).end();
        s.local_get(X).local_get(ADDR).f64_load(mem(n, 3)).f64_le().local_set(LEFT).br(1).end();
        // LightGBM categorical: NaN, c < 0 or c >= 2^31 go right; c in set goes left.
        s.local_get(KIND).i32_const(kind::CAT_LIGHTGBM as i32).i32_eq().if_(BlockType::Empty);
        s.i32_const(0).local_set(LEFT);
        lightgbm_code_in_range(s, X);
        s.if_(BlockType::Empty);
        s.local_get(X).i32_trunc_sat_f64_u().local_set(C);
        in_bitset(s, map);
        s.local_set(LEFT).end();
        s.br(1).end();
        // XGBoost categorical: NaN default; invalid goes left; in set goes right.
        s.local_get(X).local_get(X).f64_ne().if_(BlockType::Empty);
        s.local_get(KIND).i32_const(kind::CAT_XGBOOST_NAN_LEFT as i32).i32_eq().local_set(LEFT).br(1).end();
        s.i32_const(1).local_set(LEFT);
        s.local_get(X);
        f64c(s, 0.0);
        s.f64_ge().local_get(X);
        f64c(s, fresco_trees::eval::XGB_MAX_CATEGORY);
        s.f64_lt().i32_and().if_(BlockType::Empty);
        s.local_get(X).i32_trunc_sat_f64_u().local_set(C);
        in_bitset(s, map);
        s.i32_eqz().local_set(LEFT).end();
    }
    s.end(); // $decided
    // node = left_child + 1 - left
    s.local_get(ADDR).i32_load(mem(n + 12, 2)).i32_const(1).i32_add().local_get(LEFT).i32_sub().local_set(NODE);
    s.br(0).end().end();
    s.local_get(ADDR).f64_load(mem(n, 3));
}

/// Pushes 1 if category `C` is in the bitset of the node at `ADDR`, else 0.
pub(super) fn in_bitset(s: &mut InstructionSink<'_>, map: &Map) {
    use local::*;
    s.local_get(C).i32_const(5).i32_shr_u().local_tee(W);
    s.local_get(ADDR).i32_load(mem(map.nodes + 4, 2)).i32_lt_u();
    s.if_(BlockType::Result(ValType::I32));
    s.local_get(ADDR).i32_load(mem(map.nodes, 2)).local_get(W).i32_const(2).i32_shl().i32_add().i32_load(mem(0, 2));
    s.local_get(C).i32_shr_u().i32_const(1).i32_and();
    s.else_().i32_const(0).end();
}
