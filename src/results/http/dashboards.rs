//! Heatmaps and trends: precomputed cells side by side, so their cost
//! grows with the teams shown, not with the responses stored.
//! - `GET /results/heatmap`: teams × themes, each cell from the latest
//!   closed wave that asked the theme (named in the cell);
//! - `GET /waves/{id}/heatmap`: teams × questions and themes of one wave;
//! - `GET /results/trends…`: a group's theme scores across waves, each
//!   with its change since the previous wave that asked the theme.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::{GroupRef, Reason, StoredFigures, decode, group_ref, own_view, stored, with_figures};
use crate::auth::caller::{Caller, Permission, Reach};
use crate::db::{Db, DbConnection};
use crate::error::{ApiError, Missing, Problem, Refused};
use crate::org::teams;
use crate::results::change::{Change, change};
use crate::results::publish::ThemeFigures;
use crate::results::store::{self, CellRow};
use crate::results::suppress::Group;
use crate::surveys::template::{Scale, Theme};

/// Which groups a heatmap's rows are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RowScope {
    /// Each team with everything below it (a department's roll-up).
    #[default]
    Subtree,
    /// Each team's own members.
    Team,
}

impl RowScope {
    fn group_kind(self) -> &'static str {
        match self {
            Self::Subtree => "subtree",
            Self::Team => "team",
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeatmapQuery {
    /// `subtree` (default) or `team`.
    pub scope: RowScope,
}

/// One cell of a heatmap: figures, or why there are none.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HeatCell {
    /// The wave the cell comes from.
    pub wave_id: String,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// A theme's figures (`n`, `score`, `sd`, `answers`, `favourable`) or a
    /// question's (`n`, `mean`, `sd`, `shares`, `distribution`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub figures: Option<StoredFigures>,
}

impl Serialize for HeatCell {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Own<'a> {
            wave_id: &'a str,
            suppressed: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<Reason>,
        }
        let own = Own {
            wave_id: &self.wave_id,
            suppressed: self.suppressed,
            reason: self.reason,
        };
        with_figures(&own, self.figures.as_ref(), serializer)
    }
}

impl HeatCell {
    fn of(wave_id: &str, cell: CellRow) -> Result<Self, ApiError> {
        let reason = stored(&cell)?.err();
        let figures = match reason {
            None => cell.figures.map(StoredFigures),
            Some(_) => None,
        };
        Ok(Self {
            wave_id: wave_id.to_owned(),
            suppressed: reason.is_some(),
            reason,
            figures,
        })
    }
}

/// A row of the themes heatmap: a team's cells as kept (see [`LatestCells`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ThemeHeatRow {
    pub team_id: String,
    /// `Engineering/Platform`.
    pub team_path: String,
    /// One per column, in the columns' order; null where no closed wave
    /// has a cell for it.
    #[schema(value_type = Vec<Option<HeatCell>>)]
    pub cells: Cells,
}

/// Cells already written as JSON, shared between requests.
#[derive(Debug)]
pub struct Cells(Arc<RawValue>);

impl Serialize for Cells {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(serializer)
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HeatRow {
    pub team_id: String,
    /// `Engineering/Platform`.
    pub team_path: String,
    /// One per column, in the columns' order; null where no closed wave
    /// has a cell for it.
    pub cells: Vec<Option<HeatCell>>,
}

/// Teams × themes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThemeHeatmap {
    pub scope: RowScope,
    pub columns: Vec<Theme>,
    /// Teams the caller can see, by path.
    pub rows: Vec<ThemeHeatRow>,
}

/// A column of a wave's heatmap.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WaveColumn {
    /// `question` or `theme`.
    pub kind: String,
    /// The question's id, or the theme.
    pub id: String,
    pub theme: Theme,
    /// Questions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
}

/// Teams × questions and themes of one wave.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WaveHeatmap {
    pub wave_id: String,
    pub scope: RowScope,
    pub columns: Vec<WaveColumn>,
    pub rows: Vec<HeatRow>,
}

/// Teams × themes: each team's latest published cell per theme.
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(HeatmapQuery),
    responses((status = 200, description = "OK", body = ThemeHeatmap), Refused)
)]
#[get("/results/heatmap")]
pub async fn heatmap(
    db: web::Data<Db>,
    latest: web::Data<LatestCells>,
    caller: Caller,
    query: web::Query<HeatmapQuery>,
) -> Result<web::Json<ThemeHeatmap>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let organisation_id = caller.organisation_id().to_owned();
    let scope = query.scope;
    let map = db
        .run(move |conn| {
            let cells = latest.of(conn, &organisation_id, scope)?;
            let rows = visible_teams(conn, &organisation_id, &reach)?
                .into_iter()
                .map(|(team_id, team_path)| ThemeHeatRow {
                    cells: Cells(cells.by_team.get(&team_id).unwrap_or(&cells.none).clone()),
                    team_id,
                    team_path,
                })
                .collect();
            Ok::<_, ApiError>(ThemeHeatmap {
                scope,
                columns: Theme::ALL.to_vec(),
                rows,
            })
        })
        .await?;
    Ok(web::Json(map))
}

/// Every team's row of theme cells (as the JSON array a heatmap row
/// shows), per organisation and row scope, kept between requests while the
/// organisation's publications are unchanged: dashboards read the heatmap
/// far more often than waves close, and reading and writing 6,000 stored
/// cells was most of a heatmap's time. The cells are the same for every
/// caller; which rows a caller sees is decided per request, as are the
/// teams' names. A few organisations are kept.
#[derive(Default)]
pub struct LatestCells {
    kept: crate::db::Kept<(String, RowScope), (i64, Option<i32>), TeamRows, KEPT>,
}

struct TeamRows {
    by_team: HashMap<String, Arc<RawValue>>,
    /// The row of a team without cells: every column null.
    none: Arc<RawValue>,
}

/// (Organisation, scope) pairs kept at once.
const KEPT: usize = 8;

impl LatestCells {
    /// The organisation's rows: kept ones if no publication has changed
    /// since.
    fn of(
        &self,
        conn: &mut DbConnection,
        organisation_id: &str,
        scope: RowScope,
    ) -> Result<Arc<TeamRows>, ApiError> {
        let version = store::publications_version(conn, organisation_id)?;
        let key = (organisation_id.to_owned(), scope);
        self.kept.get_or_load(key, version, || {
            let mut cells = TeamCells::new(Theme::ALL.len());
            for row in store::latest_themes(conn, organisation_id, scope.group_kind())? {
                if let Some(column) = Theme::ALL.iter().position(|t| t.as_str() == row.theme) {
                    let (team_id, wave_id) = (row.team_id.clone(), row.wave_id.clone());
                    cells.put(team_id, column, HeatCell::of(&wave_id, row.cell())?);
                }
            }
            let raw = |row: &[Option<HeatCell>]| {
                serde_json::value::to_raw_value(row)
                    .map(Arc::from)
                    .map_err(|e| ApiError::Unexpected(e.into()))
            };
            Ok(TeamRows {
                none: raw(&nulls(cells.width))?,
                by_team: cells
                    .by_team
                    .iter()
                    .map(|(team, row)| Ok((team.clone(), raw(row)?)))
                    .collect::<Result<_, ApiError>>()?,
            })
        })
    }
}

/// Teams × questions and themes of one closed wave.
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The wave's id"), HeatmapQuery),
    responses(
        (status = 200, description = "OK", body = WaveHeatmap),
        Refused,
        Missing,
        (status = 409, description = "The wave is not closed, or closed before results were published", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/waves/{id}/heatmap")]
pub async fn wave_heatmap(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<HeatmapQuery>,
) -> Result<web::Json<WaveHeatmap>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let organisation_id = caller.organisation_id().to_owned();
    let scope = query.scope;
    let map = db
        .run(move |conn| {
            let wave = crate::surveys::waves::store::find_in(conn, &organisation_id, &id)?;
            if wave.status != "closed" {
                return Err(ApiError::Conflict(
                    "Results are published when the wave closes.".into(),
                ));
            }
            let publication = store::latest_publication(conn, &wave.id)?.ok_or_else(|| {
                ApiError::Conflict("This wave closed before Peil published results.".into())
            })?;
            let template = wave
                .template
                .as_deref()
                .map(crate::surveys::templates::decode)
                .transpose()?
                .ok_or(ApiError::NotFound)?;
            let mut columns: Vec<WaveColumn> = template
                .closed_questions()
                .map(|q| WaveColumn {
                    kind: "question".into(),
                    id: q.id.clone(),
                    theme: q.theme,
                    scale: Some(q.scale),
                })
                .collect();
            columns.extend(
                template
                    .themes()
                    .into_iter()
                    .filter(|t| {
                        template
                            .questions
                            .iter()
                            .any(|q| q.theme == *t && q.scale == Scale::Agree5)
                    })
                    .map(|t| WaveColumn {
                        kind: "theme".into(),
                        id: t.as_str().to_owned(),
                        theme: t,
                        scale: None,
                    }),
            );
            let column: HashMap<(&str, &str), usize> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| ((c.kind.as_str(), c.id.as_str()), i))
                .collect();
            let mut cells = TeamCells::new(columns.len());
            for (team_id, cell) in
                store::publication_cells(conn, publication.seq, scope.group_kind())?
            {
                if let Some(&i) = column.get(&(cell.measure_kind.as_str(), cell.measure.as_str())) {
                    cells.put(team_id, i, HeatCell::of(&wave.id, cell)?);
                }
            }
            let rows = cells.rows(visible_teams(conn, &organisation_id, &reach)?);
            Ok(WaveHeatmap {
                wave_id: wave.id,
                scope,
                columns,
                rows,
            })
        })
        .await?;
    Ok(web::Json(map))
}

/// A heatmap's cells by team, each team's in the columns' order.
struct TeamCells {
    width: usize,
    by_team: HashMap<String, Vec<Option<HeatCell>>>,
}

impl TeamCells {
    fn new(width: usize) -> Self {
        Self {
            width,
            by_team: HashMap::new(),
        }
    }

    fn put(&mut self, team_id: String, column: usize, cell: HeatCell) {
        let width = self.width;
        self.by_team.entry(team_id).or_insert_with(|| nulls(width))[column] = Some(cell);
    }

    /// One row per team, in the order given; null cells where a team has
    /// none.
    fn rows(mut self, teams: Vec<(String, String)>) -> Vec<HeatRow> {
        teams
            .into_iter()
            .map(|(team_id, team_path)| HeatRow {
                cells: self
                    .by_team
                    .remove(&team_id)
                    .unwrap_or_else(|| nulls(self.width)),
                team_id,
                team_path,
            })
            .collect()
    }
}

fn nulls(width: usize) -> Vec<Option<HeatCell>> {
    std::iter::repeat_with(|| None).take(width).collect()
}

/// The teams a caller can see, with their paths, ordered by path.
fn visible_teams(
    conn: &mut DbConnection,
    organisation_id: &str,
    reach: &Reach,
) -> diesel::QueryResult<Vec<(String, String)>> {
    let outline = crate::org::teams::store::outline(conn, organisation_id)?;
    let mut paths = teams::paths(
        outline
            .iter()
            .map(|(id, parent, name)| (id.as_str(), parent.as_deref(), name.as_str())),
    );
    let visible: Vec<&str> = match reach {
        Reach::Organisation => outline.iter().map(|(id, _, _)| id.as_str()).collect(),
        Reach::Subtree(root) => teams::Hierarchy::new(
            outline
                .iter()
                .map(|(id, parent, _)| (id.as_str(), parent.as_deref())),
        )
        .subtree(root),
    };
    let mut named: Vec<(String, String)> = visible
        .into_iter()
        .map(|id| (id.to_owned(), paths.remove(id).unwrap_or_default()))
        .collect();
    named.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(named)
}

/// One wave's point of a theme's trend.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrendPoint {
    pub wave_id: String,
    /// Changes are measured within one pulse: its audience is the same.
    pub pulse_id: String,
    pub wave_number: Option<i32>,
    pub closed_at: Option<DateTime<Utc>>,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(flatten)]
    pub figures: Option<ThemeFigures>,
    /// Since the previous wave of the same pulse that published the theme
    /// for this group; none for the first, or when this one is suppressed.
    pub change: Option<Change>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThemeTrend {
    pub theme: Theme,
    /// Oldest wave first.
    pub points: Vec<TrendPoint>,
}

/// A group's themes across the closed waves that asked them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Trends {
    pub group: GroupRef,
    pub themes: Vec<ThemeTrend>,
}

/// Theme trends for the organisation; for a manager, their subtree.
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Trends), Refused)
)]
#[get("/results/trends")]
pub async fn organisation_trends(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<Trends>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let group = own_view(&reach);
    trends(db, caller, reach, group).await
}

/// Theme trends for a team's own members (`scope=team`) or its subtree
/// (`scope=subtree`, the default).
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id"), HeatmapQuery),
    responses((status = 200, description = "OK", body = Trends), Refused, Missing)
)]
#[get("/results/trends/teams/{team_id}")]
pub async fn team_trends(
    db: web::Data<Db>,
    caller: Caller,
    team: web::Path<String>,
    query: web::Query<HeatmapQuery>,
) -> Result<web::Json<Trends>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let team = team.into_inner();
    let group = match query.scope {
        RowScope::Team => Group::Team(team),
        RowScope::Subtree => Group::Subtree(team),
    };
    trends(db, caller, reach, group).await
}

async fn trends(
    db: web::Data<Db>,
    caller: Caller,
    reach: Reach,
    group: Group,
) -> Result<web::Json<Trends>, ApiError> {
    let organisation_id = caller.organisation_id().to_owned();
    let trends = db
        .run(move |conn| trends_of(conn, &organisation_id, &reach, &group))
        .await?;
    Ok(web::Json(trends))
}

fn trends_of(
    conn: &mut DbConnection,
    organisation_id: &str,
    reach: &Reach,
    group: &Group,
) -> Result<Trends, ApiError> {
    let group_ref = group_ref(&super::lineage(conn, organisation_id, group)?, reach, group)?;
    let (group_kind, team_id) = store::group_key(group, organisation_id);
    let mut by_theme: BTreeMap<usize, ThemeTrend> = BTreeMap::new();
    for row in store::theme_history(conn, organisation_id, group_kind, Some(&team_id))? {
        let Some(theme) = Theme::parse(&row.cell.measure) else {
            continue;
        };
        let order = Theme::ALL.iter().position(|t| *t == theme).unwrap_or(0);
        let trend = by_theme.entry(order).or_insert_with(|| ThemeTrend {
            theme,
            points: Vec::new(),
        });
        let (suppressed, reason, figures) = decode::<ThemeFigures>(&row.cell)?;
        let change = figures.as_ref().and_then(|now| {
            trend
                .points
                .iter()
                .rev()
                .find(|p| p.pulse_id == row.pulse_id && p.figures.is_some())
                .map(|before| change(&before.wave_id, before.figures.as_ref(), Some(now)))
        });
        trend.points.push(TrendPoint {
            wave_id: row.wave_id,
            pulse_id: row.pulse_id,
            wave_number: row.wave_number,
            closed_at: row.closed_at.map(|t| t.and_utc()),
            suppressed,
            reason,
            figures,
            change,
        });
    }
    Ok(Trends {
        group: group_ref,
        themes: by_theme.into_values().collect(),
    })
}
