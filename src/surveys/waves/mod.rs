//! Waves: one occurrence of a pulse. Opening a wave, in one transaction:
//! pins the template version (a copy of the template goes into the wave),
//! snapshots the audience (people active in it now, each with the team they
//! count for now; invited counts per team are frozen), creates one
//! invitation per person and queues each invitation's email in the outbox.
//! A wave is then open until its close time (or an early close, or an
//! extension), and reminders are queued for those who have not answered.
//!
//! Exactly once: a scheduled wave is unique per (pulse, firing), so a second
//! scheduler (or a retry after a crash) that tries the same firing fails on
//! the constraint and changes nothing; and every opener of a pulse first
//! bumps the pulse's wave counter, which on PostgreSQL locks the pulse row,
//! so openers of one pulse queue instead of racing. On SQLite the whole
//! transaction is `BEGIN IMMEDIATE`.

pub mod http;
pub mod store;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::pulses::{self, Pulse};
use super::templates;
use crate::clock::to_stored;
use crate::crypto::ServerKeys;
use crate::db::{self, DbConnection};
use crate::delivery::outbox;
use crate::error::ApiError;
use crate::org::teams::TeamTree;
use crate::webhooks::EventType;
use store::WaveRow;

/// Why a wave opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A firing of the pulse's cadence; the wave closes at firing + window,
    /// even when it opens late (after downtime).
    Schedule(DateTime<Utc>),
    /// HR's "send now": opens now, closes a window from now.
    Manual,
}

/// What an attempt to open a wave came to.
#[derive(Debug)]
pub enum Opening {
    Opened(Box<WaveRow>),
    /// That firing was opened or skipped already (by another instance, maybe).
    AlreadyHandled,
    /// A wave of this pulse is still open: waves of one pulse never overlap.
    PulseHasOpenWave,
    /// Nobody is active in the audience now.
    NobodyToInvite,
}

/// Opens a wave of `pulse_id` at `now`, inside the caller's write
/// transaction.
pub fn open(
    conn: &mut DbConnection,
    pulse_id: &str,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<Opening, ApiError> {
    if let Trigger::Schedule(at) = trigger
        && store::firing_handled(conn, pulse_id, to_stored(at))?
    {
        return Ok(Opening::AlreadyHandled);
    }
    let pulse = Pulse::locked(conn, pulse_id)?;
    open_locked(conn, &pulse, trigger, now)
}

/// [`open`] for a pulse the caller's transaction already holds and has read
/// ([`Pulse::locked`]), as the scheduler does before it picks the firing.
pub fn open_locked(
    conn: &mut DbConnection,
    pulse: &Pulse,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<Opening, ApiError> {
    let pulse_id = pulse.row.id.as_str();
    if store::has_open_wave(conn, pulse_id)? {
        return Ok(Opening::PulseHasOpenWave);
    }
    let invitees = audience(conn, pulse)?;
    if invitees.is_empty() {
        return Ok(Opening::NobodyToInvite);
    }
    let opened_before = pulses::store::count_opened_wave(conn, pulse_id)?;
    let organisation_id = pulse.row.organisation_id.clone();
    let key = pulse.template_for(u32::try_from(opened_before).unwrap_or(0));
    let (template, _) = templates::latest(conn, &organisation_id, key)?.ok_or_else(|| {
        ApiError::Unexpected(anyhow::anyhow!(
            "pulse {pulse_id} asks template {key}, which does not exist"
        ))
    })?;

    let base = match trigger {
        Trigger::Schedule(at) => at,
        Trigger::Manual => now,
    };
    let closes_at = base + pulse.timing.window();
    let reminders: Vec<DateTime<Utc>> = pulse
        .timing
        .reminder_hours
        .iter()
        .map(|h| base + Duration::hours(i64::from(*h)))
        .collect();
    // Reminders already due at a late open would arrive with the invitation:
    // they count as done.
    let reminders_past = reminders.iter().filter(|t| **t <= now).count();
    let template_json =
        serde_json::to_string(&template).map_err(|e| ApiError::Unexpected(e.into()))?;
    let reminders_json = serde_json::to_string(
        &reminders
            .iter()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| ApiError::Unexpected(e.into()))?;

    let wave = WaveRow {
        id: uuid::Uuid::new_v4().to_string(),
        organisation_id: organisation_id.clone(),
        pulse_id: pulse_id.to_owned(),
        scheduled_at: match trigger {
            Trigger::Schedule(at) => Some(to_stored(at)),
            Trigger::Manual => None,
        },
        opened_by: match trigger {
            Trigger::Schedule(_) => "schedule",
            Trigger::Manual => "manual",
        }
        .to_owned(),
        status: "open".to_owned(),
        number: Some(opened_before + 1),
        template_key: Some(template.key.clone()),
        template_version: Some(i32::try_from(template.version).unwrap_or(i32::MAX)),
        template: Some(template_json),
        min_group_size: pulse.row.min_group_size,
        opened_at: Some(to_stored(now)),
        closes_at: Some(to_stored(closes_at)),
        closed_at: None,
        reminders: reminders_json,
        reminders_queued: i32::try_from(reminders_past).unwrap_or(0),
        invited: i32::try_from(invitees.len()).unwrap_or(i32::MAX),
        created_at: to_stored(now),
        delivery: None,
    };
    store::insert(conn, &wave)?;

    let mut per_team: BTreeMap<&str, i32> = BTreeMap::new();
    for invitee in &invitees {
        *per_team.entry(invitee.team_id.as_str()).or_default() += 1;
    }
    store::insert_team_counts(conn, &wave.id, &per_team)?;
    let invited = store::insert_invitations(conn, &organisation_id, &wave.id, &invitees)?;
    outbox::queue(
        conn,
        &organisation_id,
        &wave.id,
        &invited,
        0,
        to_stored(now),
    )?;
    crate::webhooks::emit(
        conn,
        &organisation_id,
        &wave.id,
        EventType::WaveOpened,
        &crate::webhooks::WaveOpened {
            wave_id: wave.id.clone(),
            pulse_id: wave.pulse_id.clone(),
            number: wave.number,
            opened_at: now,
            closes_at,
            invited: wave.invited,
        },
        now,
    )?;
    Ok(Opening::Opened(Box::new(wave)))
}

/// Records a firing that was missed and not opened (its window had passed,
/// or a later firing was missed too). `Ok(false)`: already handled.
pub fn skip(
    conn: &mut DbConnection,
    pulse: &Pulse,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    if store::firing_handled(conn, &pulse.row.id, to_stored(at))? {
        return Ok(false);
    }
    store::insert_skipped(conn, pulse, to_stored(at), to_stored(now))?;
    Ok(true)
}

/// A person invited to a wave, and the team they count for.
pub struct Invitee {
    pub person_id: String,
    pub team_id: String,
    pub language: String,
}

/// The people active now in the pulse's audience: members of its team
/// subtrees, minus those of its excluded subtrees.
fn audience(conn: &mut DbConnection, pulse: &Pulse) -> Result<Vec<Invitee>, ApiError> {
    let tree = TeamTree::new(crate::org::teams::store::list(
        conn,
        &pulse.row.organisation_id,
    )?);
    let mut teams: HashSet<&str> = HashSet::new();
    for root in &pulse.audience {
        teams.extend(tree.subtree(root).iter().map(|t| t.id.as_str()));
    }
    for root in &pulse.excluded_teams {
        for team in tree.subtree(root) {
            teams.remove(team.id.as_str());
        }
    }
    let people = store::active_people(conn, &pulse.row.organisation_id)?;
    Ok(people
        .into_iter()
        .filter(|(_, team_id, _)| teams.contains(team_id.as_str()))
        .map(|(person_id, team_id, language)| Invitee {
            person_id,
            team_id,
            language,
        })
        .collect())
}

/// Why a wave closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Its close time has come (the scheduler): only if it still has, so an
    /// extension saved a moment ago wins.
    Due,
    /// HR closes it early.
    Now,
}

/// Closes a wave in a transaction of its own, then empties SQLite's log
/// ([`db::checkpoint`]), so that what sealing erased is gone from the
/// database's files too. Every close goes through here.
pub fn close_and_checkpoint(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    wave_id: &str,
    closing: Closing,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    close_audited(conn, keys, wave_id, closing, now, None)
}

/// [`close_and_checkpoint`], recording `audit` in the close's transaction
/// when this call is the one that closes the wave.
pub fn close_audited(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    wave_id: &str,
    closing: Closing,
    now: DateTime<Utc>,
    audit: Option<&crate::audit::Entry>,
) -> Result<bool, ApiError> {
    let closed = db::write(conn, |conn| {
        let closed = close(conn, keys, wave_id, closing, now)?;
        if let (true, Some(audit)) = (closed, audit) {
            audit.record(conn)?;
        }
        Ok::<_, ApiError>(closed)
    })?;
    if closed {
        db::checkpoint(conn);
    }
    Ok(closed)
}

/// Closes an open wave at `now`. The wave's emails are done with: their
/// delivery counts are kept on the wave and the outbox rows deleted, since
/// who got a reminder is who had not answered by then (DESIGN.md,
/// invariant 5); then its results are published (`crate::results`) and
/// the responses sealed (`answers::store::seal`).
/// `Ok(false)`: it was not open (closed already, by another replica maybe).
fn close(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    wave_id: &str,
    closing: Closing,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let due_by = (closing == Closing::Due).then(|| to_stored(now));
    if store::mark_closed(conn, wave_id, to_stored(now), due_by)? == 0 {
        return Ok(false);
    }
    // What had not gone out by now never will.
    let mut delivery = outbox::delivery(conn, wave_id)?;
    for counts in [&mut delivery.invitations, &mut delivery.reminders] {
        counts.cancelled += counts.queued + counts.retrying;
        counts.queued = 0;
        counts.retrying = 0;
    }
    let summary = serde_json::to_string(&delivery).map_err(|e| ApiError::Unexpected(e.into()))?;
    store::set_delivery_summary(conn, wave_id, &summary)?;
    outbox::delete_for_wave(conn, wave_id)?;
    crate::webhooks::store::forget_failures_of_wave(conn, wave_id)?;
    let wave = store::find(conn, wave_id)?;
    crate::webhooks::emit(
        conn,
        &wave.organisation_id,
        wave_id,
        EventType::WaveClosed,
        &crate::webhooks::WaveClosed {
            wave_id: wave.id.clone(),
            pulse_id: wave.pulse_id.clone(),
            closed_at: wave.closed_at.map_or(now, |t| t.and_utc()),
            invited: wave.invited,
            delivery,
        },
        now,
    )?;
    // Results from the responses as they are, then the flags brought up
    // to date and the responses rewritten without a trace of their order
    // or their links (src/answers/mod.rs), their tags coarsened to the
    // groups just published.
    crate::results::store::publish_wave(conn, wave_id, now)?;
    crate::answers::store::seal(conn, keys, wave_id)?;
    Ok(true)
}

/// Queues the latest due reminder of an open wave for everyone who has not
/// answered. Reminders missed while the service was down are not sent in a
/// burst: only the latest due one goes out. `Ok(0)`: nothing due, or
/// another replica queued it.
pub fn remind(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    wave: &WaveRow,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let times = wave.reminder_times()?;
    let due = i32::try_from(times.iter().filter(|t| **t <= now).count()).unwrap_or(0);
    if due <= wave.reminders_queued {
        return Ok(0);
    }
    if store::advance_reminders(conn, &wave.id, wave.reminders_queued, due)? == 0 {
        return Ok(0);
    }
    let unanswered = crate::answers::store::mark_answered(conn, keys, &wave.id)?;
    Ok(outbox::queue(
        conn,
        &wave.organisation_id,
        &wave.id,
        &unanswered,
        due,
        to_stored(now),
    )?)
}

/// Moves an open wave's close later. Reminders stay where they were.
pub fn extend(
    conn: &mut DbConnection,
    wave: &WaveRow,
    closes_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if wave.status != "open" {
        return Err(ApiError::Conflict(
            "Only an open wave can be extended.".into(),
        ));
    }
    let current = wave.closes_at.map(|t| t.and_utc()).unwrap_or(now);
    if closes_at <= current || closes_at <= now {
        return Err(ApiError::field(
            "closes_at",
            "must be later than the wave's current close and than now",
        ));
    }
    let opened = wave.opened_at.map(|t| t.and_utc()).unwrap_or(now);
    if closes_at - opened > Duration::hours(i64::from(pulses::MAX_OPEN_HOURS)) {
        return Err(ApiError::field(
            "closes_at",
            "a wave stays open at most 60 days",
        ));
    }
    if store::set_closes_at(conn, &wave.id, to_stored(closes_at), to_stored(now))? == 0 {
        return Err(ApiError::Conflict(
            "The wave has reached its close time (or closed meanwhile).".into(),
        ));
    }
    Ok(())
}
