//! LightGBM text models (`Booster.save_model`, `model.txt`).
//!
//! The file is a header of `key=value` lines, one block per tree starting `Tree=N`,
//! `end of trees`, then importances and a `parameters:` section. Child indices are
//! internal nodes when non-negative and leaves as `~leaf` (that is, `-(leaf + 1)`) when
//! negative. `decision_type` packs three fields: bit 0 categorical, bit 1 default-left,
//! bits 2–3 the missing type (0 None, 1 Zero, 2 NaN).

use std::collections::HashMap;

use crate::error::ParseError;
use crate::ir::{
    CategoricalFlavor, CategoricalSplit, Comparison, Ensemble, Feature, FeatureKind, Missing, Node, NumericSplit,
    Precision, Split, SplitTest, Transform, Tree,
};
use crate::limits;

const FORMAT: &str = "lightgbm";

/// Parses a LightGBM text model.
pub fn parse(text: &str) -> Result<Ensemble, ParseError> {
    let (header_text, rest) = match text.find("\nTree=") {
        Some(pos) => (&text[..pos], &text[pos + 1..]),
        None => (text, ""),
    };
    if !header_text.trim_start().starts_with("tree") {
        return Err(ParseError::syntax(FORMAT, "line 1", "not a LightGBM text model (expected `tree`)"));
    }
    let header = key_values(header_text);
    let n_groups = header_usize(&header, "num_tree_per_iteration")?;
    if n_groups == 0 || n_groups > limits::MAX_GROUPS {
        return Err(ParseError::model(FORMAT, format!("num_tree_per_iteration={n_groups}")));
    }
    let max_feature_idx = header_usize(&header, "max_feature_idx")?;
    let n_features = max_feature_idx
        .checked_add(1)
        .filter(|&n| n <= limits::MAX_FEATURES)
        .ok_or_else(|| ParseError::model(FORMAT, format!("max_feature_idx={max_feature_idx}")))?;
    let names: Vec<String> = match header.get("feature_names") {
        Some(v) => v.split_whitespace().map(str::to_owned).collect(),
        None => (0..n_features).map(|i| format!("Column_{i}")).collect(),
    };
    if names.len() != n_features {
        return Err(ParseError::model(
            FORMAT,
            format!("{} feature names for max_feature_idx={max_feature_idx}", names.len()),
        ));
    }
    let objective =
        header.get("objective").ok_or_else(|| ParseError::syntax(FORMAT, "header", "no `objective` line"))?;
    let parameters = parameters_section(text);
    let (transform, outputs) = objective_transform(objective, n_groups, &parameters)?;
    let average = header_text.lines().any(|l| l.trim() == "average_output");

    let trees_text = match rest.find("end of trees") {
        Some(end) => &rest[..end],
        None => rest,
    };
    let mut trees = Vec::new();
    let mut categorical = vec![false; n_features];
    for (i, block) in trees_text.split("Tree=").filter(|b| !b.trim().is_empty()).enumerate() {
        if i >= limits::MAX_TREES {
            return Err(ParseError::model(FORMAT, format!("more than {} trees", limits::MAX_TREES)));
        }
        let tree = parse_tree(i, block, n_features, &mut categorical)?;
        trees.push(Tree { group: i % n_groups, nodes: tree });
    }
    if trees.len() % n_groups != 0 {
        return Err(ParseError::model(
            FORMAT,
            format!("{} trees is not a multiple of num_tree_per_iteration={n_groups}", trees.len()),
        ));
    }
    let mut categories =
        pandas_categories(header.get("feature_infos").copied(), &text[header_text.len()..], n_features)?;
    let features = names
        .into_iter()
        .zip(categorical)
        .enumerate()
        .map(|(i, (name, cat))| Feature {
            name,
            kind: if cat { FeatureKind::Categorical } else { FeatureKind::Numerical },
            categories: categories.get_mut(i).and_then(Option::take),
        })
        .collect();
    let ensemble = Ensemble {
        features,
        trees,
        n_groups,
        base_score: vec![0.0; n_groups],
        average,
        transform,
        precision: Precision::F64,
        outputs,
        source_format: FORMAT,
    };
    ensemble.validate()?;
    Ok(ensemble)
}

/// `key=value` lines; later keys win.
fn key_values(text: &str) -> HashMap<&str, &str> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect()
}

fn header_usize(header: &HashMap<&str, &str>, key: &str) -> Result<usize, ParseError> {
    let v = header.get(key).ok_or_else(|| ParseError::syntax(FORMAT, "header", format!("no `{key}` line")))?;
    v.parse().map_err(|_| ParseError::syntax(FORMAT, format!("header `{key}`"), format!("`{v}` is not a count")))
}

/// `[name: value]` lines of the trailing `parameters:` section.
fn parameters_section(text: &str) -> HashMap<String, String> {
    let Some(start) = text.find("\nparameters:") else { return HashMap::new() };
    text[start..]
        .lines()
        .take_while(|l| !l.starts_with("end of parameters"))
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']')?.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn objective_transform(
    objective: &str,
    n_groups: usize,
    parameters: &HashMap<String, String>,
) -> Result<(Transform, Vec<String>), ParseError> {
    let mut parts = objective.split_whitespace();
    let name = parts.next().unwrap_or("");
    let options: HashMap<&str, &str> = parts.filter_map(|p| p.split_once(':')).collect();
    let has_flag = objective.split_whitespace().any(|p| p == "sqrt");
    let sigmoid = match options.get("sigmoid") {
        Some(v) => v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or_else(|| {
            ParseError::syntax(FORMAT, "objective", format!("sigmoid `{v}` is not a positive number"))
        })?,
        None => 1.0,
    };
    let single = |output: &str| vec![output.to_owned()];
    let classes = |prefix: &str| (0..n_groups).map(|k| format!("{prefix}{k}")).collect::<Vec<_>>();
    let expect_groups = |want: usize| {
        if n_groups == want || want == 0 {
            Ok(())
        } else {
            Err(ParseError::model(FORMAT, format!("objective `{name}` with {n_groups} trees per iteration")))
        }
    };
    let result = match name {
        "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" | "rmse" => {
            expect_groups(1)?;
            (if has_flag { Transform::SignedSquare } else { Transform::Identity }, single("value"))
        }
        "regression_l1"
        | "l1"
        | "mean_absolute_error"
        | "mae"
        | "huber"
        | "fair"
        | "mape"
        | "mean_absolute_percentage_error" => {
            expect_groups(1)?;
            (Transform::Identity, single("value"))
        }
        "quantile" => {
            expect_groups(1)?;
            let alpha = parameters.get("alpha").and_then(|a| a.parse::<f64>().ok()).unwrap_or(0.9);
            (Transform::Identity, single(&quantile_name(alpha)))
        }
        "binary" => {
            expect_groups(1)?;
            (Transform::Sigmoid { scale: sigmoid }, single("probability"))
        }
        "cross_entropy" | "xentropy" => {
            expect_groups(1)?;
            (Transform::Sigmoid { scale: 1.0 }, single("probability"))
        }
        "multiclass" | "softmax" => (Transform::Softmax, classes("class_")),
        "multiclassova" | "multiclass_ova" | "ova" | "ovr" => {
            (Transform::Sigmoid { scale: sigmoid }, classes("class_"))
        }
        "poisson" | "gamma" | "tweedie" => {
            expect_groups(1)?;
            (Transform::Exp, single("value"))
        }
        "custom" | "none" | "null" | "na" => {
            let outputs = if n_groups == 1 { single("raw_score") } else { classes("raw_score_") };
            (Transform::Identity, outputs)
        }
        other => return Err(ParseError::unsupported(FORMAT, format!("objective `{other}`"))),
    };
    Ok(result)
}

/// `q10` for 0.1, `q12.5` for 0.125.
pub fn quantile_name(alpha: f64) -> String {
    let pct = alpha * 100.0;
    if (pct - pct.round()).abs() < 1e-9 { format!("q{}", pct.round()) } else { format!("q{pct}") }
}

fn parse_tree(index: usize, block: &str, n_features: usize, categorical: &mut [bool]) -> Result<Vec<Node>, ParseError> {
    let fields = key_values(block);
    let loc = |field: &str| format!("tree {index} `{field}`");
    let get = |field: &str| fields.get(field).copied();
    if get("is_linear").is_some_and(|v| v != "0") {
        return Err(ParseError::unsupported(FORMAT, format!("linear_tree (tree {index} has linear leaves)")));
    }
    let num_leaves: usize = get("num_leaves")
        .ok_or_else(|| ParseError::syntax(FORMAT, loc("num_leaves"), "missing"))?
        .parse()
        .map_err(|_| ParseError::syntax(FORMAT, loc("num_leaves"), "not a count"))?;
    if num_leaves == 0 || num_leaves > limits::MAX_NODES_PER_TREE / 2 {
        return Err(ParseError::tree(FORMAT, index, format!("num_leaves={num_leaves}")));
    }
    let leaf_values: Vec<f64> = numbers(get("leaf_value"), &loc("leaf_value"), num_leaves, parse_f64)?;
    if num_leaves == 1 {
        // A constant tree. Leaf values in the file already include shrinkage.
        return Ok(vec![Node::Leaf(leaf_values[0])]);
    }
    let n_internal = num_leaves - 1;
    let features: Vec<usize> = numbers(get("split_feature"), &loc("split_feature"), n_internal, |s| s.parse().ok())?;
    let thresholds: Vec<f64> = numbers(get("threshold"), &loc("threshold"), n_internal, parse_f64)?;
    let decision: Vec<u8> = numbers(get("decision_type"), &loc("decision_type"), n_internal, |s| s.parse().ok())?;
    let lefts: Vec<i64> = numbers(get("left_child"), &loc("left_child"), n_internal, |s| s.parse().ok())?;
    let rights: Vec<i64> = numbers(get("right_child"), &loc("right_child"), n_internal, |s| s.parse().ok())?;
    let num_cat: usize = get("num_cat")
        .map_or(Ok(0), |v| v.parse().map_err(|_| ParseError::syntax(FORMAT, loc("num_cat"), "not a count")))?;
    let (boundaries, cat_words): (Vec<usize>, Vec<u32>) = if num_cat > 0 {
        let n_boundaries = num_cat.checked_add(1).ok_or_else(|| {
            ParseError::syntax(FORMAT, loc("num_cat"), format!("{num_cat} is not a count of categories"))
        })?;
        let b: Vec<usize> = numbers(get("cat_boundaries"), &loc("cat_boundaries"), n_boundaries, |s| s.parse().ok())?;
        let words_len = *b.last().unwrap_or(&0);
        let w: Vec<u32> = numbers(get("cat_threshold"), &loc("cat_threshold"), words_len, |s| s.parse().ok())?;
        if b.windows(2).any(|p| p[0] > p[1]) || b.first() != Some(&0) {
            return Err(ParseError::tree(FORMAT, index, "cat_boundaries are not ascending from 0"));
        }
        (b, w)
    } else {
        (Vec::new(), Vec::new())
    };

    // Internal nodes first (0..n_internal), then leaves (n_internal..).
    let child = |c: i64| -> Result<u32, ParseError> {
        let idx = if c >= 0 {
            usize::try_from(c).ok().filter(|&i| i < n_internal)
        } else {
            usize::try_from(!c).ok().filter(|&l| l < num_leaves).map(|l| n_internal + l)
        };
        idx.and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| ParseError::tree(FORMAT, index, format!("child index {c} out of range")))
    };
    let mut nodes = Vec::with_capacity(n_internal + num_leaves);
    for i in 0..n_internal {
        let feature = features[i];
        if feature >= n_features {
            return Err(ParseError::tree(
                FORMAT,
                index,
                format!("node {i} splits on feature {feature}, but max_feature_idx is {}", n_features - 1),
            ));
        }
        let d = decision[i];
        let default_left = d & 2 != 0;
        let test = if d & 1 != 0 {
            categorical[feature] = true;
            let cat_idx = thresholds[i];
            let ci = (cat_idx >= 0.0 && cat_idx.fract() == 0.0 && (cat_idx as usize) < num_cat)
                .then_some(cat_idx as usize)
                .ok_or_else(|| {
                    ParseError::tree(FORMAT, index, format!("node {i}: category index {cat_idx} out of range"))
                })?;
            let words = cat_words.get(boundaries[ci]..boundaries[ci + 1]).ok_or_else(|| {
                ParseError::tree(FORMAT, index, format!("node {i}: cat_boundaries exceed cat_threshold"))
            })?;
            if words.len() > (limits::MAX_CATEGORY as usize) / 32 {
                return Err(ParseError::tree(FORMAT, index, format!("node {i}: category bitset too large")));
            }
            SplitTest::Categorical(CategoricalSplit {
                categories: words.to_vec(),
                flavor: CategoricalFlavor::LightGbm,
                default_left,
            })
        } else {
            let missing = match (d >> 2) & 3 {
                0 => Missing::NanToZero,
                1 => Missing::ZeroIsMissing,
                2 => Missing::NanIsMissing,
                other => {
                    return Err(ParseError::tree(FORMAT, index, format!("node {i}: missing type {other}")));
                }
            };
            SplitTest::Numeric(NumericSplit {
                threshold: thresholds[i],
                comparison: Comparison::LessOrEqual,
                missing,
                default_left,
            })
        };
        nodes.push(Node::Split(Split {
            feature: feature as u32,
            left: child(lefts[i])?,
            right: child(rights[i])?,
            test,
        }));
    }
    nodes.extend(leaf_values.into_iter().map(Node::Leaf));
    Ok(nodes)
}

/// Per feature, the category names of a column trained as a pandas `category`: the
/// Python package appends `pandas_categorical:` (JSON, one list per category column in
/// column order, or `null`) after the trees, and `feature_infos` tells the category
/// columns (their infos list category codes, `0:1:2`; numerical ones read `[min:max]`,
/// unused ones `none`).
fn pandas_categories(
    infos: Option<&str>,
    after_header: &str,
    n_features: usize,
) -> Result<Vec<Option<Vec<String>>>, ParseError> {
    let mut out = vec![None; n_features];
    let Some(line) = after_header.lines().find_map(|l| l.strip_prefix("pandas_categorical:")) else { return Ok(out) };
    let lists: Option<Vec<Vec<serde_json::Value>>> = serde_json::from_str(line.trim())
        .map_err(|e| ParseError::syntax(FORMAT, "pandas_categorical", format!("not a JSON list of lists: {e}")))?;
    let Some(lists) = lists else { return Ok(out) };
    let infos: Vec<&str> = infos.map(|i| i.split_whitespace().collect()).unwrap_or_default();
    let category_columns: Vec<usize> =
        infos.iter().enumerate().filter(|(_, i)| **i != "none" && !i.starts_with('[')).map(|(f, _)| f).collect();
    if category_columns.len() != lists.len() {
        return Err(ParseError::model(
            FORMAT,
            format!("pandas_categorical has {} lists for {} category features", lists.len(), category_columns.len()),
        ));
    }
    for (feature, list) in category_columns.into_iter().zip(lists) {
        let names = list
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
        if let Some(slot) = out.get_mut(feature) {
            *slot = Some(names);
        }
    }
    Ok(out)
}

fn parse_f64(s: &str) -> Option<f64> {
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Parses a whitespace-separated list of exactly `n` values.
fn numbers<T>(
    value: Option<&str>,
    loc: &str,
    n: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ParseError> {
    let value = value.ok_or_else(|| ParseError::syntax(FORMAT, loc, "missing"))?;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for (i, token) in value.split_whitespace().enumerate() {
        if i >= n {
            return Err(ParseError::structure(FORMAT, loc, format!("more than the {n} values expected")));
        }
        out.push(
            parse(token)
                .ok_or_else(|| ParseError::syntax(FORMAT, loc, format!("value {i} `{token}` is not a number")))?,
        );
    }
    if out.len() != n {
        return Err(ParseError::structure(FORMAT, loc, format!("{} values, expected {n}", out.len())));
    }
    Ok(out)
}
