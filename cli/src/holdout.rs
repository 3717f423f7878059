//! `fresco holdout`: explain holdout assignments.

use std::io::Write;

use fresco::holdout::Holdout;

use crate::CliError;

pub fn run(salt: &str, fraction: f64, ids: &[String]) -> Result<(), CliError> {
    let holdout = Holdout::new("--fraction", salt, fraction)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |source| CliError::Io { path: "<stdout>".into(), source };
    writeln!(out, "# salt {salt:?}, fraction {fraction}: held out when bucket < {}", holdout.threshold())
        .map_err(io)?;
    writeln!(out, "id\tbucket\tin_holdout").map_err(io)?;
    for id in ids {
        let a = holdout.assign(id);
        writeln!(out, "{id}\t{}\t{}", a.bucket, a.in_holdout).map_err(io)?;
    }
    Ok(())
}
