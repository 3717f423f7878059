//! Flag states are checked before the SDK sees them: the evaluation engine assumes a
//! few things that a hand-written snapshot (or a misbehaving server) can break, and
//! breaks them with a panic on the request path (variants whose weights add up to 0
//! are a division by zero) or with a silent answer (a rollout of "fifty" rolls out to
//! nobody). A state that fails a check is refused whole; the last good one serves on.

use unleash_types::client_features::{ClientFeature, ClientFeatures, Strategy};

use crate::flags::FlagError;

/// Strategies whose parameter is a percentage, and that parameter's name.
const PERCENT_PARAMETERS: [(&str, &str); 4] = [
    ("flexibleRollout", "rollout"),
    ("gradualRolloutUserId", "percentage"),
    ("gradualRolloutSessionId", "percentage"),
    ("gradualRolloutRandom", "percentage"),
];

/// Checks every flag of a state; the first flag that cannot be evaluated is named.
pub(crate) fn check_state(state: &ClientFeatures) -> Result<(), FlagError> {
    state.features.iter().try_for_each(check_flag)
}

fn check_flag(flag: &ClientFeature) -> Result<(), FlagError> {
    let invalid = |reason: String| FlagError::InvalidFlag { flag: flag.name.clone(), reason };
    if let Some(variants) = &flag.variants {
        check_weights(variants.iter().map(|v| (v.name.as_str(), v.weight))).map_err(invalid)?;
    }
    for (k, strategy) in flag.strategies.iter().flatten().enumerate() {
        check_strategy(strategy).map_err(|r| invalid(format!("strategy {k} (`{}`): {r}", strategy.name)))?;
    }
    Ok(())
}

fn check_strategy(strategy: &Strategy) -> Result<(), String> {
    if let Some(variants) = &strategy.variants {
        check_weights(variants.iter().map(|v| (v.name.as_str(), v.weight)))?;
    }
    let parameter = PERCENT_PARAMETERS.iter().find(|(name, _)| *name == strategy.name).map(|(_, p)| *p);
    if let (Some(parameter), Some(parameters)) = (parameter, &strategy.parameters)
        && let Some(value) = parameters.get(parameter)
        && !matches!(value.parse::<u8>(), Ok(percent) if percent <= 100)
    {
        return Err(format!("`{parameter}` is {value:?}, not a whole percentage from 0 to 100"));
    }
    Ok(())
}

/// A flag's or a strategy's variants: weights are not negative and, when there are
/// variants, add up to more than 0 (the engine picks a variant by a hash modulo the
/// total) without overflowing. The message names the list, as "variants: ...".
fn check_weights<'a>(variants: impl Iterator<Item = (&'a str, i32)>) -> Result<(), String> {
    let mut total: i32 = 0;
    let mut count = 0usize;
    for (name, weight) in variants {
        count += 1;
        if weight < 0 {
            return Err(format!("variants: variant `{name}` has the negative weight {weight}"));
        }
        total = total.checked_add(weight).ok_or_else(|| "variants: the weights add up past 2^31".to_owned())?;
    }
    if count > 0 && total == 0 {
        return Err(format!("variants: the weights of the {count} variants add up to 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn state(json: serde_json::Value) -> ClientFeatures {
        serde_json::from_value(json).unwrap()
    }

    fn flag(strategies: serde_json::Value, variants: serde_json::Value) -> ClientFeatures {
        state(serde_json::json!({"version": 2, "features": [{
            "name": "eta-model", "enabled": true, "strategies": strategies, "variants": variants
        }]}))
    }

    fn refusal(state: &ClientFeatures) -> String {
        check_state(state).unwrap_err().to_string()
    }

    #[test]
    fn weights_that_add_up_to_zero_are_refused() {
        let zero =
            flag(serde_json::json!([]), serde_json::json!([{"name": "a", "weight": 0}, {"name": "b", "weight": 0}]));
        assert_eq!(
            refusal(&zero),
            "flag `eta-model` cannot be evaluated: variants: the weights of the 2 variants add up to 0"
        );
        let in_strategy = flag(
            serde_json::json!([{"name": "default", "parameters": {}, "variants": [{"name": "a", "weight": 0, "stickiness": "default"}]}]),
            serde_json::json!([]),
        );
        assert!(
            refusal(&in_strategy)
                .contains("strategy 0 (`default`): variants: the weights of the 1 variants add up to 0")
        );
    }

    #[test]
    fn negative_and_overflowing_weights_are_refused() {
        let negative =
            flag(serde_json::json!([]), serde_json::json!([{"name": "a", "weight": -5}, {"name": "b", "weight": 10}]));
        assert!(refusal(&negative).contains("variant `a` has the negative weight -5"));
        let overflow = flag(
            serde_json::json!([]),
            serde_json::json!([{"name": "a", "weight": i32::MAX}, {"name": "b", "weight": 1}]),
        );
        assert!(refusal(&overflow).contains("past 2^31"));
    }

    #[test]
    fn rollouts_must_be_percentages() {
        for bad in ["fifty", "101", "-1", "12.5", "", " 7 "] {
            let s = flag(
                serde_json::json!([{"name": "flexibleRollout", "parameters": {"rollout": bad, "stickiness": "default", "groupId": "g"}}]),
                serde_json::json!([]),
            );
            assert!(refusal(&s).contains("`rollout` is"), "{bad}: {}", refusal(&s));
        }
        for good in ["0", "50", "100"] {
            let s = flag(
                serde_json::json!([{"name": "flexibleRollout", "parameters": {"rollout": good, "stickiness": "default", "groupId": "g"}}]),
                serde_json::json!([{"name": "a", "weight": 1000}]),
            );
            assert!(check_state(&s).is_ok(), "{good}");
        }
    }
}
