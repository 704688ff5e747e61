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

/// A stored cell's figures, or why it has none.
pub(super) fn decode<F: serde::de::DeserializeOwned>(
    row: &CellRow,
) -> Result<(bool, Option<Reason>, Option<F>), ApiError> {
    match (&row.suppressed, &row.figures) {
        (Some(why), _) => {
            let reason = match why.as_str() {
                "complementary" => Reason::Complementary,
                _ => Reason::BelowMinimum,
            };
            Ok((true, Some(reason), None))
        }
        (None, Some(figures)) => serde_json::from_str(figures)
            .map(|f| (false, None, Some(f)))
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("a stored result: {e}"))),
        (None, None) => Err(ApiError::Unexpected(anyhow::anyhow!(
            "a stored result with neither figures nor a reason"
        ))),
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

/// The group a caller's organisation-wide path stands for: a manager's is
/// their subtree.
pub(super) fn own_view(reach: &Reach) -> Group {
    match reach {
        Reach::Organisation => Group::Organisation,
        Reach::Subtree(root) => Group::Subtree(root.clone()),
    }
}
