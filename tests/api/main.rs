//! The integration suite: one binary, one module per area. Every test gets a
//! fresh database on the backend `PEIL_TEST_BACKEND` names (see helpers).

mod auth;
mod cli;
mod health;
mod helpers;
mod lifecycle;
mod problems;
mod storage;
