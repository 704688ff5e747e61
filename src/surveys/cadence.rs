//! A pulse's cadence: a 5-field cron expression read as wall-clock time in
//! an IANA time zone.
//!
//! croner matches the fields; this module maps matching local times to
//! instants, with the rules a person reading the expression expects at a
//! daylight-saving change:
//! - a local time that does not exist (spring forward, 02:30 in
//!   Europe/Amsterdam on the last Sunday of March) fires at the next valid
//!   instant (03:00 CEST), once, however many matching minutes the gap swallowed;
//! - a local time that exists twice (fall back, 02:30 on the last Sunday of
//!   October) fires once, at its first occurrence (02:30 CEST).
//!
//! Matching runs on a time line without offsets (naive local time, handed to
//! croner as if it were UTC), so croner's own DST handling never applies.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone as _, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::domain::Invalid;

#[derive(Debug, Clone)]
pub struct Cadence {
    cron: Cron,
    zone: Tz,
}

impl Cadence {
    /// A five-field expression (minute hour day-of-month month day-of-week).
    pub fn parse(expression: &str, zone: Tz) -> Result<Self, Invalid> {
        let trimmed = expression.trim();
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(Invalid::new(format!(
                "must have 5 fields (minute hour day-of-month month day-of-week), not {fields}"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|e| Invalid::new(format!("is not a valid cron expression: {e}")))?;
        let cadence = Self { cron, zone };
        // An expression that names a day that never comes (31 February) is useless.
        if cadence
            .next_after(Utc::now())
            .is_none_or(|next| next > Utc::now() + Duration::days(366 * 8))
        {
            return Err(Invalid::new("never fires"));
        }
        Ok(cadence)
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start the local search early enough that an ambiguous hour's first
        // occurrence, or a gap's end, is not missed; then take the first
        // firing that lies after `after`.
        let mut local = after.with_timezone(&self.zone).naive_local() - Duration::hours(3);
        for _ in 0..10_000 {
            let next_local = self.next_local(local)?;
            let instant = first_instant(self.zone, next_local)?;
            if instant > after {
                return Some(instant);
            }
            local = next_local;
        }
        None
    }

    /// Every firing in `(after, until]`, at most `limit`, oldest first.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(next) if next <= until => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }

    /// The next matching wall-clock minute strictly after `local`.
    fn next_local(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = Utc.from_utc_datetime(&local);
        // croner carries the start's fraction of a second into what it
        // finds; a firing is on the whole minute.
        self.cron
            .find_next_occurrence(&as_utc, false)
            .ok()
            .and_then(|t| t.naive_utc().with_nanosecond(0))
    }

    /// The shortest time between two consecutive firings among the next
    /// `count` after `from`: waves of one pulse must not overlap.
    pub fn shortest_gap(&self, from: DateTime<Utc>, count: usize) -> Option<Duration> {
        let firings = self.between(from, DateTime::<Utc>::MAX_UTC, count);
        firings.windows(2).map(|w| w[1] - w[0]).min()
    }
}

/// The instant a wall-clock time means in `zone`: the earlier one when it
/// exists twice, the end of the gap when it does not exist (gaps are whole
/// minutes, at most a few hours long).
pub fn first_instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => {
            let start_of_minute = local.with_second(0)?.with_nanosecond(0)?;
            (1..=24 * 60).find_map(|minutes| {
                zone.from_local_datetime(&(start_of_minute + Duration::minutes(minutes)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amsterdam(expr: &str) -> Cadence {
        Cadence::parse(expr, chrono_tz::Europe::Amsterdam).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_what_is_not_five_fields_or_never_fires() {
        let zone = chrono_tz::Europe::Amsterdam;
        assert!(Cadence::parse("0 9 * * 1", zone).is_ok());
        assert!(Cadence::parse("0 0 9 * * 1", zone).is_err());
        assert!(Cadence::parse("0 9 * *", zone).is_err());
        assert!(Cadence::parse("61 9 * * *", zone).is_err());
        assert!(Cadence::parse("0 9 31 2 *", zone).is_err());
        assert!(Cadence::parse("banana", zone).is_err());
    }

    #[test]
    fn wall_clock_time_follows_the_zone() {
        let c = amsterdam("0 9 * * 1");
        // Monday 9:00 in winter is 08:00 UTC, in summer 07:00 UTC.
        assert_eq!(
            c.next_after(utc("2026-01-01T00:00:00Z")),
            Some(utc("2026-01-05T08:00:00Z"))
        );
        assert_eq!(
            c.next_after(utc("2026-06-01T00:00:00Z")),
            Some(utc("2026-06-01T07:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_fires_at_the_next_valid_instant_once() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let c = amsterdam("30 2 * * *");
        let firings = c.between(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"), 10);
        assert_eq!(
            firings,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST: the gap's end
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        // Every quarter of the missing hour collapses into one firing.
        let c = amsterdam("*/15 2 * * *");
        let firings = c.between(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T03:00:00Z"), 10);
        assert_eq!(firings, vec![utc("2026-03-29T01:00:00Z")]);
    }

    #[test]
    fn fall_back_fires_once_at_the_first_occurrence() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let c = amsterdam("30 2 * * *");
        let firings = c.between(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
        assert_eq!(
            firings,
            vec![
                utc("2026-10-25T00:30:00Z"), // 02:30 CEST, not again at 02:30 CET
                utc("2026-10-26T01:30:00Z"), // 02:30 CET
            ]
        );
        // Asked from inside the repeated hour, the passed first occurrence is not repeated.
        assert_eq!(
            c.next_after(utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn first_and_third_monday_for_a_fortnightly_rhythm() {
        // Five cron fields cannot say "every 14 days"; nth weekdays come close.
        let c = amsterdam("0 9 * * 1#1,1#3");
        let firings = c.between(utc("2027-01-01T00:00:00Z"), utc("2027-02-28T00:00:00Z"), 10);
        assert_eq!(
            firings,
            vec![
                utc("2027-01-04T08:00:00Z"),
                utc("2027-01-18T08:00:00Z"),
                utc("2027-02-01T08:00:00Z"),
                utc("2027-02-15T08:00:00Z"),
            ]
        );
    }

    #[test]
    fn firings_are_on_the_whole_minute_whatever_the_start() {
        let c = amsterdam("0 9 * * 1");
        let after: DateTime<Utc> = "2026-01-01T00:00:00.123456Z".parse().unwrap();
        assert_eq!(c.next_after(after), Some(utc("2026-01-05T08:00:00Z")));
        let after: DateTime<Utc> = "2026-01-05T07:59:59.999999Z".parse().unwrap();
        assert_eq!(c.next_after(after), Some(utc("2026-01-05T08:00:00Z")));
    }

    #[test]
    fn gaps_between_firings() {
        let c = amsterdam("0 9 * * 1");
        assert_eq!(
            c.shortest_gap(utc("2026-01-01T00:00:00Z"), 5),
            Some(Duration::days(7))
        );
        // The week that springs forward is an hour short.
        assert_eq!(
            c.shortest_gap(utc("2026-01-01T00:00:00Z"), 20),
            Some(Duration::hours(7 * 24 - 1))
        );
        let c = amsterdam("0 9,10 * * *");
        assert_eq!(
            c.shortest_gap(utc("2026-01-01T00:00:00Z"), 20),
            Some(Duration::hours(1))
        );
    }
}
