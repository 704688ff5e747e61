//! Results: what a closed wave's responses come to per group, published
//! once at close under the anonymity rules of DESIGN.md (invariants 2–5).
//! - [`score`]: one group's figures, by the rules of SURVEY-METHOD.md;
//! - [`suppress`]: which groups may be published (minimum size and the
//!   residual rule);
//! - [`publish`]: every cell of a closing wave;
//! - [`republish`]: a closed wave's cells again, with a raised k;
//! - [`change`]: whether a change between waves is meaningful;
//! - [`store`]: publications and their cells in the database;
//! - [`http`]: reading them.

pub mod change;
#[cfg(test)]
mod disclosure;
pub mod http;
pub mod publish;
pub mod republish;
pub mod score;
pub mod store;
pub mod suppress;
