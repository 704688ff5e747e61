//! `/api/v1/teams`: the team tree. Reading needs `ReadTeams` (a manager sees
//! their own subtree), changing needs `WritePeople`.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::TeamTree;
use super::store::{self, TeamRow};
use crate::auth::caller::{Caller, Permission, Reach};
use crate::db::{self, Db, DbConnection};
use crate::domain::{ExternalId, TeamName};
use crate::error::{ApiError, InvalidFields, Missing, Problem, Refused};
use crate::http::ValidJson;
use crate::http::json::{double_option, rule};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_teams)
        .service(create_team)
        .service(get_team)
        .service(update_team)
        .service(delete_team);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    /// Names from the root down, e.g. `Engineering/Platform`.
    pub path: String,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Team {
    fn from_row(row: &TeamRow, tree: &TeamTree) -> Self {
        Self {
            id: row.id.clone(),
            parent_id: row.parent_id.clone(),
            name: row.name.clone(),
            path: tree.path(&row.id),
            external_id: row.external_id.clone(),
            created_at: row.created_at.and_utc(),
        }
    }
}

fn valid_team_name(value: &str) -> Result<(), validator::ValidationError> {
    rule("team_name", TeamName::parse, value)
}

fn valid_external_id(value: &str) -> Result<(), validator::ValidationError> {
    rule("external_id", ExternalId::parse, value)
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct CreateTeam {
    #[validate(custom(function = "valid_team_name"))]
    pub name: String,
    /// The parent team; absent or null for a top-level team.
    pub parent_id: Option<String>,
    #[validate(custom(function = "valid_external_id"))]
    pub external_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct UpdateTeam {
    #[validate(custom(function = "valid_team_name"))]
    pub name: Option<String>,
    /// Move the team: a team id, or null for top level. Absent: stay.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
    /// Null clears it. Absent: unchanged.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
}

fn load_tree(conn: &mut DbConnection, organisation_id: &str) -> Result<TeamTree, ApiError> {
    Ok(TeamTree::new(store::list(conn, organisation_id)?))
}

/// A team the caller can see; anything else, another organisation's
/// included, is 404.
fn visible<'t>(tree: &'t TeamTree, reach: &Reach, id: &str) -> Result<&'t TeamRow, ApiError> {
    let team = tree.get(id).ok_or(ApiError::NotFound)?;
    match reach {
        Reach::Organisation => Ok(team),
        Reach::Subtree(root) if tree.is_within(id, root) => Ok(team),
        Reach::Subtree(_) => Err(ApiError::NotFound),
    }
}

/// Every team the caller can see, ordered by path.
#[utoipa::path(
    tag = "teams",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = Vec<Team>),
        Refused,
    )
)]
#[get("/teams")]
pub async fn list_teams(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<Vec<Team>>, ApiError> {
    let reach = caller.require(Permission::ReadTeams)?;
    let organisation_id = caller.organisation_id().to_owned();
    let tree = db
        .run(move |conn| load_tree(conn, &organisation_id))
        .await?;
    let rows: Vec<&TeamRow> = match &reach {
        Reach::Organisation => tree.all().collect(),
        Reach::Subtree(root) => tree.subtree(root),
    };
    let mut teams: Vec<Team> = rows.into_iter().map(|r| Team::from_row(r, &tree)).collect();
    teams.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.id.cmp(&b.id)));
    Ok(web::Json(teams))
}

/// One team.
#[utoipa::path(
    tag = "teams",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "OK", body = Team),
        Refused,
        Missing,
    )
)]
#[get("/teams/{id}")]
pub async fn get_team(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Team>, ApiError> {
    let reach = caller.require(Permission::ReadTeams)?;
    let organisation_id = caller.organisation_id().to_owned();
    let tree = db
        .run(move |conn| load_tree(conn, &organisation_id))
        .await?;
    let team = visible(&tree, &reach, &id)?;
    Ok(web::Json(Team::from_row(team, &tree)))
}

/// Create a team, at the top level or under a parent.
#[utoipa::path(
    tag = "teams",
    security(("bearer" = [])),
    request_body = CreateTeam,
    responses(
        (status = 201, description = "Created", body = Team),
        Refused,
        (status = 409, description = "A sibling has this name, or the external id is taken", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/teams")]
pub async fn create_team(
    db: web::Data<Db>,
    caller: Caller,
    body: ValidJson<CreateTeam>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePeople)?;
    let request = body.into_inner()?;
    let name = TeamName::parse(&request.name).map_err(|e| ApiError::field("name", e.0))?;
    let external_id = request
        .external_id
        .as_deref()
        .map(ExternalId::parse)
        .transpose()
        .map_err(|e| ApiError::field("external_id", e.0))?;
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller.audit("team.created");
    let team = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let tree = load_tree(conn, &organisation_id)?;
                let parent = request.parent_id.as_deref();
                if let Some(parent) = parent
                    && tree.get(parent).is_none()
                {
                    return Err(ApiError::field(
                        "parent_id",
                        "is not a team of this organisation",
                    ));
                }
                check_unique(&tree, parent, &name, external_id.as_ref(), None)?;
                let row = store::insert(
                    conn,
                    &store::NewTeam {
                        organisation_id: &organisation_id,
                        parent_id: parent,
                        name: name.as_str(),
                        external_id: external_id.as_ref().map(ExternalId::as_str),
                    },
                )?;
                audit
                    .on("team", &row.id)
                    .with(serde_json::json!({"name": row.name, "parent_id": row.parent_id}))
                    .record(conn)?;
                let tree = load_tree(conn, &organisation_id)?;
                Ok(Team::from_row(&row, &tree))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(team))
}

fn check_unique(
    tree: &TeamTree,
    parent: Option<&str>,
    name: &TeamName,
    external_id: Option<&ExternalId>,
    except: Option<&str>,
) -> Result<(), ApiError> {
    if tree.sibling_named(parent, name.as_str(), except) {
        return Err(ApiError::Conflict(
            "A team with this name already exists under the same parent.".into(),
        ));
    }
    if let Some(external_id) = external_id
        && tree.all().any(|t| {
            t.external_id.as_deref() == Some(external_id.as_str()) && Some(t.id.as_str()) != except
        })
    {
        return Err(ApiError::Conflict(
            "Another team already has this external id.".into(),
        ));
    }
    Ok(())
}

/// Rename a team, change its external id, or move it under another parent
/// (a move into its own subtree is refused).
#[utoipa::path(
    tag = "teams",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The team's id")),
    request_body = UpdateTeam,
    responses(
        (status = 200, description = "OK", body = Team),
        Refused,
        Missing,
        (status = 409, description = "See the problem document", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[patch("/teams/{id}")]
pub async fn update_team(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<UpdateTeam>,
) -> Result<web::Json<Team>, ApiError> {
    caller.require(Permission::WritePeople)?;
    let request = body.into_inner()?;
    let name = request
        .name
        .as_deref()
        .map(TeamName::parse)
        .transpose()
        .map_err(|e| ApiError::field("name", e.0))?;
    let external_id = match request.external_id.as_ref() {
        Some(Some(raw)) => Some(Some(
            ExternalId::parse(raw).map_err(|e| ApiError::field("external_id", e.0))?,
        )),
        Some(None) => Some(None),
        None => None,
    };
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("team.updated");
    let team = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let tree = load_tree(conn, &organisation_id)?;
                let current = tree.get(&id).ok_or(ApiError::NotFound)?;
                let parent: Option<String> = match request.parent_id {
                    Some(Some(parent)) => {
                        if tree.get(&parent).is_none() {
                            return Err(ApiError::field(
                                "parent_id",
                                "is not a team of this organisation",
                            ));
                        }
                        if tree.is_within(&parent, &id) {
                            return Err(ApiError::field(
                                "parent_id",
                                "is this team or one below it: the move would make a cycle",
                            ));
                        }
                        Some(parent)
                    }
                    Some(None) => None,
                    None => current.parent_id.clone(),
                };
                let name = match name {
                    Some(name) => name,
                    None => TeamName::parse(&current.name)
                        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored name: {e}")))?,
                };
                let external_id = match external_id {
                    Some(new) => new,
                    None => current
                        .external_id
                        .as_deref()
                        .map(ExternalId::parse)
                        .transpose()
                        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored id: {e}")))?,
                };
                check_unique(
                    &tree,
                    parent.as_deref(),
                    &name,
                    external_id.as_ref(),
                    Some(&id),
                )?;
                store::update(
                    conn,
                    &id,
                    parent.as_deref(),
                    name.as_str(),
                    external_id.as_ref().map(ExternalId::as_str),
                )?;
                audit
                    .on("team", &id)
                    .with(serde_json::json!({"name": name.as_str(), "parent_id": parent}))
                    .record(conn)?;
                let tree = load_tree(conn, &organisation_id)?;
                let row = tree.get(&id).ok_or(ApiError::NotFound)?;
                Ok(Team::from_row(row, &tree))
            })
        })
        .await?;
    Ok(web::Json(team))
}

/// Delete a team. Refused while it has child teams or accounts (and, once
/// people exist, people): move or remove them first.
#[utoipa::path(
    tag = "teams",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 204, description = "Deleted"),
        Refused,
        Missing,
        (status = 409, description = "The team still has child teams or accounts", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/teams/{id}")]
pub async fn delete_team(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePeople)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("team.deleted");
    db.run(move |conn| {
        db::write(conn, |conn| {
            store::find_in(conn, &organisation_id, &id)?;
            if store::count_children(conn, &id)? > 0 {
                return Err(ApiError::Conflict(
                    "The team has child teams: move or delete them first.".into(),
                ));
            }
            if crate::org::people::store::count_in_team(conn, &id)? > 0 {
                return Err(ApiError::Conflict(
                    "People belong to this team (some may have left): move them first.".into(),
                ));
            }
            if store::count_accounts(conn, &id)? > 0 {
                return Err(ApiError::Conflict(
                    "Manager accounts are attached to this team: reassign them first.".into(),
                ));
            }
            // A pulse's audience must not shrink behind HR's back.
            if let Some(pulse) =
                crate::surveys::pulses::store::naming_team(conn, &organisation_id, &id)?
            {
                return Err(ApiError::Conflict(format!(
                    "The pulse \"{pulse}\" names this team in its audience: change the pulse first."
                )));
            }
            store::delete(conn, &id)?;
            audit.on("team", &id).record(conn)?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
