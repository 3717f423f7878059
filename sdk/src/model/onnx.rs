//! ONNX models through tract.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_abi::ModelMetadata;
use fresco_runtime::Limits;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimpleState, eval as eval_node};
use tract_onnx::tract_hir::infer::Factoid;

/// An ONNX model (an MLP from PyTorch or scikit-learn, say) scored on the CPU by tract.
///
/// ONNX carries no fresco metadata, so the caller declares it: input names in the order
/// of the model's single `[batch, n_inputs]` input tensor, and output names for the
/// columns of the chosen output tensor (`[batch, n_outputs]` or `[batch]`). Values are
/// converted to the input tensor's element type (f32 or f64) and back to f64.
///
/// Each call runs under [`Limits`] like a WebAssembly model's: a deadline, checked
/// before every node of the graph, and a cap on the bytes of the tensors alive at once
/// (the input, the intermediate values not yet consumed, the outputs). In a `Client`
/// the engine's limits apply unless [`limits`](OnnxModel::limits) set others.
///
/// ```no_run
/// use fresco::OnnxModel;
/// use fresco::abi::{InputSpec, ModelKind, ModelMetadata};
///
/// let meta = ModelMetadata::new("churn-mlp", "3", ModelKind::Other("onnx".into()))
///     .with_inputs(vec![InputSpec::f64("tenure_days"), InputSpec::f64("orders_30d")])
///     .with_outputs(vec!["p_stay".into(), "p_churn".into()]);
/// let model = OnnxModel::from_file("churn.onnx", meta)?.output("probabilities")?;
/// let p = model.predict(&[120.0, 3.0])?;
/// assert_eq!(p.len(), 2);
/// # Ok::<(), fresco::OnnxError>(())
/// ```
#[derive(Clone)]
pub struct OnnxModel {
    metadata: Arc<ModelMetadata>,
    /// The typed (not yet optimized) graph, kept so another output can be chosen.
    graph: Arc<TypedModel>,
    plan: Arc<TypedSimplePlan>,
    input_type: DatumType,
    output: String,
    /// Set by [`OnnxModel::limits`]; otherwise the engine's (in a `Client`) or the
    /// defaults.
    limits: Option<Limits>,
    /// Per node: how many inputs of other nodes (and graph outputs) read its values.
    uses: Arc<HashMap<usize, usize>>,
}

/// Why an ONNX model could not be loaded or scored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file could not be read or is not a model tract can run.
    #[error("ONNX model `{model}`: cannot load: {reason}")]
    Load {
        /// The declared model name.
        model: String,
        /// What tract said.
        reason: String,
    },
    /// The graph does not fit the declared metadata.
    #[error("ONNX model `{model}`: {reason}")]
    Shape {
        /// The declared model name.
        model: String,
        /// What does not fit.
        reason: String,
    },
    /// A call ran past its deadline and was stopped between two nodes of the graph.
    #[error("ONNX model `{model}`: stopped after {elapsed:?}, past its deadline of {deadline:?}")]
    DeadlineExceeded {
        /// The declared model name.
        model: String,
        /// The limit.
        deadline: Duration,
        /// How long it had run.
        elapsed: Duration,
    },
    /// A call's tensors outgrew the memory limit.
    #[error("ONNX model `{model}`: {bytes} bytes of tensors alive at once, over the limit of {limit} bytes")]
    MemoryLimit {
        /// The declared model name.
        model: String,
        /// Bytes alive when it was stopped.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Scoring failed.
    #[error("ONNX model `{model}`: scoring failed: {reason}")]
    Run {
        /// The declared model name.
        model: String,
        /// What tract said.
        reason: String,
    },
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("name", &self.metadata.name)
            .field("version", &self.metadata.version)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Loads an ONNX file; scores its first floating-point output.
    pub fn from_file(path: impl AsRef<Path>, metadata: ModelMetadata) -> Result<Self, OnnxError> {
        let bytes = std::fs::read(path.as_ref()).map_err(|e| OnnxError::Load {
            model: metadata.name.clone(),
            reason: format!("{}: {e}", path.as_ref().display()),
        })?;
        Self::from_bytes(&bytes, metadata)
    }

    /// Loads an ONNX model from memory; scores its first floating-point output.
    pub fn from_bytes(bytes: &[u8], metadata: ModelMetadata) -> Result<Self, OnnxError> {
        let name = metadata.name.clone();
        let load = |e: TractError| OnnxError::Load { model: name.clone(), reason: format!("{e:#}") };
        metadata.validate().map_err(|e| OnnxError::Shape { model: name.clone(), reason: format!("metadata: {e}") })?;
        let mut reader = bytes;
        let model = tract_onnx::onnx().model_for_read(&mut reader).map_err(load)?;
        if model.inputs.len() != 1 {
            return Err(OnnxError::Shape {
                model: name.clone(),
                reason: format!(
                    "the graph has {} inputs; fresco feeds exactly one [batch, features] tensor",
                    model.inputs.len()
                ),
            });
        }
        // Exporters leave the batch dimension unnamed; make it a symbol so one optimized
        // plan serves every batch size, and pin the feature dimension to the metadata.
        let datum_type = model.input_fact(0).map_err(load)?.datum_type.concretize().unwrap_or(DatumType::F32);
        let batch = model.symbols.sym("N");
        let fact = InferenceFact::dt_shape(datum_type, [batch.to_dim(), metadata.inputs.len().to_dim()]);
        let graph = model.with_input_fact(0, fact).and_then(|m| m.into_typed()).map_err(|e| OnnxError::Shape {
            model: name.clone(),
            reason: format!("the graph does not take [batch, {}] inputs: {e:#}", metadata.inputs.len()),
        })?;
        let output = (0..graph.outputs.len())
            .find(|&i| graph.output_fact(i).is_ok_and(|f| f.datum_type.is_float()))
            .map(|i| output_name(&graph, i))
            .ok_or_else(|| OnnxError::Shape {
                model: name.clone(),
                reason: "the graph has no floating-point output".into(),
            })?;
        Self::build(Arc::new(metadata), Arc::new(graph), output)
    }

    /// Scores the named output tensor instead (e.g. `probabilities` of a classifier).
    pub fn output(self, name: &str) -> Result<Self, OnnxError> {
        let limits = self.limits;
        Ok(Self { limits, ..Self::build(self.metadata, self.graph, name.to_owned())? })
    }

    /// Runs every call under these limits (its deadline and memory cap; the stack and
    /// tick settings are WebAssembly's own and do not apply).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use fresco::OnnxModel;
    /// use fresco::runtime::Limits;
    /// # let meta = fresco::abi::ModelMetadata::new("m", "1", fresco::abi::ModelKind::Other("onnx".into()));
    ///
    /// let model = OnnxModel::from_file("churn.onnx", meta)?
    ///     .limits(Limits::default().with_deadline(Duration::from_millis(20)).with_max_memory_bytes(64 << 20));
    /// # Ok::<(), fresco::OnnxError>(())
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Adopts `limits` unless limits were set explicitly (the `Client` passes its
    /// engine's).
    pub(crate) fn with_default_limits(mut self, limits: &Limits) -> Self {
        self.limits.get_or_insert_with(|| limits.clone());
        self
    }

    fn build(metadata: Arc<ModelMetadata>, graph: Arc<TypedModel>, output: String) -> Result<Self, OnnxError> {
        let model = metadata.name.clone();
        let shape_err = |reason: String| OnnxError::Shape { model: model.clone(), reason };
        if graph.inputs.len() != 1 {
            return Err(shape_err(format!(
                "the graph has {} inputs; fresco feeds exactly one [batch, features] tensor",
                graph.inputs.len()
            )));
        }
        let input = graph.input_fact(0).map_err(|e| shape_err(format!("{e:#}")))?;
        let input_type = input.datum_type;
        if input_type != f32::datum_type() && input_type != f64::datum_type() {
            return Err(shape_err(format!("the input tensor is {input_type:?}; expected f32 or f64")));
        }
        let dims: Vec<TDim> = input.shape.iter().cloned().collect();
        let n_inputs = metadata.inputs.len();
        match dims.as_slice() {
            [_, last] if last.to_i64().is_ok_and(|d| d as usize == n_inputs) => {}
            _ => {
                return Err(shape_err(format!(
                    "the input tensor has shape {:?}; the metadata declares {n_inputs} inputs, so [batch, {n_inputs}] is expected",
                    dims
                )));
            }
        }
        let ix = (0..graph.outputs.len())
            .find(|&i| output_name(&graph, i) == output)
            .ok_or_else(|| shape_err(format!("the graph has no output `{output}`")))?;
        let fact = graph.output_fact(ix).map_err(|e| shape_err(format!("{e:#}")))?;
        if !fact.datum_type.is_float() {
            return Err(shape_err(format!("output `{output}` is {:?}, not floating point", fact.datum_type)));
        }
        let n_outputs = metadata.outputs.len();
        let columns_ok = match fact.shape.iter().collect::<Vec<_>>().as_slice() {
            [_] => n_outputs == 1,
            [_, cols] => cols.to_i64().map_or(true, |c| c as usize == n_outputs),
            _ => false,
        };
        if !columns_ok {
            return Err(shape_err(format!(
                "output `{output}` has shape {:?}; the metadata declares {n_outputs} outputs",
                fact.shape
            )));
        }
        let mut selected = (*graph).clone();
        let outlet = selected.outputs[ix];
        selected.select_output_outlets(&[outlet]).map_err(|e| shape_err(format!("{e:#}")))?;
        let plan = selected
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| OnnxError::Load { model: model.clone(), reason: format!("{e:#}") })?;
        let optimized = plan.model();
        let mut uses: HashMap<usize, usize> = HashMap::new();
        for node in optimized.nodes() {
            for input in &node.inputs {
                *uses.entry(input.node).or_default() += 1;
            }
        }
        for outlet in optimized.output_outlets().map_err(|e| shape_err(format!("{e:#}")))? {
            // Graph outputs stay alive to the end.
            *uses.entry(outlet.node).or_default() += 1;
        }
        Ok(OnnxModel { metadata, graph, plan, input_type, output, limits: None, uses: Arc::new(uses) })
    }

    /// The declared metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// Scores `rows.len() / n_inputs` rows (row-major, NaN = missing) into a new vector of
    /// `n_rows * n_outputs` values.
    pub fn predict(&self, rows: &[f64]) -> Result<Vec<f64>, OnnxError> {
        let n_rows = rows.len() / self.metadata.inputs.len().max(1);
        let mut out = vec![0.0; n_rows * self.metadata.outputs.len()];
        self.predict_into(rows, &mut out)?;
        Ok(out)
    }

    /// Scores into `out`, which must hold `n_rows * n_outputs` values.
    pub fn predict_into(&self, rows: &[f64], out: &mut [f64]) -> Result<(), OnnxError> {
        let model = &self.metadata.name;
        let run_err = |reason: String| OnnxError::Run { model: model.clone(), reason };
        let n_in = self.metadata.inputs.len();
        let n_out = self.metadata.outputs.len();
        if n_in == 0 || !rows.len().is_multiple_of(n_in) {
            return Err(run_err(format!("{} input values are not whole rows of {n_in}", rows.len())));
        }
        let n_rows = rows.len() / n_in;
        if out.len() != n_rows * n_out {
            return Err(run_err(format!(
                "output buffer holds {} values; {n_rows} rows need {}",
                out.len(),
                n_rows * n_out
            )));
        }
        if n_rows == 0 {
            return Ok(());
        }
        let tensor = if self.input_type == f64::datum_type() {
            Tensor::from_shape(&[n_rows, n_in], rows)
        } else {
            let narrowed: Vec<f32> = rows.iter().map(|&x| x as f32).collect();
            Tensor::from_shape(&[n_rows, n_in], &narrowed)
        }
        .map_err(|e| run_err(format!("{e:#}")))?;
        let result = self.run_limited(tensor)?;
        let tensor = result.first().ok_or_else(|| run_err("the graph produced no output".into()))?;
        let values = tensor.cast_to::<f64>().map_err(|e| run_err(format!("{e:#}")))?;
        let view = values.to_plain_array_view::<f64>().map_err(|e| run_err(format!("{e:#}")))?;
        if view.len() != out.len() {
            return Err(run_err(format!(
                "output `{}` has {} values for {n_rows} rows; expected {n_out} per row",
                self.output,
                view.len()
            )));
        }
        for (o, v) in out.iter_mut().zip(view.iter()) {
            *o = *v;
        }
        Ok(())
    }
}

/// Why a limited run stopped early.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Deadline(Duration),
    Memory(usize),
}

impl OnnxModel {
    /// Runs the plan node by node, checking the deadline before each node and the bytes
    /// of the tensors still alive after it.
    fn run_limited(&self, input: Tensor) -> Result<TVec<TValue>, OnnxError> {
        let model = &self.metadata.name;
        let limits = self.limits.clone().unwrap_or_default();
        let started = Instant::now();
        let stop: Cell<Option<Stop>> = Cell::new(None);
        let mut live = input.len().saturating_mul(input.datum_type().size_of());
        let mut sizes: HashMap<usize, usize> = HashMap::new();
        let mut remaining: HashMap<usize, usize> = HashMap::with_capacity(self.uses.len());
        let mut state = SimpleState::new(&self.plan)
            .map_err(|e| OnnxError::Run { model: model.clone(), reason: format!("{e:#}") })?;
        let result = state.run_plan_with_eval(tvec![input.into()], |ctx, op_state, node, inputs| {
            let elapsed = started.elapsed();
            if elapsed >= limits.deadline {
                stop.set(Some(Stop::Deadline(elapsed)));
                return Err(TractError::msg("deadline"));
            }
            let outputs = eval_node(ctx, op_state, node, inputs)?;
            let bytes = outputs
                .iter()
                .fold(0usize, |sum, t| sum.saturating_add(t.len().saturating_mul(t.datum_type().size_of())));
            live = live.saturating_add(bytes);
            sizes.insert(node.id, bytes);
            // Values whose last reader this node was are released by the plan.
            for inlet in &node.inputs {
                let left =
                    remaining.entry(inlet.node).or_insert_with(|| self.uses.get(&inlet.node).copied().unwrap_or(1));
                *left = left.saturating_sub(1);
                if *left == 0 {
                    live = live.saturating_sub(sizes.remove(&inlet.node).unwrap_or(0));
                }
            }
            if live > limits.max_memory_bytes {
                stop.set(Some(Stop::Memory(live)));
                return Err(TractError::msg("memory limit"));
            }
            Ok::<_, TractError>(outputs)
        });
        match (result, stop.get()) {
            (Ok(outputs), _) => Ok(outputs),
            (Err(_), Some(Stop::Deadline(elapsed))) => {
                Err(OnnxError::DeadlineExceeded { model: model.clone(), deadline: limits.deadline, elapsed })
            }
            (Err(_), Some(Stop::Memory(bytes))) => {
                Err(OnnxError::MemoryLimit { model: model.clone(), bytes, limit: limits.max_memory_bytes })
            }
            (Err(e), None) => Err(OnnxError::Run { model: model.clone(), reason: format!("{e:#}") }),
        }
    }
}

fn output_name(graph: &TypedModel, ix: usize) -> String {
    let outlet = graph.outputs[ix];
    graph.outlet_label(outlet).map_or_else(|| graph.node(outlet.node).name.clone(), str::to_owned)
}
