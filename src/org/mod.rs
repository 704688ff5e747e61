//! Organisations: the tenants (everything else belongs to exactly one),
//! their settings, their team tree, and the people in it.

pub mod http;
pub mod people;
pub mod store;
pub mod teams;

use crate::domain::{Language, MinGroupSize, OrganisationName, TimeZone};

/// What it takes to create an organisation; every field already valid.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub name: OrganisationName,
    pub default_language: Language,
    pub time_zone: TimeZone,
    pub min_group_size: MinGroupSize,
}

impl NewOrganisation {
    /// An organisation with Peil's defaults: English, Europe/Amsterdam, k = 5.
    pub fn named(name: OrganisationName) -> Self {
        Self {
            name,
            default_language: Language::En,
            time_zone: TimeZone::parse("Europe/Amsterdam").expect("a known zone"),
            min_group_size: MinGroupSize::DEFAULT,
        }
    }
}

/// An organisation as stored.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub default_language: String,
    pub time_zone: String,
    pub min_group_size: i32,
    pub created_at: chrono::NaiveDateTime,
}
