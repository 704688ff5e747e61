//! `peil admin …`: administration from the shell, for the operator who has no
//! API account yet (or has lost it). Blocking; runs before any server starts.

use crate::audit::Actor;
use anyhow::{Context, bail};
use diesel::OptionalExtension;

use crate::auth::{password, store};
use crate::db::{self, Db};
use crate::domain::{EmailAddress, NewPassword, Role};
use crate::org::{self, NewOrganisation, Organisation};

pub fn create_organisation(db: &Db, new: &NewOrganisation) -> anyhow::Result<String> {
    let mut conn = db.get()?;
    Ok(org::store::insert(&mut conn, new)?)
}

pub fn list_organisations(db: &Db) -> anyhow::Result<Vec<Organisation>> {
    let mut conn = db.get()?;
    Ok(org::store::list(&mut conn)?)
}

/// Creates an account with a one-time password, which is returned to print.
pub fn create_account(
    db: &Db,
    organisation_id: &str,
    email: &EmailAddress,
    role: Role,
) -> anyhow::Result<NewPassword> {
    if role == Role::Manager {
        bail!(
            "manager accounts see one team's subtree and need a team; create them once the organisation has teams"
        );
    }
    let one_time = password::one_time_password();
    let hash = password::hash(&one_time)?;
    let mut conn = db.get()?;
    db::write(&mut conn, |conn| {
        org::store::find(conn, organisation_id)
            .optional()?
            .with_context(|| format!("no organisation has id {organisation_id}"))?;
        if store::find_account_by_email(conn, email.as_str())
            .optional()?
            .is_some()
        {
            bail!("an account with this email address already exists");
        }
        let id = store::insert_account(
            conn,
            &store::NewAccount {
                organisation_id,
                email: email.as_str(),
                password_hash: &hash,
                role: role.as_str(),
                team_id: None,
            },
        )?;
        Actor::shell(organisation_id)
            .did("account.created")
            .on("account", &id)
            .with(serde_json::json!({"role": role.as_str()}))
            .record(conn)?;
        Ok(())
    })?;
    Ok(one_time)
}

/// Gives an account a new one-time password and ends all its sessions.
pub fn reset_password(db: &Db, email: &EmailAddress) -> anyhow::Result<NewPassword> {
    let one_time = password::one_time_password();
    let hash = password::hash(&one_time)?;
    let mut conn = db.get()?;
    db::write(&mut conn, |conn| {
        let account = store::find_account_by_email(conn, email.as_str())
            .optional()?
            .context("no account has this email address")?;
        store::set_password(conn, &account.id, &hash, true)?;
        store::delete_sessions_of(conn, &account.id, None)?;
        Actor::shell(&account.organisation_id)
            .did("account.password_reset")
            .on("account", &account.id)
            .record(conn)?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(one_time)
}
