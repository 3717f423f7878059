//! `fresco flags`: which version each id gets from a flag, and why.

use std::io::Write;
use std::path::Path;

use fresco::rollout::FlagSource;
use fresco_unleash::UnleashFlags;

use crate::CliError;

pub fn run(snapshot: &Path, flag: &str, ids: &[String]) -> Result<(), CliError> {
    let flags = UnleashFlags::from_snapshot_file(snapshot)?;
    let known = flags.flag_names();
    if !known.iter().any(|name| name == flag) {
        return Err(CliError::UnknownFlag {
            flag: flag.to_owned(),
            snapshot: snapshot.display().to_string(),
            known: if known.is_empty() { "none".into() } else { known.join(", ") },
        });
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |source| CliError::Io { path: "<stdout>".into(), source };
    let versions = flags.versions(flag);
    writeln!(out, "# flag {flag:?} in {}: variants name versions {versions:?}", snapshot.display()).map_err(io)?;
    writeln!(out, "id\tenabled\tvariant\tpayload").map_err(io)?;
    for id in ids {
        let d = flags.decide(flag, id);
        let variant = d.variant.as_deref().unwrap_or("-");
        writeln!(out, "{id}\t{}\t{variant}\t{}", d.enabled, d.payload.as_deref().unwrap_or("-")).map_err(io)?;
    }
    Ok(())
}
