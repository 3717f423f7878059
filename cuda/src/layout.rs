//! The device layout of a tree ensemble: flat arrays that a GPU kernel (and its CPU
//! reference, [`Forest::raw_scores`]) walks, uploaded once.
//!
//! One 32-byte [`DeviceNode`] per node of every tree, trees back to back, so that a
//! step of the walk reads one aligned 32-byte sector (what a GPU fetches at once)
//! rather than one from each of several arrays; categorical splits' bitsets in
//! `cat_words`, and per tree its root node and output group.
//!
//! Scores accumulate per row from the base score in tree order, in the ensemble's
//! precision, exactly as the native evaluator does; averaging and the output
//! transform then run on the host ([`Forest::finish`]) with the native code, so they
//! are bit-identical by construction.

use fresco_trees::{
    CategoricalFlavor, Comparison, Ensemble, Missing, Node, Precision, SplitTest, Transform, eval, limits,
};

/// Bits of the feature index in `info` (features are limited to 2^20).
pub const FEATURE_BITS: u32 = 20;
/// `info` flag: the node is a leaf.
pub const LEAF: u32 = 1 << 20;
/// `info` flag: a categorical split.
pub const CATEGORICAL: u32 = 1 << 21;
/// `info` flag: the numeric comparison is `<` (else `<=`).
pub const LESS: u32 = 1 << 22;
/// `info` shift of the missing type: 0 NaN → 0, 1 zero is missing, 2 NaN is missing.
pub const MISSING_SHIFT: u32 = 23;
/// `info` flag: missing values go left.
pub const DEFAULT_LEFT: u32 = 1 << 25;
/// `info` flag: categories follow XGBoost's rule (else LightGBM's).
pub const XGBOOST_CATEGORIES: u32 = 1 << 26;

/// Why an ensemble cannot take the device layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The ensemble breaks the IR's own rules.
    #[error(transparent)]
    Invalid(#[from] fresco_trees::ParseError),
    /// More nodes or category words than 32-bit indices address.
    #[error("{what}: {count} is more than the device layout's 32-bit indices address")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// How many there are.
        count: usize,
    },
}

/// One node of the device layout, as the kernel's `fresco_node` declares it (32 bytes).
///
/// ```
/// assert_eq!(std::mem::size_of::<fresco_cuda::DeviceNode>(), 32);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceNode {
    /// Bits 0–19 the feature, then flags: leaf, categorical, `<` (else
    /// `<=`), the missing type (2 bits), default-left, XGBoost-flavoured
    /// categories.
    pub info: u32,
    /// Absolute index of the left child.
    pub left: u32,
    /// Absolute index of the right child.
    pub right: u32,
    /// A categorical split's first word in `cat_words`.
    pub cat_start: u32,
    /// A categorical split's words.
    pub cat_len: u32,
    /// Zero: pads the record to 32 bytes.
    pub reserved: u32,
    /// A numeric split's threshold, a leaf's value.
    pub value: f64,
}

// SAFETY: plain old data of `#[repr(C)]` fields, laid out as the kernel's `fresco_node`.
unsafe impl cudarc::driver::DeviceRepr for DeviceNode {}

/// A tree ensemble in the device layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    pub(crate) nodes: Vec<DeviceNode>,
    pub(crate) cat_words: Vec<u32>,
    pub(crate) tree_root: Vec<u32>,
    pub(crate) tree_group: Vec<u32>,
    pub(crate) base_score: Vec<f64>,
    /// Trees per group, when the ensemble averages (random forests).
    pub(crate) average_counts: Option<Vec<f64>>,
    pub(crate) n_features: usize,
    pub(crate) n_outputs: usize,
    pub(crate) precision: Precision,
    pub(crate) transform: Transform,
}

/// The arrays of a [`Forest`], as the kernel takes them (see the module docs).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct Arrays<'a> {
    pub nodes: &'a [DeviceNode],
    pub cat_words: &'a [u32],
    pub tree_root: &'a [u32],
    pub tree_group: &'a [u32],
    pub base_score: &'a [f64],
}

fn index(what: &'static str, count: usize) -> Result<u32, LayoutError> {
    u32::try_from(count).map_err(|_| LayoutError::TooLarge { what, count })
}

impl Forest {
    /// Lays out `ensemble` (validated first).
    ///
    /// ```
    /// let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"),
    ///     "/../wasm-models/oracle/fixtures/lgb_regression.model.txt"))?;
    /// let ensemble = fresco_trees::lightgbm::parse(&text)?;
    /// let forest = fresco_cuda::Forest::new(&ensemble)?;
    /// let row = vec![0.5; forest.n_features()];
    /// assert_eq!(forest.predict(&row), ensemble.predict(&row));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ensemble: &Ensemble) -> Result<Self, LayoutError> {
        ensemble.validate()?;
        const { assert!(limits::MAX_FEATURES <= 1 << FEATURE_BITS) };
        let n_nodes = ensemble.n_nodes();
        index("nodes", n_nodes)?;
        let mut f = Forest {
            nodes: Vec::with_capacity(n_nodes),
            cat_words: Vec::new(),
            tree_root: Vec::with_capacity(ensemble.trees.len()),
            tree_group: Vec::with_capacity(ensemble.trees.len()),
            base_score: ensemble.base_score.clone(),
            average_counts: None,
            n_features: ensemble.n_features(),
            n_outputs: ensemble.n_outputs(),
            precision: ensemble.precision,
            transform: ensemble.transform,
        };
        for tree in &ensemble.trees {
            let root = index("nodes", f.nodes.len())?;
            f.tree_root.push(root);
            f.tree_group.push(index("groups", tree.group)?);
            for node in &tree.nodes {
                f.push(root, node)?;
            }
        }
        if ensemble.average {
            let counts = ensemble.trees_by_group().iter().map(|g| g.len() as f64).collect();
            f.average_counts = Some(counts);
        }
        Ok(f)
    }

    fn push(&mut self, root: u32, node: &Node) -> Result<(), LayoutError> {
        let child = |i: u32| root.checked_add(i).ok_or(LayoutError::TooLarge { what: "nodes", count: usize::MAX });
        let packed = match node {
            Node::Leaf(v) => DeviceNode { info: LEAF, value: *v, ..DeviceNode::default() },
            Node::Split(split) => {
                let mut packed = DeviceNode {
                    info: split.feature,
                    left: child(split.left)?,
                    right: child(split.right)?,
                    ..DeviceNode::default()
                };
                match &split.test {
                    SplitTest::Numeric(s) => {
                        if s.comparison == Comparison::Less {
                            packed.info |= LESS;
                        }
                        let missing = match s.missing {
                            Missing::NanToZero => 0,
                            Missing::ZeroIsMissing => 1,
                            Missing::NanIsMissing => 2,
                        };
                        packed.info |= missing << MISSING_SHIFT;
                        if s.default_left {
                            packed.info |= DEFAULT_LEFT;
                        }
                        packed.value = s.threshold;
                    }
                    SplitTest::Categorical(c) => {
                        packed.info |= CATEGORICAL;
                        if c.flavor == CategoricalFlavor::XgBoost {
                            packed.info |= XGBOOST_CATEGORIES;
                        }
                        if c.default_left {
                            packed.info |= DEFAULT_LEFT;
                        }
                        packed.cat_start = index("category words", self.cat_words.len())?;
                        packed.cat_len = index("category words", c.categories.len())?;
                        self.cat_words.extend_from_slice(&c.categories);
                        index("category words", self.cat_words.len())?;
                    }
                }
                packed
            }
        };
        self.nodes.push(packed);
        Ok(())
    }

    /// The layout's arrays, in the order the kernel takes them.
    pub fn arrays(&self) -> Arrays<'_> {
        Arrays {
            nodes: &self.nodes,
            cat_words: &self.cat_words,
            tree_root: &self.tree_root,
            tree_group: &self.tree_group,
            base_score: &self.base_score,
        }
    }

    /// Inputs per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Raw scores per row (one per group).
    pub fn n_groups(&self) -> usize {
        self.base_score.len()
    }

    /// Outputs per row, after the transform.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Nodes in all trees.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Trees.
    pub fn n_trees(&self) -> usize {
        self.tree_root.len()
    }

    /// The ensemble's arithmetic (XGBoost's is `f32`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes the layout takes on the device.
    pub fn device_bytes(&self) -> usize {
        self.nodes.len() * size_of::<DeviceNode>()
            + self.cat_words.len() * 4
            + self.tree_root.len() * 8
            + self.base_score.len() * 8
    }

    /// The CPU reference of the kernel: walks every row over this layout, as the kernel
    /// does, and returns the raw scores (base score plus leaves, `n_groups` per row).
    pub fn raw_scores(&self, rows: &[f64]) -> Vec<f64> {
        let n_in = self.n_features.max(1);
        let n_rows = rows.len() / n_in;
        let groups = self.n_groups();
        let mut scores = Vec::with_capacity(n_rows * groups);
        for row in rows.chunks_exact(n_in).take(n_rows) {
            scores.extend_from_slice(&self.base_score);
            let out = scores.len() - groups;
            for (t, &root) in self.tree_root.iter().enumerate() {
                let leaf = self.leaf(root, row);
                let s = &mut scores[out + self.tree_group[t] as usize];
                *s = match self.precision {
                    Precision::F64 => *s + leaf,
                    Precision::F32 => f64::from(*s as f32 + leaf as f32),
                };
            }
        }
        scores
    }

    /// The leaf `row` reaches from `root`: the kernel's loop, step for step.
    fn leaf(&self, root: u32, row: &[f64]) -> f64 {
        let mut i = root as usize;
        loop {
            let node = &self.nodes[i];
            let info = node.info;
            if info & LEAF != 0 {
                return node.value;
            }
            let x = row[(info & ((1 << FEATURE_BITS) - 1)) as usize];
            let x = match self.precision {
                Precision::F64 => x,
                Precision::F32 => f64::from(x as f32),
            };
            let left = if info & CATEGORICAL != 0 {
                self.categorical_left(node, x)
            } else {
                numeric_left(info, node.value, x)
            };
            i = if left { node.left } else { node.right } as usize;
        }
    }

    fn categorical_left(&self, node: &DeviceNode, x: f64) -> bool {
        let start = node.cat_start as usize;
        let words = &self.cat_words[start..start + node.cat_len as usize];
        let contains = |c: u32| words.get((c / 32) as usize).is_some_and(|w| (w >> (c % 32)) & 1 == 1);
        let info = node.info;
        if info & XGBOOST_CATEGORIES != 0 {
            if x.is_nan() {
                return info & DEFAULT_LEFT != 0;
            }
            if !(0.0..eval::XGB_MAX_CATEGORY).contains(&x) {
                return true;
            }
            !contains(x as u32)
        } else {
            if x.is_nan() || x <= -1.0 || x >= 2_147_483_648.0 {
                return false;
            }
            contains(x.trunc() as u32)
        }
    }

    /// Averages (random forests) and applies the output transform to raw scores, with
    /// the native evaluator's own code: `n_outputs` values per row.
    pub fn finish(&self, raw: &mut [f64]) -> Vec<f64> {
        let groups = self.n_groups().max(1);
        let mut out = vec![0.0; raw.len() / groups * self.n_outputs];
        for (scores, o) in raw.chunks_exact_mut(groups).zip(out.chunks_exact_mut(self.n_outputs.max(1))) {
            if let Some(counts) = &self.average_counts {
                for (s, &c) in scores.iter_mut().zip(counts) {
                    if c > 0.0 {
                        *s /= c;
                    }
                }
            }
            eval::apply_transform(self.transform, self.precision, scores, o);
        }
        out
    }

    /// Scores rows on the CPU over the device layout (the reference walk, then
    /// [`finish`](Self::finish)): equal to the native evaluator bit for bit.
    pub fn predict(&self, rows: &[f64]) -> Vec<f64> {
        let mut raw = self.raw_scores(rows);
        self.finish(&mut raw)
    }
}

/// A numeric split's decision, as `eval::numeric_goes_left` on the packed flags.
fn numeric_left(info: u32, threshold: f64, x: f64) -> bool {
    let missing = (info >> MISSING_SHIFT) & 3;
    let default_left = info & DEFAULT_LEFT != 0;
    let mut x = x;
    if x.is_nan() {
        if missing == 2 {
            return default_left;
        }
        x = 0.0;
    }
    if missing == 1 && (-eval::ZERO_THRESHOLD..=eval::ZERO_THRESHOLD).contains(&x) {
        return default_left;
    }
    if info & LESS != 0 { x < threshold } else { x <= threshold }
}
