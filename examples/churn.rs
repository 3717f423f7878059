//! The churn feedback loop, shown with numbers: `fresco_examples::churn`.
//!
//! `cargo run -p fresco-examples --example churn [-- OUT_DIR]`
//!
//! 50,000 users, six monthly cycles: each month every user is scored through the
//! `Client` (10 % held out), the top 10 % of eligible users get a discount (logged as a
//! treatment), outcomes are logged, next month's training set is built from the logs
//! under each policy and the model retrained (LightGBM, through `python3`:
//! `pip install lightgbm pyarrow pandas`) and compiled by fresco. Prints, per cycle and
//! policy, the AUC against untreated outcomes (and its share of an oracle's trained on
//! untreated outcomes), the calibration error against the true untreated
//! probabilities, and the churn the discount prevented.
//!
//! Everything lives under OUT_DIR (default: `fresco-churn` in the system's temporary
//! directory, emptied at the start).

use fresco_examples::churn::{LoopConfig, Retraining, run};

const SEED: u64 = 2026;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            let dir = std::env::temp_dir().join("fresco-churn");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            dir
        }
    };
    let config = LoopConfig::new(SEED, &out);
    println!(
        "churn feedback loop: {} users, {} monthly cycles, {:.0} % holdout, the top {:.0} % of eligible users get a \
         discount that prevents {:.0} % of their churn",
        config.users,
        config.cycles,
        config.holdout * 100.0,
        config.treated_share * 100.0,
        (1.0 - fresco_examples::churn::DISCOUNT_EFFECT) * 100.0
    );
    println!("cycle  retraining     AUC    vs oracle  calibration error  treated  churn prevented  training rows");
    let reports = run(&config, |r| {
        println!(
            "{:>5}  {:<13} {:.3}  {:>9.3}  {:>17.4}  {:>7}  {:>15}  {:>13}",
            r.cycle,
            r.retraining.name(),
            r.auc,
            r.auc_vs_oracle,
            r.calibration_error,
            r.treated,
            r.churn_prevented,
            r.training_rows
        );
    })?;
    println!("lowest share of the oracle's AUC over the cycles, and churn prevented in all:");
    for retraining in Retraining::LOGGED {
        let mine: Vec<_> = reports.iter().filter(|r| r.retraining == retraining).collect();
        let worst = mine.iter().map(|r| r.auc_vs_oracle).fold(f64::INFINITY, f64::min);
        let prevented: usize = mine.iter().map(|r| r.churn_prevented).sum();
        println!("  {:<13} {worst:.3}  {prevented:>6}", retraining.name());
    }
    println!("logs, training sets and models: {}", out.display());
    Ok(())
}
