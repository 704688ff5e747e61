//! Retention: a wave's invitations — and with them the link tokens, which
//! are derived from their ids — are deleted `retention.invitation_days`
//! after the wave closed, with the wave's `.eml` copies in the mail folder.
//! Nothing counted is lost: a closed wave keeps its invited and
//! participation counts (`wave_teams`, `wave_participation`) and its
//! delivery counts (`waves.delivery`), all written at the close.
//!
//! The audit log's entries go `retention.audit_days` after they were
//! written.
//!
//! A pass is safe to repeat and to run on several replicas at once: each
//! wave's invitations go in one transaction, which also writes the audit
//! entry, and files are deleted after it commits. A file whose invitation
//! is gone (a crash between the two, or an email written while its person
//! was being erased) is deleted by the next pass.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::audit::Actor;
use crate::clock::to_stored;
use crate::db::schema::{audit_events, invitations, outbox, waves};
use crate::db::{self, Db, DbConnection, DbError};
use crate::delivery::mailer::delete_eml_of;

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub waves: usize,
    pub invitations: usize,
    pub files: usize,
    pub audit_entries: usize,
}

/// One pass at `now`. `mail_dir` is the `.eml` folder, when mail goes to one.
pub async fn run(
    db: &Db,
    now: DateTime<Utc>,
    days: u32,
    audit_days: u32,
    mail_dir: Option<PathBuf>,
) -> Result<Pruned, DbError> {
    let cutoff = to_stored(now - chrono::Duration::days(i64::from(days)));
    let due: Vec<(String, String)> = db
        .run(move |conn| {
            waves::table
                .filter(waves::closed_at.le(cutoff))
                .filter(diesel::dsl::exists(
                    invitations::table.filter(invitations::wave_id.eq(waves::id)),
                ))
                .select((waves::id, waves::organisation_id))
                .load(conn)
                .map_err(DbError::from)
        })
        .await?;
    let mut pruned = Pruned::default();
    for (wave_id, organisation_id) in due {
        let ids = db
            .run(move |conn| {
                db::write(conn, |conn| {
                    forget_invitations_of_wave(conn, &organisation_id, &wave_id, days)
                })
                .map_err(DbError::from)
            })
            .await?;
        if ids.is_empty() {
            continue; // another replica was first
        }
        db.run(|conn| {
            db::checkpoint(conn);
            Ok::<_, DbError>(())
        })
        .await?;
        pruned.waves += 1;
        pruned.invitations += ids.len();
        if let Some(dir) = &mail_dir {
            pruned.files += delete_files(dir.clone(), ids.into_iter().collect()).await;
        }
    }
    if let Some(dir) = mail_dir {
        pruned.files += delete_orphans(db, dir).await?;
    }
    let audit_cutoff = to_stored(now - chrono::Duration::days(i64::from(audit_days)));
    pruned.audit_entries = db
        .run(move |conn| {
            diesel::delete(audit_events::table.filter(audit_events::occurred_at.lt(audit_cutoff)))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await?;
    Ok(pruned)
}

/// Deletes a closed wave's invitations (and any outbox row left of them);
/// returns their ids. Call inside a write transaction.
fn forget_invitations_of_wave(
    conn: &mut DbConnection,
    organisation_id: &str,
    wave_id: &str,
    days: u32,
) -> diesel::QueryResult<Vec<String>> {
    let ids: Vec<String> = invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .select(invitations::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(ids);
    }
    let of_wave = invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .select(invitations::id);
    diesel::delete(outbox::table.filter(outbox::invitation_id.eq_any(of_wave))).execute(conn)?;
    let deleted = diesel::delete(invitations::table.filter(invitations::wave_id.eq(wave_id)))
        .execute(conn)?;
    if deleted == 0 {
        // Another replica's pass took them between our read and our delete.
        return Ok(Vec::new());
    }
    Actor::system(organisation_id)
        .did("retention.invitations_deleted")
        .on("wave", wave_id)
        .with(serde_json::json!({ "invitations": ids.len(), "days_after_close": days }))
        .record(conn)?;
    Ok(ids)
}

/// Deletes the folder's emails of these invitations, off the async
/// executor; a failure is logged and left for the next pass.
pub async fn delete_files(dir: PathBuf, invitation_ids: HashSet<String>) -> usize {
    let outcome = tokio::task::spawn_blocking(move || delete_eml_of(&dir, &invitation_ids)).await;
    match outcome {
        Ok(Ok(n)) => n,
        Ok(Err(error)) => {
            tracing::warn!(%error, "deleting .eml files; the next retention pass tries again");
            0
        }
        Err(error) => {
            tracing::warn!(%error, "deleting .eml files panicked");
            0
        }
    }
}

/// A file a crashed write left half-written (it holds a link) is removed
/// after this long; a write in progress takes milliseconds.
const PARTIAL_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The invitation ids the folder's `.eml` files are named by
/// (`<invitation>.<email>.eml`; files named otherwise, such as an older
/// version's `<email>.eml`, are not Peil's to judge). Deletes partial files
/// left by a crash on the way.
fn invitations_in_folder(dir: &Path) -> std::io::Result<HashSet<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    let mut ids = HashSet::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') && name.ends_with(".eml.partial") {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > PARTIAL_AGE));
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        if let [invitation, email, "eml"] = parts[..]
            && !invitation.is_empty()
            && !email.is_empty()
        {
            ids.insert(invitation.to_owned());
        }
    }
    Ok(ids)
}

/// Deletes every `.eml` file whose invitation no longer exists.
async fn delete_orphans(db: &Db, dir: PathBuf) -> Result<usize, DbError> {
    let listed = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || invitations_in_folder(&dir))
            .await
            .map_err(|_| DbError::Panicked)?
    };
    let named = match listed {
        Ok(named) => named,
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "reading the mail folder");
            return Ok(0);
        }
    };
    if named.is_empty() {
        return Ok(0);
    }
    let orphans = db
        .run(move |conn| {
            let named: Vec<String> = named.into_iter().collect();
            let mut orphans: HashSet<String> = HashSet::new();
            for chunk in named.chunks(500) {
                let existing: HashSet<String> = invitations::table
                    .filter(invitations::id.eq_any(chunk))
                    .select(invitations::id)
                    .load::<String>(conn)?
                    .into_iter()
                    .collect();
                orphans.extend(chunk.iter().filter(|id| !existing.contains(*id)).cloned());
            }
            Ok::<_, DbError>(orphans)
        })
        .await?;
    if orphans.is_empty() {
        return Ok(0);
    }
    Ok(delete_files(dir, orphans).await)
}
