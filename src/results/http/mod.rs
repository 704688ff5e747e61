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

pub use dashboards::LatestCells;
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

/// A cell's figures as stored (a JSON object that serde_json wrote), for
/// answers that hold thousands of cells: see [`with_figures`].
#[derive(Debug)]
pub struct StoredFigures(String);

impl<'de> Deserialize<'de> for StoredFigures {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        serde_json::to_string(&fields)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// `own` (which serialises to a JSON object) with the stored figures'
/// fields after its own, as `#[serde(flatten)]` would give, but with the
/// figures' text copied as it is: their numbers are never decoded and
/// encoded again.
pub(super) fn with_figures<S: serde::Serializer>(
    own: &impl Serialize,
    figures: Option<&StoredFigures>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let mut json = serde_json::to_string(own).map_err(S::Error::custom)?;
    if let Some(StoredFigures(figures)) = figures {
        let fields = figures
            .trim()
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
            .ok_or_else(|| S::Error::custom("stored figures that are not an object"))?;
        if !fields.trim().is_empty() {
            json.pop();
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(fields);
            json.push('}');
        }
    }
    // Checked once more on the way out, so a damaged row cannot break the
    // answer's JSON.
    serde_json::value::RawValue::from_string(json)
        .map_err(S::Error::custom)?
        .serialize(serializer)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Own {
        wave_id: &'static str,
        suppressed: bool,
    }

    fn spliced(figures: Option<&str>) -> Result<serde_json::Value, serde_json::Error> {
        struct Cell(Option<StoredFigures>);
        impl Serialize for Cell {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let own = Own {
                    wave_id: "w\"1",
                    suppressed: self.0.is_none(),
                };
                with_figures(&own, self.0.as_ref(), s)
            }
        }
        let cell = Cell(figures.map(|f| StoredFigures(f.to_owned())));
        serde_json::to_string(&cell).and_then(|text| serde_json::from_str(&text))
    }

    #[test]
    fn stored_figures_are_spliced_in_as_flatten_would() {
        assert_eq!(
            spliced(Some(
                r#"{"n":12,"score":4.6,"shares":{"favourable":0.5},"sd":null}"#
            ))
            .unwrap(),
            json!({"wave_id": "w\"1", "suppressed": false, "n": 12, "score": 4.6,
                   "shares": {"favourable": 0.5}, "sd": null})
        );
        assert_eq!(
            spliced(None).unwrap(),
            json!({"wave_id": "w\"1", "suppressed": true})
        );
        assert_eq!(
            spliced(Some(" {} ")).unwrap(),
            json!({"wave_id": "w\"1", "suppressed": false})
        );
    }

    #[test]
    fn damaged_figures_fail_instead_of_breaking_the_json() {
        assert!(spliced(Some("[1,2]")).is_err());
        assert!(spliced(Some(r#"{"n":12,"#)).is_err());
        // Braces at both ends, but two objects: caught on the way out.
        assert!(spliced(Some(r#"{"n":12}, "x": {}"#)).is_err());
    }
}
