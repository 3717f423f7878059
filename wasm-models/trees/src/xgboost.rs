//! XGBoost JSON models (`Booster.save_model("model.json")`), as written by XGBoost 1.6
//! through 3.x.
//!
//! XGBoost scores in `float`: inputs are rounded to `f32`, a value goes left when
//! `value < split_condition`, NaN follows `default_left`, leaf values are summed in
//! `f32` onto `base_score` (stored in output space and mapped to a margin by the
//! objective), and the output transform runs in `f32`.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::ParseError;
use crate::ir::{
    CategoricalFlavor, CategoricalSplit, Comparison, Ensemble, Feature, FeatureKind, Missing, Node, NumericSplit,
    Precision, Split, SplitTest, Transform, Tree,
};
use crate::limits;

const FORMAT: &str = "xgboost";

/// Choices the JSON file leaves to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Keep only the iterations up to `best_iteration` (set by early stopping), as
    /// XGBoost's scikit-learn interface predicts. On by default; without the attribute
    /// every tree is kept.
    pub use_best_iteration: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { use_best_iteration: true }
    }
}

/// Parses an XGBoost JSON model with default [`Options`].
pub fn parse(json: &str) -> Result<Ensemble, ParseError> {
    parse_with(json, Options::default())
}

#[derive(Deserialize)]
struct Document {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    feature_names: Vec<String>,
    #[serde(default)]
    feature_types: Vec<String>,
    gradient_booster: GradientBooster,
    learner_model_param: LearnerModelParam,
    objective: Objective,
}

#[derive(Deserialize)]
struct GradientBooster {
    name: String,
    #[serde(default)]
    model: Option<GbTree>,
}

#[derive(Deserialize)]
struct GbTree {
    trees: Vec<XgbTree>,
    tree_info: Vec<i64>,
    #[serde(default)]
    iteration_indptr: Vec<i64>,
    #[serde(default)]
    gbtree_model_param: HashMap<String, String>,
}

#[derive(Deserialize)]
struct LearnerModelParam {
    base_score: String,
    #[serde(default)]
    num_class: Option<String>,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct Objective {
    name: String,
}

#[derive(Deserialize)]
struct XgbTree {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f32>,
    default_left: Vec<serde_json::Value>,
    #[serde(default)]
    split_type: Vec<i64>,
    #[serde(default)]
    categories: Vec<i64>,
    #[serde(default)]
    categories_nodes: Vec<i64>,
    #[serde(default)]
    categories_segments: Vec<i64>,
    #[serde(default)]
    categories_sizes: Vec<i64>,
    #[serde(default)]
    tree_param: HashMap<String, String>,
}

/// Parses an XGBoost JSON model.
pub fn parse_with(json: &str, options: Options) -> Result<Ensemble, ParseError> {
    let doc: Document = serde_json::from_str(json)
        .map_err(|e| ParseError::syntax(FORMAT, format!("line {} column {}", e.line(), e.column()), e.to_string()))?;
    let learner = doc.learner;
    if learner.gradient_booster.name != "gbtree" {
        return Err(ParseError::unsupported(
            FORMAT,
            format!("booster `{}` (only gbtree)", learner.gradient_booster.name),
        ));
    }
    let model = learner
        .gradient_booster
        .model
        .ok_or_else(|| ParseError::syntax(FORMAT, "learner.gradient_booster", "no `model`"))?;
    let param = &learner.learner_model_param;
    let n_features = count(&param.num_feature, "num_feature")?;
    if n_features > limits::MAX_FEATURES {
        return Err(ParseError::model(FORMAT, format!("num_feature={n_features}")));
    }
    let num_class = param.num_class.as_deref().map_or(Ok(0), |v| count(v, "num_class"))?;
    let num_target = param.num_target.as_deref().map_or(Ok(1), |v| count(v, "num_target"))?;
    let n_groups = if num_class > 0 { num_class } else { num_target.max(1) };
    if n_groups > limits::MAX_GROUPS {
        return Err(ParseError::model(FORMAT, format!("{n_groups} output groups")));
    }

    let objective = learner.objective.name.as_str();
    let (transform, margin, outputs) = objective_transform(objective, n_groups)?;
    let base_probability = parse_base_score(&param.base_score)?;
    let base_score: Vec<f64> = match base_probability.as_slice() {
        [one] => vec![f64::from(margin(*one)); n_groups],
        many if many.len() == n_groups => many.iter().map(|&b| f64::from(margin(b))).collect(),
        many => {
            return Err(ParseError::model(FORMAT, format!("{} base scores for {n_groups} output groups", many.len())));
        }
    };

    let features: Vec<Feature> = (0..n_features)
        .map(|i| Feature {
            name: learner.feature_names.get(i).cloned().unwrap_or_else(|| format!("f{i}")),
            kind: if learner.feature_types.get(i).is_some_and(|t| t == "c") {
                FeatureKind::Categorical
            } else {
                FeatureKind::Numerical
            },
            categories: None,
        })
        .collect();

    if model.trees.len() > limits::MAX_TREES {
        return Err(ParseError::model(FORMAT, format!("{} trees, more than {}", model.trees.len(), limits::MAX_TREES)));
    }
    if model.tree_info.len() != model.trees.len() {
        return Err(ParseError::model(
            FORMAT,
            format!("{} tree_info entries for {} trees", model.tree_info.len(), model.trees.len()),
        ));
    }
    let keep = kept_trees(&learner.attributes, &model, n_groups, options)?;
    let mut trees = Vec::with_capacity(keep);
    for (i, (tree, &group)) in model.trees.iter().zip(&model.tree_info).take(keep).enumerate() {
        let group = usize::try_from(group)
            .ok()
            .filter(|&g| g < n_groups)
            .ok_or_else(|| ParseError::tree(FORMAT, i, format!("tree_info group {group} out of range")))?;
        trees.push(Tree { group, nodes: convert_tree(i, tree, n_features)? });
    }

    let ensemble = Ensemble {
        features,
        trees,
        n_groups,
        base_score,
        average: false,
        transform,
        precision: Precision::F32,
        outputs,
        source_format: FORMAT,
    };
    ensemble.validate()?;
    Ok(ensemble)
}

fn count(value: &str, field: &str) -> Result<usize, ParseError> {
    value.trim().parse().map_err(|_| {
        ParseError::syntax(FORMAT, format!("learner_model_param.{field}"), format!("`{value}` is not a count"))
    })
}

/// `"5E-1"`, `"[5E-1]"` or `"[1E0,2E0]"`.
fn parse_base_score(text: &str) -> Result<Vec<f32>, ParseError> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let values: Result<Vec<f32>, _> = inner.split(',').map(|v| v.trim().parse::<f32>()).collect();
    match values {
        Ok(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => Ok(v),
        _ => Err(ParseError::syntax(
            FORMAT,
            "learner_model_param.base_score",
            format!("`{text}` is not a number or list"),
        )),
    }
}

type Margin = fn(f32) -> f32;

/// Output transform, the objective's `ProbToMargin` for `base_score`, and output names.
fn objective_transform(name: &str, n_groups: usize) -> Result<(Transform, Margin, Vec<String>), ParseError> {
    fn identity(b: f32) -> f32 {
        b
    }
    fn logit(b: f32) -> f32 {
        -(1.0f32 / b - 1.0f32).ln()
    }
    fn log(b: f32) -> f32 {
        b.ln()
    }
    let per_group = |prefix: &str, single: &str| {
        if n_groups == 1 { vec![single.to_owned()] } else { (0..n_groups).map(|k| format!("{prefix}{k}")).collect() }
    };
    Ok(match name {
        "reg:squarederror" | "reg:linear" | "reg:absoluteerror" | "reg:pseudohubererror" | "reg:squaredlogerror" => {
            (Transform::Identity, identity, per_group("target_", "value"))
        }
        "reg:logistic" | "binary:logistic" => {
            (Transform::Sigmoid { scale: 1.0 }, logit, per_group("probability_", "probability"))
        }
        "binary:logitraw" => (Transform::Identity, logit, per_group("margin_", "margin")),
        "count:poisson" | "reg:gamma" | "reg:tweedie" => (Transform::Exp, log, per_group("value_", "value")),
        "multi:softprob" => (Transform::Softmax, identity, (0..n_groups).map(|k| format!("class_{k}")).collect()),
        "multi:softmax" => (Transform::ArgMax, identity, vec!["class".to_owned()]),
        other => return Err(ParseError::unsupported(FORMAT, format!("objective `{other}`"))),
    })
}

/// How many leading trees to keep: all, or those of iterations `0..=best_iteration`.
fn kept_trees(
    attributes: &HashMap<String, String>,
    model: &GbTree,
    n_groups: usize,
    options: Options,
) -> Result<usize, ParseError> {
    let all = model.trees.len();
    let Some(best) = attributes.get("best_iteration").filter(|_| options.use_best_iteration) else {
        return Ok(all);
    };
    let loc = "learner.attributes.best_iteration";
    let best: usize = best.parse().map_err(|_| ParseError::syntax(FORMAT, loc, format!("`{best}` is not a count")))?;
    let past_end = || ParseError::structure(FORMAT, loc, format!("iteration {best} is past the model's {all} trees"));
    // Iterations `0..=best`, so `best + 1` of them; a count that overflows is past any model.
    let kept_iterations = best.checked_add(1).ok_or_else(past_end)?;
    let end = if model.iteration_indptr.is_empty() {
        let parallel =
            model.gbtree_model_param.get("num_parallel_tree").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
        kept_iterations.checked_mul(parallel).and_then(|n| n.checked_mul(n_groups)).ok_or_else(past_end)?
    } else {
        let bound = model.iteration_indptr.get(kept_iterations).ok_or_else(past_end)?;
        usize::try_from(*bound).map_err(|_| past_end())?
    };
    if end > all {
        return Err(past_end());
    }
    Ok(end)
}

fn convert_tree(index: usize, tree: &XgbTree, n_features: usize) -> Result<Vec<Node>, ParseError> {
    let err = |reason: String| ParseError::tree(FORMAT, index, reason);
    if tree.tree_param.get("size_leaf_vector").is_some_and(|v| v != "1" && v != "0") {
        return Err(ParseError::unsupported(FORMAT, "vector-leaf trees (multi_strategy=multi_output_tree)"));
    }
    let n = tree.left_children.len();
    if n == 0 || n > limits::MAX_NODES_PER_TREE {
        return Err(err(format!("{n} nodes")));
    }
    for (field, len) in [
        ("right_children", tree.right_children.len()),
        ("split_indices", tree.split_indices.len()),
        ("split_conditions", tree.split_conditions.len()),
        ("default_left", tree.default_left.len()),
    ] {
        if len != n {
            return Err(err(format!("{field} has {len} entries, left_children has {n}")));
        }
    }
    if !tree.split_type.is_empty() && tree.split_type.len() != n {
        return Err(err(format!("split_type has {} entries for {n} nodes", tree.split_type.len())));
    }
    let categories = categorical_sets(index, tree)?;
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let (left, right) = (tree.left_children[i], tree.right_children[i]);
        if left == -1 {
            nodes.push(Node::Leaf(f64::from(tree.split_conditions[i])));
            continue;
        }
        let child = |c: i64| {
            usize::try_from(c)
                .ok()
                .filter(|&c| c < n)
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| err(format!("node {i} has child {c}, out of range")))
        };
        let feature = usize::try_from(tree.split_indices[i]).ok().filter(|&f| f < n_features).ok_or_else(|| {
            err(format!("node {i} splits on feature {}, the model has {n_features}", tree.split_indices[i]))
        })?;
        let default_left = match &tree.default_left[i] {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::Number(v) => v.as_i64() == Some(1),
            other => return Err(err(format!("default_left[{i}] is {other}"))),
        };
        let test = if tree.split_type.get(i).copied().unwrap_or(0) == 1 {
            let set = categories.get(&i).ok_or_else(|| err(format!("categorical node {i} has no category list")))?;
            SplitTest::Categorical(CategoricalSplit {
                categories: set.clone(),
                flavor: CategoricalFlavor::XgBoost,
                default_left,
            })
        } else {
            SplitTest::Numeric(NumericSplit {
                threshold: f64::from(tree.split_conditions[i]),
                comparison: Comparison::Less,
                missing: Missing::NanIsMissing,
                default_left,
            })
        };
        nodes.push(Node::Split(Split { feature: feature as u32, left: child(left)?, right: child(right)?, test }));
    }
    Ok(nodes)
}

/// Category bitsets by node index.
fn categorical_sets(index: usize, tree: &XgbTree) -> Result<HashMap<usize, Vec<u32>>, ParseError> {
    let err = |reason: String| ParseError::tree(FORMAT, index, reason);
    let k = tree.categories_nodes.len();
    if tree.categories_segments.len() != k || tree.categories_sizes.len() != k {
        return Err(err("categories_nodes, categories_segments and categories_sizes differ in length".into()));
    }
    let mut sets = HashMap::with_capacity(k);
    for j in 0..k {
        let node =
            usize::try_from(tree.categories_nodes[j]).map_err(|_| err(format!("categories_nodes[{j}] is negative")))?;
        let start = usize::try_from(tree.categories_segments[j]).ok();
        let size = usize::try_from(tree.categories_sizes[j]).ok();
        let codes = start
            .zip(size)
            .and_then(|(s, n)| tree.categories.get(s..s.checked_add(n)?))
            .ok_or_else(|| err(format!("category segment {j} is outside the categories list")))?;
        let mut checked = Vec::with_capacity(codes.len());
        for &c in codes {
            checked.push(
                u32::try_from(c)
                    .ok()
                    .filter(|&c| c < limits::MAX_CATEGORY)
                    .ok_or_else(|| err(format!("category {c} out of range")))?,
            );
        }
        sets.insert(node, CategoricalSplit::bitset_from(checked));
    }
    Ok(sets)
}
