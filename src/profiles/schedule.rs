//! A time-of-day schedule (basal, carb ratio, sensitivity, targets) and its lookup in the
//! profile's time zone.
//!
//! Entries are read as Nightscout's lib/profilefunctions.js reads them: the position is taken
//! from `time` ("HH:MM") when it parses, else from `timeAsSeconds`; the value in force is that
//! of the last entry at or before the time of day. Two deliberate differences: the time of day
//! is the wall clock in the profile's zone (Nightscout counts the seconds elapsed since local
//! midnight, an hour off after a DST change on the two change days; pumps follow the wall
//! clock), and before a schedule's first entry the last entry of the day before applies (where
//! Nightscout returns no number).

use serde_json::{json, Value};

pub const DAY_SECS: i64 = 86_400;

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Seconds after local midnight, 0 to 86,399.
    pub seconds: i64,
    pub value: f64,
}

/// Entries sorted by their time of day; never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    entries: Vec<Entry>,
}

pub(crate) use crate::spans::durations::number;

/// "HH:MM" (or "HH:MM:SS", seconds ignored as Nightscout does) as seconds after midnight.
fn time_of_day(s: &str) -> Option<i64> {
    let mut parts = s.trim().split(':');
    let h: i64 = parts.next()?.trim().parse().ok()?;
    let m: i64 = parts.next()?.trim().parse().ok()?;
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 3600 + m * 60)
}

impl Schedule {
    /// A schedule from a profile field: an array of `{time, timeAsSeconds, value}` or a single
    /// number. Entries without a usable time or value are skipped; None if nothing is left.
    pub fn from_json(v: &Value) -> Option<Schedule> {
        let mut entries: Vec<Entry> = match v {
            Value::Array(items) => items
                .iter()
                .filter_map(|item| {
                    let seconds = item
                        .get("time")
                        .and_then(Value::as_str)
                        .and_then(time_of_day)
                        .or_else(|| {
                            item.get("timeAsSeconds")
                                .and_then(number)
                                .map(|s| s.trunc() as i64)
                                .filter(|s| (0..DAY_SECS).contains(s))
                        })?;
                    let value = item.get("value").and_then(number)?;
                    Some(Entry { seconds, value })
                })
                .collect(),
            other => vec![Entry {
                seconds: 0,
                value: number(other)?,
            }],
        };
        // Stable: of two entries at the same time the later one in the array wins, as in
        // Nightscout's loop over the array.
        entries.sort_by_key(|e| e.seconds);
        (!entries.is_empty()).then_some(Schedule { entries })
    }

    /// The value at `seconds` after local midnight.
    pub fn value_at(&self, seconds: i64) -> f64 {
        let s = seconds.rem_euclid(DAY_SECS);
        self.entries
            .iter()
            .rev()
            .find(|e| e.seconds <= s)
            .or(self.entries.last())
            .map_or(0.0, |e| e.value)
    }

    /// Every value multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Schedule {
        Schedule {
            entries: self
                .entries
                .iter()
                .map(|e| Entry {
                    seconds: e.seconds,
                    value: e.value * factor,
                })
                .collect(),
        }
    }

    /// The schedule moved `shift` seconds later in the day: the value this schedule has at
    /// time s applies at s + shift (AndroidAPS's timeshift, see [`super::switch`]).
    pub fn shifted(&self, shift: i64) -> Schedule {
        let shift = shift.rem_euclid(DAY_SECS);
        if shift == 0 {
            return self.clone();
        }
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .map(|e| Entry {
                seconds: (e.seconds + shift).rem_euclid(DAY_SECS),
                value: e.value,
            })
            .collect();
        entries.sort_by_key(|e| e.seconds);
        if entries.first().is_some_and(|e| e.seconds != 0) {
            entries.insert(
                0,
                Entry {
                    seconds: 0,
                    value: self.value_at(-shift),
                },
            );
        }
        Schedule { entries }
    }

    /// As profiles carry it: `[{time, timeAsSeconds, value}]`, values rounded (see [`round`]).
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.entries
                .iter()
                .map(|e| {
                    json!({
                        "time": format!("{:02}:{:02}", e.seconds / 3600, e.seconds % 3600 / 60),
                        "timeAsSeconds": e.seconds,
                        "value": number_json(e.value),
                    })
                })
                .collect(),
        )
    }
}

/// Values leave the server with at most 4 decimals: 10 g/U at 150 % is 6.6667, not
/// 6.666666666666667, and 0.8 U/h at 150 % is 1.2, not 1.2000000000000002.
pub fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// A value for a response: [`round`]ed, whole numbers as integers (150, not 150.0), as
/// `JSON.stringify` writes them.
pub fn number_json(v: f64) -> Value {
    crate::jsnum::num(round(v))
}

/// The time zone a profile's schedules are read in.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The IANA name used ("UTC" when the profile names none or one this server does not know).
    pub name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    /// The named zone, or UTC (a Nightscout server runs in UTC, so a profile without a zone is
    /// read in UTC there too).
    pub fn resolve(name: Option<&str>) -> Zone {
        name.map(str::trim)
            .filter(|n| !n.is_empty())
            .and_then(|n| {
                jiff::tz::TimeZone::get(n).ok().map(|tz| Zone {
                    name: n.to_string(),
                    tz,
                })
            })
            .unwrap_or_else(|| Zone {
                name: "UTC".into(),
                tz: jiff::tz::TimeZone::UTC,
            })
    }

    /// moment.tz(ms, zone).startOf('day'): epoch ms of the local midnight that begins the day
    /// of `ms` (the treatment-math plugins count Nightscout's way, from there).
    pub fn start_of_day_ms(&self, ms: i64) -> i64 {
        jiff::Timestamp::from_millisecond(ms)
            .and_then(|ts| ts.to_zoned(self.tz.clone()).start_of_day())
            .map_or(ms.div_euclid(86_400_000) * 86_400_000, |z| {
                z.timestamp().as_millisecond()
            })
    }

    /// Wall-clock seconds after local midnight at epoch ms `ms`.
    pub fn seconds_of_day(&self, ms: i64) -> i64 {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
            return 0;
        };
        let dt = ts.to_zoned(self.tz.clone()).datetime();
        i64::from(dt.hour()) * 3600 + i64::from(dt.minute()) * 60 + i64::from(dt.second())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn basal() -> Schedule {
        Schedule::from_json(&json!([
            {"time": "00:00", "timeAsSeconds": 0, "value": 0.8},
            {"time": "06:00", "timeAsSeconds": 21600, "value": 1.2},
            {"time": "22:00", "timeAsSeconds": 79200, "value": "0.6"}
        ]))
        .unwrap()
    }

    #[test]
    fn start_of_day_follows_the_zone_on_a_dst_day() {
        let z = Zone::resolve(Some("Europe/Berlin"));
        // 2024-03-31, clocks go forward at 02:00 local (01:00Z). At 04:30 local (02:30Z) the
        // local midnight was 2024-03-30T23:00Z: 3.5 hours earlier, not 4.5.
        let t = 1_711_852_200_000; // 2024-03-31T02:30:00Z
        assert_eq!(z.start_of_day_ms(t), 1_711_839_600_000);
        assert_eq!(Zone::resolve(None).start_of_day_ms(t), 1_711_843_200_000);
        assert_eq!(Zone::resolve(Some("Not/AZone")).name, "UTC");
    }

    #[test]
    fn lookup_takes_the_last_entry_at_or_before() {
        let s = basal();
        assert_eq!(s.value_at(0), 0.8);
        assert_eq!(s.value_at(21_599), 0.8);
        assert_eq!(s.value_at(21_600), 1.2);
        assert_eq!(s.value_at(80_000), 0.6);
    }

    #[test]
    fn time_wins_over_time_as_seconds_and_wraps_before_the_first_entry() {
        // Nightscout recomputes timeAsSeconds from time; the wrong 0 here must not count.
        let s = Schedule::from_json(&json!([
            {"time": "08:00", "timeAsSeconds": 0, "value": 5},
            {"timeAsSeconds": 72000, "value": 7}
        ]))
        .unwrap();
        assert_eq!(
            s.value_at(3600),
            7.0,
            "before 08:00 the evening value goes on"
        );
        assert_eq!(s.value_at(9 * 3600), 5.0);
        assert_eq!(Schedule::from_json(&json!(1.5)).unwrap().value_at(5), 1.5);
        assert!(Schedule::from_json(&json!([{"time": "xx"}])).is_none());
    }

    #[test]
    fn shifted_moves_values_later() {
        // +2 h: the 06:00 rate starts at 08:00, the 22:00 rate at 00:00.
        let s = basal().shifted(2 * 3600);
        assert_eq!(s.value_at(7 * 3600), 0.8);
        assert_eq!(s.value_at(8 * 3600), 1.2);
        assert_eq!(s.value_at(0), 0.6);
        assert_eq!(s.value_at(3600), 0.6);
        assert_eq!(s.value_at(2 * 3600), 0.8);
        // -1 h: the 06:00 rate from 05:00; the 00:00 rate from 23:00, so 00:00 has it too.
        let s = basal().shifted(-3600);
        assert_eq!(s.value_at(5 * 3600), 1.2);
        assert_eq!(s.value_at(0), 0.8);
        assert_eq!(s.value_at(21 * 3600 + 1800), 0.6);
        assert_eq!(s.value_at(23 * 3600), 0.8);
        assert_eq!(s.entries[0].seconds, 0);
    }

    #[test]
    fn zones_follow_dst() {
        let z = Zone::resolve(Some("Europe/Berlin"));
        // 2024-03-31 is the spring-forward day: 01:30Z is 03:30 CEST, 00:30Z is 01:30 CET.
        assert_eq!(z.seconds_of_day(1_711_848_600_000), 3 * 3600 + 1800);
        assert_eq!(z.seconds_of_day(1_711_845_000_000), 3600 + 1800);
        // Winter: UTC+1.
        assert_eq!(z.seconds_of_day(1_704_067_200_000), 3600);
        let utc = Zone::resolve(Some("Not/AZone"));
        assert_eq!(utc.name, "UTC");
        assert_eq!(utc.seconds_of_day(1_704_067_200_000), 0);
    }
}
