//! Compiled modules against LightGBM's and XGBoost's own predictions, and bit for bit
//! against the native evaluator (also on ensembles built to hit every edge of the
//! comparisons: signed zeros, infinities, subnormals, NaN, values on the thresholds).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_compiler::{CompileError, Compiler, Format, Layout};
use fresco_runtime::{Engine, Model, Target};
use fresco_test_models::oracle;
use fresco_test_models::synthetic::{self, SplitMix64};
use fresco_trees::{
    CategoricalFlavor, CategoricalSplit, Comparison, Ensemble, FeatureKind, Missing, Node, NumericSplit, Precision,
    Split, SplitTest, Tree,
};
use proptest::prelude::*;

#[test]
fn compiled_modules_reproduce_the_libraries() {
    reproduce_the_libraries_on(&Engine::new().unwrap());
}

/// The same suite with every module run by wasmtime's Pulley interpreter, as on a host
/// that may not JIT: the same bits as native code.
#[test]
fn compiled_modules_reproduce_the_libraries_on_pulley() {
    reproduce_the_libraries_on(&Engine::builder().target(Target::Pulley).build().unwrap());
}

fn reproduce_the_libraries_on(engine: &Engine) {
    let cases = oracle::cases();
    let mut failures = Vec::new();
    for case in &cases {
        let format = if case.library == "lightgbm" { Format::LightGbm } else { Format::XgBoost };
        let compiled = Compiler::new(&case.name, "1").add_source(&case.model_text(), format);
        if case.expect_error.is_some() {
            assert!(
                matches!(
                    compiled,
                    Err(CompileError::Parse { source: fresco_trees::ParseError::Unsupported { .. }, .. })
                ),
                "{}: expected an unsupported-feature error",
                case.name
            );
            continue;
        }
        let compiler = compiled.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let inputs = case.input_rows();
        let native = compiler.ensembles().next().unwrap().predict(&inputs);
        for layout in [Layout::Branches, Layout::Tables] {
            let wasm = compiler.clone().layout(layout).compile().unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let model = Model::from_bytes(engine, &wasm).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let got = model.predict(&inputs).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let err = oracle::max_relative_error(&got, &case.expected_rows());
            let bitwise =
                got.iter().zip(&native).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            println!(
                "{:<28} {layout:?} on {} {:>7} bytes  max rel err {err:.1e}  native bitwise {bitwise}",
                case.name,
                engine.target(),
                wasm.len()
            );
            if err > 1e-9 || !bitwise {
                failures.push(format!(
                    "{} ({layout:?}): max relative error {err:e}, bitwise equal to native: {bitwise}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Which NaN a computation makes differs by CPU, and the engine no longer canonicalises
/// each operation: compiled code must not let it matter. Every feature of every oracle
/// model gets NaNs of both signs, quiet and signalling, with payloads; the default
/// engine, one canonicalising every operation and Pulley give the same bits.
#[test]
fn outputs_do_not_depend_on_which_nan_a_computation_made() {
    let nans = [
        0x7ff8_0000_0000_0000_u64,
        0xfff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0xfff8_dead_beef_0001,
        0x7ff4_0000_0000_0000,
    ]
    .map(f64::from_bits);
    let engines = [
        Engine::new().unwrap(),
        Engine::builder().nan_canonicalization(true).build().unwrap(),
        Engine::builder().target(Target::Pulley).build().unwrap(),
    ];
    for case in oracle::cases().iter().filter(|c| c.expect_error.is_none()) {
        let format = if case.library == "lightgbm" { Format::LightGbm } else { Format::XgBoost };
        let compiler = Compiler::new(&case.name, "1").add_source(&case.model_text(), format).unwrap();
        let n = compiler.ensembles().next().unwrap().n_features();
        let base = case.input_rows()[..n].to_vec();
        let mut rows = Vec::new();
        for f in 0..n {
            for nan in nans {
                let mut row = base.clone();
                row[f] = nan;
                rows.extend(row);
            }
        }
        for nan in nans {
            rows.extend(std::iter::repeat_n(nan, n));
        }
        for layout in [Layout::Branches, Layout::Tables] {
            let wasm = compiler.clone().layout(layout).compile().unwrap();
            let outputs: Vec<Vec<u64>> = engines
                .iter()
                .map(|engine| {
                    let model = Model::from_bytes(engine, &wasm).unwrap();
                    model.predict(&rows).unwrap().iter().map(|v| v.to_bits()).collect()
                })
                .collect();
            assert_eq!(
                outputs[0], outputs[1],
                "{} ({layout:?}): canonicalising every operation changes bits",
                case.name
            );
            assert_eq!(outputs[0], outputs[2], "{} ({layout:?}): Pulley gives other bits", case.name);
        }
    }
}

/// Thresholds and inputs where comparisons can go wrong.
const EDGES: [f64; 17] = [
    f64::NEG_INFINITY,
    -1e300,
    -1.5,
    -1.0,
    -1e-35,
    -5e-324,
    -0.0,
    0.0,
    5e-324,
    1e-35,
    0.1,
    0.5,
    1.0,
    1.5,
    3.0e38,
    1e300,
    f64::INFINITY,
];

/// Many trees over three features whose thresholds come from [`EDGES`]: hundreds of
/// splits per feature on a few distinct thresholds, so the branch layout compares
/// threshold ranks for the numeric splits, and the float path serves the rest. With
/// `rankable`, every split can be compared by rank (no zero-as-missing splits, no
/// `x < -inf`), so the node tables hold rank comparisons too.
fn edge_ensemble(seed: u64, precision: Precision, rankable: bool) -> Ensemble {
    let mut rng = SplitMix64::new(seed);
    let round = |v: f64| if precision == Precision::F32 { f64::from(v as f32) } else { v };
    let trees = (0..48)
        .map(|_| {
            random_tree(&mut rng, round, |rng| {
                let threshold = if rng.below(8) == 0 {
                    round(rng.next_f64() * 4.0 - 2.0)
                } else {
                    round(EDGES[rng.below(EDGES.len())])
                };
                let kinds = if rankable { 2 } else { 3 };
                let missing = [Missing::NanIsMissing, Missing::NanToZero, Missing::ZeroIsMissing][rng.below(kinds)];
                let comparison = if rng.below(2) == 0 || (rankable && threshold == f64::NEG_INFINITY) {
                    Comparison::LessOrEqual
                } else {
                    Comparison::Less
                };
                let feature = rng.below(3) as u32;
                let test = SplitTest::Numeric(NumericSplit {
                    threshold,
                    comparison,
                    missing,
                    default_left: rng.below(2) == 0,
                });
                (feature, test)
            })
        })
        .collect();
    synthetic::regression(3, trees, 0.0, precision)
}

/// A tree of 12 leaves grown by splitting a random open leaf: leaf values uniform in
/// ±0.1 (through `leaf`), each split's feature and test from `split`.
fn random_tree(
    rng: &mut SplitMix64,
    leaf: impl Fn(f64) -> f64,
    mut split: impl FnMut(&mut SplitMix64) -> (u32, SplitTest),
) -> Tree {
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut open = vec![0usize];
    while open.len() < 12 {
        let at = open.swap_remove(rng.below(open.len()));
        let left = nodes.len();
        for _ in 0..2 {
            nodes.push(Node::Leaf(leaf((rng.next_f64() - 0.5) * 0.2)));
        }
        let (feature, test) = split(rng);
        nodes[at] = Node::Split(Split { feature, left: left as u32, right: left as u32 + 1, test });
        open.extend([left, left + 1]);
    }
    Tree { group: 0, nodes }
}

/// Inputs on, just beside and between the edges, and NaN.
fn edge_inputs(seed: u64, rows: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed ^ 0x5EED);
    (0..rows * 3)
        .map(|_| {
            let e = EDGES[rng.below(EDGES.len())];
            match rng.below(6) {
                0 => e.next_up(),
                1 => e.next_down(),
                2 => f64::from(e as f32),
                3 => f64::NAN,
                4 => rng.next_f64() * 4.0 - 2.0,
                _ => e,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn edge_comparisons_match_the_native_evaluator(
        seed in any::<u64>(),
        f32_model in any::<bool>(),
        rankable in any::<bool>(),
        rows in prop_oneof![Just(1usize), Just(7), Just(300)],
    ) {
        let precision = if f32_model { Precision::F32 } else { Precision::F64 };
        let ensemble = edge_ensemble(seed, precision, rankable);
        let inputs = edge_inputs(seed, rows);
        let native = ensemble.predict(&inputs);
        let engine = Engine::new().unwrap();
        for layout in [Layout::Branches, Layout::Tables] {
            let wasm = Compiler::new("edges", "1").add_ensemble(ensemble.clone()).unwrap().layout(layout).compile().unwrap();
            let got = Model::from_bytes(&engine, &wasm).unwrap().predict(&inputs).unwrap();
            for (row, (a, b)) in got.iter().zip(&native).enumerate() {
                prop_assert_eq!(a.to_bits(), b.to_bits(), "{:?} row {} {:?}", layout, row, &inputs[row * 3..row * 3 + 3]);
            }
        }
    }
}

/// The branch layout scores a block's rows in an order sorted by rank (see the
/// compiler's `codegen::order`): every row must still get its own scores, in every
/// group, bit for bit, whether its block was sorted (9,000 rows: a full block and part
/// of the next), sorted and partial (1,000), or too small to sort (31, and single
/// rows); with every split compared by rank, and with some comparing inputs
/// (zero-as-missing splits), whose inputs are then copied in the order too.
#[test]
fn rows_taken_in_rank_order_keep_their_own_scores() {
    let engines = [Engine::new().unwrap(), Engine::builder().target(Target::Pulley).build().unwrap()];
    let cases =
        [(Precision::F64, 1, true), (Precision::F64, 1, false), (Precision::F32, 1, false), (Precision::F64, 3, false)];
    for ((precision, groups, rankable), engine) in cases.into_iter().flat_map(|c| engines.iter().map(move |e| (c, e))) {
        let mut ensemble = edge_ensemble(0x0DE5, precision, rankable);
        ensemble.n_groups = groups;
        ensemble.base_score = (0..groups).map(|g| g as f64 * 0.25).collect();
        ensemble.outputs = (0..groups).map(|g| format!("score{g}")).collect();
        for (i, tree) in ensemble.trees.iter_mut().enumerate() {
            tree.group = i % groups;
        }
        // The first part spans two blocks (8,192 rows, or 5,376 with 3 groups).
        let rows = 9000 + 1000 + 31;
        let inputs = edge_inputs(7, rows);
        let native = ensemble.predict(&inputs);
        let wasm = Compiler::new("order", "1")
            .add_ensemble(ensemble.clone())
            .unwrap()
            .layout(Layout::Branches)
            .compile()
            .unwrap();
        let model = Model::from_bytes(engine, &wasm).unwrap();
        let mut got = Vec::new();
        for part in [&inputs[..9000 * 3], &inputs[9000 * 3..10_000 * 3], &inputs[10_000 * 3..]] {
            got.extend(model.predict(part).unwrap());
        }
        let one_by_one: Vec<f64> = inputs.chunks(3).take(64).flat_map(|row| model.predict(row).unwrap()).collect();
        assert_eq!(got.len(), native.len());
        for (i, (a, b)) in got.iter().zip(&native).enumerate() {
            let target = engine.target();
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{precision:?}, {groups} groups, rankable {rankable} on {target}: output {i} of {}",
                native.len()
            );
        }
        for (i, (a, b)) in one_by_one.iter().zip(&native).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{precision:?}, {groups} groups, rankable {rankable}, one row at a time: output {i}"
            );
        }
    }
}

/// Category codes on and beside LightGBM's edges (NaN, `x <= -1`, truncation toward
/// zero, the one-word bitset's end at 32, `2^31`) and XGBoost's (`2^24`).
const CATEGORY_EDGES: [f64; 22] = [
    f64::NAN,
    f64::NEG_INFINITY,
    -2.0,
    -1.0,
    -0.999_999_999_999_999_9,
    -0.5,
    -0.0,
    0.0,
    0.5,
    1.0,
    2.999,
    3.0,
    31.0,
    31.5,
    32.0,
    33.0,
    40.0,
    16_777_216.0,
    2_147_483_647.0,
    2_147_483_648.0,
    1e300,
    f64::INFINITY,
];

/// Trees over a numeric feature 0 and a categorical feature 1 whose splits are
/// LightGBM's with categories below 32 (tested through the row's category word) and,
/// where `mixed`, also with categories up to 40 (two bitset words: the input is read)
/// and XGBoost's. Without them every split reads a rank slot, so the node tables walk
/// rank records.
fn category_ensemble(seed: u64, mixed: bool) -> Ensemble {
    let mut rng = SplitMix64::new(seed);
    let trees = (0..40)
        .map(|_| {
            random_tree(
                &mut rng,
                |v| v,
                |rng| {
                    let test = match rng.below(4) {
                        0 => SplitTest::Numeric(NumericSplit {
                            threshold: rng.next_f64() * 4.0 - 2.0,
                            comparison: Comparison::LessOrEqual,
                            missing: Missing::NanIsMissing,
                            default_left: rng.below(2) == 0,
                        }),
                        kind => SplitTest::Categorical(CategoricalSplit {
                            categories: match kind {
                                1 if mixed => vec![rng.next_u64() as u32, 1 << rng.below(9)],
                                _ => vec![rng.next_u64() as u32],
                            },
                            flavor: if mixed && kind == 3 && rng.below(4) == 0 {
                                CategoricalFlavor::XgBoost
                            } else {
                                CategoricalFlavor::LightGbm
                            },
                            default_left: rng.below(2) == 0,
                        }),
                    };
                    (u32::from(matches!(test, SplitTest::Categorical(_))), test)
                },
            )
        })
        .collect();
    let mut e = synthetic::regression(2, trees, 0.0, Precision::F64);
    e.features[1].kind = FeatureKind::Categorical;
    e
}

/// A categorical split tested through the row's category word (see the compiler's
/// `ranks`) sends every code where LightGBM does, bit for bit against the native
/// evaluator: on native code and Pulley, in sorted blocks, small blocks and single rows;
/// in the branch layout beside splits that read the input, and in node tables of rank
/// records (one-hot masked by the categories), row lanes and tree lanes.
#[test]
fn category_words_match_the_native_evaluator() {
    for (ensemble, layout) in [
        (category_ensemble(0xCA7, true), Layout::Branches),
        (category_ensemble(0xCA7, false), Layout::Branches),
        (category_ensemble(0xCA7, false), Layout::Tables),
    ] {
        category_words_agree(&ensemble, layout);
    }
}

fn category_words_agree(ensemble: &Ensemble, layout: Layout) {
    let engines = [Engine::new().unwrap(), Engine::builder().target(Target::Pulley).build().unwrap()];
    let mut rng = SplitMix64::new(11);
    let inputs: Vec<f64> = (0..2048 + 31)
        .flat_map(|_| {
            let code = CATEGORY_EDGES[rng.below(CATEGORY_EDGES.len())];
            let code = if rng.below(4) == 0 { rng.below(34) as f64 } else { code };
            [rng.next_f64() * 4.0 - 2.0, code]
        })
        .collect();
    let native = ensemble.predict(&inputs);
    let wasm =
        Compiler::new("categories", "1").add_ensemble(ensemble.clone()).unwrap().layout(layout).compile().unwrap();
    for engine in &engines {
        let model = Model::from_bytes(engine, &wasm).unwrap();
        let mut got = model.predict(&inputs[..2048 * 2]).unwrap();
        got.extend(model.predict(&inputs[2048 * 2..]).unwrap());
        let one_by_one: Vec<f64> = inputs.chunks(2).take(64).flat_map(|row| model.predict(row).unwrap()).collect();
        let target = engine.target();
        for (row, (a, b)) in got.iter().zip(&native).enumerate() {
            let row_inputs = &inputs[row * 2..row * 2 + 2];
            assert_eq!(a.to_bits(), b.to_bits(), "{layout:?} on {target}: row {row} {row_inputs:?}");
        }
        for (row, (a, b)) in one_by_one.iter().zip(&native).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{layout:?} on {target}, one row at a time: row {row}");
        }
    }
}

/// An ensemble built in code goes through the same checks as a parsed one: a cycle, a
/// child out of range or a feature the model does not have is a typed error.
#[test]
fn add_ensemble_refuses_an_invalid_ensemble() {
    let valid = edge_ensemble(3, Precision::F64, true);
    assert!(Compiler::new("ok", "1").add_ensemble(valid.clone()).is_ok());
    fn split(ensemble: &mut Ensemble) -> &mut Split {
        ensemble.trees[0].nodes.iter_mut().find_map(|n| if let Node::Split(s) = n { Some(s) } else { None }).unwrap()
    }
    let mut cycle = valid.clone();
    split(&mut cycle).left = 0;
    let mut out_of_range = valid.clone();
    split(&mut out_of_range).right = 9_999;
    let mut unknown_feature = valid.clone();
    split(&mut unknown_feature).feature = 77;
    for (broken, needle) in
        [(cycle, "reached twice"), (out_of_range, "out of range"), (unknown_feature, "splits on feature 77")]
    {
        match Compiler::new("bad", "1").add_ensemble(broken) {
            Err(CompileError::Parse { source, .. }) => assert!(source.to_string().contains(needle), "{source}"),
            Err(other) => panic!("expected an invalid-ensemble error, got {other}"),
            Ok(_) => panic!("an invalid ensemble was accepted ({needle})"),
        }
    }
}

/// `rename_outputs` names the outputs of the model added last, refuses a count that
/// differs from its outputs, and refuses to rename before any model was added.
#[test]
fn rename_outputs_names_the_last_models_outputs() {
    let case = oracle::cases()
        .into_iter()
        .find(|c| c.library == "lightgbm" && c.expect_error.is_none() && c.expected.first().map(Vec::len) == Some(1))
        .expect("a single-output LightGBM fixture");
    let compiler = Compiler::new("renamed", "1").add_source(&case.model_text(), Format::LightGbm).unwrap();

    let wasm = compiler.clone().rename_outputs(vec!["minutes".into()]).unwrap().compile().unwrap();
    let model = Model::from_bytes(&Engine::new().unwrap(), &wasm).unwrap();
    assert_eq!(model.metadata().outputs, ["minutes"]);

    let err = compiler.rename_outputs(vec!["a".into(), "b".into()]).err().expect("two names for one output");
    assert!(err.to_string().contains("2 names for 1 outputs"), "{err}");
    assert!(matches!(Compiler::new("empty", "1").rename_outputs(vec![]), Err(CompileError::Empty)));
}
