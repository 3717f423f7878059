//! The tree-ensemble intermediate representation.

use crate::error::ParseError;
use crate::limits;

/// A tree ensemble: trees grouped by output, a starting score per group, and the
/// transform that turns summed scores into predictions.
///
/// Prediction for group `g`: start from `base_score[g]`, add the leaf value of every
/// tree with `group == g` in tree order (in [`Precision`] arithmetic), divide by the
/// number of those trees when `average` is set, then apply `transform` to the vector of
/// group scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    /// Input features, in the order rows supply them.
    pub features: Vec<Feature>,
    /// The trees, in the library's order.
    pub trees: Vec<Tree>,
    /// Number of score groups (1, or classes, or targets).
    pub n_groups: usize,
    /// Initial score per group, already in margin space.
    pub base_score: Vec<f64>,
    /// Random-forest style: divide each group's sum by its tree count.
    pub average: bool,
    /// Output transform.
    pub transform: Transform,
    /// Arithmetic the library uses for inputs, thresholds and sums.
    pub precision: Precision,
    /// Names of the outputs the transform produces.
    pub outputs: Vec<String>,
    /// `lightgbm` or `xgboost`.
    pub source_format: &'static str,
}

/// An input feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The name the model was trained with.
    pub name: String,
    /// Numerical or categorical.
    pub kind: FeatureKind,
    /// The category names of a column trained as a pandas `category`, in code order
    /// (LightGBM's `pandas_categorical`); `None` otherwise.
    pub categories: Option<Vec<String>>,
}

/// How a feature's values are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// Ordered values compared against thresholds.
    Numerical,
    /// Non-negative integer category codes tested for set membership.
    Categorical,
}

/// Float arithmetic used by the source library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Inputs, thresholds and sums in `f64` (LightGBM).
    F64,
    /// Inputs rounded to `f32`; thresholds, leaves, sums and transforms in `f32` (XGBoost).
    F32,
}

/// One decision tree. Node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// The score group this tree adds to.
    pub group: usize,
    /// Nodes; children are indices into this vector.
    pub nodes: Vec<Node>,
}

/// A tree node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A leaf and its value.
    Leaf(f64),
    /// An internal node.
    Split(Split),
}

/// An internal node: a test on one feature and two children.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Index of the feature tested.
    pub feature: u32,
    /// Child taken when the test says "left".
    pub left: u32,
    /// Child taken otherwise.
    pub right: u32,
    /// The test.
    pub test: SplitTest,
}

/// What a split tests.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitTest {
    /// A threshold comparison.
    Numeric(NumericSplit),
    /// A category set membership.
    Categorical(CategoricalSplit),
}

/// `value <= threshold` (or `<`) goes left, with missing values routed by `missing`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericSplit {
    /// The threshold.
    pub threshold: f64,
    /// Which comparison sends a value left.
    pub comparison: Comparison,
    /// How NaN (and, for LightGBM, zero) is treated.
    pub missing: Missing,
    /// Where a missing value goes.
    pub default_left: bool,
}

/// Comparison sending a value to the left child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `value <= threshold` (LightGBM).
    LessOrEqual,
    /// `value < threshold` (XGBoost).
    Less,
}

/// Missing-value rules (LightGBM's three missing types; XGBoost uses `NanIsMissing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// NaN is replaced by 0 and compared (LightGBM `missing_type=None`).
    NanToZero,
    /// NaN becomes 0, and values within ±1e-35 of zero take the default branch
    /// (LightGBM `missing_type=Zero`).
    ZeroIsMissing,
    /// NaN takes the default branch.
    NanIsMissing,
}

/// A categorical split: category codes in `categories` go one way, the rest the other.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoricalSplit {
    /// Bitset over category codes: bit `c % 32` of word `c / 32`.
    pub categories: Vec<u32>,
    /// Whose rules apply to NaN, negative and out-of-range codes.
    pub flavor: CategoricalFlavor,
    /// For XGBoost, where NaN goes. Unused for LightGBM (NaN goes right).
    pub default_left: bool,
}

/// The library whose categorical semantics a split follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoricalFlavor {
    /// Code `c = trunc(value)`: NaN or `c < 0` goes right; `c` in the set goes left.
    LightGbm,
    /// NaN takes the default branch; `value < 0` or `value >= 2^24` goes left; code in
    /// the set goes right, otherwise left.
    XgBoost,
}

/// Output transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    /// Raw scores.
    Identity,
    /// `1 / (1 + exp(-scale · x))` per group.
    Sigmoid {
        /// LightGBM's `sigmoid` parameter (1 for XGBoost and cross-entropy).
        scale: f64,
    },
    /// Softmax across groups.
    Softmax,
    /// `exp(x)` (Poisson, gamma, Tweedie).
    Exp,
    /// `sign(x) · x²` (LightGBM `reg_sqrt`).
    SignedSquare,
    /// Index of the largest group score (XGBoost `multi:softmax`); one output.
    ArgMax,
}

impl Ensemble {
    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Number of outputs per row.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Total number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.len()).sum()
    }

    /// Checks the invariants every backend relies on: each tree is a tree (every node
    /// reached exactly once from the root, no cycles), indices in range, groups valid,
    /// sizes within [`limits`](crate::limits).
    pub fn validate(&self) -> Result<(), ParseError> {
        let f = self.source_format;
        let whole = |reason: String| ParseError::model(f, reason);
        if self.features.len() > limits::MAX_FEATURES {
            return Err(whole(format!(
                "{} features, more than the limit of {}",
                self.features.len(),
                limits::MAX_FEATURES
            )));
        }
        if self.trees.len() > limits::MAX_TREES {
            return Err(whole(format!("{} trees, more than the limit of {}", self.trees.len(), limits::MAX_TREES)));
        }
        if self.n_groups == 0 || self.n_groups > limits::MAX_GROUPS {
            return Err(whole(format!("{} output groups", self.n_groups)));
        }
        if self.base_score.len() != self.n_groups {
            return Err(whole(format!("{} base scores for {} groups", self.base_score.len(), self.n_groups)));
        }
        let expected_outputs = if self.transform == Transform::ArgMax { 1 } else { self.n_groups };
        if self.outputs.len() != expected_outputs {
            return Err(whole(format!("{} output names for {expected_outputs} outputs", self.outputs.len())));
        }
        if self.n_nodes() > limits::MAX_TOTAL_NODES {
            return Err(whole(format!(
                "{} nodes in all, more than the limit of {}",
                self.n_nodes(),
                limits::MAX_TOTAL_NODES
            )));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            self.validate_tree(t, tree)?;
        }
        Ok(())
    }

    fn validate_tree(&self, t: usize, tree: &Tree) -> Result<(), ParseError> {
        let err = |reason: String| ParseError::tree(self.source_format, t, reason);
        if tree.group >= self.n_groups {
            return Err(err(format!("group {} but the model has {}", tree.group, self.n_groups)));
        }
        let n = tree.nodes.len();
        if n == 0 || n > limits::MAX_NODES_PER_TREE {
            return Err(err(format!("{n} nodes")));
        }
        let mut seen = vec![false; n];
        let mut stack = vec![0u32];
        let mut visited = 0usize;
        while let Some(i) = stack.pop() {
            let i = i as usize;
            if i >= n {
                return Err(err(format!("child index {i} out of range ({n} nodes)")));
            }
            if std::mem::replace(&mut seen[i], true) {
                return Err(err(format!("node {i} is reached twice (a cycle or shared child)")));
            }
            visited += 1;
            match &tree.nodes[i] {
                Node::Leaf(v) => {
                    if v.is_nan() {
                        return Err(err(format!("leaf {i} has a NaN value")));
                    }
                }
                Node::Split(split) => {
                    if split.feature as usize >= self.features.len() {
                        return Err(err(format!(
                            "node {i} splits on feature {} but the model has {}",
                            split.feature,
                            self.features.len()
                        )));
                    }
                    if let SplitTest::Numeric(s) = &split.test
                        && s.threshold.is_nan()
                    {
                        return Err(err(format!("node {i} has a NaN threshold")));
                    }
                    if let SplitTest::Categorical(c) = &split.test
                        && c.categories.len() > (limits::MAX_CATEGORY as usize).div_ceil(32)
                    {
                        return Err(err(format!("node {i} has a category bitset of {} words", c.categories.len())));
                    }
                    stack.push(split.right);
                    stack.push(split.left);
                }
            }
        }
        if visited != n {
            return Err(err(format!("{} of {n} nodes are unreachable from the root", n - visited)));
        }
        Ok(())
    }

    /// Trees of each group, in order: `result[g]` lists tree indices.
    pub fn trees_by_group(&self) -> Vec<Vec<usize>> {
        let mut groups = vec![Vec::new(); self.n_groups];
        for (i, tree) in self.trees.iter().enumerate() {
            if let Some(g) = groups.get_mut(tree.group) {
                g.push(i);
            }
        }
        groups
    }
}

impl CategoricalSplit {
    /// Builds the bitset from a list of category codes.
    pub fn bitset_from(codes: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut words: Vec<u32> = Vec::new();
        for c in codes {
            let w = (c / 32) as usize;
            if words.len() <= w {
                words.resize(w + 1, 0);
            }
            words[w] |= 1 << (c % 32);
        }
        words
    }

    /// Whether integer code `c` is in the set.
    pub fn contains(&self, c: u32) -> bool {
        self.categories.get((c / 32) as usize).is_some_and(|w| (w >> (c % 32)) & 1 == 1)
    }
}
