//! Bulk import of people from an HR system, as CSV or JSON, all or nothing.
//!
//! Each row is matched to a person by `external_id`, else by `email`. A row
//! whose external id and email point at two different people is an error;
//! a person found by email who has no external id yet adopts the row's.
//! `team` is a team's external id or its path of names from the root
//! (`Engineering/Platform`); path segments that don't exist are created.
//! Every change goes through [`super::save`], so an import records the same
//! history events as the API. The whole import runs in one transaction:
//! a file with any bad row changes nothing, and the caller learns every bad
//! row and field (up to [`MAX_ERRORS`]).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, PersonRow};
use super::{PersonInput, Saved, save};
use crate::db::DbConnection;
use crate::domain::{
    EmailAddress, ExitKind, ExternalId, Invalid, JobTitle, Language, Level, PersonName,
    PersonStatus, TeamName,
};
use crate::error::{ApiError, FieldError};
use crate::org::teams::{TeamTree, store as team_store};

/// The columns an import may have; `email`, `name` and `team` are required.
pub const COLUMNS: [&str; 10] = [
    "external_id",
    "email",
    "name",
    "team",
    "language",
    "job_title",
    "level",
    "status",
    "exit_kind",
    "effective_date",
];
const REQUIRED: [&str; 3] = ["email", "name", "team"];
pub const MAX_ERRORS: usize = 200;

/// One row as given: column → trimmed, non-empty value, and which columns
/// the row has at all. A column the row lacks leaves that field of an
/// existing person as it is; an empty cell (or JSON null) clears it.
/// `number` counts data rows from 1 (a CSV header is not a row).
#[derive(Debug, Clone)]
pub struct RawRow {
    pub number: usize,
    pub fields: HashMap<String, String>,
    pub columns: HashSet<String>,
}

impl RawRow {
    fn get(&self, column: &str) -> Option<&str> {
        self.fields.get(column).map(String::as_str)
    }

    fn has(&self, column: &str) -> bool {
        self.columns.contains(column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Touch only the rows given.
    #[default]
    Upsert,
    /// Also mark everyone absent from the file as left (a complete export).
    Full,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    pub mode: Mode,
    pub dry_run: bool,
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Marked as left because a `full` import did not list them.
    pub left: usize,
    pub teams_created: usize,
}

fn column_error(detail: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: "columns".into(),
        pointer: String::new(),
        detail: detail.into(),
    }])
}

fn check_columns<'a>(columns: impl Iterator<Item = &'a str>) -> Result<(), ApiError> {
    let columns: Vec<&str> = columns.collect();
    if let Some(unknown) = columns.iter().find(|c| !COLUMNS.contains(c)) {
        return Err(column_error(format!(
            "unknown column `{unknown}`; the columns are {}",
            COLUMNS.join(", ")
        )));
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|r| !columns.contains(r))
        .collect();
    if !missing.is_empty() {
        return Err(column_error(format!(
            "missing column(s): {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Reads CSV with a header row (UTF-8, comma-separated, an Excel BOM allowed).
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<RawRow>, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::Malformed(format!("the CSV is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::Malformed(format!("the CSV header cannot be read: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    check_columns(headers.iter().map(String::as_str))?;
    let columns: HashSet<String> = headers.iter().cloned().collect();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| ApiError::Malformed(format!("CSV row {}: {e}", index + 1)))?;
        let fields = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.clone(), v.to_owned()))
            .collect();
        rows.push(RawRow {
            number: index + 1,
            fields,
            columns: columns.clone(),
        });
    }
    Ok(rows)
}

/// Reads JSON: an array of row objects, or `{"rows": [...]}`. Values may be
/// strings, numbers or null.
pub fn parse_json(bytes: &[u8]) -> Result<Vec<RawRow>, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut object) => match object.remove("rows") {
            Some(serde_json::Value::Array(items)) => items,
            _ => {
                return Err(column_error(
                    "expected an array of rows, or {\"rows\": [...]}",
                ));
            }
        },
        _ => {
            return Err(column_error(
                "expected an array of rows, or {\"rows\": [...]}",
            ));
        }
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let number = index + 1;
        let serde_json::Value::Object(object) = item else {
            errors.push(FieldError::new(
                format!("rows.{number}"),
                "must be an object",
            ));
            continue;
        };
        let mut fields = HashMap::new();
        let columns: HashSet<String> = object.keys().cloned().collect();
        for (key, value) in object {
            if !COLUMNS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    format!("rows.{number}.{key}"),
                    "is not a known column",
                ));
                continue;
            }
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.trim().to_owned(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    errors.push(FieldError::new(
                        format!("rows.{number}.{key}"),
                        "must be a string or a number",
                    ));
                    continue;
                }
            };
            if !text.is_empty() {
                fields.insert(key, text);
            }
        }
        rows.push(RawRow {
            number,
            fields,
            columns,
        });
    }
    if !errors.is_empty() {
        return Err(capped(errors));
    }
    Ok(rows)
}

fn capped(mut errors: Vec<FieldError>) -> ApiError {
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        errors.push(FieldError {
            field: "rows".into(),
            pointer: "/rows".into(),
            detail: format!("{more} more error(s) not shown"),
        });
    }
    ApiError::Validation(errors)
}

/// Where a row's team is.
#[derive(Debug, Clone)]
enum TeamRef {
    Existing(String),
    /// The names below `parent` (an existing team, or the root) still to create.
    Create {
        parent: Option<String>,
        missing: Vec<TeamName>,
    },
}

fn resolve_team(
    tree: &TeamTree,
    by_external: &HashMap<&str, &str>,
    value: &str,
) -> Result<TeamRef, Invalid> {
    if let Some(id) = by_external.get(value) {
        return Ok(TeamRef::Existing((*id).to_owned()));
    }
    let names = value
        .split('/')
        .map(TeamName::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Invalid::new(format!(
                "is neither a team's external id nor a team path: a name {e}"
            ))
        })?;
    let mut parent: Option<String> = None;
    for (depth, name) in names.iter().enumerate() {
        let child = tree.all().find(|t| {
            t.parent_id.as_deref() == parent.as_deref()
                && t.name.eq_ignore_ascii_case(name.as_str())
        });
        match child {
            Some(team) => parent = Some(team.id.clone()),
            None => {
                return Ok(TeamRef::Create {
                    parent,
                    missing: names[depth..].to_vec(),
                });
            }
        }
    }
    Ok(TeamRef::Existing(parent.unwrap_or_default()))
}

/// A row checked and matched, ready to apply.
struct Plan {
    existing: Option<usize>,
    input: PersonInput,
    team: TeamRef,
    effective: NaiveDate,
}

fn parse<T>(
    row: &RawRow,
    column: &str,
    result: Result<T, Invalid>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    result
        .map_err(|e| {
            errors.push(FieldError::new(
                format!("rows.{}.{column}", row.number),
                e.0,
            ))
        })
        .ok()
}

/// Checks every row against the organisation's people and teams, then (if
/// all are good) applies them. Runs inside the caller's write transaction.
pub fn run(
    conn: &mut DbConnection,
    organisation_id: &str,
    rows: &[RawRow],
    mode: Mode,
    today: NaiveDate,
    default_language: Language,
) -> Result<ImportSummary, ApiError> {
    let tree = TeamTree::new(team_store::list(conn, organisation_id)?);
    let team_by_external: HashMap<&str, &str> = tree
        .all()
        .filter_map(|t| t.external_id.as_deref().map(|e| (e, t.id.as_str())))
        .collect();
    let people: Vec<PersonRow> = store::all_in(conn, organisation_id)?;
    let by_external: HashMap<&str, usize> = people
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.external_id.as_deref().map(|e| (e, i)))
        .collect();
    let by_email: HashMap<&str, usize> = people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.email.as_str(), i))
        .collect();

    let mut errors = Vec::new();
    let mut plans = Vec::with_capacity(rows.len());
    let mut seen_email: HashMap<String, usize> = HashMap::new();
    let mut seen_external: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let before = errors.len();
        for column in REQUIRED {
            if row.get(column).is_none() {
                errors.push(FieldError::new(
                    format!("rows.{}.{column}", row.number),
                    "is required",
                ));
            }
        }
        let email = row
            .get("email")
            .and_then(|v| parse(row, "email", EmailAddress::parse(v), &mut errors));
        let name = row
            .get("name")
            .and_then(|v| parse(row, "name", PersonName::parse(v), &mut errors));
        let team = row.get("team").and_then(|v| {
            parse(
                row,
                "team",
                resolve_team(&tree, &team_by_external, v),
                &mut errors,
            )
        });
        let external_id = row
            .get("external_id")
            .map(|v| parse(row, "external_id", ExternalId::parse(v), &mut errors));
        let language = match row.get("language") {
            Some(v) => parse(
                row,
                "language",
                v.to_ascii_lowercase().parse::<Language>(),
                &mut errors,
            ),
            None => Some(default_language),
        };
        let job_title = row
            .get("job_title")
            .map(|v| parse(row, "job_title", JobTitle::parse(v), &mut errors));
        let level = row.get("level").map(|v| {
            let number = v
                .parse::<i64>()
                .map_err(|_| Invalid::new("must be a whole number"));
            parse(row, "level", number.and_then(Level::new), &mut errors)
        });
        let status = match row.get("status") {
            Some(v) => parse(
                row,
                "status",
                v.to_ascii_lowercase().parse::<PersonStatus>(),
                &mut errors,
            ),
            None => Some(PersonStatus::Active),
        };
        let exit_kind = row.get("exit_kind").map(|v| {
            parse(
                row,
                "exit_kind",
                v.to_ascii_lowercase().parse::<ExitKind>(),
                &mut errors,
            )
        });
        let effective = match row.get("effective_date") {
            Some(v) => parse(
                row,
                "effective_date",
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| Invalid::new("must be a date as YYYY-MM-DD")),
                &mut errors,
            ),
            None => Some(today),
        };
        if errors.len() > before {
            continue;
        }
        let (Some(email), Some(name), Some(team), Some(language), Some(status), Some(effective)) =
            (email, name, team, language, status, effective)
        else {
            continue;
        };
        let external_id = external_id.flatten();

        // Within the file, each person once.
        let field = |column: &str| format!("rows.{}.{column}", row.number);
        if let Some(earlier) = seen_email.insert(email.as_str().to_owned(), row.number) {
            errors.push(FieldError::new(
                field("email"),
                format!("repeats row {earlier}"),
            ));
            continue;
        }
        if let Some(ext) = &external_id
            && let Some(earlier) = seen_external.insert(ext.as_str().to_owned(), row.number)
        {
            errors.push(FieldError::new(
                field("external_id"),
                format!("repeats row {earlier}"),
            ));
            continue;
        }

        let by_ext = external_id
            .as_ref()
            .and_then(|e| by_external.get(e.as_str()).copied());
        let by_mail = by_email.get(email.as_str()).copied();
        let existing = match (by_ext, by_mail) {
            (Some(a), Some(b)) if a != b => {
                errors.push(FieldError::new(
                    field("external_id"),
                    "belongs to a different person than the email address",
                ));
                continue;
            }
            (Some(a), _) => Some(a),
            (None, Some(b)) => match (&external_id, &people[b].external_id) {
                (Some(_), Some(_)) => {
                    errors.push(FieldError::new(
                        field("email"),
                        "belongs to a person with another external id",
                    ));
                    continue;
                }
                _ => Some(b),
            },
            (None, None) => None,
        };
        let current = existing.map(|i| &people[i]);
        let external_id = external_id.or_else(|| {
            current.and_then(|p| {
                p.external_id
                    .as_deref()
                    .and_then(|e| ExternalId::parse(e).ok())
            })
        });
        let kept = current
            .map(PersonInput::from_row)
            .transpose()
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored person: {e}")))?;
        // A column the file lacks keeps what is stored; a new person gets defaults.
        let job_title = if row.has("job_title") {
            job_title.flatten()
        } else {
            kept.as_ref().and_then(|k| k.job_title.clone())
        };
        let level = if row.has("level") {
            level.flatten()
        } else {
            kept.as_ref().and_then(|k| k.level)
        };
        let language = match (row.get("language"), &kept) {
            (None, Some(k)) => k.language,
            _ => language,
        };
        let status = match (row.get("status"), &kept) {
            (None, Some(k)) => k.status,
            _ => status,
        };
        let exit_kind = match (row.has("exit_kind"), &kept) {
            (false, Some(k)) => k.exit_kind,
            _ => exit_kind.flatten(),
        };
        plans.push(Plan {
            existing,
            input: PersonInput {
                email,
                name,
                team_id: String::new(),
                language,
                job_title,
                level,
                external_id,
                status,
                exit_kind,
            },
            team,
            effective,
        });
    }
    if !errors.is_empty() {
        return Err(capped(errors));
    }

    let mut summary = ImportSummary {
        mode,
        rows: rows.len(),
        ..ImportSummary::default()
    };
    let mut created_teams: HashMap<(Option<String>, String), String> = HashMap::new();
    let mut touched: HashSet<usize> = HashSet::new();
    for mut plan in plans {
        plan.input.team_id = match plan.team {
            TeamRef::Existing(id) => id,
            TeamRef::Create {
                mut parent,
                missing,
            } => {
                for name in missing {
                    let key = (parent.clone(), name.as_str().to_lowercase());
                    let id = match created_teams.get(&key) {
                        Some(id) => id.clone(),
                        None => {
                            let row = team_store::insert(
                                conn,
                                &team_store::NewTeam {
                                    organisation_id,
                                    parent_id: parent.as_deref(),
                                    name: name.as_str(),
                                    external_id: None,
                                },
                            )?;
                            summary.teams_created += 1;
                            created_teams.insert(key, row.id.clone());
                            row.id
                        }
                    };
                    parent = Some(id);
                }
                parent.unwrap_or_default()
            }
        };
        if let Some(index) = plan.existing {
            touched.insert(index);
        }
        let existing = plan.existing.map(|i| &people[i]);
        match save(conn, organisation_id, existing, &plan.input, plan.effective)?.1 {
            Saved::Created => summary.created += 1,
            Saved::Updated => summary.updated += 1,
            Saved::Unchanged => summary.unchanged += 1,
        }
    }
    if mode == Mode::Full {
        for (index, person) in people.iter().enumerate() {
            if touched.contains(&index) {
                continue;
            }
            if person.status == PersonStatus::Left.as_str() {
                continue;
            }
            let mut input = PersonInput::from_row(person)
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored person: {e}")))?;
            input.status = PersonStatus::Left;
            input.exit_kind = Some(ExitKind::Other);
            save(conn, organisation_id, Some(person), &input, today)?;
            summary.left += 1;
        }
    }
    Ok(summary)
}
