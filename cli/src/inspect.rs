//! `fresco inspect`.

use std::path::Path;

use fresco_abi::{MissingPolicy, ModelMetadata};
use fresco_runtime::{Engine, Model, PrecompiledInfo};

use crate::{CliError, read_file};

pub fn run(path: &Path, json: bool) -> Result<(), CliError> {
    let bytes = read_file(path)?;
    // A precompiled artifact: its header only, nothing of its code is loaded.
    let (meta, sha256, target) = if fresco_runtime::is_precompiled(&bytes) {
        let info = PrecompiledInfo::read(&bytes)?;
        let target = format!("{} ({} bytes of code)", info.target, info.code_bytes);
        (info.metadata, info.module_sha256, Some(target))
    } else {
        let model = Model::from_bytes(&Engine::new()?, &bytes)?;
        (model.metadata().clone(), *model.sha256(), None)
    };
    if json {
        let pretty = serde_json::to_string_pretty(&meta).unwrap_or_else(|_| meta.to_json());
        println!("{pretty}");
    } else {
        if let Some(target) = target {
            println!("precompiled for {target}");
        }
        print!("{}", summary(&meta, &sha256));
    }
    Ok(())
}

fn summary(meta: &ModelMetadata, sha256: &[u8; 32]) -> String {
    let mut out = String::new();
    let kind: String = meta.kind.clone().into();
    out.push_str(&format!("model    {} (version {})\n", meta.name, meta.version));
    out.push_str(&format!("kind     {kind}, ABI v{}\n", meta.abi));
    let source_sha = meta.source.sha256.as_deref().unwrap_or("-");
    out.push_str(&format!("source   {} (sha256 {source_sha})\n", meta.source.format));
    let module_sha: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&format!("module   sha256 {module_sha}\n"));
    out.push_str(&format!("inputs   {}\n", meta.inputs.len()));
    for (i, input) in meta.inputs.iter().enumerate() {
        let missing = match input.missing {
            MissingPolicy::Nan => "missing → NaN".to_owned(),
            MissingPolicy::Default(v) => format!("missing → {v}"),
            MissingPolicy::Error => "required".to_owned(),
        };
        out.push_str(&format!(
            "  {i:>3}  {:<24} {:<12} {missing}\n",
            input.name,
            format!("{:?}", input.ty).to_lowercase()
        ));
    }
    out.push_str(&format!("outputs  {}\n", meta.outputs.join(", ")));
    if let Some(interval) = &meta.interval {
        out.push_str(&format!(
            "interval {:.0}% from [{} - {}, {} + {}]\n",
            interval.coverage * 100.0,
            interval.lower,
            interval.lower_offset,
            interval.upper,
            interval.upper_offset
        ));
        if let Some(segments) = &interval.segments {
            let by: Vec<String> = segments.features.iter().map(|f| format!("{} {:?}", f.input, f.edges)).collect();
            out.push_str(&format!(
                "         offsets for {} segments (at least {} calibration rows each) by {}; others use the above\n",
                segments.cells.len(),
                segments.min_count,
                by.join(", ")
            ));
        }
    }
    if let Some(stats) = &meta.training_stats {
        out.push_str(&format!(
            "training statistics for {} inputs, {} outputs\n",
            stats.inputs.len(),
            stats.outputs.len()
        ));
    }
    out
}
