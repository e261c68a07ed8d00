//! Server-side alarms as Nightscout's simplealarms, timeago and notifications decide them:
//! the newest reading against the BG thresholds (urgent high/high/low/urgent low, each
//! switchable), data older than the warn/urgent minutes, announcements, and snoozing by
//! acknowledgement per level and group. Evaluated on every committed reading and on a timer
//! (so stale data alarms without new data); events go to the live event channel. With
//! ALARM_TYPES naming `predict`, AR2's forecast alarms too (src/plugins/ar2.rs).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::config::{AlarmSettings, Config, SnoozeMins, Units};
use crate::plugins::bwp::Notice;

pub const WARN: u8 = 1;
pub const URGENT: u8 = 2;
const DEFAULT_SILENCE_MS: i64 = 30 * 60 * 1000;
const MIN_MS: i64 = 60 * 1000;
/// The longest snooze of each alarm is the longest the viewer offers for it (ALARM_*_MINS:
/// by default urgent low 45 minutes, low 60, the others 120). Nightscout's server takes any
/// `silenceTime`; here an ack asking for more is held to the cap of the alarm that sounds,
/// checked when it sounds, so an ack given during a high cannot silence a later urgent low
/// for longer than its choices allow (docs/security.md).
fn longest(mins: &[f64]) -> i64 {
    let m = mins.iter().copied().fold(0.0, f64::max);
    (m * MIN_MS as f64) as i64
}
/// Who may receive an alarm: the BG alarms tell the readings; announcements are treatments.
pub const READ_ALARMS: &str = "api:entries:read";
pub const READ_ANNOUNCEMENTS: &str = "api:treatments:read";
/// Who may acknowledge (snooze) alarms, for every client: Nightscout's permission.
pub const ACK: &str = "notifications:*:ack";
/// Readings older than this do not raise BG alarms (simplealarms: 10 minutes).
const BG_ALARM_MAX_AGE_MS: i64 = 10 * 60 * 1000;
/// A site being backfilled (a bridge or uploader catching up: new readings arriving that are
/// older than now) is not stale: no stale-data alarm while such a reading arrived within this
/// time. New readings only: an uploader resending ones already stored does not count.
pub const BACKFILL_QUIET_MS: i64 = 5 * 60 * 1000;

/// What the engine tells clients (WebSocket `alarm`, `urgent_alarm`, `clear_alarm`,
/// `announcement`, `notification`).
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    pub event: &'static str,
    pub payload: Value,
    /// The permission a client needs to receive it ([`READ_ALARMS`], [`READ_ANNOUNCEMENTS`]).
    pub needs: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub mgdl: f64,
    pub mills: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct AlarmState {
    last_ack: i64,
    silence_ms: i64,
    emitted: bool,
}

/// The alarm state of one server.
pub struct Engine {
    settings: AlarmSettings,
    units: Units,
    thresholds: crate::config::Thresholds,
    /// (level, group) → ack state.
    alarms: HashMap<(u8, String), AlarmState>,
    /// ALARM_TYPES: `simple` (the thresholds above), `predict` (AR2's forecast).
    simple: bool,
    predict: bool,
    /// The readings of the last half hour the engine has seen, oldest first, for AR2.
    history: Vec<Reading>,
    /// What the bolus wizard preview asks for now (src/plugins/bwp.rs), set by the alarm
    /// task before each evaluation.
    bwp: Option<Notice>,
    /// When a new reading older than now last arrived (see [`BACKFILL_QUIET_MS`]).
    backfilled_at: Option<i64>,
}

/// The longest an ack silences an alarm of `level` and kind `event_name` (see [`longest`]).
fn snooze_cap(s: &SnoozeMins, level: u8, event_name: &str) -> i64 {
    longest(match (level, event_name) {
        (URGENT, "low") => &s.urgent_low,
        (_, "low") => &s.low,
        (URGENT, "high") => &s.urgent_high,
        (_, "high") => &s.high,
        (URGENT, _) => &s.urgent,
        _ => &s.warn,
    })
}

/// An alarm as (level, title, message, eventName, plugin).
type Alarm = (u8, String, String, &'static str, &'static str);

/// How far back the forecast's readings go (bgnow and its delta need 20 minutes).
const HISTORY_MS: i64 = 30 * 60 * 1000;

fn level_name(level: u8) -> &'static str {
    match level {
        URGENT => "Urgent",
        WARN => "Warning",
        _ => "Info",
    }
}

impl Engine {
    pub fn new(config: &Config) -> Engine {
        Engine {
            settings: config.alarms.clone(),
            units: config.units,
            thresholds: config.thresholds,
            alarms: HashMap::new(),
            simple: config.plugins.simple_alarms,
            predict: config.plugins.predict_alarms,
            history: vec![],
            bwp: None,
            backfilled_at: None,
        }
    }

    /// A new reading dated before `now` arrived: the site is being backfilled.
    pub fn backfilled(&mut self, now: i64) {
        self.backfilled_at = Some(now);
    }

    /// The bolus wizard preview's notice for the next evaluations.
    pub fn set_bwp(&mut self, notice: Option<Notice>) {
        self.bwp = notice;
    }

    /// Keeps the readings evaluated for the forecast; a latest reading older than the kept
    /// ones (a deletion) drops those after it.
    fn remember(&mut self, latest: Option<Reading>) {
        let Some(r) = latest else {
            self.history.clear();
            return;
        };
        self.history
            .retain(|h| h.mills < r.mills && h.mills >= r.mills - HISTORY_MS);
        self.history.push(r);
    }

    /// ar2.checkNotifications (ALARM_TYPES `predict`): the forecast's alarm from the kept
    /// readings, while the newest is at most 10 minutes old.
    fn predicted(&self, now: i64) -> Option<Alarm> {
        use crate::plugins::{bgnow, Doc};
        let last = self.history.last().filter(|_| self.predict)?;
        if now - last.mills > BG_ALARM_MAX_AGE_MS {
            return None;
        }
        let entries: Vec<Doc> = self
            .history
            .iter()
            .rev()
            .filter_map(|r| {
                json!({ "sgv": r.mgdl, "date": r.mills })
                    .as_object()
                    .cloned()
            })
            .collect();
        let mut sgvs = bgnow::sgvs(&entries);
        let bg = bgnow::compute(now, self.units, &mut sgvs);
        let mut p = Doc::new();
        p.insert("bgnow".into(), Value::Object(bg.bgnow));
        if let Some(d) = bg.delta {
            p.insert("delta".into(), Value::Object(d));
        }
        let (points, loss) = crate::plugins::ar2::forecast(&p, now);
        let s = &self.settings;
        let (level, event) =
            crate::plugins::ar2::level(&points, loss, self.units, &self.thresholds, s.high, s.low)?;
        let level = if level >= 2 { URGENT } else { WARN };
        let label = if event.is_empty() {
            "Check BG".to_string()
        } else {
            event.to_uppercase()
        };
        let mut title = format!("{}, {label}", level_name(level));
        let t = &self.thresholds;
        if last.mgdl > t.bg_target_bottom && last.mgdl < t.bg_target_top {
            title.push_str(" predicted");
        }
        let message = format!("BG Now: {} {}", self.scaled(last.mgdl), self.units.as_str());
        Some((level, title, message, event, "ar2"))
    }

    /// sandbox.displayBg: LOW and HIGH for Dexcom's 39 and 401, else scaleEntry's number
    /// (mmol rounded half up to one decimal by units.mgdlToMMOL, then `Number`: 3.0 shows "3"),
    /// written as JavaScript writes numbers.
    fn scaled(&self, mgdl: f64) -> String {
        if mgdl == 39.0 {
            return "LOW".into();
        }
        if mgdl == 401.0 {
            return "HIGH".into();
        }
        let v = match self.units {
            Units::MgDl => mgdl,
            Units::Mmol => {
                crate::jsnum::str_number(&crate::jsnum::mgdl_to_mmol(mgdl)).unwrap_or(f64::NAN)
            }
        };
        crate::jsnum::js_str(v)
    }

    /// The highest alarm the data calls for now; of equal levels the forecast's, as
    /// Nightscout asks ar2 before simplealarms.
    fn highest(&self, latest: Option<Reading>, now: i64) -> Option<Alarm> {
        let s = &self.settings;
        let t = &self.thresholds;
        let mut found: Option<Alarm> = self.predicted(now);
        let fresh = |r: &Reading| r.mgdl > 39.0 && now - r.mills < BG_ALARM_MAX_AGE_MS;
        if let Some(r) = latest.filter(|r| self.simple && fresh(r)) {
            let message = format!("BG Now: {} {}", self.scaled(r.mgdl), self.units.as_str());
            let bg = if s.urgent_high && r.mgdl > t.bg_high {
                Some((URGENT, "HIGH", "high"))
            } else if s.urgent_low && r.mgdl < t.bg_low {
                Some((URGENT, "LOW", "low"))
            } else if s.high && r.mgdl > t.bg_target_top {
                Some((WARN, "HIGH", "high"))
            } else if s.low && r.mgdl < t.bg_target_bottom {
                Some((WARN, "LOW", "low"))
            } else {
                None
            };
            if let Some((level, what, event)) =
                bg.filter(|b| found.as_ref().is_none_or(|f| f.0 < b.0))
            {
                found = Some((
                    level,
                    format!("{} {what}", level_name(level)),
                    message,
                    event,
                    "simplealarms",
                ));
            }
        }
        // boluswizardpreview comes after ar2 and simplealarms in Nightscout's plugin order: it
        // sounds only above what they found.
        if let Some(Notice::Notify {
            level,
            title,
            message,
        }) = &self.bwp
        {
            let level = if *level >= URGENT { URGENT } else { WARN };
            if found.as_ref().is_none_or(|f| f.0 < level) {
                found = Some((level, title.clone(), message.clone(), "", "bwp"));
            }
        }
        let backfilling = self
            .backfilled_at
            .is_some_and(|at| now - at < BACKFILL_QUIET_MS);
        if let Some(r) = latest.filter(|_| !backfilling) {
            let mins = (now - r.mills) as f64 / 60_000.0;
            let stale = if s.timeago_urgent && mins >= s.timeago_urgent_mins {
                Some(URGENT)
            } else if s.timeago_warn && mins >= s.timeago_warn_mins {
                Some(WARN)
            } else {
                None
            };
            if let Some(level) = stale {
                if found.as_ref().is_none_or(|f| f.0 < level) {
                    let message = format!("Last received: {} mins ago", mins.floor());
                    found = Some((
                        level,
                        "Stale data, check rig?".to_string(),
                        message,
                        "stale",
                        "timeago",
                    ));
                }
            }
        }
        found
    }

    /// Evaluates the newest reading; returns what to tell clients.
    pub fn evaluate(&mut self, latest: Option<Reading>, now: i64) -> Vec<Notify> {
        let group = "default".to_string();
        self.remember(latest);
        let Some((level, title, message, event_name, plugin)) = self.highest(latest, now) else {
            return self.auto_ack(&group, now);
        };
        if let Some(Notice::Snooze { length_ms }) = self.bwp {
            return self.snooze(&group, length_ms, now);
        }
        let cap = snooze_cap(&self.settings.snooze, level, event_name);
        let alarm = self.alarms.entry((level, group.clone())).or_default();
        if now <= alarm.last_ack + alarm.silence_ms.min(cap) {
            return vec![];
        }
        alarm.emitted = true;
        let event = if level == URGENT {
            "urgent_alarm"
        } else {
            "alarm"
        };
        vec![Notify {
            event,
            payload: json!({
                "level": level,
                "title": title,
                "message": message,
                "eventName": event_name,
                "group": group,
                "plugin": plugin,
                "timestamp": now,
            }),
            needs: READ_ALARMS,
        }]
    }

    /// Back in range: alarms that were sounding are cleared (and may sound again at once).
    fn auto_ack(&mut self, group: &str, now: i64) -> Vec<Notify> {
        let mut was_on = false;
        for level in [WARN, URGENT] {
            if let Some(a) = self.alarms.get_mut(&(level, group.to_string())) {
                if a.emitted {
                    was_on = true;
                    // Nightscout's autoAck acks for 1 ms; here nothing is silenced at all, so a
                    // reading out of range within that millisecond (a fast uploader, a test on
                    // loopback) still sounds.
                    *a = AlarmState::default();
                }
            }
        }
        if !was_on {
            return vec![];
        }
        vec![clear(group, "Auto ack'd alarm(s)", now)]
    }

    /// bwp's requestSnooze (urgent, so every level): enough insulin on board for the high,
    /// so the alarm is silenced for BWP_SNOOZE_MINS, as Nightscout acks it; one that was
    /// sounding is cleared (Nightscout clears at every evaluation while the snooze holds).
    fn snooze(&mut self, group: &str, length_ms: i64, now: i64) -> Vec<Notify> {
        let mut was_on = false;
        for level in [URGENT, WARN] {
            let a = self.alarms.entry((level, group.to_string())).or_default();
            was_on |= a.emitted;
            if now > a.last_ack + a.silence_ms {
                *a = AlarmState {
                    last_ack: now,
                    silence_ms: length_ms,
                    emitted: false,
                };
            }
        }
        if !was_on {
            return vec![];
        }
        vec![clear(
            group,
            &format!("{group} - {} was ack'd", level_name(URGENT)),
            now,
        )]
    }

    /// The longest of every snooze choice: no ack silences for longer.
    fn longest_snooze(&self) -> i64 {
        let s = &self.settings.snooze;
        [
            &s.urgent_high,
            &s.high,
            &s.low,
            &s.urgent_low,
            &s.urgent,
            &s.warn,
        ]
        .into_iter()
        .map(|l| longest(l))
        .max()
        .unwrap_or(DEFAULT_SILENCE_MS)
    }

    /// A user's acknowledgement: silences `level` (and, for urgent, warn too) of `group`.
    pub fn ack(
        &mut self,
        level: u8,
        group: &str,
        silence_ms: Option<i64>,
        now: i64,
    ) -> Vec<Notify> {
        let silence = silence_ms
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_SILENCE_MS)
            .min(self.longest_snooze());
        let levels: &[u8] = if level >= URGENT {
            &[URGENT, WARN]
        } else {
            &[WARN]
        };
        for l in levels {
            let a = self.alarms.entry((*l, group.to_string())).or_default();
            a.last_ack = now;
            a.silence_ms = silence;
            a.emitted = false;
        }
        vec![clear(
            group,
            &format!("{group} - {} was ack'd", level_name(level)),
            now,
        )]
    }
}

fn clear(group: &str, message: &str, now: i64) -> Notify {
    Notify {
        event: "clear_alarm",
        payload: json!({
            "clear": true,
            "title": "All Clear",
            "message": message,
            "group": group,
            "timestamp": now,
        }),
        needs: READ_ALARMS,
    }
}

/// An Announcement treatment as Nightscout broadcasts it.
pub fn announcement(doc: &serde_json::Map<String, Value>, now: i64) -> Notify {
    let by = doc.get("enteredBy").and_then(Value::as_str).unwrap_or("");
    let notes = doc.get("notes").and_then(Value::as_str).unwrap_or("");
    Notify {
        event: "announcement",
        payload: json!({
            "level": 0,
            "title": if by.is_empty() { "Announcement".to_string() } else { format!("Announcement from {by}") },
            "message": notes,
            "group": "announcement",
            "plugin": "treatmentnotify",
            "isAnnouncement": true,
            "timestamp": now,
        }),
        needs: READ_ANNOUNCEMENTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    fn engine(vars: &[(&str, &str)]) -> Engine {
        let m: Map<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Engine::new(&Config::from_map(&m).unwrap())
    }

    const NOW: i64 = 1_700_000_000_000;

    fn at(mgdl: f64, ago_ms: i64) -> Option<Reading> {
        Some(Reading {
            mgdl,
            mills: NOW - ago_ms,
        })
    }

    #[test]
    fn thresholds_pick_the_level() {
        let mut e = engine(&[]);
        assert_eq!(e.evaluate(at(300.0, 0), NOW)[0].event, "urgent_alarm");
        assert_eq!(e.evaluate(at(200.0, 0), NOW)[0].event, "alarm");
        assert_eq!(
            e.evaluate(at(70.0, 0), NOW)[0].payload["title"],
            "Warning LOW"
        );
        assert_eq!(
            e.evaluate(at(50.0, 0), NOW)[0].payload["title"],
            "Urgent LOW"
        );
        let cleared = e.evaluate(at(120.0, 0), NOW);
        assert_eq!(cleared[0].event, "clear_alarm");
        assert!(e.evaluate(at(120.0, 0), NOW).is_empty(), "cleared once");
    }

    #[test]
    fn snoozes_are_capped_per_alarm() {
        // A reading taken at `t`, evaluated at `t`.
        let sounds = |e: &mut Engine, mgdl: f64, t: i64| {
            e.evaluate(Some(Reading { mgdl, mills: t }), t)
                .first()
                .map(|n| n.payload["title"].clone())
        };
        let ten_years = 10 * 365 * 24 * 60 * MIN_MS;
        let mut e = engine(&[]);
        e.ack(URGENT, "default", Some(ten_years), NOW);
        assert_eq!(sounds(&mut e, 50.0, NOW + 44 * MIN_MS), None);
        assert_eq!(
            sounds(&mut e, 50.0, NOW + 46 * MIN_MS),
            Some(json!("Urgent LOW")),
            "urgent low sounds again after its 45 minute cap"
        );
        let mut e = engine(&[]);
        e.ack(URGENT, "default", Some(ten_years), NOW);
        assert_eq!(sounds(&mut e, 300.0, NOW + 119 * MIN_MS), None);
        assert_eq!(
            sounds(&mut e, 300.0, NOW + 121 * MIN_MS),
            Some(json!("Urgent HIGH"))
        );
        let mut e = engine(&[]);
        e.ack(WARN, "default", Some(ten_years), NOW);
        assert_eq!(sounds(&mut e, 70.0, NOW + 59 * MIN_MS), None);
        assert_eq!(
            sounds(&mut e, 70.0, NOW + 61 * MIN_MS),
            Some(json!("Warning LOW"))
        );
        // ALARM_URGENT_LOW_MINS sets the choices, and so the cap.
        let mut e = engine(&[("ALARM_URGENT_LOW_MINS", "10 20")]);
        e.ack(URGENT, "default", Some(ten_years), NOW);
        assert_eq!(sounds(&mut e, 50.0, NOW + 19 * MIN_MS), None);
        assert_eq!(
            sounds(&mut e, 50.0, NOW + 21 * MIN_MS),
            Some(json!("Urgent LOW")),
            "urgent low sounds again after its 20 minute cap"
        );
    }

    #[test]
    fn predict_alarms_follow_alarm_types() {
        // ALARM_TYPES=predict: no threshold alarms, AR2's instead. 85 then 70 five minutes
        // later forecasts 61, 56, 52, 51, 50, 49: loss 0.152 > 0.10, urgent; 51 in 20
        // minutes is below the 80 target bottom: "low".
        let mut e = engine(&[("ALARM_TYPES", "predict")]);
        assert!(e
            .evaluate(at(85.0, 5 * 60_000 + 30_000), NOW - 5 * 60_000)
            .is_empty());
        let n = e.evaluate(at(70.0, 30_000), NOW);
        assert_eq!(n[0].event, "urgent_alarm");
        assert_eq!(n[0].payload["title"], "Urgent, LOW");
        assert_eq!(n[0].payload["eventName"], "low");
        assert_eq!(n[0].payload["plugin"], "ar2");
        // In range and rising: 150 then 175 → 195, 211, 222, 230...: loss 0.0859, a warning,
        // "high", and " predicted" as 175 is inside the target range.
        let mut e = engine(&[("ALARM_TYPES", "predict")]);
        e.evaluate(at(150.0, 5 * 60_000 + 30_000), NOW - 5 * 60_000);
        let n = e.evaluate(at(175.0, 30_000), NOW);
        assert_eq!(n[0].payload["title"], "Warning, HIGH predicted");
        // The same readings with the default ALARM_TYPES (simple): no alarm at 175.
        let mut e = engine(&[]);
        e.evaluate(at(150.0, 5 * 60_000 + 30_000), NOW - 5 * 60_000);
        assert!(e.evaluate(at(175.0, 30_000), NOW).is_empty());
        // Both: the forecast's urgent low outranks the simple warning low of the same 70.
        let mut e = engine(&[("ALARM_TYPES", "simple,predict")]);
        e.evaluate(at(85.0, 5 * 60_000 + 30_000), NOW - 5 * 60_000);
        assert_eq!(
            e.evaluate(at(70.0, 30_000), NOW)[0].payload["plugin"],
            "ar2"
        );
    }

    #[test]
    fn switches_turn_alarms_off() {
        let mut e = engine(&[("ALARM_URGENT_HIGH", "off"), ("ALARM_HIGH", "off")]);
        assert!(e.evaluate(at(300.0, 0), NOW).is_empty());
    }

    #[test]
    fn ack_silences_until_the_time_is_up() {
        let mut e = engine(&[]);
        assert_eq!(e.evaluate(at(300.0, 0), NOW).len(), 1);
        assert_eq!(
            e.ack(URGENT, "default", Some(60_000), NOW)[0].event,
            "clear_alarm"
        );
        assert!(e.evaluate(at(300.0, 0), NOW + 30_000).is_empty(), "snoozed");
        assert!(
            e.evaluate(at(200.0, 0), NOW + 30_000).is_empty(),
            "urgent ack silences warn"
        );
        assert_eq!(
            e.evaluate(at(300.0, 0), NOW + 61_000).len(),
            1,
            "sounds again"
        );
    }

    #[test]
    fn stale_data() {
        let mut e = engine(&[]);
        assert_eq!(e.evaluate(at(120.0, 16 * 60_000), NOW)[0].event, "alarm");
        assert_eq!(
            e.evaluate(at(120.0, 31 * 60_000), NOW)[0].event,
            "urgent_alarm"
        );
        let old_high = e.evaluate(at(300.0, 20 * 60_000), NOW);
        assert_eq!(
            old_high[0].payload["eventName"], "stale",
            "old readings raise no BG alarm"
        );
        assert!(
            engine(&[]).evaluate(None, NOW).is_empty(),
            "no data, no alarm"
        );
    }

    #[test]
    fn no_stale_alarm_while_backfilling() {
        let mut e = engine(&[]);
        e.backfilled(NOW - 60_000);
        assert!(
            e.evaluate(at(120.0, 40 * 60_000), NOW).is_empty(),
            "old readings arriving: no stale alarm"
        );
        assert_eq!(
            e.evaluate(at(300.0, 60_000), NOW)[0].payload["eventName"],
            "high",
            "a current reading still alarms"
        );
        assert_eq!(
            e.evaluate(at(120.0, 40 * 60_000), NOW + BACKFILL_QUIET_MS)[0].payload["eventName"],
            "stale",
            "once readings stop arriving, stale again"
        );
    }

    #[test]
    fn mmol_message() {
        let mut e = engine(&[("DISPLAY_UNITS", "mmol")]);
        assert_eq!(
            e.evaluate(at(300.0, 0), NOW)[0].payload["message"],
            "BG Now: 16.7 mmol"
        );
        // units.mgdlToMMOL then Number: 54 mg/dl is 2.997 mmol, "3.0", shown "3"; 50 is
        // 2.7754, "2.8"; 400 is 22.2029, "22.2".
        for (mgdl, shown) in [(54.0, "3"), (50.0, "2.8"), (400.0, "22.2")] {
            let mut e = engine(&[("DISPLAY_UNITS", "mmol")]);
            assert_eq!(
                e.evaluate(at(mgdl, 0), NOW)[0].payload["message"],
                format!("BG Now: {shown} mmol"),
                "{mgdl}"
            );
        }
        // mg/dl as stored, and Dexcom's 401 as Nightscout names it.
        let mut e = engine(&[]);
        let message =
            |e: &mut Engine, mgdl| e.evaluate(at(mgdl, 0), NOW)[0].payload["message"].clone();
        assert_eq!(message(&mut e, 401.0), "BG Now: HIGH mg/dl");
    }
}
