//! Row order: the branch layout takes a block's rows through its trees sorted by the
//! threshold ranks of the features its branches test most.
//!
//! A branch whose outcome is a coin flip from one row to the next is mispredicted about
//! every other row. Rows of equal rank on a feature go the same way at every branch on
//! that feature, so once a block is sorted by that rank, consecutive rows repeat the
//! last outcome and each such branch changes direction a few times per block instead
//! of on every other row. Boosted trees test the same few features near their roots,
//! where every row passes. The sort is a counting sort of the block's row indices by
//! rank (one pass per key, least significant first), a few dozen instructions a row.
//!
//! The order decides only when a row is scored, never what a row adds nor in which
//! order its trees add up: the scores are the same bits in any order.

use fresco_trees::{Ensemble, Node};
use wasm_encoder::{BlockType, InstructionSink};

use super::{Map, local, mem};
use crate::branches;
use crate::ranks::{RANK_BYTES, Ranks};

/// Blocks of fewer rows are taken in their own order: too few rows for runs of equal
/// ranks to form, and the sort's fixed cost (clearing the counts) would show at batch 1.
const MIN_ROWS: u32 = 32;

/// At most this many sort keys (the first sorts, the second breaks its ties).
const MAX_KEYS: usize = 2;

/// A key's feature needs at least this many of its branches passed per row, expected
/// over rows that go either way at every split with equal odds.
const MIN_BRANCHES_PER_ROW: f64 = 1.0;

/// Features with more distinct ranks than this are not sort keys: their counts would
/// not stay in the L1 cache.
const MAX_DISTINCT: u32 = (1 << 12) + 1;

/// One sort key: a ranked feature and how many distinct ranks its rows can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    feature: u32,
    distinct: u32,
}

impl Key {
    /// Count slots the key's pass needs.
    pub(super) fn distinct(self) -> u32 {
        self.distinct
    }
}

/// The sort keys of an ensemble in the branch layout, most significant first: the
/// ranked features whose branches a row is expected to pass most often (a split at
/// depth `d` is passed by `2^-d` of the rows, as if every split divided rows evenly).
/// Empty when no feature is worth sorting by.
pub(super) fn keys(e: &Ensemble, ranks: &Ranks) -> Vec<Key> {
    let mut passed = vec![0.0f64; e.n_features()];
    let mut stack = Vec::new();
    for tree in &e.trees {
        stack.push((0u32, 0i32));
        while let Some((i, depth)) = stack.pop() {
            // A subtree emitted without branches has none below it either.
            if let Some(Node::Split(split)) = tree.nodes.get(i as usize)
                && branches::is_branch(tree, i)
            {
                if let Some(p) = passed.get_mut(split.feature as usize) {
                    *p += 0.5f64.powi(depth);
                }
                stack.push((split.left, depth.saturating_add(1)));
                stack.push((split.right, depth.saturating_add(1)));
            }
        }
    }
    let mut candidates: Vec<(usize, f64, u32)> = passed
        .iter()
        .enumerate()
        .filter(|&(_, &p)| p >= MIN_BRANCHES_PER_ROW)
        .filter_map(|(f, &p)| ranks.distinct(f).filter(|&d| d <= MAX_DISTINCT).map(|d| (f, p, d)))
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    candidates.into_iter().take(MAX_KEYS).map(|(f, _, d)| Key { feature: f as u32, distinct: d }).collect()
}

/// What the chunks read of a row, as byte offsets of 8-byte words: of its inputs, the
/// features some split reads as a float; of its ranks, every ranked feature's pair and
/// every category word.
pub(super) struct RowWords {
    inputs: Vec<u32>,
    ranks: Vec<u32>,
}

impl RowWords {
    pub(super) fn new(e: &Ensemble, ranks: &Ranks) -> RowWords {
        let mut inputs: Vec<u32> = e
            .trees
            .iter()
            .flat_map(|t| &t.nodes)
            .filter_map(|node| match node {
                Node::Split(split) if ranks.reads_input(e, split) => Some(8 * split.feature),
                _ => None,
            })
            .collect();
        inputs.sort_unstable();
        inputs.dedup();
        RowWords { inputs, ranks: ranks.slotted_features().map(|f| RANK_BYTES * f).collect() }
    }
}

/// Emits the block's order, for `keys` (not empty). When the block has [`MIN_ROWS`]
/// rows: sorts its row indices into `map.order` by the keys' ranks, copies what the
/// chunks read of each row (`words`) into `map.sorted_in` and `map.sorted_ranks` in
/// that order, so that the chunks read them front to back, and records each row's
/// position; `CHUNK_IN` and `CHUNK_RANKS` are then the copies and `SORTED` is 1.
/// Otherwise they are the block's own rows and `SORTED` is 0. The block's ranks must
/// be in place.
pub(super) fn emit(s: &mut InstructionSink<'_>, map: &Map, keys: &[Key], words: &RowWords) {
    use local::*;
    s.local_get(IN).local_set(CHUNK_IN);
    s.i32_const(map.ranks as i32).local_set(CHUNK_RANKS);
    s.i32_const(0).local_set(SORTED);
    s.local_get(M).i32_const(MIN_ROWS as i32).i32_ge_u().if_(BlockType::Empty);
    // Least significant key first; each pass is stable, so the last one's ties keep the
    // order of the passes before it. The last pass writes `map.order`.
    let spare = map.order + 4 * map.block;
    let (mut from, mut to) = (None, if keys.len().is_multiple_of(2) { spare } else { map.order });
    for key in keys.iter().rev() {
        sort_pass(s, map, *key, from, to);
        from = Some(to);
        to = if to == spare { map.order } else { spare };
    }
    for_each(s, R, rows, |s| {
        row_index(s, Some(map.order));
        s.local_get(NODE).i32_const(2).i32_shl().local_get(R).i32_store(mem(map.positions, 2));
        copy_row(s, IN, map.sorted_in, map.in_stride, &words.inputs);
        s.i32_const(map.ranks as i32).local_set(INFO);
        copy_row(s, INFO, map.sorted_ranks, map.rank_stride, &words.ranks);
    });
    s.i32_const(map.sorted_in as i32).local_set(CHUNK_IN);
    s.i32_const(map.sorted_ranks as i32).local_set(CHUNK_RANKS);
    s.i32_const(1).local_set(SORTED);
    s.end();
}

/// Pushes the block's row count.
fn rows(s: &mut InstructionSink<'_>) {
    s.local_get(local::M);
}

/// Points `GRP` at row `R`'s group scores where the chunks left them: at its position
/// in the order when the block was sorted.
pub(super) fn score_of_row(s: &mut InstructionSink<'_>, map: &Map) {
    use local::*;
    s.local_get(SORTED).if_(BlockType::Empty);
    s.local_get(R).i32_const(2).i32_shl().i32_load(mem(map.positions, 2));
    s.i32_const((map.max_groups * 8) as i32).i32_mul().i32_const(map.groups as i32).i32_add().local_set(GRP);
    s.end();
}

/// Copies the 8-byte `words` (byte offsets) of row `NODE` of the rows of `stride`
/// bytes at local `base` to row `R` of those at `to`; past [`UNROLLED_WORDS`] words,
/// the whole row, by a loop.
fn copy_row(s: &mut InstructionSink<'_>, base: u32, to: u32, stride: u32, words: &[u32]) {
    use local::*;
    if words.is_empty() {
        return;
    }
    s.local_get(NODE).i32_const(stride as i32).i32_mul().local_get(base).i32_add().local_set(ADDR);
    s.local_get(R).i32_const(stride as i32).i32_mul().local_set(W);
    if words.len() <= UNROLLED_WORDS {
        for &word in words {
            s.local_get(W).local_get(ADDR).i64_load(mem(word, 3)).i64_store(mem(to + word, 3));
        }
        return;
    }
    // W becomes the distance from source to destination.
    s.local_get(W).local_get(ADDR).i32_sub().local_set(W);
    s.local_get(ADDR).i32_const(stride as i32).i32_add().local_set(C);
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.local_get(ADDR).local_get(C).i32_ge_u().br_if(1);
    s.local_get(ADDR).local_get(W).i32_add().local_get(ADDR).i64_load(mem(0, 3)).i64_store(mem(to, 3));
    s.local_get(ADDR).i32_const(8).i32_add().local_set(ADDR).br(0).end().end();
}

/// Rows of up to this many 8-byte words read are copied by straight-line code.
const UNROLLED_WORDS: usize = 64;

/// One stable counting-sort pass over the block's row indices (read from `from`, or
/// `0..M` when `None`), by `key`'s rank, into `to`.
fn sort_pass(s: &mut InstructionSink<'_>, map: &Map, key: Key, from: Option<u32>, to: u32) {
    use local::*;
    let counts = map.order_counts;
    let distinct = key.distinct as i32;
    for_each(
        s,
        R,
        |s| {
            s.i32_const(distinct);
        },
        |s| {
            s.local_get(R).i32_const(2).i32_shl().i32_const(0).i32_store(mem(counts, 2));
        },
    );
    for_each(s, R, rows, |s| {
        row_index(s, from);
        count_slot(s, map, key);
        s.local_get(ADDR).local_get(ADDR).i32_load(mem(0, 2)).i32_const(1).i32_add().i32_store(mem(0, 2));
    });
    // Counts become the first position of each rank.
    s.i32_const(0).local_set(T);
    for_each(
        s,
        R,
        |s| {
            s.i32_const(distinct);
        },
        |s| {
            s.local_get(R).i32_const(2).i32_shl().i32_const(counts as i32).i32_add().local_tee(ADDR);
            s.i32_load(mem(0, 2)).local_set(C);
            s.local_get(ADDR).local_get(T).i32_store(mem(0, 2));
            s.local_get(T).local_get(C).i32_add().local_set(T);
        },
    );
    for_each(s, R, rows, |s| {
        row_index(s, from);
        count_slot(s, map, key);
        s.local_get(ADDR).i32_load(mem(0, 2)).local_tee(C);
        s.i32_const(2).i32_shl().local_get(NODE).i32_store(mem(to, 2));
        s.local_get(ADDR).local_get(C).i32_const(1).i32_add().i32_store(mem(0, 2));
    });
}

/// Sets `NODE` to the `R`th row index: read from `from`, or `R` itself.
fn row_index(s: &mut InstructionSink<'_>, from: Option<u32>) {
    use local::*;
    match from {
        Some(from) => s.local_get(R).i32_const(2).i32_shl().i32_load(mem(from, 2)).local_set(NODE),
        None => s.local_get(R).local_set(NODE),
    };
}

/// Sets `ADDR` to the count slot of row `NODE`'s rank of `key`'s feature: NaN's rank
/// (`i32::MIN`) counts in slot 0, rank `r` in slot `r + 1`.
fn count_slot(s: &mut InstructionSink<'_>, map: &Map, key: Key) {
    use local::*;
    s.local_get(NODE).i32_const(map.rank_stride as i32).i32_mul();
    s.i32_load(mem(map.ranks + RANK_BYTES * key.feature, 2)).local_tee(ADDR);
    // (r + 1) & !(r >> 31): r + 1 for a rank, 0 for NaN's.
    s.i32_const(1).i32_add().local_get(ADDR).i32_const(31).i32_shr_s().i32_const(-1).i32_xor().i32_and();
    s.i32_const(2).i32_shl().i32_const(map.order_counts as i32).i32_add().local_set(ADDR);
}

/// Emits `for counter in 0..bound { body }` (`bound` pushes an i32, read every turn).
fn for_each(
    s: &mut InstructionSink<'_>,
    counter: u32,
    bound: impl Fn(&mut InstructionSink<'_>),
    body: impl FnOnce(&mut InstructionSink<'_>),
) {
    s.i32_const(0).local_set(counter);
    s.block(BlockType::Empty).loop_(BlockType::Empty);
    s.local_get(counter);
    bound(s);
    s.i32_ge_u().br_if(1);
    body(s);
    s.local_get(counter).i32_const(1).i32_add().local_set(counter).br(0).end().end();
}

#[cfg(test)]
mod tests {
    use fresco_trees::{Comparison, Ensemble, Missing, Node, NumericSplit, Precision, Split, SplitTest, Tree};

    use super::keys;
    use crate::ranks::{Ranks, Selection};

    /// A tree of `height` levels of splits, its root on `root` and every split below on
    /// `below`, thresholds `0.0, 1.0, …` in visiting order.
    fn tree(height: u32, root: u32, below: u32) -> Tree {
        let mut nodes = vec![Node::Leaf(0.0)];
        let mut level = vec![0usize];
        let mut threshold = 0.0;
        for depth in 0..height {
            let mut next = Vec::new();
            for at in level {
                let left = nodes.len();
                nodes.push(Node::Leaf(0.5));
                nodes.push(Node::Leaf(-0.5));
                nodes[at] = Node::Split(Split {
                    feature: if depth == 0 { root } else { below },
                    left: left as u32,
                    right: left as u32 + 1,
                    test: SplitTest::Numeric(NumericSplit {
                        threshold,
                        comparison: Comparison::LessOrEqual,
                        missing: Missing::NanIsMissing,
                        default_left: true,
                    }),
                });
                threshold += 1.0;
                next.extend([left, left + 1]);
            }
            level = next;
        }
        Tree { group: 0, nodes }
    }

    fn ensemble(trees: Vec<Tree>) -> Ensemble {
        fresco_test_models::synthetic::regression(3, trees, 0.0, Precision::F64)
    }

    #[test]
    fn the_features_whose_branches_rows_pass_most_are_the_keys() {
        // Per row: feature 2 at the root of 20 trees (20 branches passed); feature 1
        // below the root of 6 taller trees, two levels of branches (2 each: 12), and
        // at their root feature 0 (6). Splits within 3 of the leaves are not branches.
        let mut trees: Vec<Tree> = (0..20).map(|_| tree(4, 2, 1)).collect();
        trees.extend((0..6).map(|_| tree(6, 0, 1)));
        let e = ensemble(trees);
        let keys = keys(&e, &Ranks::build(&e, 0, Selection::All));
        let features: Vec<u32> = keys.iter().map(|k| k.feature).collect();
        assert_eq!(features, [2, 1]);
        // Feature 1's thresholds are 1.0 ..= 62.0: ranks 0..=62 in 6 steps, 2^6 + 1 slots.
        assert_eq!(keys[1].distinct(), 65);
    }

    #[test]
    fn trees_without_branches_are_not_sorted() {
        // Height 3: emitted without branches, so no order helps them.
        let e = ensemble((0..20).map(|_| tree(3, 2, 1)).collect());
        assert!(keys(&e, &Ranks::build(&e, 0, Selection::All)).is_empty());
    }

    #[test]
    fn unranked_features_are_not_keys() {
        let e = ensemble((0..20).map(|_| tree(5, 2, 1)).collect());
        assert!(keys(&e, &Ranks::build(&e, 0, Selection::None)).is_empty());
    }
}
