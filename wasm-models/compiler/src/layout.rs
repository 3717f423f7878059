//! Lays tree ensembles out as tables in linear memory.
//!
//! Every node is 16 bytes:
//!
//! | bytes | leaf | numeric split | categorical split |
//! |---|---|---|---|
//! | 0..8 | value (f64) | threshold (f64, `value <= threshold` goes left) | bitset address (u32), word count (u32) |
//! | 8..12 | kind 0 | feature (low 24 bits), kind (high 8 bits) | same |
//! | 12..16 | – | index of the left child; the right child follows it | same |
//!
//! Children are placed side by side (breadth-first), so one index names both. Trees
//! are reordered so that each output group's trees are contiguous, keeping their
//! relative order (which fixes the order of the floating-point sums).

use crate::ranks::Ranks;
use crate::splits::numeric_plan;
use fresco_trees::{CategoricalFlavor, Ensemble, Missing, Node, SplitTest};

/// Node kinds, the high byte of a node's second word.
pub mod kind {
    /// A leaf.
    pub const LEAF: u32 = 0;
    /// Numeric, NaN takes the right branch.
    pub const NAN_RIGHT: u32 = 1;
    /// Numeric, NaN takes the left branch.
    pub const NAN_LEFT: u32 = 2;
    /// Numeric, NaN is treated as 0 (LightGBM missing type None). The layout turns
    /// these into `NAN_LEFT` or `NAN_RIGHT` by where 0 goes; the code still handles it.
    pub const NAN_AS_ZERO: u32 = 3;
    /// Numeric, NaN is 0 and ±1e-35 takes the right branch (LightGBM Zero).
    pub const ZERO_RIGHT: u32 = 4;
    /// Numeric, NaN is 0 and ±1e-35 takes the left branch.
    pub const ZERO_LEFT: u32 = 5;
    /// Categorical, LightGBM rules.
    pub const CAT_LIGHTGBM: u32 = 6;
    /// Categorical, XGBoost rules, NaN right.
    pub const CAT_XGBOOST_NAN_RIGHT: u32 = 7;
    /// Categorical, XGBoost rules, NaN left.
    pub const CAT_XGBOOST_NAN_LEFT: u32 = 8;
}

/// Bytes per node.
pub const NODE_BYTES: u32 = 16;

/// The node tables of all ensembles, ready to become a data segment.
pub struct Tables {
    /// Node records, 16 bytes each.
    pub nodes: Vec<u8>,
    /// Category bitset words, addressed relative to `bitsets_base`.
    pub bitsets: Vec<u32>,
    /// Root node index of each tree slot.
    pub roots: Vec<u32>,
    /// Height (splits on the longest path) of each tree slot.
    pub depths: Vec<u32>,
    /// Per ensemble, per group: the tree slots `start..end`.
    pub groups: Vec<Vec<(u32, u32)>>,
}

/// Address where the category bitsets will live; node records name absolute addresses.
pub struct Placement {
    /// Byte address of the first bitset word.
    pub bitsets_base: u32,
    /// Byte address of the first node record.
    pub nodes_base: u32,
}

impl Tables {
    /// Builds the tables. `placement` is computed by the caller from the sizes returned
    /// by [`Tables::bitset_words`], so bitset addresses are final.
    ///
    /// Where `ranks[i]` ranks ensemble `i`, which must then cover every split (see
    /// [`Ranks::complete`]), its trees get rank records instead:
    ///
    /// | bytes | leaf | split |
    /// |---|---|---|
    /// | 0..4 | value, low 32 bits | limit: the first child when the masked word is at most this (unsigned) |
    /// | 4..8 | offset of the rows' zero word ([`zero_rank_word`]) | byte offset of the word in the row's ranks |
    /// | 8..12 | its own address | address of the first child; the second follows |
    /// | 12..16 | value, high 32 bits | mask: all ones, or a categorical split's bitset word |
    ///
    /// so that one unsigned compare decides every step (`0 & mask <= anything` keeps a
    /// leaf put), and the leaf value shares the cache line of the leaf's record. A rank
    /// split's first child is its left one; a categorical split's is its right one, as
    /// the category's one-hot masked by the split's categories is above 0 for the left
    /// ([`crate::ranks::UnsignedTest`]). The walks apply the mask only where some
    /// split is categorical.
    pub fn build(
        ensembles: &[&Ensemble],
        placement: &Placement,
        ranks: &[Ranks],
        mut progress: impl FnMut(usize),
    ) -> Result<Tables, String> {
        let mut tables = Tables {
            nodes: Vec::new(),
            bitsets: Vec::new(),
            roots: Vec::new(),
            depths: Vec::new(),
            groups: Vec::new(),
        };
        let mut done = 0usize;
        for (i, ensemble) in ensembles.iter().enumerate() {
            let ranks = ranks.get(i).filter(|r| r.any());
            let mut ranges = Vec::with_capacity(ensemble.n_groups);
            for trees in ensemble.trees_by_group() {
                let start = tables.roots.len() as u32;
                for t in trees {
                    let root = match ranks {
                        Some(ranks) => tables.push_ranked_tree(ensemble, t, placement, ranks)?,
                        None => tables.push_tree(ensemble, t, placement),
                    };
                    tables.roots.push(root);
                    tables.depths.push(height(&ensemble.trees[t]));
                    done += 1;
                    progress(done);
                }
                ranges.push((start, tables.roots.len() as u32));
            }
            tables.groups.push(ranges);
        }
        Ok(tables)
    }

    /// Node records the ensembles need: per tree, one for the root plus a pair of
    /// children per split (children are allocated side by side).
    pub fn node_slots(ensembles: &[&Ensemble]) -> usize {
        ensembles
            .iter()
            .flat_map(|e| &e.trees)
            .map(|t| 1 + 2 * t.nodes.iter().filter(|n| matches!(n, Node::Split(_))).count())
            .sum()
    }

    /// Words of bitset storage the ensembles need.
    pub fn bitset_words(ensembles: &[&Ensemble]) -> usize {
        ensembles
            .iter()
            .flat_map(|e| &e.trees)
            .flat_map(|t| &t.nodes)
            .map(|n| match n {
                Node::Split(s) => match &s.test {
                    SplitTest::Categorical(c) => c.categories.len(),
                    SplitTest::Numeric(_) => 0,
                },
                Node::Leaf(_) => 0,
            })
            .sum()
    }

    /// Appends one tree breadth-first; returns its root's node index.
    fn push_tree(&mut self, ensemble: &Ensemble, t: usize, placement: &Placement) -> u32 {
        let tree = &ensemble.trees[t];
        let first = (self.nodes.len() / NODE_BYTES as usize) as u32;
        // (IR node, slot) pairs waiting to be written; slots are allocated in pairs.
        let mut queue = std::collections::VecDeque::from([(0u32, first)]);
        let mut next_free = first + 1;
        self.nodes.resize(self.nodes.len() + NODE_BYTES as usize, 0);
        while let Some((ir, slot)) = queue.pop_front() {
            let record = match &tree.nodes[ir as usize] {
                // A leaf's child is itself, so a walk that takes more steps than the
                // path is long stays put (the lockstep walk relies on it).
                Node::Leaf(value) => encode(value.to_bits(), kind::LEAF << 24, slot),
                Node::Split(split) => {
                    let left_slot = next_free;
                    next_free += 2;
                    self.nodes.resize(self.nodes.len() + 2 * NODE_BYTES as usize, 0);
                    queue.push_back((split.left, left_slot));
                    queue.push_back((split.right, left_slot + 1));
                    let (first_word, k) = match &split.test {
                        SplitTest::Numeric(s) => {
                            // NaN → 0 then `0 <= t` is NaN taking a fixed branch, which keeps
                            // those nodes on the fast path (`numeric_plan` folds it in).
                            let (threshold, default_left) = numeric_plan(ensemble, s);
                            let k = match (s.missing, default_left) {
                                (Missing::ZeroIsMissing, false) => kind::ZERO_RIGHT,
                                (Missing::ZeroIsMissing, true) => kind::ZERO_LEFT,
                                (_, false) => kind::NAN_RIGHT,
                                (_, true) => kind::NAN_LEFT,
                            };
                            (threshold.to_bits(), k)
                        }
                        SplitTest::Categorical(c) => {
                            let address = placement.bitsets_base + 4 * self.bitsets.len() as u32;
                            let words = c.categories.len() as u64;
                            self.bitsets.extend_from_slice(&c.categories);
                            let k = match (c.flavor, c.default_left) {
                                (CategoricalFlavor::LightGbm, _) => kind::CAT_LIGHTGBM,
                                (CategoricalFlavor::XgBoost, false) => kind::CAT_XGBOOST_NAN_RIGHT,
                                (CategoricalFlavor::XgBoost, true) => kind::CAT_XGBOOST_NAN_LEFT,
                            };
                            (u64::from(address) | (words << 32), k)
                        }
                    };
                    encode(first_word, (k << 24) | split.feature, left_slot)
                }
            };
            let at = slot as usize * NODE_BYTES as usize;
            self.nodes[at..at + NODE_BYTES as usize].copy_from_slice(&record);
        }
        first
    }
}

impl Tables {
    /// Appends one tree as rank records (see [`Tables::build`]); returns its root's
    /// node index.
    fn push_ranked_tree(
        &mut self,
        ensemble: &Ensemble,
        t: usize,
        placement: &Placement,
        ranks: &Ranks,
    ) -> Result<u32, String> {
        let tree = &ensemble.trees[t];
        let first = (self.nodes.len() / NODE_BYTES as usize) as u32;
        let address = |slot: u32| placement.nodes_base + slot * NODE_BYTES;
        let mut queue = std::collections::VecDeque::from([(0u32, first)]);
        let mut next_free = first + 1;
        self.nodes.resize(self.nodes.len() + NODE_BYTES as usize, 0);
        while let Some((ir, slot)) = queue.pop_front() {
            let record = match &tree.nodes[ir as usize] {
                Node::Leaf(value) => {
                    let bits = value.to_bits();
                    let zero = u64::from(zero_rank_word(ensemble.n_features()));
                    encode((bits & 0xffff_ffff) | (zero << 32), address(slot), (bits >> 32) as u32)
                }
                Node::Split(split) => {
                    let test = ranks
                        .unsigned_test(ensemble, split)
                        .ok_or_else(|| format!("tree {t}: a split without a rank comparison"))?;
                    let first_slot = next_free;
                    next_free += 2;
                    self.nodes.resize(self.nodes.len() + 2 * NODE_BYTES as usize, 0);
                    let (first, second) =
                        if test.left_second { (split.right, split.left) } else { (split.left, split.right) };
                    queue.push_back((first, first_slot));
                    queue.push_back((second, first_slot + 1));
                    encode(u64::from(test.limit) | (u64::from(test.word) << 32), address(first_slot), test.mask)
                }
            };
            let at = slot as usize * NODE_BYTES as usize;
            self.nodes[at..at + NODE_BYTES as usize].copy_from_slice(&record);
        }
        Ok(first)
    }
}

/// Byte offset, within a row's ranks, of a word that is always 0: after the features'.
pub fn zero_rank_word(n_features: usize) -> u32 {
    crate::ranks::RANK_BYTES * n_features as u32
}

/// Splits on the longest root-to-leaf path (iteratively: trees may be very deep).
pub fn height(tree: &fresco_trees::Tree) -> u32 {
    let mut best = 0;
    let mut stack = vec![(0u32, 0u32)];
    while let Some((i, d)) = stack.pop() {
        match &tree.nodes[i as usize] {
            Node::Leaf(_) => best = best.max(d),
            Node::Split(s) => {
                stack.push((s.left, d + 1));
                stack.push((s.right, d + 1));
            }
        }
    }
    best
}

/// Whether every split is a numeric split that treats NaN as missing (after the
/// None → NaN rewrite), the case the lockstep walk handles.
pub fn lockstep_eligible(ensemble: &Ensemble) -> bool {
    ensemble.trees.iter().flat_map(|t| &t.nodes).all(|n| match n {
        Node::Leaf(_) => true,
        Node::Split(s) => {
            matches!(&s.test, SplitTest::Numeric(n) if n.missing != Missing::ZeroIsMissing)
        }
    })
}

fn encode(first: u64, info: u32, left: u32) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&first.to_le_bytes());
    r[8..12].copy_from_slice(&info.to_le_bytes());
    r[12..].copy_from_slice(&left.to_le_bytes());
    r
}
