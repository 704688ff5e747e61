//! Pulses: recurring survey programs. A pulse asks one template or a
//! rotation of them (wave 1 asks A, wave 2 B, …; only waves that open
//! advance it), of an audience (team subtrees, minus excluded subtrees), on a
//! cadence (cron in a time zone), each wave open for a while, with up to two
//! reminders. Its *k* is copied from the organisation when it is created.
//!
//! Edits change future waves only: a wave keeps what it pinned when it
//! opened, and a change of cadence (or a resume) moves `schedule_from` to
//! now, so no firing before the edit is taken for a missed wave.

pub mod http;
pub mod store;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::cadence::Cadence;
use crate::domain::Invalid;
use store::PulseRow;

/// At most this many waves between two occurrences of the shortest gap are
/// checked for overlap; enough for any real cadence.
const OVERLAP_SAMPLE: usize = 400;
pub const MAX_OPEN_HOURS: u32 = 60 * 24;
pub const MAX_REMINDERS: usize = 2;
pub const MAX_TEMPLATES: usize = 12;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PulseStatus {
    Active,
    Paused,
}

impl PulseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            _ => Err(Invalid::new("must be active or paused")),
        }
    }
}

/// The timing of a pulse, checked as a whole: the window must fit between
/// two waves, reminders inside the window, the end after the start.
#[derive(Debug, Clone)]
pub struct Timing {
    pub cadence: Cadence,
    pub open_hours: u32,
    pub reminder_hours: Vec<u32>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// Which field is wrong, and why.
pub type FieldProblem = (&'static str, String);

impl Timing {
    pub fn check(
        cron: &str,
        zone: &str,
        open_hours: i64,
        reminder_hours: &[i64],
        start_date: Option<NaiveDate>,
        end_date: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let zone = match zone.parse::<Tz>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                problems.push((
                    "time_zone",
                    "is not an IANA time zone name such as Europe/Amsterdam".to_owned(),
                ));
                None
            }
        };
        let cadence = zone.and_then(|zone| match Cadence::parse(cron, zone) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(("cron", e.0));
                None
            }
        });
        let open = match u32::try_from(open_hours) {
            Ok(h) if (1..=MAX_OPEN_HOURS).contains(&h) => Some(h),
            _ => {
                problems.push((
                    "open_hours",
                    format!("must be between 1 and {MAX_OPEN_HOURS} (60 days)"),
                ));
                None
            }
        };
        let mut reminders = Vec::new();
        if reminder_hours.len() > MAX_REMINDERS {
            problems.push(("reminder_hours", "at most two reminders".to_owned()));
        } else {
            for (i, &h) in reminder_hours.iter().enumerate() {
                match (u32::try_from(h), open) {
                    (Ok(h), Some(open)) if h >= 1 && h < open => {
                        if reminders.last().is_some_and(|&prev| prev >= h) {
                            problems.push((
                                "reminder_hours",
                                "must be in increasing order".to_owned(),
                            ));
                        }
                        reminders.push(h);
                    }
                    (_, Some(open)) => problems.push((
                        "reminder_hours",
                        format!(
                            "reminder {} must come between 1 hour after opening and the close ({open} h)",
                            i + 1
                        ),
                    )),
                    (_, None) => {}
                }
            }
        }
        if let (Some(start), Some(end)) = (start_date, end_date)
            && end <= start
        {
            problems.push((
                "end_date",
                "must be after start_date (the end date itself is not included)".to_owned(),
            ));
        }
        if let (Some(cadence), Some(open)) = (&cadence, open)
            && let Some(gap) = cadence.shortest_gap(now, OVERLAP_SAMPLE)
            && gap < Duration::hours(i64::from(open))
        {
            problems.push((
                "open_hours",
                format!(
                    "waves would overlap: the cadence opens one every {} h at the shortest, and each would stay open {open} h",
                    gap.num_hours().max(0)
                ),
            ));
        }
        match (cadence, open, problems.is_empty()) {
            (Some(cadence), Some(open_hours), true) => Ok(Self {
                cadence,
                open_hours,
                reminder_hours: reminders,
                start_date,
                end_date,
            }),
            _ => Err(problems),
        }
    }

    pub fn window(&self) -> Duration {
        Duration::hours(i64::from(self.open_hours))
    }

    /// Firings in `(after, until]` that fall within the start and end dates
    /// (read in the pulse's zone; the end date is not included), oldest first.
    pub fn firings(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let zone = self.cadence.zone();
        let mut after = after;
        if let Some(start) = self.start_date {
            // Just before local midnight starting the start date.
            after = after.max(local_midnight(zone, start) - Duration::microseconds(1));
        }
        let mut until = until;
        if let Some(end) = self.end_date {
            until = until.min(local_midnight(zone, end) - Duration::microseconds(1));
        }
        if until <= after {
            return Vec::new();
        }
        self.cadence.between(after, until, limit)
    }
}

/// The first instant of `date` in `zone` (midnight, or the end of a gap that
/// swallowed it).
pub fn local_midnight(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    super::cadence::first_instant(zone, midnight).unwrap_or_else(|| midnight.and_utc())
}

/// A stored pulse, decoded.
#[derive(Debug, Clone)]
pub struct Pulse {
    pub row: PulseRow,
    pub templates: Vec<String>,
    pub audience: Vec<String>,
    pub excluded_teams: Vec<String>,
    pub timing: Timing,
    pub status: PulseStatus,
}

impl Pulse {
    /// Decodes a row; a row that no longer decodes is corrupt (the API only
    /// stores checked values), which is an error, not a silent skip.
    pub fn from_row(row: PulseRow) -> anyhow::Result<Self> {
        let templates: Vec<String> = serde_json::from_str(&row.templates)?;
        let audience: Vec<String> = serde_json::from_str(&row.audience)?;
        let excluded_teams: Vec<String> = serde_json::from_str(&row.excluded_teams)?;
        let reminder_hours: Vec<u32> = serde_json::from_str(&row.reminder_hours)?;
        let zone: Tz = row
            .time_zone
            .parse()
            .map_err(|_| anyhow::anyhow!("pulse {}: unknown time zone", row.id))?;
        let cadence = Cadence::parse(&row.cron, zone)
            .map_err(|e| anyhow::anyhow!("pulse {}: cron {e}", row.id))?;
        let timing = Timing {
            cadence,
            open_hours: u32::try_from(row.open_hours)?,
            reminder_hours,
            start_date: row.start_date,
            end_date: row.end_date,
        };
        let status = PulseStatus::parse(&row.status).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(!templates.is_empty(), "pulse {} has no templates", row.id);
        Ok(Self {
            row,
            templates,
            audience,
            excluded_teams,
            timing,
            status,
        })
    }

    /// Takes the pulse for the caller's write transaction (see
    /// [`store::lock`]) and reads it as it is now, after any writer it queued
    /// behind: what an opener or an edit must decide on.
    pub fn locked(
        conn: &mut crate::db::DbConnection,
        id: &str,
    ) -> Result<Self, crate::error::ApiError> {
        store::lock(conn, id)?;
        Ok(Self::from_row(store::find(conn, id)?)?)
    }

    /// The template the wave after `opened` waves asks.
    pub fn template_for(&self, opened: u32) -> &str {
        &self.templates[opened as usize % self.templates.len()]
    }
}
