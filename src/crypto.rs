//! Keys derived from the server secret, one per purpose, so that no two uses
//! of the secret ever share a key (a MAC for API keys cannot be replayed as
//! a link token, and so on).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ServerSecret;

type HmacSha256 = Hmac<Sha256>;

/// The per-purpose keys, derived once at start.
#[derive(Clone)]
pub struct ServerKeys {
    api_keys: [u8; 32],
    invitation_links: [u8; 32],
    nullifiers: [u8; 32],
    webhook_secrets: [u8; 32],
}

/// Bytes of an invitation id (a UUID) and of the MAC that follows it in a link token.
const ID_BYTES: usize = 16;
const LINK_MAC_BYTES: usize = 16;

impl ServerKeys {
    pub fn derive(secret: &ServerSecret) -> Self {
        Self::from_secret(secret.expose())
    }

    fn from_secret(secret: &[u8]) -> Self {
        Self {
            api_keys: derive(secret, b"peil/api-keys/v1"),
            invitation_links: derive(secret, b"peil/invitation-links/v1"),
            nullifiers: derive(secret, b"peil/response-nullifiers/v1"),
            webhook_secrets: derive(secret, b"peil/webhook-secrets/v1"),
        }
    }

    /// The token in an invitation's link: the invitation id and a MAC of it
    /// under a server-held key, base64url (43 characters). Derived, never
    /// stored: the same invitation always gets the same link (reminders and
    /// resends repeat it), and a copy of the database holds no usable link.
    /// 128 bits of MAC leave nothing to guess.
    pub fn invitation_token(&self, invitation_id: &str) -> Option<String> {
        let id = uuid::Uuid::parse_str(invitation_id).ok()?;
        let mut bytes = Vec::with_capacity(ID_BYTES + LINK_MAC_BYTES);
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(&mac(&self.invitation_links, id.as_bytes())[..LINK_MAC_BYTES]);
        Some(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The invitation a link token names, if its MAC is right.
    pub fn invitation_of(&self, token: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != ID_BYTES + LINK_MAC_BYTES {
            return None;
        }
        let (id, tag) = bytes.split_at(ID_BYTES);
        let mut check = HmacSha256::new_from_slice(&self.invitation_links).ok()?;
        check.update(id);
        check.verify_truncated_left(tag).ok()?;
        Some(uuid::Uuid::from_slice(id).ok()?.to_string())
    }

    /// The nullifier of an invitation's answer: a MAC of its link token under
    /// a key of its own, stored with the response while the wave is open so
    /// that a link answers once. It names no invitation to anyone without the
    /// server secret; with the secret it could be recomputed, which is why
    /// nullifiers are erased when the wave closes (`answers::store::seal`).
    pub fn nullifier(&self, invitation_id: &str) -> Option<String> {
        let token = self.invitation_token(invitation_id)?;
        Some(hex(&mac(&self.nullifiers, token.as_bytes())))
    }

    /// The stored form of an API key: HMAC-SHA256 under a server-held key.
    /// A fast keyed hash is right here, unlike for passwords: a key has 256
    /// random bits, so there is nothing to guess, and the key in the MAC means
    /// a leaked table cannot even be checked against candidate keys.
    pub fn api_key_digest(&self, key: &str) -> String {
        hex(&mac(&self.api_keys, key.as_bytes()))
    }

    /// A webhook's signing secret as stored: sealed with ChaCha20-Poly1305
    /// under a key derived from the server secret, bound to the webhook's
    /// id (a sealed secret copied onto another row does not open). Unlike a
    /// password or an API key it cannot be a one-way hash: Peil must read
    /// it to sign. Base64 of a random nonce, the ciphertext and the tag.
    pub fn seal_webhook_secret(&self, webhook_id: &str, secret: &str) -> String {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &self.webhook_secrets).expect("a 32-byte key"),
        );
        let nonce: [u8; 12] = rand::random();
        let mut sealed = secret.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(webhook_id.as_bytes()),
            &mut sealed,
        )
        .expect("a secret far below ChaCha20's limit");
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        STANDARD.encode(stored)
    }

    /// The secret [`Self::seal_webhook_secret`] sealed for this webhook;
    /// `None` if it was sealed under another server secret or altered.
    pub fn open_webhook_secret(&self, webhook_id: &str, stored: &str) -> Option<String> {
        use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
        let bytes = STANDARD.decode(stored).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let key =
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.webhook_secrets).ok()?);
        let mut sealed = sealed.to_vec();
        let opened = key
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(webhook_id.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        String::from_utf8(opened.to_vec()).ok()
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
        let a = ServerKeys::from_secret(b"first secret");
        let b = ServerKeys::from_secret(b"second secret");
        assert_eq!(a.api_key_digest("pk_x"), a.api_key_digest("pk_x"));
        assert_ne!(a.api_key_digest("pk_x"), a.api_key_digest("pk_y"));
        assert_ne!(a.api_key_digest("pk_x"), b.api_key_digest("pk_x"));
        assert_eq!(a.api_key_digest("pk_x").len(), 64);
    }

    #[test]
    fn webhook_secrets_open_only_for_their_webhook_under_the_same_secret() {
        let keys = ServerKeys::from_secret(b"a secret of some length");
        let sealed = keys.seal_webhook_secret("hook-1", "whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            keys.seal_webhook_secret("hook-1", "whsec_abc"),
            "random nonce"
        );
        assert_eq!(
            keys.open_webhook_secret("hook-1", &sealed).as_deref(),
            Some("whsec_abc")
        );
        assert_eq!(keys.open_webhook_secret("hook-2", &sealed), None);
        assert_eq!(
            ServerKeys::from_secret(b"another").open_webhook_secret("hook-1", &sealed),
            None
        );
        let mut altered = STANDARD.decode(&sealed).unwrap();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(
            keys.open_webhook_secret("hook-1", &STANDARD.encode(altered)),
            None
        );
        assert_eq!(keys.open_webhook_secret("hook-1", "not base64!"), None);
    }

    #[test]
    fn link_tokens_name_their_invitation_and_resist_forgery() {
        let keys = ServerKeys::from_secret(b"a secret of some length");
        let id = "6f1c2a3e-0b7d-4c1e-9a55-3f2d1e0c9b8a";
        let token = keys.invitation_token(id).unwrap();
        assert_eq!(token.len(), 43);
        assert_eq!(keys.invitation_token(id).unwrap(), token, "derived, stable");
        assert_eq!(keys.invitation_of(&token).as_deref(), Some(id));
        // Another secret, a flipped character, or a truncated token: nothing.
        assert_eq!(
            ServerKeys::from_secret(b"another").invitation_of(&token),
            None
        );
        let mut forged = token.clone().into_bytes();
        forged[40] = if forged[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            keys.invitation_of(std::str::from_utf8(&forged).unwrap()),
            None
        );
        assert_eq!(keys.invitation_of(&token[..42]), None);
        assert_eq!(keys.invitation_of("not base64!"), None);
        assert_eq!(keys.invitation_token("not a uuid"), None);
    }
}
