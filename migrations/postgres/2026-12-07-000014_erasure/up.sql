-- Erasure (src/privacy/erasure.rs): an erased person stays as an anonymous
-- placeholder (no email, name or external id), so that their history keeps
-- mobility's counts whole (DESIGN.md, invariant 7). Set once, never unset.
ALTER TABLE people ADD COLUMN erased_at TIMESTAMP;
