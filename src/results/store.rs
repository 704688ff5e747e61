//! Where publications and their cells live (`publications`, `results`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::publish::{Cell, Figures, Measure, Publication, publish};
use super::score::Response;
use super::suppress::{Group, Suppressed};
use crate::clock::to_stored;
use crate::db::DbConnection;
use crate::db::schema::{
    latest_themes, publications, responses, results, wave_participation, waves,
};
use crate::error::ApiError;
use chrono::NaiveDateTime;

/// Publishes a closing wave from its responses as they stand (each tagged
/// with its own team, before sealing coarsens the tags), in the closing
/// transaction. Returns the publication's `seq`.
pub fn publish_wave(
    conn: &mut DbConnection,
    wave_id: &str,
    now: DateTime<Utc>,
) -> Result<i32, ApiError> {
    let wave = crate::surveys::waves::store::find(conn, wave_id)?;
    lock_publications(conn, &wave.organisation_id)?;
    let Some(template) = wave.template.as_deref() else {
        return Err(ApiError::Unexpected(anyhow::anyhow!(
            "wave {wave_id} closes without a template"
        )));
    };
    let template = crate::surveys::templates::decode(template)?;
    let parents: BTreeMap<String, Option<String>> =
        crate::org::teams::store::parents(conn, &wave.organisation_id)?;
    let rows: Vec<(String, String)> = responses::table
        .filter(responses::wave_id.eq(wave_id))
        .select((responses::team_id, responses::answers))
        .load(conn)?;
    let answers = rows
        .into_iter()
        .map(|(team, answers)| {
            let response: Response = serde_json::from_str(&answers)
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("a stored response: {e}")))?;
            Ok((team, response))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let invited: BTreeMap<String, u32> = crate::surveys::waves::store::team_counts(conn, wave_id)?
        .into_iter()
        .map(|(team, n)| (team, u32::try_from(n).unwrap_or(0)))
        .collect();
    let k = minimum(wave.min_group_size)?;
    let publication = publish(&template, &parents, &invited, &answers, k);
    let teams = serde_json::to_string(&parents).map_err(|e| ApiError::Unexpected(e.into()))?;
    let closed_at = wave.closed_at.unwrap_or_else(|| to_stored(now));
    refresh_latest_themes(
        conn,
        &wave.organisation_id,
        wave_id,
        closed_at,
        &publication,
    )?;
    store(
        conn,
        &Publishing {
            wave_id,
            pulse_id: &wave.pulse_id,
            organisation_id: &wave.organisation_id,
            k: wave.min_group_size,
            teams: &teams,
            now,
        },
        &publication,
    )
}

/// Copies the publication's theme cells into `latest_themes` wherever this
/// wave closed no earlier than the wave there now. Only the rows it
/// supersedes are deleted and written again (a wave asks one or two
/// themes): rewriting every row of the organisation at each close left
/// PostgreSQL's table many times its live size.
fn refresh_latest_themes(
    conn: &mut DbConnection,
    organisation_id: &str,
    wave_id: &str,
    closed_at: chrono::NaiveDateTime,
    publication: &Publication,
) -> Result<(), ApiError> {
    let newer: std::collections::HashSet<(String, String, String)> = latest_themes::table
        .filter(latest_themes::organisation_id.eq(organisation_id))
        .filter(latest_themes::closed_at.gt(closed_at))
        .select((
            latest_themes::group_kind,
            latest_themes::team_id,
            latest_themes::theme,
        ))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .collect();
    // (group kind, theme) → the teams whose row this wave replaces.
    let mut replaced: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    let mut values = Vec::new();
    for cell in &publication.cells {
        let Measure::Theme(theme) = &cell.measure else {
            continue;
        };
        let (group_kind, team_id) = group_key(&cell.group, organisation_id);
        let key = (group_kind.to_owned(), team_id, theme.as_str().to_owned());
        if newer.contains(&key) {
            continue;
        }
        let (n, suppressed, figures) = stored(cell)?;
        replaced
            .entry((group_kind, theme.as_str()))
            .or_default()
            .push(key.1.clone());
        values.push((
            latest_themes::organisation_id.eq(organisation_id.to_owned()),
            latest_themes::group_kind.eq(key.0),
            latest_themes::team_id.eq(key.1),
            latest_themes::theme.eq(key.2),
            latest_themes::wave_id.eq(wave_id.to_owned()),
            latest_themes::closed_at.eq(closed_at),
            latest_themes::n.eq(n),
            latest_themes::suppressed.eq(suppressed.map(str::to_owned)),
            latest_themes::figures.eq(figures),
        ));
    }
    for ((group_kind, theme), teams) in &replaced {
        for chunk in teams.chunks(1_000) {
            diesel::delete(
                latest_themes::table
                    .filter(latest_themes::organisation_id.eq(organisation_id))
                    .filter(latest_themes::group_kind.eq(group_kind))
                    .filter(latest_themes::theme.eq(theme))
                    .filter(latest_themes::team_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
    }
    for chunk in values.chunks(2_000) {
        crate::batch_insert!(conn, latest_themes::table, chunk.to_vec())?;
    }
    Ok(())
}

/// Publishes again every closed wave of a pulse whose k was raised above
/// its latest publication's; how many.
pub fn republish_pulse(
    conn: &mut DbConnection,
    pulse_id: &str,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let closed: Vec<String> = waves::table
        .filter(waves::pulse_id.eq(pulse_id))
        .filter(waves::status.eq("closed"))
        .select(waves::id)
        .load(conn)?;
    let mut count = 0;
    for wave_id in closed {
        if republish_wave(conn, &wave_id, now)? {
            count += 1;
        }
    }
    Ok(count)
}

/// Publishes a closed wave again when its k has been raised above the k
/// of its latest publication (`super::republish`), then coarsens its
/// stored tags to the new groups. `Ok(false)`: nothing to do.
pub fn republish_wave(
    conn: &mut DbConnection,
    wave_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    use super::republish::{Before, Units, republish};
    use crate::answers::coarsen::{Scope, Tag};

    let wave = crate::surveys::waves::store::find(conn, wave_id)?;
    let Some(latest) = latest_publication(conn, wave_id)? else {
        return Ok(false);
    };
    if wave.status != "closed" || latest.min_group_size >= wave.min_group_size {
        return Ok(false);
    }
    lock_publications(conn, &wave.organisation_id)?;
    let Some(template) = wave.template.as_deref() else {
        return Ok(false);
    };
    let template = crate::surveys::templates::decode(template)?;
    let teams_json: String = publications::table
        .find(latest.seq)
        .select(publications::teams)
        .first(conn)?;
    let teams: BTreeMap<String, Option<String>> = serde_json::from_str(&teams_json)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("a publication's teams: {e}")))?;
    let organisation_id = wave.organisation_id.clone();
    let group_of = |kind: &str, team: String| match kind {
        "team" => Some(Group::Team(team)),
        "subtree" => Some(Group::Subtree(team)),
        "organisation" => Some(Group::Organisation),
        _ => None,
    };
    type Old = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let before: Vec<Before> = results::table
        .filter(results::publication.eq(latest.seq))
        .select((
            results::group_kind,
            results::team_id,
            results::measure_kind,
            results::measure,
            results::suppressed,
            results::figures,
        ))
        .load::<Old>(conn)?
        .into_iter()
        .filter_map(|(kind, team, measure_kind, measure, suppressed, figures)| {
            let comments = match (measure_kind.as_str(), &figures) {
                ("comments", Some(f)) => serde_json::from_str(f).ok(),
                _ => None,
            };
            let measure = match measure_kind.as_str() {
                "participation" => Measure::Participation,
                "question" => Measure::Question(measure),
                "theme" => Measure::Theme(crate::surveys::template::Theme::parse(&measure)?),
                "comments" => Measure::Comments(measure),
                _ => return None,
            };
            Some(Before {
                group: group_of(&kind, team)?,
                measure,
                suppressed: suppressed.map(|why| match why.as_str() {
                    "complementary" => Suppressed::Complementary,
                    _ => Suppressed::BelowMinimum,
                }),
                comments,
            })
        })
        .collect();
    let tag_of =
        |team_id: String, scope: &str| Scope::parse(scope).map(|scope| Tag { team_id, scope });

    let stored: Vec<(String, String, String)> = responses::table
        .filter(responses::wave_id.eq(wave_id))
        .select((responses::team_id, responses::scope, responses::answers))
        .load(conn)?;
    let mut response_units = Units::new(&teams, &organisation_id);
    let mut answers = Vec::with_capacity(stored.len());
    for (team_id, scope, text) in stored {
        let Some(tag) = tag_of(team_id, &scope) else {
            continue;
        };
        let response: Response = serde_json::from_str(&text)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("a stored response: {e}")))?;
        answers.push((response_units.unit(&tag), response));
    }
    let atoms: Vec<(String, String, i32, i32)> = wave_participation::table
        .filter(wave_participation::wave_id.eq(wave_id))
        .select((
            wave_participation::team_id,
            wave_participation::scope,
            wave_participation::invited,
            wave_participation::responded,
        ))
        .load(conn)?;
    let mut participation_units = Units::new(&teams, &organisation_id);
    let mut counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (team_id, scope, invited, responded) in atoms {
        let Some(tag) = tag_of(team_id, &scope) else {
            continue;
        };
        let entry = counts.entry(participation_units.unit(&tag)).or_default();
        entry.0 += u32::try_from(invited).unwrap_or(0);
        entry.1 += u32::try_from(responded).unwrap_or(0);
    }

    let k = minimum(wave.min_group_size)?;
    let again = republish(
        &template,
        &response_units,
        &answers,
        &participation_units,
        &counts,
        &before,
        k,
    );
    let closed_at = wave.closed_at.unwrap_or_else(|| to_stored(now));
    refresh_latest_themes(
        conn,
        &organisation_id,
        wave_id,
        closed_at,
        &again.publication,
    )?;
    store(
        conn,
        &Publishing {
            wave_id,
            pulse_id: &wave.pulse_id,
            organisation_id: &organisation_id,
            k: wave.min_group_size,
            teams: &teams_json,
            now,
        },
        &again.publication,
    )?;
    // The superseded cells go: the lower k's numbers are not kept, nor
    // served by the feed (the publication row stays, empty).
    diesel::delete(results::table.filter(results::publication.eq(latest.seq))).execute(conn)?;

    // The stored tags, coarsened to the new groups, in a new random order.
    let mut rows: Vec<(Tag, String)> = answers
        .into_iter()
        .filter_map(|(unit, response)| {
            let tag = again.response_tags.get(&unit).cloned().flatten()?;
            Some(serde_json::to_string(&response).map(|text| (tag, text)))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    rand::seq::SliceRandom::shuffle(rows.as_mut_slice(), &mut rand::rng());
    diesel::delete(responses::table.filter(responses::wave_id.eq(wave_id))).execute(conn)?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(tag, answers)| {
            (
                responses::id.eq(uuid::Uuid::new_v4().to_string()),
                responses::wave_id.eq(wave_id.to_owned()),
                responses::team_id.eq(tag.team_id),
                responses::answers.eq(answers),
                responses::nullifier.eq(None::<String>),
                responses::scope.eq(tag.scope.as_str()),
            )
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        crate::batch_insert!(conn, responses::table, chunk.to_vec())?;
    }
    let mut atoms: BTreeMap<(String, &'static str), (u32, u32)> = BTreeMap::new();
    for (unit, (invited, responded)) in &counts {
        if let Some(tag) = again.participation_tags.get(unit).cloned().flatten() {
            let entry = atoms.entry((tag.team_id, tag.scope.as_str())).or_default();
            entry.0 += invited;
            entry.1 += responded;
        }
    }
    crate::answers::store::write_participation(
        conn,
        wave_id,
        atoms
            .into_iter()
            .map(|((team_id, scope), (invited, responded))| {
                (team_id, scope, i64::from(invited), i64::from(responded))
            }),
    )?;
    Ok(true)
}

/// A stored k, checked: the API keeps it from 3 to 100.
pub fn minimum(k: i32) -> Result<u32, ApiError> {
    u32::try_from(k)
        .ok()
        .filter(|k| (1..=1_000).contains(k))
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("a stored k of {k}")))
}

/// Queues this transaction behind any other that publishes for the
/// organisation (a row lock on PostgreSQL; SQLite's writers are serial
/// anyway): publications then commit in the order of their `seq`, so a
/// feed reader that has seen one never misses an earlier one, and
/// `latest_themes` is rewritten by one at a time.
fn lock_publications(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<usize> {
    use crate::db::schema::organisations;
    diesel::update(organisations::table.find(organisation_id))
        .set(organisations::name.eq(organisations::name))
        .execute(conn)
}

/// What a publication row records besides its cells.
struct Publishing<'a> {
    wave_id: &'a str,
    pulse_id: &'a str,
    organisation_id: &'a str,
    k: i32,
    /// The team tree, as JSON.
    teams: &'a str,
    now: DateTime<Utc>,
}

/// Writes a publication: a `publications` row, then its cells.
fn store(
    conn: &mut DbConnection,
    publishing: &Publishing<'_>,
    publication: &Publication,
) -> Result<i32, ApiError> {
    let Publishing {
        wave_id,
        pulse_id,
        organisation_id,
        k,
        teams,
        now,
    } = *publishing;
    diesel::insert_into(publications::table)
        .values((
            publications::wave_id.eq(wave_id),
            publications::organisation_id.eq(organisation_id),
            publications::min_group_size.eq(k),
            publications::teams.eq(teams),
            publications::published_at.eq(to_stored(now)),
        ))
        .execute(conn)?;
    // Portable on both backends, and in this transaction the latest.
    let seq: i32 = publications::table
        .filter(publications::wave_id.eq(wave_id))
        .select(diesel::dsl::max(publications::seq))
        .first::<Option<i32>>(conn)?
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("no publication after insert")))?;
    let rows = publication
        .cells
        .iter()
        .map(|cell| row(seq, organisation_id, cell))
        .collect::<Result<Vec<_>, ApiError>>()?;
    for chunk in rows.chunks(2_000) {
        crate::batch_insert!(conn, results::table, chunk.to_vec())?;
    }
    crate::webhooks::emit(
        conn,
        organisation_id,
        wave_id,
        crate::webhooks::EventType::ResultsPublished,
        &crate::webhooks::ResultsPublished {
            wave_id: wave_id.to_owned(),
            pulse_id: pulse_id.to_owned(),
            publication: seq,
            min_group_size: k,
            published_at: now,
            results: format!("/api/v1/waves/{wave_id}/results"),
            heatmap: format!("/api/v1/waves/{wave_id}/heatmap"),
        },
        now,
    )?;
    Ok(seq)
}

type Row = (
    diesel::dsl::Eq<results::publication, i32>,
    diesel::dsl::Eq<results::group_kind, &'static str>,
    diesel::dsl::Eq<results::team_id, String>,
    diesel::dsl::Eq<results::measure_kind, &'static str>,
    diesel::dsl::Eq<results::measure, String>,
    diesel::dsl::Eq<results::n, Option<i32>>,
    diesel::dsl::Eq<results::suppressed, Option<&'static str>>,
    diesel::dsl::Eq<results::figures, Option<String>>,
);

fn row(seq: i32, organisation_id: &str, cell: &Cell) -> Result<Row, ApiError> {
    let (group_kind, team_id) = group_key(&cell.group, organisation_id);
    let (measure_kind, measure) = cell.measure.key();
    let (n, suppressed, figures) = stored(cell)?;
    Ok((
        results::publication.eq(seq),
        results::group_kind.eq(group_kind),
        results::team_id.eq(team_id),
        results::measure_kind.eq(measure_kind),
        results::measure.eq(measure),
        results::n.eq(n),
        results::suppressed.eq(suppressed),
        results::figures.eq(figures),
    ))
}

/// A cell's stored columns: n, why it is suppressed, figures (JSON).
type Stored = (Option<i32>, Option<&'static str>, Option<String>);

/// A cell as stored: n and figures, or only why it is suppressed.
fn stored(cell: &Cell) -> Result<Stored, ApiError> {
    let json = |value: Result<String, serde_json::Error>| {
        value.map_err(|e| ApiError::Unexpected(e.into()))
    };
    Ok(match &cell.outcome {
        Ok(figures) => {
            let text = match figures {
                Figures::Participation(f) => json(serde_json::to_string(f))?,
                Figures::Question(f) => json(serde_json::to_string(f))?,
                Figures::Theme(f) => json(serde_json::to_string(f))?,
                Figures::Comments(f) => json(serde_json::to_string(f))?,
            };
            let n = i32::try_from(figures.n()).unwrap_or(i32::MAX);
            (Some(n), None, Some(text))
        }
        Err(why) => (None, Some(suppressed_key(*why)), None),
    })
}

/// How a group is stored: its kind and team (the organisation's id for the
/// organisation).
pub fn group_key(group: &Group, organisation_id: &str) -> (&'static str, String) {
    match group {
        Group::Team(team) => ("team", team.clone()),
        Group::Subtree(team) => ("subtree", team.clone()),
        Group::Organisation => ("organisation", organisation_id.to_owned()),
    }
}

pub fn suppressed_key(why: Suppressed) -> &'static str {
    match why {
        Suppressed::BelowMinimum => "below_minimum",
        Suppressed::Complementary => "complementary",
    }
}

/// A wave's latest publication: its `seq`, k and time.
#[derive(Debug, Clone, Queryable)]
pub struct PublicationRow {
    pub seq: i32,
    pub min_group_size: i32,
    pub published_at: chrono::NaiveDateTime,
}

pub fn latest_publication(
    conn: &mut DbConnection,
    wave_id: &str,
) -> QueryResult<Option<PublicationRow>> {
    publications::table
        .filter(publications::wave_id.eq(wave_id))
        .order(publications::seq.desc())
        .select((
            publications::seq,
            publications::min_group_size,
            publications::published_at,
        ))
        .first(conn)
        .optional()
}

/// One stored cell.
#[derive(Debug, Clone, Queryable)]
pub struct CellRow {
    pub measure_kind: String,
    pub measure: String,
    pub n: Option<i32>,
    pub suppressed: Option<String>,
    pub figures: Option<String>,
}

/// Every cell of one group in a publication.
pub fn group_cells(
    conn: &mut DbConnection,
    seq: i32,
    group_kind: &str,
    team_id: &str,
) -> QueryResult<Vec<CellRow>> {
    results::table
        .filter(results::publication.eq(seq))
        .filter(results::group_kind.eq(group_kind))
        .filter(results::team_id.eq(team_id))
        .select((
            results::measure_kind,
            results::measure,
            results::n,
            results::suppressed,
            results::figures,
        ))
        .load(conn)
}

/// Invitations flagged as answered per team: for an open wave, counts
/// that move only when the flags are set in batches (before each reminder
/// and at the close), never with a single answer, so that watching them
/// cannot tell who just answered (DESIGN.md, invariant 5).
pub fn answered_per_team(
    conn: &mut DbConnection,
    wave_id: &str,
) -> QueryResult<BTreeMap<String, u32>> {
    use crate::db::schema::invitations;
    let rows: Vec<(String, i64)> = invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .filter(invitations::answered.eq(true))
        .group_by(invitations::team_id)
        .select((invitations::team_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(team, n)| (team, u32::try_from(n).unwrap_or(u32::MAX)))
        .collect())
}

/// A group's cell of one theme from the latest wave that asked it.
#[derive(Debug, Clone, Queryable)]
pub struct LatestThemeRow {
    pub team_id: String,
    pub theme: String,
    pub wave_id: String,
    pub n: Option<i32>,
    pub suppressed: Option<String>,
    pub figures: Option<String>,
}

impl LatestThemeRow {
    pub fn cell(self) -> CellRow {
        CellRow {
            measure_kind: "theme".into(),
            measure: self.theme,
            n: self.n,
            suppressed: self.suppressed,
            figures: self.figures,
        }
    }
}

/// What `latest_themes` holds for an organisation changes only with its
/// publications (every write to it comes with a new publication in the same
/// transaction, and goes with one when a wave goes): their count and latest
/// `seq` name its version, read off an index.
pub fn publications_version(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> QueryResult<(i64, Option<i32>)> {
    publications::table
        .filter(publications::organisation_id.eq(organisation_id))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(publications::seq),
        ))
        .first(conn)
}

/// Every team's latest theme cells for groups of `group_kind`.
pub fn latest_themes(
    conn: &mut DbConnection,
    organisation_id: &str,
    group_kind: &str,
) -> QueryResult<Vec<LatestThemeRow>> {
    latest_themes::table
        .filter(latest_themes::organisation_id.eq(organisation_id))
        .filter(latest_themes::group_kind.eq(group_kind))
        .select((
            latest_themes::team_id,
            latest_themes::theme,
            latest_themes::wave_id,
            latest_themes::n,
            latest_themes::suppressed,
            latest_themes::figures,
        ))
        .load(conn)
}

/// Every cell of a publication for groups of `group_kind`, by team.
pub fn publication_cells(
    conn: &mut DbConnection,
    seq: i32,
    group_kind: &str,
) -> QueryResult<Vec<(String, CellRow)>> {
    results::table
        .filter(results::publication.eq(seq))
        .filter(results::group_kind.eq(group_kind))
        .select((
            results::team_id,
            (
                results::measure_kind,
                results::measure,
                results::n,
                results::suppressed,
                results::figures,
            ),
        ))
        .load(conn)
}

/// One published theme cell of a group in one wave's publication.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub team_id: String,
    pub wave_id: String,
    pub pulse_id: String,
    pub wave_number: Option<i32>,
    pub closed_at: Option<NaiveDateTime>,
    pub cell: CellRow,
}

/// A group's theme cells across the organisation's closed waves, oldest
/// wave first, from each wave's latest publication; with `team_id` none,
/// those of every group of the kind.
pub fn theme_history(
    conn: &mut DbConnection,
    organisation_id: &str,
    group_kind: &str,
    team_id: Option<&str>,
) -> QueryResult<Vec<HistoryRow>> {
    type Raw = (
        i32,
        String,
        String,
        Option<i32>,
        Option<NaiveDateTime>,
        (String, String, Option<i32>, Option<String>, Option<String>),
    );
    let mut query = results::table
        .inner_join(publications::table.inner_join(waves::table))
        .filter(publications::organisation_id.eq(organisation_id))
        .filter(results::group_kind.eq(group_kind.to_owned()))
        .filter(results::measure_kind.eq("theme"))
        .into_boxed();
    if let Some(team_id) = team_id {
        query = query.filter(results::team_id.eq(team_id.to_owned()));
    }
    let rows: Vec<Raw> = query
        .order((waves::closed_at, waves::id, publications::seq))
        .select((
            publications::seq,
            publications::wave_id,
            waves::pulse_id,
            waves::number,
            waves::closed_at,
            (
                results::team_id,
                results::measure,
                results::n,
                results::suppressed,
                results::figures,
            ),
        ))
        .load(conn)?;
    let latest: BTreeMap<&str, i32> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        let seq = m.entry(r.1.as_str()).or_insert(r.0);
        *seq = (*seq).max(r.0);
        m
    });
    let keep: Vec<bool> = rows.iter().map(|r| latest[r.1.as_str()] == r.0).collect();
    Ok(rows
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(
            |(
                (
                    _,
                    wave_id,
                    pulse_id,
                    wave_number,
                    closed_at,
                    (team_id, theme, n, suppressed, figures),
                ),
                _,
            )| HistoryRow {
                team_id,
                wave_id,
                pulse_id,
                wave_number,
                closed_at,
                cell: CellRow {
                    measure_kind: "theme".into(),
                    measure: theme,
                    n,
                    suppressed,
                    figures,
                },
            },
        )
        .collect())
}

/// Where a feed row sits in the feed's order; a cursor names the last row
/// a client has.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedKey(pub i32, pub String, pub String, pub String, pub String);

/// One row of the results feed.
#[derive(Debug, Clone, Queryable)]
pub struct FeedRow {
    pub publication: i32,
    pub group_kind: String,
    pub team_id: String,
    pub measure_kind: String,
    pub measure: String,
    pub n: Option<i32>,
    pub suppressed: Option<String>,
    pub figures: Option<String>,
    pub wave_id: String,
    pub min_group_size: i32,
    pub published_at: NaiveDateTime,
    pub pulse_id: String,
}

impl FeedRow {
    pub fn key(&self) -> FeedKey {
        FeedKey(
            self.publication,
            self.group_kind.clone(),
            self.team_id.clone(),
            self.measure_kind.clone(),
            self.measure.clone(),
        )
    }
}

/// Up to `limit` feed rows after `after`, in the feed's order (the
/// results' primary key). `teams`: only those teams' groups (a manager).
pub fn feed_rows(
    conn: &mut DbConnection,
    organisation_id: &str,
    after: &FeedKey,
    teams: Option<&[String]>,
    limit: i64,
) -> QueryResult<Vec<FeedRow>> {
    use diesel::sql_types::{Bool, Integer, Text};
    let FeedKey(seq, group_kind, team_id, measure_kind, measure) = after;
    // A row-value comparison with the primary key's columns: PostgreSQL
    // starts its index scan at the cursor. Spelled out as nested ORs, it
    // started at the publication's first row and filtered its way to the
    // cursor, for every chunk of a page (36 of 44 ms a chunk here).
    let later = diesel::dsl::sql::<Bool>(
        "(results.publication, results.group_kind, results.team_id, results.measure_kind, results.measure) > (",
    )
    .bind::<Integer, _>(*seq)
    .sql(", ")
    .bind::<Text, _>(group_kind.clone())
    .sql(", ")
    .bind::<Text, _>(team_id.clone())
    .sql(", ")
    .bind::<Text, _>(measure_kind.clone())
    .sql(", ")
    .bind::<Text, _>(measure.clone())
    .sql(")");
    let mut query = results::table
        .inner_join(publications::table.inner_join(waves::table))
        .filter(publications::organisation_id.eq(organisation_id))
        .filter(results::publication.ge(*seq))
        .filter(later)
        .into_boxed();
    if let Some(teams) = teams {
        query = query
            .filter(results::group_kind.ne("organisation"))
            .filter(results::team_id.eq_any(teams));
    }
    query
        .order((
            results::publication,
            results::group_kind,
            results::team_id,
            results::measure_kind,
            results::measure,
        ))
        .limit(limit)
        .select((
            results::publication,
            results::group_kind,
            results::team_id,
            results::measure_kind,
            results::measure,
            results::n,
            results::suppressed,
            results::figures,
            publications::wave_id,
            publications::min_group_size,
            publications::published_at,
            waves::pulse_id,
        ))
        .load(conn)
}

/// What changes whenever the feed's content can: the organisation's
/// latest publication and how many it has.
pub fn feed_version(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> QueryResult<(Option<i32>, i64)> {
    publications::table
        .filter(publications::organisation_id.eq(organisation_id))
        .select((
            diesel::dsl::max(publications::seq),
            diesel::dsl::count_star(),
        ))
        .first(conn)
}
