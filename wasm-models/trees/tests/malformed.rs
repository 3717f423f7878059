//! Malformed models get a typed error naming the problem, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_trees::{ParseError, lightgbm, xgboost};
use proptest::prelude::*;

const LGB: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n\
objective=regression\nfeature_names=a b\nfeature_infos=[0:1] [0:1]\ntree_sizes=1\n\n\
Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0.5 0.25\ndecision_type=2 2\n\
left_child=1 -1\nright_child=-3 -2\nleaf_value=1 2 3\nleaf_weight=1 1 1\nleaf_count=1 1 1\n\
internal_value=0 0\ninternal_weight=1 1\ninternal_count=2 2\nis_linear=0\nshrinkage=1\n\n\nend of trees\n";

fn xgb() -> String {
    r#"{"learner": {"attributes": {}, "feature_names": [], "feature_types": [],
      "gradient_booster": {"name": "gbtree", "model": {"gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "1"},
        "iteration_indptr": [0, 1], "tree_info": [0], "trees": [{
          "base_weights": [0, 1, 2], "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
          "default_left": [1, 0, 0], "id": 0, "left_children": [1, -1, -1], "right_children": [2, -1, -1],
          "loss_changes": [0, 0, 0], "parents": [2147483647, 0, 0], "split_conditions": [0.5, 1.0, 2.0],
          "split_indices": [1, 0, 0], "split_type": [0, 0, 0], "sum_hessian": [2, 1, 1],
          "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "3", "size_leaf_vector": "1"}}]}},
      "learner_model_param": {"base_score": "[5E-1]", "boost_from_average": "1", "num_class": "0", "num_feature": "2", "num_target": "1"},
      "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}},
      "version": [3, 2, 0]}"#
        .to_owned()
}

#[test]
fn the_valid_models_parse() {
    let e = lightgbm::parse(LGB).unwrap();
    let mut out = [0.0];
    e.predict_row(&[0.2, 0.1], &mut out);
    assert_eq!(out, [1.0]);
    e.predict_row(&[0.2, 0.3], &mut out);
    assert_eq!(out, [2.0]);
    e.predict_row(&[0.7, f64::NAN], &mut out);
    assert_eq!(out, [3.0]);
    let e = xgboost::parse(&xgb()).unwrap();
    e.predict_row(&[0.0, 0.7], &mut out);
    assert_eq!(out, [2.5]);
}

fn lgb_err(from: &str, to: &str) -> ParseError {
    let text = LGB.replace(from, to);
    assert_ne!(text, LGB, "replacement `{from}` not found");
    lightgbm::parse(&text).unwrap_err()
}

fn xgb_err(from: &str, to: &str) -> ParseError {
    let text = xgb().replacen(from, to, 1);
    assert_ne!(text, xgb(), "replacement `{from}` not found");
    xgboost::parse(&text).unwrap_err()
}

fn says(err: &ParseError, needle: &str) {
    assert!(err.to_string().contains(needle), "`{err}` does not mention `{needle}`");
}

#[test]
fn lightgbm_errors() {
    says(&lgb_err("leaf_value=1 2 3", "leaf_value=1 2"), "2 values, expected 3");
    says(&lgb_err("threshold=0.5 0.25", "threshold=0.5 fast"), "`fast` is not a number");
    says(&lgb_err("left_child=1 -1", "left_child=7 -1"), "child index 7 out of range");
    says(&lgb_err("right_child=-3 -2", "right_child=-9 -2"), "child index -9 out of range");
    says(&lgb_err("split_feature=0 1", "split_feature=0 5"), "feature 5");
    says(&lgb_err("left_child=1 -1", "left_child=0 -1"), "reached twice");
    says(&lgb_err("num_leaves=3", "num_leaves=999999999"), "num_leaves=999999999");
    says(&lgb_err("num_leaves=3", "num_leaves=three"), "not a count");
    says(&lgb_err("max_feature_idx=1", "max_feature_idx=x"), "not a count");
    says(&lgb_err("objective=regression", "objective=lambdarank_xyz"), "unsupported");
    says(&lgb_err("is_linear=0", "is_linear=1"), "linear_tree");
    says(&lgb_err("decision_type=2 2", "decision_type=2 14"), "missing type 3");
    // A category count whose boundary count (`num_cat + 1`) overflows.
    says(&lgb_err("num_cat=0", "num_cat=18446744073709551615"), "18446744073709551615 is not a count of categories");
    assert!(matches!(lightgbm::parse("not a model"), Err(ParseError::Syntax { .. })));
    assert!(matches!(lightgbm::parse(""), Err(ParseError::Syntax { .. })));
}

#[test]
fn lightgbm_truncation_anywhere_is_an_error_or_a_valid_prefix() {
    for cut in 0..LGB.len() {
        if let Ok(e) = lightgbm::parse(&LGB[..cut]) {
            // Cutting after the last tree leaves a complete model.
            e.validate().unwrap();
        }
    }
}

#[test]
fn xgboost_errors() {
    says(&xgb_err("\"left_children\": [1, -1, -1]", "\"left_children\": [1, -1]"), "right_children has 3 entries");
    says(&xgb_err("\"left_children\": [1, -1, -1]", "\"left_children\": [9, -1, -1]"), "child 9");
    says(&xgb_err("\"left_children\": [1, -1, -1]", "\"left_children\": [0, -1, -1]"), "reached twice");
    says(&xgb_err("\"split_indices\": [1, 0, 0]", "\"split_indices\": [4, 0, 0]"), "feature 4");
    says(&xgb_err("\"tree_info\": [0]", "\"tree_info\": [3]"), "group 3");
    says(&xgb_err("\"tree_info\": [0]", "\"tree_info\": [0, 0]"), "2 tree_info entries for 1 trees");
    says(&xgb_err("\"base_score\": \"[5E-1]\"", "\"base_score\": \"half\""), "base_score");
    says(&xgb_err("\"num_feature\": \"2\", \"num_target\"", "\"num_feature\": \"two\", \"num_target\""), "not a count");
    says(&xgb_err("\"split_conditions\": [0.5, 1.0, 2.0]", "\"split_conditions\": [\"a\", 1.0, 2.0]"), "line");
    says(&xgb_err("reg:squarederror", "rank:ndcg"), "unsupported");
    says(&xgb_err("\"name\": \"gbtree\"", "\"name\": \"gblinear\""), "unsupported");
    says(&xgb_err("\"size_leaf_vector\": \"1\"", "\"size_leaf_vector\": \"3\""), "vector-leaf");
    // `best_iteration` keeps iterations 0..=N: N past the model, or so large that N + 1
    // overflows, is refused rather than keeping zero or all trees.
    for best in ["1", "18446744073709551615", "18446744073709551614"] {
        let err = xgb_err("\"attributes\": {}", &format!("\"attributes\": {{\"best_iteration\": \"{best}\"}}"));
        says(&err, &format!("iteration {best} is past the model's 1 trees"));
    }
    says(&xgb_err("\"attributes\": {}", "\"attributes\": {\"best_iteration\": \"-1\"}"), "`-1` is not a count");
    let kept = xgboost::parse(&xgb().replacen("\"attributes\": {}", "\"attributes\": {\"best_iteration\": \"0\"}", 1));
    assert_eq!(kept.unwrap().trees.len(), 1);
    let json = xgb();
    for cut in (0..json.len()).step_by(7) {
        assert!(xgboost::parse(&json[..cut]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = lightgbm::parse(&text);
        let _ = xgboost::parse(&text);
    }

    #[test]
    fn mutated_models_never_panic(pos in 0usize..2000, byte in any::<u8>(), cut in 0usize..2000) {
        for original in [LGB.to_owned(), xgb()] {
            let mut bytes = original.into_bytes();
            let p = pos % bytes.len();
            bytes[p] = byte;
            bytes.truncate(bytes.len() - cut % bytes.len() / 2);
            let text = String::from_utf8_lossy(&bytes);
            for e in [lightgbm::parse(&text), xgboost::parse(&text)].into_iter().flatten() {
                e.validate().unwrap();
                // A model that parses must also score without panicking.
                let mut out = vec![0.0; e.n_outputs()];
                e.predict_row(&vec![0.5; e.n_features()], &mut out);
            }
        }
    }
}
