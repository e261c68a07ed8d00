//! The settings the treatment-math plugins read: Nightscout's ALARM_TYPES and the extended
//! settings BWP_WARN, BWP_URGENT, BWP_SNOOZE, BWP_SNOOZE_MINS and AR2_CONE_FACTOR.

use std::collections::HashMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// ALARM_TYPES names `simple` (threshold alarms). On unless ALARM_TYPES leaves it out.
    pub simple_alarms: bool,
    /// ALARM_TYPES names `predict` (AR2's forecast alarms).
    pub predict_alarms: bool,
    /// boluswizardpreview.js prepareSettings: `Number(x) || default`.
    pub bwp_snooze: f64,
    pub bwp_warn: f64,
    pub bwp_urgent: f64,
    pub bwp_snooze_ms: i64,
    /// ar2.js getConeFactor: 2 unless a number of at least 0.
    pub cone_factor: f64,
    /// AR2_CONE_FACTOR as set, in the form Nightscout's env.js gives extended settings to
    /// clients (`extendedSettings.ar2.coneFactor` of the status); `None` when not set.
    pub cone_factor_setting: Option<Value>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::from_map(&HashMap::new())
    }
}

/// JavaScript's `Number(s)` for a setting's text; `None` for NaN.
fn number(v: Option<&String>) -> Option<f64> {
    crate::jsnum::str_number(v?)
}

/// env.js findExtendedSettings: a value that is a number (`!isNaN`) becomes one, on/true and
/// off/false become booleans, anything else stays text.
fn extended_value(v: &str) -> Value {
    if let Some(n) = crate::jsnum::str_number(v) {
        return crate::jsnum::num(n);
    }
    match v.to_lowercase().as_str() {
        "on" | "true" => Value::Bool(true),
        "off" | "false" => Value::Bool(false),
        _ => Value::String(v.to_string()),
    }
}

/// `Number(x) || default`.
fn or_default(v: Option<&String>, default: f64) -> f64 {
    number(v).filter(|f| *f != 0.0).unwrap_or(default)
}

impl Settings {
    pub fn from_map(values: &HashMap<String, String>) -> Settings {
        // settings.js keeps only the known types; none known means the default.
        let types: Vec<String> = values
            .get("ALARM_TYPES")
            .map(|v| {
                v.split([' ', ','])
                    .map(|t| t.trim().to_lowercase())
                    .filter(|t| t == "simple" || t == "predict")
                    .collect()
            })
            .unwrap_or_default();
        let (simple, predict) = if types.is_empty() {
            // nightlite's default: the threshold alarms it has always sounded (docs/properties.md).
            (true, false)
        } else {
            (
                types.iter().any(|t| t == "simple"),
                types.iter().any(|t| t == "predict"),
            )
        };
        let snooze_mins = number(values.get("BWP_SNOOZE_MINS")).filter(|m| *m != 0.0);
        let cone = number(values.get("AR2_CONE_FACTOR"))
            .filter(|c| *c >= 0.0)
            .unwrap_or(2.0);
        Settings {
            simple_alarms: simple,
            predict_alarms: predict,
            bwp_snooze: or_default(values.get("BWP_SNOOZE"), 0.10),
            bwp_warn: or_default(values.get("BWP_WARN"), 0.50),
            bwp_urgent: or_default(values.get("BWP_URGENT"), 1.00),
            bwp_snooze_ms: snooze_mins.map_or(10 * 60_000, |m| (m * 60_000.0) as i64),
            cone_factor: cone,
            cone_factor_setting: values.get("AR2_CONE_FACTOR").map(|v| extended_value(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let d = Settings::default();
        assert!(d.simple_alarms && !d.predict_alarms);
        assert_eq!((d.bwp_snooze, d.bwp_warn, d.bwp_urgent), (0.1, 0.5, 1.0));
        assert_eq!((d.bwp_snooze_ms, d.cone_factor), (600_000, 2.0));
        let s = Settings::from_map(&map(&[
            ("ALARM_TYPES", "predict"),
            ("BWP_WARN", "0"),
            ("BWP_URGENT", "2.5"),
            ("BWP_SNOOZE_MINS", "5"),
            ("AR2_CONE_FACTOR", "-1"),
        ]));
        assert!(!s.simple_alarms && s.predict_alarms);
        // `Number("0") || 0.50`: zero falls back to the default, as in Nightscout.
        assert_eq!(
            (s.bwp_warn, s.bwp_urgent, s.bwp_snooze_ms),
            (0.5, 2.5, 300_000)
        );
        assert_eq!(s.cone_factor, 2.0);
        let both = Settings::from_map(&map(&[("ALARM_TYPES", "simple predict")]));
        assert!(both.simple_alarms && both.predict_alarms);
        let unknown = Settings::from_map(&map(&[("ALARM_TYPES", "loud")]));
        assert!(unknown.simple_alarms && !unknown.predict_alarms);
    }

    #[test]
    fn the_cone_factor_is_kept_as_env_js_gives_it_to_clients() {
        assert_eq!(Settings::default().cone_factor_setting, None);
        let shown =
            |v: &str| Settings::from_map(&map(&[("AR2_CONE_FACTOR", v)])).cone_factor_setting;
        assert_eq!(shown("1.5"), Some(serde_json::json!(1.5)));
        assert_eq!(shown("-1"), Some(serde_json::json!(-1)));
        assert_eq!(shown("wide"), Some(serde_json::json!("wide")));
        assert_eq!(shown("off"), Some(serde_json::json!(false)));
    }
}
