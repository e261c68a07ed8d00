//! Dates as clients send them: ISO 8601 in its many forms (date-only, with or without seconds,
//! fractions, `Z` or an offset), epoch milliseconds as numbers. Hand-written because moment.js'
//! leniency is what Nightscout clients rely on and no strict RFC 3339 parser accepts it all.

use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed instant and the UTC offset (minutes) it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    pub ms: i64,
    pub offset_min: i32,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

/// Parses an ISO 8601 date or date-time. A missing offset means UTC (the server's zone in a
/// Nightscout deployment is nearly always UTC; documented in docs/api-v1.md).
pub fn parse_iso(s: &str) -> Option<Instant> {
    let s = s.trim();
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4)?;
    let (month, day) = if c.eat(b'-') {
        let m = c.digits(2)?;
        let d = if c.eat(b'-') { c.digits(2)? } else { 1 };
        (m, d)
    } else if c.done() {
        (1, 1)
    } else {
        // Basic format: 20240131
        (c.digits(2)?, c.digits(2)?)
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hh, mut mm, mut ss, mut frac_ms) = (0, 0, 0, 0);
    let mut offset_min: i64 = 0;
    if matches!(c.peek(), Some(b'T') | Some(b't') | Some(b' ')) {
        c.i += 1;
        hh = c.digits(2)?;
        if c.eat(b':') {
            mm = c.digits(2)?;
            if c.eat(b':') {
                ss = c.digits(2)?;
            }
        } else if let Some(m) = c.digits(2) {
            mm = m;
            if let Some(sec) = c.digits(2) {
                ss = sec;
            }
        }
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            let mut scale = 100;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                frac_ms += i64::from(d - b'0') * scale;
                scale /= 10;
                c.i += 1;
            }
            if c.i == start {
                return None;
            }
        }
        if hh > 24 || mm > 59 || ss > 60 || (hh == 24 && (mm, ss, frac_ms) != (0, 0, 0)) {
            return None;
        }
        ss = ss.min(59);
        offset_min = match c.peek() {
            None => 0,
            Some(b'Z') | Some(b'z') => {
                c.i += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                c.i += 1;
                let oh = c.digits(2)?;
                let om = if c.eat(b':') {
                    c.digits(2)?
                } else {
                    c.digits(2).unwrap_or(0)
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 60 + om;
                if sign == b'-' {
                    -o
                } else {
                    o
                }
            }
            Some(_) => return None,
        };
    }
    if !c.done() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local_ms = ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + frac_ms;
    Some(Instant {
        ms: local_ms - offset_min * 60_000,
        offset_min: i32::try_from(offset_min).ok()?,
    })
}

/// `2024-01-31T10:00:00.000Z`, the form Nightscout stores (`toISOString`).
pub fn to_iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// RFC 7231 HTTP date: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn to_http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) / 1000;
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let mon = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses an HTTP date (RFC 7231 IMF-fixdate) or, leniently, an ISO date.
pub fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let s = s.trim();
    if let Some(i) = parse_iso(s) {
        return Some(i.ms);
    }
    let rest = s.split_once(',').map(|(_, r)| r).unwrap_or(s);
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() < 4 {
        return None;
    }
    let d: i64 = parts[0].parse().ok()?;
    let m = MONTHS
        .iter()
        .position(|n| parts[1].eq_ignore_ascii_case(n))?;
    let y: i64 = parts[2].parse().ok().filter(|y| (0..=9999).contains(y))?;
    let hms: Vec<i64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    // Ranges checked so hostile header values cannot overflow the arithmetic below.
    if hms.len() != 3
        || !(0..24).contains(&hms[0])
        || !(0..60).contains(&hms[1])
        || !(0..61).contains(&hms[2])
    {
        return None;
    }
    let m = i64::try_from(m).ok()? + 1;
    if d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(((days_from_civil(y, m, d) * 24 + hms[0]) * 60 + hms[1]) * 60_000 + hms[2] * 1000)
}

/// Epoch milliseconds from a JSON number (or a string holding one), as `new Date(x)` does.
pub fn ms_from_number(v: &serde_json::Value) -> Option<i64> {
    let f = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !f.is_finite() || f.abs() > 8.64e15 {
        return None;
    }
    // Truncation is intended: Date keeps whole milliseconds.
    #[allow(clippy::cast_possible_truncation)]
    Some(f.trunc() as i64)
}

/// A date from a JSON value: a number is epoch ms, a string is ISO 8601 (or digits = epoch ms).
pub fn parse_value(v: &serde_json::Value) -> Option<Instant> {
    match v {
        serde_json::Value::String(s) => {
            parse_iso(s).or_else(|| ms_from_number(v).map(|ms| Instant { ms, offset_min: 0 }))
        }
        serde_json::Value::Number(_) => ms_from_number(v).map(|ms| Instant { ms, offset_min: 0 }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms() {
        let z = parse_iso("2017-04-09T06:03:50.000Z").unwrap();
        assert_eq!(z.ms, 1491717830000);
        assert_eq!(parse_iso("2017-04-09T06:03:50Z").unwrap().ms, 1491717830000);
        let off = parse_iso("2017-04-09T08:03:50.000+02:00").unwrap();
        assert_eq!((off.ms, off.offset_min), (1491717830000, 120));
        assert_eq!(
            parse_iso("2017-04-09T01:03:50-0500").unwrap().ms,
            1491717830000
        );
        assert_eq!(parse_iso("2017-04-09").unwrap().ms, 1491696000000);
        assert_eq!(parse_iso("2017-04-09 06:03").unwrap().ms, 1491717780000);
        assert_eq!(
            parse_iso("2017-04-09T06:03:50.1234Z").unwrap().ms,
            1491717830123
        );
        assert!(parse_iso("2017-02-30").is_none());
        assert!(parse_iso("yesterday").is_none());
        assert!(parse_iso("2017-04-09T06:03:50Zjunk").is_none());
        assert!(parse_iso("").is_none());
    }

    #[test]
    fn iso_round_trip() {
        for ms in [0, 1491717830123, 951782400000, -86_400_001] {
            assert_eq!(parse_iso(&to_iso(ms)).unwrap().ms, ms, "{}", to_iso(ms));
        }
        assert_eq!(to_iso(1491717830000), "2017-04-09T06:03:50.000Z");
    }

    #[test]
    fn http_dates() {
        assert_eq!(to_http_date(784111777000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777000)
        );
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(
            parse_http_date("Mon, 01 Jan 2024 99999999999999:00:00 GMT"),
            None
        );
        assert_eq!(
            parse_http_date("Mon, 01 Jan 99999999999999999 00:00:00 GMT"),
            None
        );
    }

    #[test]
    fn numbers_as_dates() {
        assert_eq!(
            ms_from_number(&serde_json::json!(1491717830000.7)),
            Some(1491717830000)
        );
        assert_eq!(
            ms_from_number(&serde_json::json!("1491717830000")),
            Some(1491717830000)
        );
        assert_eq!(ms_from_number(&serde_json::json!(f64::MAX)), None);
    }
}
