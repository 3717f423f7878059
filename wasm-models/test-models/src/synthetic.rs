//! Deterministic random tree ensembles of a chosen size, for tests and benchmarks that
//! need a realistic model without a training library.

use fresco_trees::{
    Comparison, Ensemble, Feature, FeatureKind, Missing, Node, NumericSplit, Precision, Split, SplitTest, Transform,
    Tree,
};

/// A small, fast, seeded generator (SplitMix64): reproducible across platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A regression ensemble of `trees` trees with `leaves` leaves each over `features`
/// numeric features named `f0`, `f1`, …, thresholds uniform in `[0, 1)`, missing values
/// routed by a random default direction. Score it on inputs in `[0, 1)`.
pub fn gbdt(trees: usize, leaves: usize, features: usize, seed: u64) -> Ensemble {
    let mut rng = SplitMix64::new(seed);
    let features = features.max(1);
    let trees = (0..trees)
        .map(|_| {
            let mut nodes = vec![Node::Leaf(0.0)];
            let mut open = vec![0usize];
            while open.len() < leaves.max(1) {
                let at = open.swap_remove(rng.below(open.len()));
                let left = nodes.len();
                nodes.push(Node::Leaf((rng.next_f64() - 0.5) * 0.2));
                nodes.push(Node::Leaf((rng.next_f64() - 0.5) * 0.2));
                nodes[at] = Node::Split(Split {
                    feature: rng.below(features) as u32,
                    left: left as u32,
                    right: left as u32 + 1,
                    test: SplitTest::Numeric(NumericSplit {
                        threshold: rng.next_f64(),
                        comparison: Comparison::LessOrEqual,
                        missing: Missing::NanIsMissing,
                        default_left: rng.next_u64() & 1 == 0,
                    }),
                });
                open.extend([left, left + 1]);
            }
            Tree { group: 0, nodes }
        })
        .collect();
    regression(features, trees, 0.5, Precision::F64)
}

/// A one-output regression ensemble of `trees` over `features` numeric features named
/// `f0`, `f1`, …, starting from `base_score`.
///
/// ```
/// use fresco_test_models::synthetic::regression;
/// use fresco_trees::{Node, Precision, Tree};
///
/// let e = regression(3, vec![Tree { group: 0, nodes: vec![Node::Leaf(1.0)] }], 0.5, Precision::F64);
/// assert_eq!(e.predict(&[0.0, 0.0, 0.0]), [1.5]);
/// ```
pub fn regression(features: usize, trees: Vec<Tree>, base_score: f64, precision: Precision) -> Ensemble {
    Ensemble {
        features: (0..features)
            .map(|i| Feature { name: format!("f{i}"), kind: FeatureKind::Numerical, categories: None })
            .collect(),
        trees,
        n_groups: 1,
        base_score: vec![base_score],
        average: false,
        transform: Transform::Identity,
        precision,
        outputs: vec!["score".into()],
        source_format: "synthetic",
    }
}
