//! dbsize (lib/plugins/dbsize.js): the database's size against Nightscout's default 496 MiB
//! limit.

use serde_json::json;

use super::shared::{obj, status_class, Doc, INFO, URGENT, WARN};
use crate::jsnum::{js_str, num, to_fixed};

pub fn property(bytes: u64) -> Doc {
    const MAX_MIB: f64 = 496.0;
    let total = bytes as f64 / (1024.0 * 1024.0);
    let percentage = (total * 100.0 / MAX_MIB).floor();
    let warn_size = (0.6 * MAX_MIB).floor();
    let urgent_size = (0.75 * MAX_MIB).floor();
    let level = if total >= urgent_size {
        URGENT
    } else if total >= warn_size {
        WARN
    } else {
        INFO
    };
    let data_size: f64 = to_fixed(total, 2).parse().unwrap_or(0.0);
    obj(json!({
        "display": format!("{}%", js_str(percentage)),
        "status": status_class(Some(level)),
        "totalDataSize": num(total),
        "dataPercentage": num(percentage),
        "notificationLevel": level,
        "details": { "maxSize": num(MAX_MIB), "dataSize": num(data_size) }
    }))
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn database_size() {
        // 300 MiB of 496: floor(60.48) = 60 %; 300 >= floor(0.6 * 496) = 297 is a warning.
        assert_eq!(
            Value::Object(property(300 * 1024 * 1024)),
            json!({ "display": "60%", "status": "warn", "totalDataSize": 300, "dataPercentage": 60,
                    "notificationLevel": 1, "details": { "maxSize": 496, "dataSize": 300 } })
        );
        // 1.5 MiB: 0 %, info.
        let d = property(1_572_864);
        assert_eq!(
            (d["display"].clone(), d["status"].clone()),
            (json!("0%"), json!("current"))
        );
        assert_eq!(d["details"]["dataSize"], 1.5);
    }
}
