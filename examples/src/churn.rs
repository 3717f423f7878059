//! The churn feedback loop: what a holdout buys, in numbers.
//!
//! A subscription service scores every user each month for churn and sends a discount
//! to the 10 % most likely to churn among those not held out. The discount works: a
//! treated user churns with 5 % of the probability they would have untreated. A model
//! retrained on every logged outcome (the *naive* loop) then learns that its riskiest
//! users do not churn, ranks them low next month, leaves them untreated, and they
//! churn. The holdout-aware training sets ([`TreatmentPolicy::HoldoutOnly`],
//! [`TreatmentPolicy::Untreated`]) do not fall into it.
//!
//! Each policy runs in a world of its own (same users, same features, same random
//! draws; only the model, and so who is treated, differs), all through the real SDK:
//! predictions through the [`Client`] with a holdout, treatments with
//! [`Client::log_treatments`], outcomes with [`Client::log_outcome`], the durable
//! Parquet log, next month's training set from [`build_training_set`], retraining with
//! LightGBM (`examples/churn/train.py`, through `python3`) and the model compiled by
//! fresco when the next month's `Client` loads it. An *oracle* trains on the outcomes
//! every user would have had untreated (which no real system sees) and sets the bar.
//!
//! Each model is measured on its month against the untreated truth: AUC against the
//! untreated outcomes, calibration error against the true untreated probabilities, and
//! the churn the discount prevented.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fresco::dataset::{DatasetSpec, TreatmentPolicy, build_training_set};
use fresco::holdout::Holdout;
use fresco::{
    Client, LogConfig, MemorySink, ModelConfig, ModelSource, Prediction, PredictionLog, Request, SpoolDurability,
    Timestamp,
};
use fresco_test_models::synthetic::SplitMix64;

use crate::random::{exponential, normal, poisson};

/// The model's inputs, in the order the training script gets them.
pub const FEATURES: [&str; 5] =
    ["tenure_months", "orders_30d", "support_tickets_30d", "days_since_last_order", "price_tier"];

/// A treated user churns with this share of their untreated probability.
pub const DISCOUNT_EFFECT: f64 = 0.05;

/// The first simulated month starts on 2026-01-05 (UTC); months are 30 days.
const START_SECS: i64 = 1_767_571_200;
const MONTH_SECS: i64 = 30 * 86_400;
const HOLDOUT: &str = "churn-holdout";

/// How big a loop to run.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Seed of the users and of every month's draws.
    pub seed: u64,
    /// Users scored each month.
    pub users: usize,
    /// Monthly cycles after the launch month.
    pub cycles: usize,
    /// Share of users in the holdout.
    pub holdout: f64,
    /// Share of all users treated each month (the top scores among eligible users).
    pub treated_share: f64,
    /// Where logs, training sets and models go.
    pub out: PathBuf,
    /// The Python interpreter that runs `examples/churn/train.py`.
    pub python: PathBuf,
}

impl LoopConfig {
    /// The configuration `docs/logging.md` describes: 50,000 users, six cycles, a 10 % holdout, the top
    /// 10 % treated.
    pub fn new(seed: u64, out: impl Into<PathBuf>) -> Self {
        LoopConfig {
            seed,
            users: 50_000,
            cycles: 6,
            holdout: 0.1,
            treated_share: 0.1,
            out: out.into(),
            python: PathBuf::from("python3"),
        }
    }
}

/// How retraining is done each month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retraining {
    /// On every logged outcome, treated or not (the treatment ignored).
    Naive,
    /// On held-out users only.
    HoldoutOnly,
    /// On every user with no treatment logged.
    Untreated,
    /// On every user's untreated outcome: what no real system can see.
    Oracle,
}

impl Retraining {
    /// The policies that run through the logs, in report order.
    pub const LOGGED: [Retraining; 3] = [Retraining::Naive, Retraining::HoldoutOnly, Retraining::Untreated];

    /// The report's name.
    pub fn name(self) -> &'static str {
        match self {
            Retraining::Naive => "naive",
            Retraining::HoldoutOnly => "holdout-only",
            Retraining::Untreated => "untreated",
            Retraining::Oracle => "oracle",
        }
    }

    fn dataset_policy(self) -> TreatmentPolicy {
        match self {
            // Every row; the naive loop just never looks at `treated`.
            Retraining::Naive | Retraining::Oracle => TreatmentPolicy::AllWithTreatment,
            Retraining::HoldoutOnly => TreatmentPolicy::HoldoutOnly,
            Retraining::Untreated => TreatmentPolicy::Untreated,
        }
    }
}

/// One model's month.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    /// 1 for the first month after launch.
    pub cycle: usize,
    /// How the model scoring this month was trained.
    pub retraining: Retraining,
    /// AUC of the scores against the untreated outcomes.
    pub auc: f64,
    /// This AUC over the oracle's in the same month.
    pub auc_vs_oracle: f64,
    /// Mean absolute gap between scores and true untreated probabilities over ten
    /// equal-count bins of the scores.
    pub calibration_error: f64,
    /// Users treated.
    pub treated: usize,
    /// Treated users who would have churned untreated and did not.
    pub churn_prevented: usize,
    /// Rows the month's training set held.
    pub training_rows: u64,
}

/// One user's fixed traits.
#[derive(Debug, Clone)]
struct User {
    id: String,
    order_rate: f64,
    frustration: f64,
    tenure0: f64,
    price_tier: f64,
}

/// One month of every user: features, true untreated churn probability, and the
/// uniform draw that decides churn (shared by the treated and untreated outcomes, so
/// the two are one user's two possible futures).
struct Month {
    features: Vec<[f64; 5]>,
    p: Vec<f64>,
    u: Vec<f64>,
}

impl Month {
    fn churns(&self, i: usize, treated: bool) -> bool {
        self.u[i] < if treated { self.p[i] * DISCOUNT_EFFECT } else { self.p[i] }
    }
}

struct World {
    seed: u64,
    users: Vec<User>,
}

impl World {
    fn new(seed: u64, n: usize) -> Self {
        let mut rng = SplitMix64::new(seed);
        let users = (0..n)
            .map(|i| User {
                id: format!("u-{i:06}"),
                order_rate: (1.0 + 0.6 * normal(&mut rng)).exp(),
                frustration: exponential(&mut rng, 0.6),
                tenure0: rng.below(48) as f64,
                price_tier: rng.below(3) as f64,
            })
            .collect();
        World { seed, users }
    }

    fn month(&self, m: usize) -> Month {
        let mut rng = SplitMix64::new(self.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(m as u64 + 1)));
        let n = self.users.len();
        let (mut features, mut p, mut u) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for user in &self.users {
            let order_rate = user.order_rate * (0.25 * normal(&mut rng)).exp();
            let orders = f64::from(poisson(&mut rng, order_rate));
            let tickets = f64::from(poisson(&mut rng, 0.2 + user.frustration));
            let days = if orders == 0.0 { 30.0 + exponential(&mut rng, 15.0) } else { 30.0 * rng.next_f64() / orders };
            let tenure = user.tenure0 + m as f64;
            let logit = -4.2 + 1.1 * tickets - 0.3 * orders + 0.07 * days - 0.03 * tenure + 0.4 * user.price_tier;
            features.push([tenure, orders, tickets, days, user.price_tier]);
            p.push(1.0 / (1.0 + (-logit).exp()));
            u.push(rng.next_f64());
        }
        Month { features, p, u }
    }
}

/// Runs the loop; `report` sees each model's month as it is measured. Returns every
/// report, the oracle's included.
pub fn run(
    config: &LoopConfig,
    mut report: impl FnMut(&CycleReport),
) -> Result<Vec<CycleReport>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&config.out)?;
    let world = World::new(config.seed, config.users);
    let holdout = Holdout::new(HOLDOUT, format!("churn-{}", config.seed), config.holdout)?;
    let trainer = Trainer::new(config)?;

    // Launch month: nobody treated yet; every model starts from one trained on it.
    let launch = config.out.join("launch.csv");
    write_csv(&launch, &world.month(0))?;
    let first = config.out.join("model-1.txt");
    trainer.train(&[(&launch, &first)])?;

    let mut worlds: Vec<(Retraining, PathBuf, Arc<PredictionLog>)> = Vec::new();
    for retraining in Retraining::LOGGED {
        let dir = config.out.join(retraining.name());
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&first, dir.join("model-1.txt"))?;
        let log = PredictionLog::open(LogConfig::new(dir.join("logs")).durability(SpoolDurability::Buffered))?;
        worlds.push((retraining, dir, Arc::new(log)));
    }
    let oracle_dir = config.out.join(Retraining::Oracle.name());
    std::fs::create_dir_all(&oracle_dir)?;
    std::fs::copy(&first, oracle_dir.join("model-1.txt"))?;

    let mut reports = Vec::new();
    for cycle in 1..=config.cycles {
        let month = world.month(cycle);
        let start = Timestamp::from_secs(START_SECS + cycle as i64 * MONTH_SECS);
        let version = cycle.to_string();
        let next = format!("model-{}.txt", cycle + 1);

        // The oracle: scored without a log, trained on untreated outcomes.
        let oracle = Client::builder()
            .model(ModelConfig::new(ModelSource::trees_file(
                oracle_dir.join(format!("model-{cycle}.txt")),
                "churn",
                &version,
            )?))
            .log_to(MemorySink::new())
            .build()?;
        let oracle_scores: Vec<f64> =
            score(&oracle, &world, &month, start)?.iter().map(|p| p.output_values()[0]).collect();
        let untreated: Vec<bool> = (0..world.users.len()).map(|i| month.churns(i, false)).collect();
        let oracle_auc = auc(&oracle_scores, &untreated);
        let oracle_data = oracle_dir.join(format!("month-{cycle}.csv"));
        write_csv(&oracle_data, &month)?;
        let mut jobs = vec![(oracle_data, oracle_dir.join(&next))];

        let mut cycle_reports = Vec::new();
        for (retraining, dir, log) in &worlds {
            let client = Client::builder()
                .model(
                    ModelConfig::new(ModelSource::trees_file(
                        dir.join(format!("model-{cycle}.txt")),
                        "churn",
                        &version,
                    )?)
                    .holdout(HOLDOUT),
                )
                .holdout(holdout.clone(), "user_id")
                .shared_log(log.clone())
                .build()?;
            let predictions = score(&client, &world, &month, start)?;
            let scores: Vec<f64> = predictions.iter().map(|p| p.output_values()[0]).collect();

            // The discount goes to the top scores among users who may be treated.
            let mut eligible: Vec<usize> = (0..predictions.len()).filter(|&i| predictions[i].may_treat()).collect();
            eligible.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let n_treated = ((config.treated_share * world.users.len() as f64).round() as usize).min(eligible.len());
            let mut treated = vec![false; predictions.len()];
            for &i in &eligible[..n_treated] {
                treated[i] = true;
            }
            let chosen: Vec<&Prediction> = eligible[..n_treated].iter().map(|&i| &predictions[i]).collect();
            client.log_treatments(chosen, "discount", Timestamp::from_micros(start.as_micros() + 3_600_000_000))?;

            let observed_at = Timestamp::from_micros(start.as_micros() + 25 * 86_400_000_000);
            let mut prevented = 0;
            for (i, p) in predictions.iter().enumerate() {
                let churned = month.churns(i, treated[i]);
                prevented += usize::from(treated[i] && untreated[i] && !churned);
                client.log_outcome("churn", p.id(), f64::from(u8::from(churned)), observed_at)?;
            }
            log.flush()?;

            let training = dir.join(format!("train-{cycle}.parquet"));
            let spec = DatasetSpec::new(log.root(), "churn", retraining.dataset_policy())
                .from(start)
                .to(Timestamp::from_micros(start.as_micros() + MONTH_SECS * 1_000_000))
                .label_window(Duration::from_secs(MONTH_SECS as u64));
            let built = build_training_set(&spec, &training, |_| {})?;
            jobs.push((training, dir.join(&next)));

            let auc = auc(&scores, &untreated);
            let cycle_report = CycleReport {
                cycle,
                retraining: *retraining,
                auc,
                auc_vs_oracle: auc / oracle_auc,
                calibration_error: calibration_error(&scores, &month.p),
                treated: n_treated,
                churn_prevented: prevented,
                training_rows: built.rows_written,
            };
            report(&cycle_report);
            cycle_reports.push(cycle_report);
        }
        let oracle_report = CycleReport {
            cycle,
            retraining: Retraining::Oracle,
            auc: oracle_auc,
            auc_vs_oracle: 1.0,
            calibration_error: calibration_error(&oracle_scores, &month.p),
            treated: 0,
            churn_prevented: 0,
            training_rows: world.users.len() as u64,
        };
        report(&oracle_report);
        cycle_reports.push(oracle_report);
        reports.extend(cycle_reports);

        if cycle < config.cycles {
            let jobs: Vec<(&Path, &Path)> = jobs.iter().map(|(d, o)| (d.as_path(), o.as_path())).collect();
            trainer.train(&jobs)?;
        }
    }
    for (_, _, log) in worlds {
        Arc::try_unwrap(log).map_err(|_| "a prediction log is still shared")?.close()?;
    }
    Ok(reports)
}

/// Scores every user for the month, in batches, at the month's start.
fn score(client: &Client, world: &World, month: &Month, at: Timestamp) -> Result<Vec<Prediction>, fresco::Error> {
    let mut predictions = Vec::with_capacity(world.users.len());
    let rows: Vec<usize> = (0..world.users.len()).collect();
    for chunk in rows.chunks(10_000) {
        let requests: Vec<Request> = chunk
            .iter()
            .map(|&i| {
                FEATURES
                    .iter()
                    .zip(month.features[i])
                    .fold(Request::new().entity("user_id", &world.users[i].id).at(at), |r, (name, x)| r.value(*name, x))
            })
            .collect();
        predictions.extend(client.predict_batch("churn", &requests)?);
    }
    Ok(predictions)
}

/// Writes the month's features and untreated outcomes (`label`) as CSV.
fn write_csv(path: &Path, month: &Month) -> std::io::Result<()> {
    let mut text = FEATURES.join(",") + ",label\n";
    for (i, row) in month.features.iter().enumerate() {
        for x in row {
            text += &format!("{x:?},");
        }
        text += if month.churns(i, false) { "1\n" } else { "0\n" };
    }
    std::fs::write(path, text)
}

/// Runs `examples/churn/train.py`.
struct Trainer {
    python: PathBuf,
    script: PathBuf,
}

impl Trainer {
    fn new(config: &LoopConfig) -> Result<Self, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("churn/train.py");
        if !script.is_file() {
            return Err(format!("{} is missing", script.display()));
        }
        Ok(Trainer { python: config.python.clone(), script })
    }

    fn train(&self, jobs: &[(&Path, &Path)]) -> Result<(), String> {
        let mut command = Command::new(&self.python);
        command.arg(&self.script).arg("--features").arg(FEATURES.join(","));
        for (data, out) in jobs {
            command.arg("--job").arg(data).arg(out);
        }
        let output = command.output().map_err(|e| {
            format!(
                "retraining runs LightGBM through `{}` ({e}); install Python 3 with `pip install lightgbm pyarrow pandas`",
                self.python.display()
            )
        })?;
        if !output.status.success() {
            return Err(format!(
                "{} failed: {}",
                self.script.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// Area under the ROC curve of `scores` for the positives in `labels` (ties count half).
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0, 0usize);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            if labels[k] {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j + 1;
    }
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    (rank_sum - (positives * (positives + 1)) as f64 / 2.0) / (positives as f64 * negatives as f64)
}

/// Mean over ten equal-count bins of the scores of |mean score − mean true probability|,
/// weighted by the bins' sizes.
pub fn calibration_error(scores: &[f64], truth: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n = order.len();
    let mut error = 0.0;
    for b in 0..10 {
        let bin = &order[b * n / 10..(b + 1) * n / 10];
        if bin.is_empty() {
            continue;
        }
        let mean = |v: &[f64]| bin.iter().map(|&i| v[i]).sum::<f64>() / bin.len() as f64;
        error += bin.len() as f64 / n as f64 * (mean(scores) - mean(truth)).abs();
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_known_rankings() {
        assert_eq!(auc(&[0.1, 0.2, 0.3, 0.4], &[false, false, true, true]), 1.0);
        assert_eq!(auc(&[0.4, 0.3, 0.2, 0.1], &[false, false, true, true]), 0.0);
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]), 0.5);
        // One positive above two of three negatives.
        assert!((auc(&[0.1, 0.2, 0.3, 0.25], &[false, false, false, true]) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn calibration_error_is_zero_for_the_truth() {
        let truth: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        assert_eq!(calibration_error(&truth, &truth), 0.0);
        let shifted: Vec<f64> = truth.iter().map(|p| p + 0.05).collect();
        assert!((calibration_error(&shifted, &truth) - 0.05).abs() < 1e-9);
    }

    #[test]
    fn the_world_is_deterministic_and_churn_is_concentrated() {
        let world = World::new(3, 20_000);
        let (a, b) = (world.month(2), World::new(3, 20_000).month(2));
        assert_eq!(a.u, b.u);
        assert_eq!(a.features, b.features);
        let base = a.p.iter().sum::<f64>() / a.p.len() as f64;
        let mut sorted = a.p.clone();
        sorted.sort_by(f64::total_cmp);
        let top = sorted[sorted.len() * 9 / 10..].iter().sum::<f64>() / (sorted.len() / 10) as f64;
        assert!((0.05..0.15).contains(&base), "base churn {base}");
        assert!(top > 4.0 * base, "the top decile churns at {top}, the base at {base}");
    }
}
