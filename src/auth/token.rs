//! Session tokens: 256 random bits shown to the client once; the database
//! keeps only their SHA-256. A fast hash is right here (unlike passwords):
//! the token has full entropy, so there is nothing to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Session tokens and API keys say what they are, so a leaked one is easy to
/// recognise (and for secret scanners to flag) and the extractor knows where
/// to look it up.
pub const SESSION_PREFIX: &str = "ps_";
pub const API_KEY_PREFIX: &str = "pk_";

/// A fresh session token and the hash to store for it.
pub fn new_session_token() -> (String, String) {
    let token = random_token(SESSION_PREFIX);
    let hash = hash_token(&token);
    (token, hash)
}

/// `prefix` followed by 256 random bits, URL-safe.
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    crate::crypto::hex(&Sha256::digest(token.as_bytes()))
}
