//! Threshold ranks: each numeric input of a row replaced, once per row, by its rank among
//! the ensemble's split thresholds on that feature.
//!
//! With `T` the sorted distinct thresholds of feature `f` and `r(x) = #{i : T[i] < x}`,
//! `x <= T[j]` holds exactly when `r(x) <= j`. A split then compares a small integer
//! with an immediate: no threshold load, no float compare, and the rank of a hot feature
//! stays in a register across trees. LightGBM and XGBoost bin their inputs while
//! training, so a feature has at most a few hundred distinct thresholds and the rank
//! takes a handful of branch-free search steps.
//!
//! NaN ranks as `i32::MIN`: a signed `<=` sends it left, an unsigned one right, so one
//! rank serves splits of either default direction.
//!
//! A categorical feature of LightGBM's kind gets a category word in its rank slot
//! instead: the category its input stands for, computed once per row, or
//! [`NO_CATEGORY`] where LightGBM sends the row right whatever the split's categories
//! (NaN, `x <= -1`, `x >= 2^31`). A split whose categories fit in one bitset word then
//! tests a bit of an immediate: no float compares, no truncation, no branches. The
//! slot's second word holds the category's one-hot (`1 << word`, 0 from 32 up), which
//! the node tables mask with a split's bitset word ([`UnsignedTest`]).

use std::collections::HashMap;

use fresco_trees::{CategoricalFlavor, CategoricalSplit, Ensemble, Missing, Node, SplitTest};
use wasm_encoder::{InstructionSink, MemArg};

use crate::splits::{lightgbm_code_in_range, numeric_plan};

/// The rank of NaN.
pub const NAN_RANK: i32 = i32::MIN;

/// Bytes of ranks per feature: the rank, then the rank plus [`NAN_LEFT_BIAS`] (or the
/// category word, then its one-hot).
pub const RANK_BYTES: u32 = 8;

/// Added to the rank in its second word: NaN's rank becomes 0, the smallest unsigned
/// value, and the others stay in order above it.
pub const NAN_LEFT_BIAS: u32 = 1 << 31;

/// The category word of an input that is in no category: NaN, `x <= -1`, `x >= 2^31`.
/// Any value of 32 or more fails the one-word bitset test.
pub const NO_CATEGORY: i32 = -1;

/// One feature's search table.
struct Table {
    /// Byte offset of the table within [`Ranks::data`].
    offset: u32,
    /// Search steps: the table holds `2^steps - 1` thresholds, padded with +∞.
    steps: u32,
}

/// A split as one unsigned compare of a word of the row's rank slots: the row takes
/// the split's second child when `(slot word & mask) > limit`, else its first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsignedTest {
    /// The largest masked word that takes the first child.
    pub limit: u32,
    /// Byte offset of the word within the row's rank slots.
    pub word: u32,
    /// All ones for a rank; a categorical split's bitset word for a category one-hot.
    pub mask: u32,
    /// Whether the second child is the split's left one (categorical: in the set).
    pub left_second: bool,
}

/// Which features get a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Those with enough splits to repay the search ([`SPLITS_PER_STEP`]).
    Profitable,
    /// Every feature with a rankable split, and each category word's one-hot beside it:
    /// the node tables' selection (their categorical records test the one-hot).
    All,
    /// None.
    None,
}

/// Rank tables of one ensemble and the rank index of every ranked split threshold.
pub struct Ranks {
    /// Per feature: its table, or `None` when no split ranks it.
    tables: Vec<Option<Table>>,
    /// Per feature: whether its rank slot holds a category word instead (never both).
    categories: Vec<bool>,
    /// `(feature, threshold bits)` → index of the threshold in its feature's table.
    index: HashMap<(u32, u64), i32>,
    /// The tables' bytes (f64 little-endian), to be placed at `base`.
    pub data: Vec<u8>,
    /// Byte address of `data` in linear memory.
    pub base: u32,
    /// Whether [`Ranks::emit_row`] also stores each category word's one-hot
    /// ([`Selection::All`]; the branch layout does not read it).
    one_hots: bool,
}

/// Whether a split is compared by rank: numeric, NaN missing (or NaN as zero), and a
/// threshold that is a number.
pub fn ranked(e: &Ensemble, split: &fresco_trees::Split) -> Option<f64> {
    match &split.test {
        SplitTest::Numeric(n) if n.missing != Missing::ZeroIsMissing => {
            let (t, _) = numeric_plan(e, n);
            // -0.0 and 0.0 compare equal: one entry for both.
            (!t.is_nan()).then_some(if t == 0.0 { 0.0 } else { t })
        }
        _ => None,
    }
}

/// The bitset of a split that a category word can test: LightGBM's kind, its categories
/// all below 32 (one bitset word).
fn one_word_categories(split: &fresco_trees::Split) -> Option<u32> {
    match &split.test {
        SplitTest::Categorical(CategoricalSplit { flavor: CategoricalFlavor::LightGbm, categories, .. }) => {
            match categories.as_slice() {
                [word] => Some(*word),
                _ => None,
            }
        }
        _ => None,
    }
}

impl Ranks {
    /// Collects the ensemble's thresholds of the features `selection` ranks; the tables
    /// will live at `base`.
    pub fn build(e: &Ensemble, base: u32, selection: Selection) -> Ranks {
        let mut per_feature: Vec<Vec<f64>> = vec![Vec::new(); e.n_features()];
        for tree in &e.trees {
            for node in &tree.nodes {
                if let Node::Split(split) = node
                    && let Some(t) = ranked(e, split)
                    && let Some(list) = per_feature.get_mut(split.feature as usize)
                {
                    list.push(t);
                }
            }
        }
        let mut tables = Vec::with_capacity(per_feature.len());
        let mut index = HashMap::new();
        let mut data = Vec::new();
        for (f, mut list) in per_feature.into_iter().enumerate() {
            let splits = list.len();
            list.sort_by(f64::total_cmp);
            list.dedup();
            let steps = u32::BITS - (list.len() as u32).leading_zeros();
            // Ranking costs a search per row; it pays where many splits read the rank.
            let profitable = splits >= SPLITS_PER_STEP * steps as usize;
            let wanted = match selection {
                Selection::Profitable => profitable,
                Selection::All => true,
                Selection::None => false,
            };
            if list.is_empty() || !wanted {
                tables.push(None);
                continue;
            }
            let offset = data.len() as u32;
            for (j, t) in list.iter().enumerate() {
                index.insert((f as u32, t.to_bits()), j as i32);
                data.extend_from_slice(&key(*t).to_le_bytes());
            }
            for _ in list.len()..(1usize << steps) - 1 {
                data.extend_from_slice(&key(f64::INFINITY).to_le_bytes());
            }
            tables.push(Some(Table { offset, steps }));
        }
        // A category word costs a few instructions a row and saves a truncation and
        // its range checks at every test of the feature's splits.
        let mut categories = vec![false; tables.len()];
        if selection != Selection::None {
            for split in e.trees.iter().flat_map(|t| &t.nodes).filter_map(|n| match n {
                Node::Split(split) => Some(split),
                Node::Leaf(_) => None,
            }) {
                let f = split.feature as usize;
                if one_word_categories(split).is_some() && matches!(tables.get(f), Some(None)) {
                    categories[f] = true;
                }
            }
        }
        Ranks { tables, categories, index, data, base, one_hots: selection == Selection::All }
    }

    /// The bitset word a categorical split tests against its feature's category word,
    /// or `None` when the split reads its input.
    pub fn category_bits(&self, split: &fresco_trees::Split) -> Option<u32> {
        let bits = one_word_categories(split)?;
        self.categories.get(split.feature as usize).copied().unwrap_or(false).then_some(bits)
    }

    /// Whether a split reads the row's input rather than its rank slot.
    pub fn reads_input(&self, e: &Ensemble, split: &fresco_trees::Split) -> bool {
        self.split_index(e, split).is_none() && self.category_bits(split).is_none()
    }

    /// Whether `feature` is ranked.
    pub fn is_ranked(&self, feature: usize) -> bool {
        matches!(self.tables.get(feature), Some(Some(_)))
    }

    /// Whether every split of `e` reads its rank slot: numeric splits by rank (NaN
    /// missing or NaN as zero, thresholds that are numbers, features ranked) and
    /// LightGBM categorical splits by category word.
    pub fn complete(&self, e: &Ensemble) -> bool {
        e.trees.iter().flat_map(|t| &t.nodes).all(|n| match n {
            Node::Leaf(_) => true,
            Node::Split(split) => !self.reads_input(e, split),
        })
    }

    /// Whether any feature's slot holds a category word (its node-table records then
    /// need [`UnsignedTest::mask`]).
    pub fn has_category_words(&self) -> bool {
        self.categories.contains(&true)
    }

    /// The one-compare test of a split that [`Ranks::complete`] covers (see
    /// [`UnsignedTest`] and, for the words of a slot, [`Ranks::emit_row`]).
    pub fn unsigned_test(&self, e: &Ensemble, split: &fresco_trees::Split) -> Option<UnsignedTest> {
        let word = RANK_BYTES * split.feature;
        if let Some(bits) = self.category_bits(split) {
            // (one-hot & categories) > 0 exactly when the category is in the set.
            return Some(UnsignedTest { limit: 0, word: word + 4, mask: bits, left_second: true });
        }
        let SplitTest::Numeric(n) = &split.test else { return None };
        let j = self.split_index(e, split)? as u32;
        let (_, default_left) = numeric_plan(e, n);
        let (limit, word) = if default_left { (j + NAN_LEFT_BIAS, word + 4) } else { (j, word) };
        Some(UnsignedTest { limit, word, mask: u32::MAX, left_second: false })
    }

    /// The index among its feature's thresholds of the threshold a split compares by
    /// rank, or `None` when the split compares the input itself.
    pub fn split_index(&self, e: &Ensemble, split: &fresco_trees::Split) -> Option<i32> {
        self.index(split.feature, ranked(e, split)?)
    }

    /// The number of distinct ranks `feature`'s rows can have, NaN's included: its
    /// table's `2^steps - 1` entries bound a rank to `0..2^steps`, plus one for NaN.
    /// `None` when the feature is not ranked.
    pub fn distinct(&self, feature: usize) -> Option<u32> {
        let table = self.tables.get(feature)?.as_ref()?;
        1u32.checked_shl(table.steps)?.checked_add(1)
    }

    /// The features whose rank slot holds a rank or a category word, in order.
    pub fn slotted_features(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.tables.len()).filter(move |&f| self.is_ranked(f) || self.categories[f]).map(|f| f as u32)
    }

    /// Whether any feature is ranked or has a category word.
    pub fn any(&self) -> bool {
        self.tables.iter().any(Option::is_some) || self.categories.contains(&true)
    }

    /// The index of threshold `t` (as [`ranked`] returns it) of `feature`.
    pub fn index(&self, feature: u32, t: f64) -> Option<i32> {
        self.index.get(&(feature, t.to_bits())).copied()
    }

    /// Emits, for one row, the rank of every ranked feature: reads the row's input at
    /// local `row` and stores two words per feature at local `out` ([`RANK_BYTES`] per
    /// feature): the rank as the signed compares of the branch layout read it (NaN is
    /// [`NAN_RANK`]), and the rank plus [`NAN_LEFT_BIAS`] (NaN is 0), so that the node
    /// tables send NaN either way with one unsigned compare; then the category word of
    /// every feature that has one, and its one-hot under [`Selection::All`]. `x` is an
    /// f64 scratch local; `keys` and `positions` are the first of [`LANES`] i64 and
    /// [`LANES`] i32 scratch locals.
    ///
    /// The search runs on order-preserving integer keys of the doubles (an integer
    /// compare is shorter than a float one on the dependent chain), and `LANES`
    /// features at a time, step by step, so their chains of dependent loads overlap.
    pub fn emit_row(&self, s: &mut InstructionSink<'_>, row: u32, out: u32, x: u32, keys: u32, positions: u32) {
        let ranked: Vec<(usize, &Table)> =
            self.tables.iter().enumerate().filter_map(|(f, t)| t.as_ref().map(|t| (f, t))).collect();
        for group in ranked.chunks(LANES as usize) {
            for (lane, (f, _)) in group.iter().enumerate() {
                let lane = lane as u32;
                // key = bits ^ ((bits >> 63) >>> 1): signed order of keys = order of values
                s.local_get(row).i64_load(mem(8 * *f as u32, 3)).local_tee(keys + lane);
                s.local_get(keys + lane).i64_const(63).i64_shr_s().i64_const(1).i64_shr_u().i64_xor();
                s.local_set(keys + lane);
                s.i32_const(0).local_set(positions + lane);
            }
            let most = group.iter().map(|(_, t)| t.steps).max().unwrap_or(0);
            for step in (0..most).rev() {
                for (lane, (_, table)) in group.iter().enumerate() {
                    if step >= table.steps {
                        continue;
                    }
                    let lane = lane as u32;
                    let half = 1u32 << step;
                    // position += (T[position + half - 1] < key) * half, in bytes
                    s.local_get(positions + lane);
                    s.i64_load(mem(self.base + table.offset + 8 * (half - 1), 3));
                    s.local_get(keys + lane).i64_lt_s();
                    s.i32_const(step as i32 + 3).i32_shl();
                    s.local_get(positions + lane).i32_add().local_set(positions + lane);
                }
            }
            for (lane, (f, _)) in group.iter().enumerate() {
                let lane = lane as u32;
                let at = RANK_BYTES * *f as u32;
                // NaN compares false everywhere (rank 0): give it its own rank.
                s.local_get(out);
                s.i32_const(NAN_RANK);
                s.local_get(positions + lane).i32_const(3).i32_shr_u();
                s.local_get(row).f64_load(mem(8 * *f as u32, 3)).local_tee(x).local_get(x).f64_ne();
                s.select().local_tee(positions + lane);
                s.i32_store(mem(at, 2));
                s.local_get(out).local_get(positions + lane).i32_const(NAN_LEFT_BIAS as i32).i32_add();
                s.i32_store(mem(at + 4, 2));
            }
        }
        for f in (0..self.categories.len()).filter(|&f| self.categories[f]) {
            let at = RANK_BYTES * f as u32;
            // trunc(x) where -1 < x < 2^31 (false for NaN), else NO_CATEGORY
            s.local_get(out);
            s.local_get(row).f64_load(mem(8 * f as u32, 3)).local_tee(x).i32_trunc_sat_f64_s();
            s.i32_const(NO_CATEGORY);
            lightgbm_code_in_range(s, x);
            s.select();
            if self.one_hots {
                s.local_tee(positions);
            }
            s.i32_store(mem(at, 2));
            if self.one_hots {
                // 1 << word below 32, else 0, for the node tables' masks
                s.local_get(out).i32_const(1).local_get(positions).i32_shl().i32_const(0);
                s.local_get(positions).i32_const(32).i32_lt_u().select().i32_store(mem(at + 4, 2));
            }
        }
    }
}

/// A feature is ranked when it has at least this many splits per search step.
pub const SPLITS_PER_STEP: usize = 16;

/// Features searched together by [`Ranks::emit_row`].
pub const LANES: u32 = 6;

/// The signed-integer key of `v` whose order is the order of the values (-0.0 sorts
/// just below 0.0; callers normalize thresholds to 0.0).
fn key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

fn mem(offset: u32, align: u32) -> MemArg {
    MemArg { offset: u64::from(offset), align, memory_index: 0 }
}
