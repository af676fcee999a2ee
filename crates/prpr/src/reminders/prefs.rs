//! A person's own settings, made with `/prpr` and kept in the store
//! (`user_prefs`), keyed by Slack user ID: quiet hours and a personal
//! reminder time. The config's `[[reminders.personal]]` is the default a
//! setting here replaces.
//!
//! Stored as JSON text so a later setting is a new field, not a migration.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::config::{LocalTime, Zone};

/// Quiet hours: DMs to the person are held from `from` to `to` (local time
/// in `tz`; `19:00-09:00` spans midnight) and delivered as one summary when
/// they end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    pub from: String,
    pub to: String,
    pub tz: String,
}

/// `/prpr remind`: off, or these times in `tz` (every day of the working
/// week, as the config's default days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RemindPref {
    Off { off: bool },
    At { times: Vec<String>, tz: String },
}

/// One person's stored settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPrefs {
    pub quiet: Option<Quiet>,
    pub remind: Option<RemindPref>,
}

/// `date` at `time` in `zone` as an instant. A time that does not exist that
/// day (the hour skipped when clocks go forward) is taken just after the
/// jump; a time that happens twice (clocks go back) is its first occurrence.
/// jiff's "compatible" disambiguation, the one RFC 5545 (iCalendar) uses: so
/// every (date, time) is one instant, neither skipped nor doubled.
pub fn instant(date: Date, time: LocalTime, zone: &Zone) -> Option<i64> {
    date.to_datetime(time.civil())
        .to_zoned(zone.tz.clone())
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

impl Quiet {
    /// Parses `19:00-09:00`; `tz` defaults to UTC.
    pub fn parse(range: &str, tz: Option<&str>) -> Result<Quiet, String> {
        let (from, to) = range
            .split_once('-')
            .ok_or_else(|| format!("{range:?} is not a range like 19:00-09:00"))?;
        let (from, to) = (LocalTime::parse(from)?, LocalTime::parse(to)?);
        if from == to {
            return Err("quiet hours that start when they end are empty".into());
        }
        let tz = Zone::parse(tz.unwrap_or("UTC"))?;
        Ok(Quiet {
            from: from.to_string(),
            to: to.to_string(),
            tz: tz.name,
        })
    }

    /// If quiet hours are on at `now_ms`, when they end (unix ms).
    pub fn active_until(&self, now_ms: i64) -> Option<i64> {
        let from = LocalTime::parse(&self.from).ok()?;
        let to = LocalTime::parse(&self.to).ok()?;
        let zone = Zone::parse(&self.tz).ok()?;
        let now = Timestamp::from_millisecond(now_ms)
            .ok()?
            .to_zoned(zone.tz.clone());
        let today = now.date();
        let t = LocalTime {
            hour: now.hour(),
            minute: now.minute(),
        };
        let end_on = |d: Date| instant(d, to, &zone);
        if from < to {
            (from <= t && t < to).then(|| end_on(today)).flatten()
        } else if t >= from {
            end_on(today.tomorrow().ok()?)
        } else if t < to {
            end_on(today)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or(0)
    }

    #[test]
    fn overnight_quiet_hours_end_the_next_morning() {
        let q = Quiet::parse("19:00-09:00", Some("Asia/Tokyo")).unwrap();
        // 20:00 in Tokyo is 11:00 UTC.
        assert_eq!(
            q.active_until(ms("2026-03-02T11:00:00Z")),
            Some(ms("2026-03-03T00:00:00Z"))
        );
        // 08:00 Tokyo.
        assert_eq!(
            q.active_until(ms("2026-03-02T23:00:00Z")),
            Some(ms("2026-03-03T00:00:00Z"))
        );
        // 12:00 Tokyo: not quiet.
        assert_eq!(q.active_until(ms("2026-03-03T03:00:00Z")), None);
        assert!(Quiet::parse("09:00-09:00", None).is_err());
        assert!(Quiet::parse("9-5", None).is_err());
    }

    #[test]
    fn daytime_quiet_hours() {
        let q = Quiet::parse("12:00-13:00", None).unwrap();
        assert_eq!(
            q.active_until(ms("2026-03-02T12:30:00Z")),
            Some(ms("2026-03-02T13:00:00Z"))
        );
        assert_eq!(q.active_until(ms("2026-03-02T13:00:00Z")), None);
    }

    #[test]
    fn local_times_map_to_one_instant_across_dst() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let t = LocalTime::parse("02:30").unwrap();
        // Spring forward: 02:30 does not exist; just after the jump (03:30 CEST).
        assert_eq!(
            instant(jiff::civil::date(2026, 3, 29), t, &berlin),
            Some(ms("2026-03-29T01:30:00Z"))
        );
        // Fall back: 02:30 happens twice; the first one (CEST).
        assert_eq!(
            instant(jiff::civil::date(2026, 10, 25), t, &berlin),
            Some(ms("2026-10-25T00:30:00Z"))
        );
    }
}
