//! Peil: anonymous pulse surveys on development opportunities, career outlook
//! and psychological safety, reported per team. See `../shared/DESIGN.md` for
//! the vocabulary and the promises every module keeps.
//!
//! Layout: `config`, `telemetry` and `startup` assemble the service; `db`
//! holds storage; `domain` the small always-valid types; `http` the shared
//! HTTP plumbing; each part of the domain (`auth`, `org`, …) has its own
//! folder with its logic, its store and its handlers (`surveys` holds
//! templates, pulses, waves and the schedule; `delivery` the outbox;
//! `mobility` the flows of people through the team tree);
//! `webhooks` pushes events to integrations; `audit` records who did what; `privacy` states what Peil
//! keeps and who sees it; `clock` is the time the
//! schedule runs on; `jobs` runs beside the server; `metrics` counts what it does;
//! `admin` is the shell's way in.

pub mod admin;
pub mod answers;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod mobility;
pub mod org;
pub mod privacy;
pub mod results;
pub mod startup;
pub mod surveys;
#[cfg(test)]
mod sweep;
pub mod telemetry;
pub mod webhooks;
