//! First start: an empty database gets a first organisation and an admin
//! account with a one-time password, which the caller prints once. It runs
//! under the migration lock and checks for organisations inside a write
//! transaction, so replicas starting together create exactly one.

use crate::auth::{password, store};
use crate::config::BootstrapSettings;
use crate::db::{self, DbConnection};
use crate::domain::{EmailAddress, NewPassword, OrganisationName, Role};
use crate::org;

/// The credentials of the first admin, to show once and then forget.
pub struct InitialAdmin {
    pub organisation_name: String,
    pub email: String,
    pub password: NewPassword,
}

pub fn bootstrap_if_empty(
    conn: &mut DbConnection,
    settings: &BootstrapSettings,
) -> anyhow::Result<Option<InitialAdmin>> {
    let name = OrganisationName::parse(&settings.organisation_name)
        .map_err(|e| anyhow::anyhow!("bootstrap.organisation_name {e}"))?;
    let email = EmailAddress::parse(&settings.admin_email)
        .map_err(|e| anyhow::anyhow!("bootstrap.admin_email {e}"))?;
    db::write(conn, |conn| {
        if org::store::count(conn)? > 0 {
            return Ok(None);
        }
        let organisation_id = org::store::insert(conn, &org::NewOrganisation::named(name.clone()))?;
        let one_time = password::one_time_password();
        let hash = password::hash(&one_time)?;
        store::insert_account(
            conn,
            &store::NewAccount {
                organisation_id: &organisation_id,
                email: email.as_str(),
                password_hash: &hash,
                role: Role::Admin.as_str(),
                team_id: None,
            },
        )?;
        Ok(Some(InitialAdmin {
            organisation_name: name.as_str().to_owned(),
            email: email.as_str().to_owned(),
            password: one_time,
        }))
    })
}
