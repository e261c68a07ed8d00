//! cage, sage, iage, bage (lib/plugins/cannulaage.js, sensorage.js, insulinage.js,
//! batteryage.js): how long ago the cannula, sensor, insulin and pump battery were changed,
//! from the Care Portal treatments.

use serde_json::{json, Value};

use super::shared::{obj, set_if, Doc, DAY, HOUR, INFO, MIN, NONE, URGENT, WARN};

/// Age of an event as moment's diff truncates it: (days, hours past the days, hours, minutes
/// past the hours).
fn age_parts(now: i64, at: i64) -> (i64, i64, i64, i64) {
    let ms = now - at;
    let days = ms / DAY;
    let age = ms / HOUR;
    (days, age - days * 24, age, ms / MIN - age * 60)
}

fn days_hours(age: i64, days: i64, hours: i64) -> String {
    let mut s = String::new();
    if age >= 24 {
        s.push_str(&format!("{days}d"));
    }
    s.push_str(&format!("{hours}h"));
    s
}

/// The newest treatment, not in the future, whose eventType `matches`.
fn latest_event(
    now: i64,
    treatments: &[(Doc, i64)],
    matches: impl Fn(&str) -> bool,
) -> Option<&(Doc, i64)> {
    treatments
        .iter()
        .filter(|(t, m)| {
            *m <= now
                && t.get("eventType")
                    .and_then(Value::as_str)
                    .is_some_and(&matches)
        })
        .max_by_key(|(_, m)| *m)
}

/// The found event's fields (`found`, `treatmentDate`, `age`, `days`, `hours`, `notes`,
/// `minFractions`); returns (age in hours, days, hours past the days).
fn insert_found(out: &mut Doc, now: i64, event: &Doc, at: i64) -> (i64, i64, i64) {
    let (days, hours, age, min_fractions) = age_parts(now, at);
    out.insert("found".into(), true.into());
    out.insert("treatmentDate".into(), at.into());
    out.insert("age".into(), age.into());
    out.insert("days".into(), days.into());
    out.insert("hours".into(), hours.into());
    set_if(out, "notes", event.get("notes"));
    out.insert("minFractions".into(), min_fractions.into());
    (age, days, hours)
}

fn level_for(age: Option<i64>, info: i64, warn: i64, urgent: i64) -> i64 {
    match age {
        Some(a) if a >= urgent => URGENT,
        Some(a) if a >= warn => WARN,
        Some(a) if a >= info => INFO,
        _ => NONE,
    }
}

/// cage and bage share a shape: `{found, age, treatmentDate, checkForAlert, days, hours, notes,
/// minFractions, level, display}`.
fn change_age(
    now: i64,
    treatments: &[(Doc, i64)],
    event: &str,
    thresholds: (i64, i64, i64),
    in_days: bool,
) -> Doc {
    let mut out =
        obj(json!({ "found": false, "age": 0, "treatmentDate": null, "checkForAlert": false }));
    let found = latest_event(now, treatments, |e| e.contains(event));
    let mut age = None;
    if let Some((t, m)) = found {
        age = Some(insert_found(&mut out, now, t, *m));
    }
    let (info, warn, urgent) = thresholds;
    out.insert(
        "level".into(),
        level_for(Some(age.map_or(0, |a| a.0)), info, warn, urgent).into(),
    );
    let display = match age {
        Some((a, d, h)) if in_days => days_hours(a, d, h),
        Some((a, _, _)) => format!("{a}h"),
        None => "n/a ".to_string(),
    };
    out.insert("display".into(), display.into());
    out
}

/// Cannula age: hours since the last Site Change (info 44 h, warn 48 h, urgent 72 h).
pub fn cage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    change_age(now, treatments, "Site Change", (44, 48, 72), false)
}

/// Pump battery age: since the last Pump Battery Change (info 13 d, warn 14 d, urgent 15 d).
pub fn bage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    change_age(
        now,
        treatments,
        "Pump Battery Change",
        (312, 336, 360),
        true,
    )
}

/// Insulin age: since the last Insulin Change (info 44 h, warn 48 h, urgent 72 h).
pub fn iage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    let mut out = obj(json!({ "found": false, "age": 0, "treatmentDate": null }));
    let mut age = 0;
    if let Some((t, m)) = latest_event(now, treatments, |e| e.contains("Insulin Change")) {
        let (a, days, hours) = insert_found(&mut out, now, t, *m);
        age = a;
        out.insert("display".into(), days_hours(a, days, hours).into());
    }
    out.insert("level".into(), level_for(Some(age), 44, 48, 72).into());
    out
}

/// Sensor age: the last Sensor Start and Sensor Change, `min` naming the one that counts
/// (info 6 d, warn 7 d − 4 h, urgent 7 d − 2 h).
pub fn sage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    // (event type, its JSON, (time, age in hours) when found)
    type Event<'a> = (&'a str, Doc, Option<(i64, i64)>);
    let mut events: Vec<Event> = vec![];
    for event in ["Sensor Start", "Sensor Change"] {
        let mut v = obj(json!({ "found": false }));
        let mut found = None;
        if let Some((t, m)) = latest_event(now, treatments, |e| e == event) {
            let (a, days, hours) = insert_found(&mut v, now, t, *m);
            v.insert("display".into(), days_hours(a, days, hours).into());
            let mut long = String::new();
            if a >= 24 {
                long.push_str(&format!("{days} days "));
            }
            long.push_str(&format!("{hours} hours"));
            v.insert("displayLong".into(), long.into());
            found = Some((*m, a));
        }
        events.push((event, v, found));
    }
    // A sensor change at or after the last start supersedes it.
    let start_at = events[0].2.map(|f| f.0);
    let change_at = events[1].2.map(|f| f.0);
    if let (Some(s), Some(c)) = (start_at, change_at) {
        if c >= s {
            events[0].1.insert("found".into(), false.into());
        }
    }
    let start_found = events[0].1.get("found") == Some(&Value::Bool(true));
    let min = match (start_found.then_some(start_at).flatten(), change_at) {
        (Some(s), Some(c)) if s > c => 0,
        (_, Some(_)) => 1,
        _ => 0,
    };
    let age = events[min].2.map(|f| f.1);
    let level = level_for(age, 144, 164, 166);
    events[min].1.insert("level".into(), level.into());
    let mut out = Doc::new();
    let min_name = events[min].0;
    for (name, v, _) in events {
        out.insert(name.into(), Value::Object(v));
    }
    out.insert("min".into(), min_name.into());
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::shared::oldest_first;
    use crate::plugins::testing::{docs, iso, NOW};

    #[test]
    fn ages() {
        let t = oldest_first(&docs(json!([
            { "eventType": "Pump Battery Change", "created_at": iso(NOW - 361 * HOUR) },
            { "eventType": "Sensor Start", "created_at": iso(NOW - 240 * HOUR) },
            { "eventType": "Sensor Change", "created_at": iso(NOW - 76 * HOUR) },
            { "eventType": "Insulin Change", "created_at": iso(NOW - 73 * HOUR) },
            { "eventType": "Site Change", "created_at": iso(NOW - 53 * HOUR - 10 * MIN), "notes": "left" },
            // In the future: ignored.
            { "eventType": "Site Change", "created_at": iso(NOW + HOUR) }
        ])));
        // 53 h 10 min: 2 days 5 hours; cage shows hours; 48 <= 53 < 72 is a warning.
        assert_eq!(
            Value::Object(cage(NOW, &t)),
            json!({ "found": true, "age": 53, "treatmentDate": NOW - 53 * HOUR - 10 * MIN, "checkForAlert": false,
                    "days": 2, "hours": 5, "notes": "left", "minFractions": 10, "level": 1, "display": "53h" })
        );
        // 361 h = 15 days 1 hour, past the 360 h urgent mark.
        let b = bage(NOW, &t);
        assert_eq!(
            (b["display"].clone(), b["level"].clone()),
            (json!("15d1h"), json!(2))
        );
        // 73 h = 3 d 1 h, past 72 h: urgent (Nightscout's insulinage never gets there).
        let i = iage(NOW, &t);
        assert_eq!(
            (i["display"].clone(), i["level"].clone()),
            (json!("3d1h"), json!(2))
        );
        // The sensor change (76 h = 3 d 4 h) supersedes the older start.
        let s = sage(NOW, &t);
        assert_eq!(s["min"], "Sensor Change");
        assert_eq!(s["Sensor Start"]["found"], false);
        assert_eq!(s["Sensor Start"]["age"], 240);
        let c = &s["Sensor Change"];
        assert_eq!(
            (c["display"].clone(), c["displayLong"].clone()),
            (json!("3d4h"), json!("3 days 4 hours"))
        );
        assert_eq!(c["level"], -3);

        // A start alone, 165 h (6 d 21 h) ago: 164 <= 165 < 166 is a warning.
        let t = oldest_first(&docs(
            json!([{ "eventType": "Sensor Start", "created_at": iso(NOW - 165 * HOUR) }]),
        ));
        let s = sage(NOW, &t);
        assert_eq!(s["min"], "Sensor Start");
        assert_eq!(s["Sensor Start"]["display"], "6d21h");
        assert_eq!(s["Sensor Start"]["level"], 1);
        // 20 h: no days part.
        let t = oldest_first(&docs(
            json!([{ "eventType": "Insulin Change", "created_at": iso(NOW - 20 * HOUR) }]),
        ));
        assert_eq!(iage(NOW, &t)["display"], "20h");

        // Nothing found.
        assert_eq!(
            Value::Object(cage(NOW, &[])),
            json!({ "found": false, "age": 0, "treatmentDate": null, "checkForAlert": false, "level": -3, "display": "n/a " })
        );
        assert_eq!(
            Value::Object(iage(NOW, &[])),
            json!({ "found": false, "age": 0, "treatmentDate": null, "level": -3 })
        );
        assert_eq!(
            Value::Object(sage(NOW, &[])),
            json!({ "Sensor Start": { "found": false, "level": -3 }, "Sensor Change": { "found": false }, "min": "Sensor Start" })
        );
    }
}
