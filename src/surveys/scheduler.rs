//! The steps the clock drives, in the order one pass runs them: close waves
//! whose time has come, open waves whose firing has come (catching up after
//! downtime), queue due reminders.
//!
//! Every step is idempotent and safe on any number of replicas: opening is
//! unique per (pulse, firing), closing and reminding are conditional updates
//! that only one writer wins. So a pass may run twice, concurrently, or after
//! a crash half-way, and each wave still opens once, closes once, and each
//! reminder is queued once.
//!
//! Catch-up after downtime: of the firings missed since the pulse last
//! fired, only the most recent one opens, and only if its window has not
//! ended; it closes at its original time. The older ones are recorded as
//! skipped (so the history shows them), and never open later.

use chrono::{DateTime, Utc};

use super::pulses::{self, Pulse, PulseStatus};
use super::waves::{self, Closing, Opening, Trigger};
use crate::clock::to_stored;
use crate::crypto::ServerKeys;
use crate::db::{self, DbConnection};
use crate::error::ApiError;

/// At most this many missed firings of one pulse are handled per pass; the
/// next pass continues (a pulse fires at most hourly, so this is weeks).
const CATCH_UP_LIMIT: usize = 1_000;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub opened: usize,
    pub skipped: usize,
    pub closed: usize,
    pub reminders_queued: usize,
}

impl Pass {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One pass over every organisation. A failure in one pulse or wave is
/// logged and the rest still runs; the next pass retries it.
pub fn run_due(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    now: DateTime<Utc>,
) -> Result<Pass, ApiError> {
    let mut pass = Pass::default();
    db::checkpoint_if_owed(conn);

    for wave_id in waves::store::due_to_close(conn, to_stored(now))? {
        match waves::close_and_checkpoint(conn, keys, &wave_id, Closing::Due, now) {
            Ok(true) => pass.closed += 1,
            Ok(false) => {}
            Err(error) => tracing::warn!(wave = %wave_id, %error, "closing a wave failed"),
        }
    }

    for pulse_id in pulses::store::active_ids(conn)? {
        match db::write(conn, |conn| open_due(conn, &pulse_id, now)) {
            Ok((opened, skipped)) => {
                pass.opened += opened;
                pass.skipped += skipped;
            }
            // Openers queue on the pulse's lock, so a second one finds the
            // firing handled; a constraint refusing it means something else.
            Err(ApiError::Conflict(_)) => {
                tracing::warn!(pulse = %pulse_id, "a constraint refused opening a wave");
            }
            Err(error) => tracing::warn!(pulse = %pulse_id, %error, "opening a wave failed"),
        }
    }

    for wave in waves::store::with_reminders_left(conn)? {
        match db::write(conn, |conn| waves::remind(conn, keys, &wave, now)) {
            Ok(n) => pass.reminders_queued += n,
            Err(error) => tracing::warn!(wave = %wave.id, %error, "queueing reminders failed"),
        }
    }
    Ok(pass)
}

/// Handles the firings of one pulse that came since it last fired:
/// (opened, skipped). Reads the pulse under its lock, so a pause or an edit
/// committed while this pass ran is what counts.
fn open_due(
    conn: &mut DbConnection,
    pulse_id: &str,
    now: DateTime<Utc>,
) -> Result<(usize, usize), ApiError> {
    let pulse = Pulse::locked(conn, pulse_id)?;
    if pulse.status != PulseStatus::Active {
        return Ok((0, 0));
    }
    // Read under the pulse's lock, so every firing after it is unhandled:
    // no need for `waves::open`'s own check (the unique key still stands).
    let from = pulses::store::last_scheduled(conn, pulse_id)?
        .map_or(pulse.row.schedule_from, |last| {
            last.max(pulse.row.schedule_from)
        })
        .and_utc();
    let firings = pulse.timing.firings(from, now, CATCH_UP_LIMIT);
    let Some((&latest, older)) = firings.split_last() else {
        return Ok((0, 0));
    };
    let mut skipped = 0;
    for &at in older {
        if waves::skip(conn, &pulse, at, now)? {
            skipped += 1;
        }
    }
    if latest + pulse.timing.window() <= now {
        return Ok((
            0,
            skipped + usize::from(waves::skip(conn, &pulse, latest, now)?),
        ));
    }
    match waves::open_locked(conn, &pulse, Trigger::Schedule(latest), now)? {
        Opening::Opened(wave) => {
            tracing::info!(
                pulse = %pulse_id,
                wave = %wave.id,
                invited = wave.invited,
                late = (now - latest).num_seconds() > 60,
                "wave opened"
            );
            Ok((1, skipped))
        }
        Opening::AlreadyHandled => Ok((0, skipped)),
        // An extended wave still open, or an audience with nobody in it:
        // the firing is recorded as skipped, and the next one tries again.
        why @ (Opening::PulseHasOpenWave | Opening::NobodyToInvite) => {
            tracing::warn!(pulse = %pulse_id, reason = ?why, "a scheduled wave did not open");
            Ok((
                0,
                skipped + usize::from(waves::skip(conn, &pulse, latest, now)?),
            ))
        }
    }
}
