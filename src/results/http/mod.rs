//! The results API: everything HR, managers and integrations read. Needs
//! `ReadResults`; a manager reads groups inside their own subtree only,
//! under the same rules, so every role sees a cell the same way.
//! - [`wave`]: one wave's results for a group;
//! - [`dashboards`]: heatmaps and trends;
//! - [`feed`]: every published cell, incrementally, JSON or CSV.

mod dashboards;
mod feed;
mod wave;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::CellRow;
use super::suppress::{Group, Suppressed};
use crate::auth::caller::Reach;
use crate::error::ApiError;
use crate::org::teams::TeamTree;

pub use wave::WaveResults;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(wave::organisation_results)
        .service(wave::team_results)
        .service(wave::subtree_results)
        .service(dashboards::heatmap)
        .service(dashboards::wave_heatmap)
        .service(dashboards::organisation_trends)
        .service(dashboards::team_trends)
        .service(feed::feed);
}

/// Which group a result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// A team's own members.
    Team,
    /// A team and every team below it.
    Subtree,
    Organisation,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupRef {
    pub kind: GroupKind,
    /// None for the organisation.
    pub team_id: Option<String>,
    /// The team's path of names (`Engineering/Platform`), as it is now.
    pub team_path: Option<String>,
}

/// Why a cell has no figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Fewer than k (comments: max(10, k)).
    BelowMinimum,
    /// Publishing it would let a smaller group's figures be computed by
    /// subtraction from others (DESIGN.md, invariant 3).
    Complementary,
}

impl From<Suppressed> for Reason {
    fn from(why: Suppressed) -> Self {
        match why {
            Suppressed::BelowMinimum => Self::BelowMinimum,
            Suppressed::Complementary => Self::Complementary,
        }
    }
}

/// A stored cell's figures as stored (JSON), or why it has none.
pub(super) fn stored(row: &CellRow) -> Result<Result<&str, Reason>, ApiError> {
    match (&row.suppressed, &row.figures) {
        (Some(why), _) => Ok(Err(match why.as_str() {
            "complementary" => Reason::Complementary,
            _ => Reason::BelowMinimum,
        })),
        (None, Some(figures)) => Ok(Ok(figures)),
        (None, None) => Err(ApiError::Unexpected(anyhow::anyhow!(
            "a stored result with neither figures nor a reason"
        ))),
    }
}

/// A stored cell's figures, or why it has none.
pub(super) fn decode<F: serde::de::DeserializeOwned>(
    row: &CellRow,
) -> Result<(bool, Option<Reason>, Option<F>), ApiError> {
    match stored(row)? {
        Err(reason) => Ok((true, Some(reason), None)),
        Ok(figures) => serde_json::from_str(figures)
            .map(|f| (false, None, Some(f)))
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("a stored result: {e}"))),
    }
}

/// A cell's figures passed through as stored (a JSON object), for answers
/// that hold thousands of cells: flattened into the cell, its fields are
/// copied as they are, numbers and nested objects never decoded and
/// encoded again.
#[derive(Debug)]
pub struct StoredFigures(String);

impl Serialize for StoredFigures {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields: std::collections::BTreeMap<&str, &serde_json::value::RawValue> =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.collect_map(fields)
    }
}

impl<'de> Deserialize<'de> for StoredFigures {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        serde_json::to_string(&fields)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// How a group is named in answers, once it is known to be within the
/// caller's reach; anything outside it, an unknown team included, is 404.
pub(super) fn group_ref(
    tree: &TeamTree,
    reach: &Reach,
    group: &Group,
) -> Result<GroupRef, ApiError> {
    let (kind, team) = match group {
        Group::Team(team) => (GroupKind::Team, Some(team)),
        Group::Subtree(team) => (GroupKind::Subtree, Some(team)),
        Group::Organisation => (GroupKind::Organisation, None),
    };
    let within = match (team, reach) {
        (None, Reach::Organisation) => true,
        // The organisation is not a manager's to read.
        (None, Reach::Subtree(_)) => false,
        (Some(team), Reach::Organisation) => tree.get(team).is_some(),
        (Some(team), Reach::Subtree(root)) => tree.is_within(team, root),
    };
    if !within {
        return Err(ApiError::NotFound);
    }
    Ok(GroupRef {
        kind,
        team_id: team.cloned(),
        team_path: team.map(|t| tree.path(t)),
    })
}

/// The part of the team tree that [`group_ref`] needs for `group`: its
/// team and that team's ancestors, a handful of rows however large the
/// organisation.
pub(super) fn lineage(
    conn: &mut crate::db::DbConnection,
    organisation_id: &str,
    group: &Group,
) -> diesel::QueryResult<TeamTree> {
    Ok(TeamTree::new(match group {
        Group::Team(team) | Group::Subtree(team) => {
            crate::org::teams::store::lineage(conn, organisation_id, team)?
        }
        Group::Organisation => Vec::new(),
    }))
}

/// The group a caller's organisation-wide path stands for: a manager's is
/// their subtree.
pub(super) fn own_view(reach: &Reach) -> Group {
    match reach {
        Reach::Organisation => Group::Organisation,
        Reach::Subtree(root) => Group::Subtree(root.clone()),
    }
}
