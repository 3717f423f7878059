//! The scoring kernel's source, specialised per model (feature count, groups, trees and
//! precision become constants) and compiled at run time with NVRTC.
//!
//! The same text is valid C: without `__CUDACC__` the kernel is a plain function that
//! loops over rows, which is how the tests compile it with the system C compiler and
//! check it against the native evaluator on machines with no GPU.

use std::fmt::Write;

use fresco_trees::{Precision, eval};

use crate::layout::{CATEGORICAL, DEFAULT_LEFT, FEATURE_BITS, Forest, LEAF, LESS, MISSING_SHIFT, XGBOOST_CATEGORIES};

/// The kernel's entry point: a thread per row.
pub const KERNEL_NAME: &str = "fresco_score";

/// The entry point that walks one row's trees side by side (a block per row), for
/// batches too small to fill the GPU a thread per row. Present only in kernels of at
/// most [`BY_TREE_MAX_TREES`] trees (one row's leaves sit in shared memory).
pub const BY_TREE_KERNEL_NAME: &str = "fresco_score_by_tree";

/// The most trees [`BY_TREE_KERNEL_NAME`] is generated for: 4,096 leaves of 8 bytes,
/// 32 KiB of the 48 KiB of static shared memory a block may have.
pub const BY_TREE_MAX_TREES: usize = 4096;

/// Threads per block the kernel is launched with (the walk by row with fewer where its
/// rows are staged in shared memory: [`by_row_threads`]).
pub const BLOCK_THREADS: u32 = 256;

/// Static shared memory a block of the walk by row may use for its rows.
const STAGE_BYTES: usize = 48 * 1024;

/// Rows (and threads) per block of the walk by row for `n_features` features: as many
/// whole warps as fit 48 KiB of staged rows, at most [`BLOCK_THREADS`]; 0 when
/// not one warp's rows fit or there are no features (the rows are then read where they
/// lie).
///
/// ```
/// assert_eq!(fresco_cuda::by_row_threads(30), 192);
/// assert_eq!(fresco_cuda::by_row_threads(8), 256);
/// assert_eq!(fresco_cuda::by_row_threads(1000), 0);
/// ```
pub fn by_row_threads(n_features: usize) -> u32 {
    if n_features == 0 {
        return 0;
    }
    let rows = STAGE_BYTES / (8 * n_features);
    let warps = (rows / 32).min(BLOCK_THREADS as usize / 32);
    // At most BLOCK_THREADS (256), so the cast is exact.
    (warps * 32) as u32
}

const BODY: &str = r#"
#ifdef __CUDACC__
#define FRESCO_KERNEL extern "C" __global__
#define FRESCO_DEVICE __device__ static
#define FRESCO_RESTRICT __restrict__
#else
#define FRESCO_KERNEL
#define FRESCO_DEVICE static
#define FRESCO_RESTRICT restrict
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

/* One node, as fresco_cuda::DeviceNode lays it out: 32 bytes, one aligned sector. */
typedef struct {
    u32 info, left, right, cat_start, cat_len, reserved;
    double value;
} fresco_node;
typedef char fresco_node_is_32_bytes[sizeof(fresco_node) == 32 ? 1 : -1];

/* The layout's arrays: read-only, never aliasing the scores (so loads may go through
   the read-only cache). */
#define FOREST_PARAMS \
    const fresco_node* FRESCO_RESTRICT nodes, const u32* FRESCO_RESTRICT cat_words, \
    const u32* FRESCO_RESTRICT tree_root, const u32* FRESCO_RESTRICT tree_group, \
    const double* FRESCO_RESTRICT base_score
#define FOREST_ARGS nodes, cat_words, tree_root, tree_group, base_score

FRESCO_DEVICE int fresco_numeric_left(u32 info, double threshold, double x) {
    u32 missing = (info >> MISSING_SHIFT) & 3u;
    int default_left = (info & DEFAULT_LEFT) != 0;
    if (x != x) {
        if (missing == 2u) return default_left;
        x = 0.0;
    }
    if (missing == 1u && x >= -ZERO_THRESHOLD && x <= ZERO_THRESHOLD) return default_left;
    return (info & LESS) ? (x < threshold) : (x <= threshold);
}

FRESCO_DEVICE int fresco_contains(const u32* words, u32 len, u32 c) {
    u32 w = c / 32u;
    return w < len && ((words[w] >> (c % 32u)) & 1u);
}

FRESCO_DEVICE int fresco_categorical_left(u32 info, const u32* words, u32 len, double x) {
    if (info & XGBOOST_CATEGORIES) {
        if (x != x) return (info & DEFAULT_LEFT) != 0;
        if (!(x >= 0.0 && x < XGB_MAX_CATEGORY)) return 1;
        return !fresco_contains(words, len, (u32)x);
    }
    if (x != x || x <= -1.0 || x >= 2147483648.0) return 0;
    return fresco_contains(words, len, (u32)x);
}

FRESCO_DEVICE double fresco_add(double s, double leaf) {
#if F32_ARITHMETIC
    return (double)((float)s + (float)leaf);
#else
    return s + leaf;
#endif
}

/* The leaf tree `t` sends `row` to. */
FRESCO_DEVICE double fresco_leaf(FOREST_PARAMS, u32 t, const double* row) {
    u32 i = tree_root[t];
    (void)tree_group;
    (void)base_score;
    for (;;) {
        const fresco_node* node = nodes + i;
        u32 info = node->info;
        if (info & LEAF) return node->value;
        double x = row[info & FEATURE_MASK];
#if F32_ARITHMETIC
        x = (double)(float)x;
#endif
        int go_left = (info & CATEGORICAL)
            ? fresco_categorical_left(info, cat_words + node->cat_start, node->cat_len, x)
            : fresco_numeric_left(info, node->value, x);
        i = go_left ? node->left : node->right;
    }
}

/* One row, every tree in turn: scores accumulate from the base score in tree order, as
   the native evaluator adds them. */
FRESCO_DEVICE void fresco_score_row(FOREST_PARAMS, const double* row, double* out) {
    for (u32 g = 0; g < N_GROUPS; g++) out[g] = base_score[g];
#if N_GROUPS == 1
    double sum = out[0];
    for (u32 t = 0; t < N_TREES; t++) sum = fresco_add(sum, fresco_leaf(FOREST_ARGS, t, row));
    out[0] = sum;
#else
    for (u32 t = 0; t < N_TREES; t++) {
        out[tree_group[t]] = fresco_add(out[tree_group[t]], fresco_leaf(FOREST_ARGS, t, row));
    }
#endif
}

/* Leaves found in any order, added in tree order: the same sums as fresco_score_row. */
FRESCO_DEVICE void fresco_sum_leaves(const u32* tree_group, const double* base_score, const double* leaves,
                                     double* out) {
    for (u32 g = 0; g < N_GROUPS; g++) out[g] = base_score[g];
#if N_GROUPS == 1
    double sum = out[0];
    (void)tree_group;
    for (u32 t = 0; t < N_TREES; t++) sum = fresco_add(sum, leaves[t]);
    out[0] = sum;
#else
    for (u32 t = 0; t < N_TREES; t++) out[tree_group[t]] = fresco_add(out[tree_group[t]], leaves[t]);
#endif
}

/* Many rows: a thread per row. */
FRESCO_KERNEL void fresco_score(FOREST_PARAMS, const double* FRESCO_RESTRICT rows, u64 n_rows,
                                double* FRESCO_RESTRICT out)
{
#if defined(__CUDACC__) && STAGED_ROWS > 0
    /* The block's STAGED_ROWS rows are first copied to shared memory, its threads
       reading consecutive words; the walks then read features there instead of from
       rows that lie a row's length apart in global memory. */
    __shared__ double staged[STAGED_ROWS * N_FEATURES];
    u64 first = (u64)blockIdx.x * STAGED_ROWS;
    if (first >= n_rows) return;
    u64 count = n_rows - first < STAGED_ROWS ? n_rows - first : STAGED_ROWS;
    for (u64 k = threadIdx.x; k < count * N_FEATURES; k += blockDim.x) staged[k] = rows[first * N_FEATURES + k];
    __syncthreads();
    if (threadIdx.x >= count) return;
    fresco_score_row(FOREST_ARGS, staged + threadIdx.x * N_FEATURES, out + (first + threadIdx.x) * N_GROUPS);
#elif defined(__CUDACC__)
    u64 r = (u64)blockIdx.x * (u64)blockDim.x + (u64)threadIdx.x;
    if (r >= n_rows) return;
    fresco_score_row(FOREST_ARGS, rows + r * N_FEATURES, out + r * N_GROUPS);
#else
    for (u64 r = 0; r < n_rows; r++) fresco_score_row(FOREST_ARGS, rows + r * N_FEATURES, out + r * N_GROUPS);
#endif
}

/* Few rows: a block per row, its threads walking the trees side by side, one thread
   adding the leaves in tree order. A row then waits for the deepest walk of a few
   trees rather than for every tree's walk in turn. */
#if N_TREES > 0 && N_TREES <= BY_TREE_MAX_TREES
FRESCO_KERNEL void fresco_score_by_tree(FOREST_PARAMS, const double* FRESCO_RESTRICT rows, u64 n_rows,
                                        double* FRESCO_RESTRICT out)
{
#ifdef __CUDACC__
    __shared__ double leaves[N_TREES];
    u64 r = (u64)blockIdx.x;
    if (r >= n_rows) return;
    const double* row = rows + r * N_FEATURES;
    for (u32 t = threadIdx.x; t < N_TREES; t += blockDim.x) leaves[t] = fresco_leaf(FOREST_ARGS, t, row);
    __syncthreads();
    if (threadIdx.x == 0) fresco_sum_leaves(tree_group, base_score, leaves, out + r * N_GROUPS);
#else
    double leaves[N_TREES];
    for (u64 r = 0; r < n_rows; r++) {
        const double* row = rows + r * N_FEATURES;
        for (u32 t = N_TREES; t-- > 0;) leaves[t] = fresco_leaf(FOREST_ARGS, t, row);
        fresco_sum_leaves(tree_group, base_score, leaves, out + r * N_GROUPS);
    }
#endif
}
#endif
"#;

/// The kernel source for `forest`: the model's constants, then the walk.
///
/// ```
/// let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"),
///     "/../wasm-models/oracle/fixtures/lgb_regression.model.txt"))?;
/// let forest = fresco_cuda::Forest::new(&fresco_trees::lightgbm::parse(&text)?)?;
/// let source = fresco_cuda::kernel_source(&forest);
/// assert!(source.contains("#define N_TREES"));
/// assert!(source.contains("fresco_score("));
/// assert!(source.contains("fresco_score_by_tree("));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn kernel_source(forest: &Forest) -> String {
    let mut s = String::with_capacity(BODY.len() + 1024);
    // Writing to a String cannot fail.
    let _ = writeln!(s, "// fresco tree-ensemble kernel: {} trees, {} nodes", forest.n_trees(), forest.n_nodes());
    let defines: [(&str, String); 15] = [
        ("N_FEATURES", format!("{}ull", forest.n_features())),
        ("N_GROUPS", forest.n_groups().to_string()),
        ("N_TREES", format!("{}u", forest.n_trees())),
        ("F32_ARITHMETIC", u8::from(forest.precision() == Precision::F32).to_string()),
        ("FEATURE_MASK", format!("{}u", (1u32 << FEATURE_BITS) - 1)),
        ("LEAF", format!("{LEAF}u")),
        ("CATEGORICAL", format!("{CATEGORICAL}u")),
        ("LESS", format!("{LESS}u")),
        ("MISSING_SHIFT", format!("{MISSING_SHIFT}u")),
        ("DEFAULT_LEFT", format!("{DEFAULT_LEFT}u")),
        ("XGBOOST_CATEGORIES", format!("{XGBOOST_CATEGORIES}u")),
        // `{:e}` prints the shortest text that reads back as the same double.
        ("ZERO_THRESHOLD", format!("{:e}", eval::ZERO_THRESHOLD)),
        ("XGB_MAX_CATEGORY", format!("{:e}", eval::XGB_MAX_CATEGORY)),
        ("BY_TREE_MAX_TREES", format!("{BY_TREE_MAX_TREES}u")),
        ("STAGED_ROWS", format!("{}ull", by_row_threads(forest.n_features()))),
    ];
    for (name, value) in defines {
        let _ = writeln!(s, "#define {name} {value}");
    }
    s.push_str(BODY);
    s
}
