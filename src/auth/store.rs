//! Accounts and sessions in the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{accounts, organisations, sessions};

#[derive(Debug, Clone, Queryable)]
pub struct AccountRow {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub must_change_password: bool,
    pub disabled: bool,
    pub team_id: Option<String>,
    pub failed_sign_ins: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub last_sign_in_at: Option<NaiveDateTime>,
}

type AccountColumns = (
    accounts::id,
    accounts::organisation_id,
    accounts::email,
    accounts::password_hash,
    accounts::role,
    accounts::must_change_password,
    accounts::disabled,
    accounts::team_id,
    accounts::failed_sign_ins,
    accounts::locked_until,
    accounts::created_at,
    accounts::last_sign_in_at,
);

const ACCOUNT_COLUMNS: AccountColumns = (
    accounts::id,
    accounts::organisation_id,
    accounts::email,
    accounts::password_hash,
    accounts::role,
    accounts::must_change_password,
    accounts::disabled,
    accounts::team_id,
    accounts::failed_sign_ins,
    accounts::locked_until,
    accounts::created_at,
    accounts::last_sign_in_at,
);

pub struct NewAccount<'a> {
    pub organisation_id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub team_id: Option<&'a str>,
}

/// Inserts an account that must change its password at first sign-in.
pub fn insert_account(conn: &mut DbConnection, new: &NewAccount<'_>) -> QueryResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(&id),
            accounts::organisation_id.eq(new.organisation_id),
            accounts::email.eq(new.email),
            accounts::password_hash.eq(new.password_hash),
            accounts::role.eq(new.role),
            accounts::team_id.eq(new.team_id),
            accounts::must_change_password.eq(true),
            accounts::disabled.eq(false),
            accounts::created_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn find_account_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<AccountRow> {
    accounts::table
        .filter(accounts::email.eq(email))
        .select(ACCOUNT_COLUMNS)
        .first(conn)
}

pub fn find_account(conn: &mut DbConnection, id: &str) -> QueryResult<AccountRow> {
    accounts::table.find(id).select(ACCOUNT_COLUMNS).first(conn)
}

/// Stores a new password hash. `must_change` is true for an admin reset
/// (a one-time password) and false when the owner chose it.
pub fn set_password(
    conn: &mut DbConnection,
    account_id: &str,
    password_hash: &str,
    must_change: bool,
) -> QueryResult<usize> {
    diesel::update(accounts::table.find(account_id))
        .set((
            accounts::password_hash.eq(password_hash),
            accounts::must_change_password.eq(must_change),
            accounts::password_changed_at.eq(Some(crate::db::now())),
        ))
        .execute(conn)
}

pub fn insert_session(
    conn: &mut DbConnection,
    token_hash: &str,
    account_id: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_hash),
            sessions::account_id.eq(account_id),
            sessions::created_at.eq(crate::db::now()),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
}

/// The live session for a token hash, with its account and organisation name.
pub fn find_live_session(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(AccountRow, String)>> {
    sessions::table
        .inner_join(accounts::table.inner_join(organisations::table))
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::expires_at.gt(now))
        .select((ACCOUNT_COLUMNS, organisations::name))
        .first(conn)
        .optional()
}

pub fn delete_session(conn: &mut DbConnection, token_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(token_hash)).execute(conn)
}

/// Ends every session of an account except `keep` (the caller's own, if any).
pub fn delete_sessions_of(
    conn: &mut DbConnection,
    account_id: &str,
    keep: Option<&str>,
) -> QueryResult<usize> {
    let mine = sessions::table.filter(sessions::account_id.eq(account_id));
    match keep {
        Some(keep) => diesel::delete(mine.filter(sessions::token_hash.ne(keep))).execute(conn),
        None => diesel::delete(mine).execute(conn),
    }
}

pub fn delete_expired_sessions(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
}

/// Records a failed sign-in. From the fifth failure in a row the account is
/// locked for a doubling time (1 s, 2 s, 4 s … at most 15 minutes): slow
/// enough to make guessing useless, short enough that nobody is locked out
/// for long by someone else's typing.
/// Counts a failed sign-in; call inside a [`crate::db::write`] transaction.
pub fn record_failed_sign_in(conn: &mut DbConnection, account_id: &str) -> QueryResult<()> {
    let before: i32 = accounts::table
        .find(account_id)
        .select(accounts::failed_sign_ins)
        .first(conn)?;
    lock_after_failure(conn, account_id, before.saturating_add(1))
}

fn lock_after_failure(conn: &mut DbConnection, account_id: &str, failures: i32) -> QueryResult<()> {
    let locked_until = (failures >= FREE_ATTEMPTS).then(|| {
        let exponent = u32::try_from(failures - FREE_ATTEMPTS).unwrap_or(0).min(10);
        let secs = (1i64 << exponent).min(MAX_LOCK_SECS);
        crate::db::now() + chrono::Duration::seconds(secs)
    });
    diesel::update(accounts::table.find(account_id))
        .set((
            accounts::failed_sign_ins.eq(failures),
            accounts::locked_until.eq(locked_until),
        ))
        .execute(conn)
        .map(|_| ())
}

pub const FREE_ATTEMPTS: i32 = 5;
const MAX_LOCK_SECS: i64 = 15 * 60;

pub fn record_sign_in(conn: &mut DbConnection, account_id: &str) -> QueryResult<usize> {
    diesel::update(accounts::table.find(account_id))
        .set((
            accounts::failed_sign_ins.eq(0),
            accounts::locked_until.eq(None::<NaiveDateTime>),
            accounts::last_sign_in_at.eq(Some(crate::db::now())),
        ))
        .execute(conn)
}

pub fn list_accounts(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> QueryResult<Vec<AccountRow>> {
    accounts::table
        .filter(accounts::organisation_id.eq(organisation_id))
        .order((accounts::email, accounts::id))
        .select(ACCOUNT_COLUMNS)
        .load(conn)
}

/// An account of this organisation; another organisation's is `NotFound`.
pub fn find_account_in(
    conn: &mut DbConnection,
    organisation_id: &str,
    id: &str,
) -> QueryResult<AccountRow> {
    accounts::table
        .filter(accounts::organisation_id.eq(organisation_id))
        .filter(accounts::id.eq(id))
        .select(ACCOUNT_COLUMNS)
        .first(conn)
}

pub fn update_account(
    conn: &mut DbConnection,
    id: &str,
    role: &str,
    team_id: Option<&str>,
    disabled: bool,
) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::role.eq(role),
            accounts::team_id.eq(team_id),
            accounts::disabled.eq(disabled),
        ))
        .execute(conn)
}

pub fn delete_account(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(accounts::table.find(id)).execute(conn)
}

/// Enabled admins of an organisation: it must never drop to zero.
pub fn count_enabled_admins(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<i64> {
    accounts::table
        .filter(accounts::organisation_id.eq(organisation_id))
        .filter(accounts::role.eq("admin"))
        .filter(accounts::disabled.eq(false))
        .count()
        .get_result(conn)
}
