//! Results: what a closed wave's responses come to per group, published
//! once at close under the anonymity rules of DESIGN.md (invariants 2–5).
//! So far the scoring of one group's answers ([`score`]); which groups are
//! published, suppression, storage and reading come next (issue 7).

pub mod score;
pub mod suppress;
