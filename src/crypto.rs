//! Keys derived from the server secret, one per purpose, so that no two uses
//! of the secret ever share a key (a MAC for API keys cannot be replayed as
//! a link token, and so on).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ServerSecret;

type HmacSha256 = Hmac<Sha256>;

/// The per-purpose keys, derived once at start.
#[derive(Clone)]
pub struct ServerKeys {
    api_keys: [u8; 32],
}

impl ServerKeys {
    pub fn derive(secret: &ServerSecret) -> Self {
        Self {
            api_keys: derive(secret.expose(), b"peil/api-keys/v1"),
        }
    }

    /// The stored form of an API key: HMAC-SHA256 under a server-held key.
    /// A fast keyed hash is right here, unlike for passwords: a key has 256
    /// random bits, so there is nothing to guess, and the key in the MAC means
    /// a leaked table cannot even be checked against candidate keys.
    pub fn api_key_digest(&self, key: &str) -> String {
        hex(&mac(&self.api_keys, key.as_bytes()))
    }
}

// Debug never shows key material.
impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(***)")
    }
}

fn derive(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    mac(secret, purpose)
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_depend_on_secret_and_key() {
        let a = ServerKeys {
            api_keys: derive(b"first secret", b"peil/api-keys/v1"),
        };
        let b = ServerKeys {
            api_keys: derive(b"second secret", b"peil/api-keys/v1"),
        };
        assert_eq!(a.api_key_digest("pk_x"), a.api_key_digest("pk_x"));
        assert_ne!(a.api_key_digest("pk_x"), a.api_key_digest("pk_y"));
        assert_ne!(a.api_key_digest("pk_x"), b.api_key_digest("pk_x"));
        assert_eq!(a.api_key_digest("pk_x").len(), 64);
    }
}
