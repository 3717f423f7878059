//! The tree-ensemble IR at the heart of fresco's model compiler.
//!
//! Gradient-boosted trees arrive as a LightGBM text model or an XGBoost JSON model; the
//! parsers here turn either into one [`Ensemble`], which backends consume: the native
//! evaluator in this crate ([`Ensemble::predict_row`]), the WebAssembly code generator
//! (`fresco-compiler`) and, later, the GPU backend. The IR records each library's exact
//! semantics (comparison, missing-value routing, categorical rules, float precision,
//! output transform) so that every backend reproduces the library's predictions.
//!
//! ```
//! let text = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
//!     max_feature_idx=0\nobjective=regression\nfeature_names=x\nfeature_infos=[0:1]\n\n\
//!     Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.5\ndecision_type=2\n\
//!     left_child=-1\nright_child=-2\nleaf_value=1 2\nshrinkage=1\n\nend of trees\n";
//! let ensemble = fresco_trees::lightgbm::parse(text)?;
//! let mut out = [0.0];
//! ensemble.predict_row(&[0.2], &mut out);
//! assert_eq!(out, [1.0]);
//! ensemble.predict_row(&[0.7], &mut out);
//! assert_eq!(out, [2.0]);
//! # Ok::<(), fresco_trees::ParseError>(())
//! ```

mod error;
pub mod eval;
mod ir;
pub mod lightgbm;
pub mod math;
pub mod xgboost;

pub use error::ParseError;
pub use ir::{
    CategoricalFlavor, CategoricalSplit, Comparison, Ensemble, Feature, FeatureKind, Missing, Node, NumericSplit,
    Precision, Split, SplitTest, Transform, Tree,
};

/// Upper bounds that keep a hostile model file from exhausting memory or time.
pub mod limits {
    /// Most trees an ensemble may have.
    pub const MAX_TREES: usize = 1_000_000;
    /// Most nodes (splits and leaves) in one tree.
    pub const MAX_NODES_PER_TREE: usize = 1 << 24;
    /// Most nodes across all trees.
    pub const MAX_TOTAL_NODES: usize = 1 << 25;
    /// Most input features.
    pub const MAX_FEATURES: usize = 1 << 20;
    /// Most output groups (classes or targets).
    pub const MAX_GROUPS: usize = 1 << 16;
    /// Largest category value a split may name.
    pub const MAX_CATEGORY: u32 = 1 << 24;
}
