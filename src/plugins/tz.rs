//! UTC offsets of an IANA time zone, read from the system's compiled tz database
//! (/usr/share/zoneinfo, TZif), for the profile's time-of-day schedules.
//!
//! Only the transition table is read, not the POSIX rule in the file's footer: the "fat"
//! files Debian and most distributions ship list transitions up to 2037, after which the last
//! offset holds.

use std::path::PathBuf;

/// A zone's transitions: (from this UTC second, offset in seconds), in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    transitions: Vec<(i64, i32)>,
    /// The offset before the first transition.
    initial: i32,
}

const ZONEINFO: &str = "/usr/share/zoneinfo";

/// A zone name is a path below the database: letters, digits, `_+-/`, no `..`.
fn path_of(name: &str) -> Option<PathBuf> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-/".contains(&b));
    ok.then(|| PathBuf::from(ZONEINFO).join(name))
}

fn be32(b: &[u8], at: usize) -> Option<i64> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(i64::from(i32::from_be_bytes(s)))
}

fn be64(b: &[u8], at: usize) -> Option<i64> {
    let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(i64::from_be_bytes(s))
}

fn count(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(be32(b, at)?).ok()
}

impl Zone {
    /// The zone of that name, or `None` when the system does not know it.
    pub fn load(name: &str) -> Option<Zone> {
        let bytes = std::fs::read(path_of(name)?).ok()?;
        Zone::parse(&bytes)
    }

    /// Parses TZif data (version 2 and later: the 64-bit block after the 32-bit one).
    pub fn parse(b: &[u8]) -> Option<Zone> {
        if b.get(0..4)? != b"TZif" {
            return None;
        }
        let header = |at: usize| -> Option<[usize; 6]> {
            Some([
                count(b, at + 20)?,
                count(b, at + 24)?,
                count(b, at + 28)?,
                count(b, at + 32)?,
                count(b, at + 36)?,
                count(b, at + 40)?,
            ])
        };
        let [isut, isstd, leap, time, types, chars] = header(0)?;
        let (start, width) = if *b.get(4)? >= b'2' {
            let v1 = time * 5 + types * 6 + chars + leap * 8 + isstd + isut;
            (44 + v1, 8)
        } else {
            (0, 4)
        };
        let [_, _, _, time, types, _] = header(start)?;
        let base = start + 44;
        let at = |i: usize| {
            if width == 8 {
                be64(b, base + i * 8)
            } else {
                be32(b, base + i * 4)
            }
        };
        let idx_base = base + time * width;
        let type_base = idx_base + time;
        let offset_of = |t: usize| be32(b, type_base + t * 6).map(|o| o as i32);
        let is_dst = |t: usize| b.get(type_base + t * 6 + 4).is_some_and(|d| *d != 0);
        let mut transitions = Vec::with_capacity(time);
        for i in 0..time {
            let t = usize::from(*b.get(idx_base + i)?);
            if t >= types {
                return None;
            }
            transitions.push((at(i)?, offset_of(t)?));
        }
        let first_std = (0..types).find(|t| !is_dst(*t)).unwrap_or(0);
        Some(Zone {
            transitions,
            initial: offset_of(first_std)?,
        })
    }

    /// The offset from UTC, in milliseconds, at `ms` since the epoch.
    pub fn offset_ms(&self, ms: i64) -> i64 {
        let s = ms.div_euclid(1000);
        let i = self.transitions.partition_point(|(t, _)| *t <= s);
        let off = if i == 0 {
            self.initial
        } else {
            self.transitions[i - 1].1
        };
        i64::from(off) * 1000
    }
}

/// moment.tz(ms, zone).startOf('day'): the instant of the local midnight that begins the day
/// of `ms` (UTC without a zone).
pub fn start_of_day(zone: Option<&Zone>, ms: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    let off = zone.map_or(0, |z| z.offset_ms(ms));
    let wall_midnight = (ms + off).div_euclid(DAY) * DAY;
    // The offset at midnight can differ from the one at `ms` on the day of a change.
    let at_midnight = zone.map_or(0, |z| z.offset_ms(wall_midnight - off));
    wall_midnight - at_midnight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_offsets_and_dst_midnight() {
        let Some(z) = Zone::load("Europe/Berlin") else {
            // No tz database on this machine: nothing to check.
            return;
        };
        // 2024-01-15T12:00Z: CET, +1 h; 2024-07-15T12:00Z: CEST, +2 h.
        assert_eq!(z.offset_ms(1_705_320_000_000), 3_600_000);
        assert_eq!(z.offset_ms(1_721_044_800_000), 7_200_000);
        // 2024-03-31, the day clocks go forward at 02:00 local (01:00Z). At 04:30 local
        // (02:30Z) the local midnight was 2024-03-30T23:00Z: 3.5 hours earlier, not 4.5.
        let t = 1_711_852_200_000; // 2024-03-31T02:30:00Z
        assert_eq!(start_of_day(Some(&z), t), 1_711_839_600_000);
        assert!(Zone::load("../etc/passwd").is_none());
        assert!(Zone::load("Not/AZone").is_none());
        assert_eq!(start_of_day(None, t), 1_711_843_200_000);
    }
}
