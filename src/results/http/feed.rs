//! `GET /results/feed`: every published cell, for integrations that pull
//! incrementally. Rows come in a fixed order (publication, then group, then
//! measure); every row carries its own `cursor`, and a client that stores
//! the last one asks for what came after it next time. JSON by default,
//! CSV with `Accept: text/csv`. The body is streamed in chunks read one
//! after another, so a page of a million rows takes the memory of one
//! chunk. The ETag changes whenever a publication is added or removed, so
//! a poll that finds nothing new is a 304.
//!
//! A recomputation (a raised k) is a new publication: its rows come again,
//! under a higher `publication`, and replace the wave's earlier ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::auth::caller::{Caller, Permission, Reach};
use crate::db::Db;
use crate::error::{ApiError, Refused};
use crate::org::teams::TeamTree;
use crate::results::store::{self, FeedKey, FeedRow};

/// Rows read from the database at a time.
const CHUNK: i64 = 5_000;
const DEFAULT_LIMIT: i64 = 10_000;
const MAX_LIMIT: i64 = 1_000_000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `cursor` of the last row already read; none to start at the
    /// beginning.
    pub cursor: Option<String>,
    /// Rows in this page: 1 to 1,000,000 (default 10,000).
    pub limit: Option<i64>,
}

/// A page of the feed (documentation only: the body is streamed).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FeedPage {
    rows: Vec<FeedRowDoc>,
    /// The cursor of the last row (or the one asked with, when no row
    /// followed it): ask with it next time.
    next_cursor: Option<String>,
}

/// One row of the feed (documentation only).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FeedRowDoc {
    /// This row's place: ask with it for what comes after.
    cursor: String,
    /// Grows with every publication; a wave published again (a raised k)
    /// comes again under a higher one, replacing its earlier rows.
    publication: i32,
    wave_id: String,
    pulse_id: String,
    published_at: chrono::DateTime<chrono::Utc>,
    /// The k the cells were published with.
    min_group_size: i32,
    /// `team`, `subtree` or `organisation`.
    group_kind: String,
    /// None for the organisation.
    team_id: Option<String>,
    /// `participation`, `question`, `theme` or `comments`.
    measure_kind: String,
    /// The question's id or the theme; empty for participation.
    measure: String,
    suppressed: bool,
    /// `below_minimum` or `complementary` when suppressed.
    reason: Option<String>,
    n: Option<i32>,
    /// The measure's figures, as in the wave results.
    #[schema(value_type = Option<Object>)]
    figures: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// Published cells since a cursor, as JSON (`{"rows": […], "next_cursor":
/// …}`) or, with `Accept: text/csv`, as CSV with one column per figure.
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(FeedQuery),
    responses(
        (status = 200, description = "A page of rows, oldest publication first; in CSV the figures are flattened into columns (`mean`, `sd`, the shares, `score`, `invited`…, `distribution` as `a|b|c`) and comments' texts left out.", content(
            (FeedPage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 304, description = "Nothing new since the ETag in If-None-Match"),
        Refused,
        (status = 422, description = "A bad cursor or limit", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/results/feed")]
pub async fn feed(
    req: HttpRequest,
    db: web::Data<Db>,
    caller: Caller,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let query = query.into_inner();
    let after = match &query.cursor {
        Some(cursor) => decode_cursor(cursor)
            .ok_or_else(|| ApiError::field("cursor", "Not a cursor this feed gave out."))?,
        None => FeedKey::default(),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field("limit", "Between 1 and 1000000."));
    }
    let format = if crate::http::accepts(&req, "text/csv") {
        Format::Csv
    } else {
        Format::Json
    };

    let organisation_id = caller.organisation_id().to_owned();
    let (teams, version) = {
        let organisation_id = organisation_id.clone();
        let reach = reach.clone();
        db.run(move |conn| {
            let teams = match &reach {
                Reach::Organisation => None,
                Reach::Subtree(root) => {
                    let tree =
                        TeamTree::new(crate::org::teams::store::list(conn, &organisation_id)?);
                    Some(
                        tree.subtree(root)
                            .into_iter()
                            .map(|t| t.id.clone())
                            .collect(),
                    )
                }
            };
            let version = store::feed_version(conn, &organisation_id)?;
            Ok::<_, ApiError>((teams, version))
        })
        .await?
    };
    // Everything the page depends on: a manager's teams too, which a
    // reorganisation changes.
    let etag = format!(
        "\"{}\"",
        &crate::crypto::hex(&Sha256::digest(format!(
            "{organisation_id}|{reach:?}|{teams:?}|{:?}|{limit}|{format:?}|{version:?}",
            query.cursor
        )))[..32]
    );
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response.insert_header((header::ETAG, etag.clone()));
    response.insert_header((header::CACHE_CONTROL, "private, no-cache"));
    response.insert_header((header::VARY, "Accept, Authorization"));
    if unchanged {
        return Ok(response.finish());
    }
    // A CSV download is an export, logged once at its first page; JSON
    // pages are integrations polling, which the log would drown in.
    if format == Format::Csv && query.cursor.is_none() {
        caller
            .audit("export.results_feed")
            .with(serde_json::json!({ "limit": limit }))
            .record_now(&db)
            .await?;
    }
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static(match format {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
        }),
    ));
    let state = Page {
        db: db.into_inner(),
        organisation_id,
        teams: teams.map(Arc::new),
        first: query.cursor.clone(),
        after,
        remaining: limit,
        format,
        stage: Stage::Start,
        written: false,
    };
    Ok(response.streaming(futures_util::stream::unfold(state, next_chunk)))
}

/// Where a streamed page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Rows,
    End,
    Done,
}

struct Page {
    db: Arc<Db>,
    organisation_id: String,
    teams: Option<Arc<Vec<String>>>,
    /// The cursor asked with: the next cursor when no row follows it.
    first: Option<String>,
    after: FeedKey,
    remaining: i64,
    format: Format,
    stage: Stage,
    /// Whether a row has gone out (JSON needs a comma before the next).
    written: bool,
}

async fn next_chunk(mut page: Page) -> Option<(Result<web::Bytes, ApiError>, Page)> {
    match page.stage {
        Stage::Done => None,
        Stage::Start => {
            page.stage = Stage::Rows;
            let head = match page.format {
                Format::Json => b"{\"rows\":[".to_vec(),
                Format::Csv => {
                    let mut out = csv::Writer::from_writer(Vec::new());
                    let written = out.write_record(CSV_COLUMNS);
                    let bytes = out.into_inner().unwrap_or_default();
                    if written.is_err() {
                        return Some((Err(unexpected("CSV header")), page));
                    }
                    bytes
                }
            };
            Some((Ok(head.into()), page))
        }
        Stage::End => {
            page.stage = Stage::Done;
            let tail = match page.format {
                Format::Json => {
                    let next = serde_json::to_string(&page.first).unwrap_or_else(|_| "null".into());
                    format!("],\"next_cursor\":{next}}}").into_bytes()
                }
                Format::Csv => Vec::new(),
            };
            Some((Ok(tail.into()), page))
        }
        Stage::Rows => {
            let want = page.remaining.min(CHUNK);
            let (organisation_id, after, teams) = (
                page.organisation_id.clone(),
                page.after.clone(),
                page.teams.clone(),
            );
            let rows = page
                .db
                .run(move |conn| {
                    store::feed_rows(
                        conn,
                        &organisation_id,
                        &after,
                        teams.as_deref().map(Vec::as_slice),
                        want,
                    )
                    .map_err(ApiError::from)
                })
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "the results feed stopped mid-page");
                    page.stage = Stage::Done;
                    return Some((Err(e), page));
                }
            };
            let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            page.remaining -= count;
            if count < want || page.remaining == 0 {
                page.stage = Stage::End;
            }
            let Some(last) = rows.last() else {
                return Some((Ok(web::Bytes::new()), page));
            };
            page.after = last.key();
            let continues = std::mem::replace(&mut page.written, true);
            page.first = Some(encode_cursor(&page.after));
            let body = match page.format {
                Format::Json => json_rows(&rows, continues),
                Format::Csv => csv_rows(&rows),
            };
            match body {
                Ok(bytes) => Some((Ok(bytes.into()), page)),
                Err(e) => {
                    page.stage = Stage::Done;
                    Some((Err(e), page))
                }
            }
        }
    }
}

fn unexpected(what: &str) -> ApiError {
    ApiError::Unexpected(anyhow::anyhow!("the results feed could not write {what}"))
}

fn encode_cursor(key: &FeedKey) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

fn decode_cursor(cursor: &str) -> Option<FeedKey> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()
}

/// A row as JSON; `figures` is the stored JSON, passed through.
#[derive(Serialize)]
struct JsonRow<'a> {
    cursor: String,
    publication: i32,
    wave_id: &'a str,
    pulse_id: &'a str,
    published_at: chrono::DateTime<chrono::Utc>,
    min_group_size: i32,
    group_kind: &'a str,
    /// None for the organisation.
    team_id: Option<&'a str>,
    measure_kind: &'a str,
    measure: &'a str,
    suppressed: bool,
    reason: Option<&'a str>,
    n: Option<i32>,
    figures: Option<&'a RawValue>,
}

fn json_rows(rows: &[FeedRow], continues: bool) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(rows.len() * 300);
    for (i, row) in rows.iter().enumerate() {
        if continues || i > 0 {
            out.push(b',');
        }
        let figures = row
            .figures
            .as_deref()
            .map(serde_json::from_str::<&RawValue>)
            .transpose()
            .map_err(|_| unexpected("a stored figure"))?;
        let json = JsonRow {
            cursor: encode_cursor(&row.key()),
            publication: row.publication,
            wave_id: &row.wave_id,
            pulse_id: &row.pulse_id,
            published_at: row.published_at.and_utc(),
            min_group_size: row.min_group_size,
            group_kind: &row.group_kind,
            team_id: (row.group_kind != "organisation").then_some(row.team_id.as_str()),
            measure_kind: &row.measure_kind,
            measure: &row.measure,
            suppressed: row.suppressed.is_some(),
            reason: row.suppressed.as_deref(),
            n: row.n,
            figures,
        };
        serde_json::to_writer(&mut out, &json).map_err(|_| unexpected("a row"))?;
    }
    Ok(out)
}

/// The CSV columns: the row's place and group, then every figure any
/// measure has (empty where it has none). Comments' texts are JSON only.
const CSV_COLUMNS: [&str; 28] = [
    "cursor",
    "publication",
    "wave_id",
    "pulse_id",
    "published_at",
    "min_group_size",
    "group_kind",
    "team_id",
    "measure_kind",
    "measure",
    "suppressed",
    "reason",
    "n",
    "mean",
    "sd",
    "favourable",
    "neutral",
    "unfavourable",
    "low",
    "middle",
    "high",
    "net",
    "score",
    "answers",
    "invited",
    "responded",
    "rate",
    "distribution",
];

/// The figures flattened: the figures' own fields and those of `shares`.
const FIGURE_COLUMNS: std::ops::Range<usize> = 13..27;

/// Whether a stored JSON value is a number (not null, a string or an
/// object), from its text.
fn is_number(json: &str) -> bool {
    json.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

fn csv_rows(rows: &[FeedRow]) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200));
    let mut record: Vec<String> = vec![String::new(); CSV_COLUMNS.len()];
    for row in rows {
        for field in &mut record {
            field.clear();
        }
        record[0] = encode_cursor(&row.key());
        record[1] = row.publication.to_string();
        record[2].push_str(&row.wave_id);
        record[3].push_str(&row.pulse_id);
        record[4] = row
            .published_at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        record[5] = row.min_group_size.to_string();
        record[6].push_str(&row.group_kind);
        if row.group_kind != "organisation" {
            record[7].push_str(&row.team_id);
        }
        record[8].push_str(&row.measure_kind);
        record[9].push_str(&row.measure);
        record[10].push_str(if row.suppressed.is_some() {
            "true"
        } else {
            "false"
        });
        record[11].push_str(row.suppressed.as_deref().unwrap_or(""));
        if let Some(n) = row.n {
            record[12] = n.to_string();
        }
        if let Some(figures) = &row.figures {
            // Shallow: the numbers are copied as stored, never decoded.
            let fields: BTreeMap<&str, &RawValue> =
                serde_json::from_str(figures).map_err(|_| unexpected("a stored figure"))?;
            let shares: BTreeMap<&str, &RawValue> = fields
                .get("shares")
                .map(|s| serde_json::from_str::<Option<_>>(s.get()))
                .transpose()
                .map_err(|_| unexpected("a stored figure"))?
                .flatten()
                .unwrap_or_default();
            for column in FIGURE_COLUMNS {
                let name = CSV_COLUMNS[column];
                let found = fields.get(name).or_else(|| shares.get(name));
                if let Some(number) = found.map(|v| v.get()).filter(|v| is_number(v)) {
                    record[column].push_str(number);
                }
            }
            if let Some(counts) = fields.get("distribution") {
                let counts: Vec<&RawValue> = serde_json::from_str::<Option<_>>(counts.get())
                    .map_err(|_| unexpected("a stored figure"))?
                    .unwrap_or_default();
                for (i, count) in counts.iter().enumerate() {
                    if i > 0 {
                        record[27].push('|');
                    }
                    record[27].push_str(count.get());
                }
            }
        }
        out.write_record(&record).map_err(|_| unexpected("a row"))?;
    }
    out.into_inner().map_err(|_| unexpected("rows"))
}
