//! The integration suite: one binary, one module per area. Every test gets a
//! fresh database on the backend `PEIL_TEST_BACKEND` names (see helpers).

mod accounts;
mod answers;
mod api_keys;
mod audit;
mod auth;
mod authorization;
mod browser;
mod cli;
mod cors;
mod demo;
mod dump;
mod erasure;
mod faults;
mod health;
mod helpers;
mod import;
mod lifecycle;
mod limits;
mod mail;
mod metrics;
mod mobility;
mod organisation;
mod page;
mod people;
mod privacy;
mod problems;
mod pulses;
mod results;
mod smtp;
mod storage;
mod teams;
mod templates;
mod waves;
mod webhooks;
