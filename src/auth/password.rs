//! Password hashing with Argon2id at the OWASP-recommended parameters
//! (19 MiB, 2 passes, 1 lane). Hashing is deliberately slow, so these
//! functions are blocking: call them through [`off_thread`], never on the
//! async executor.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngExt;

use crate::domain::NewPassword;

/// Argon2id computations at once, at most: each holds 19 MiB and a core for
/// tens of milliseconds, so a flood of sign-ins (from many addresses, past
/// the rate limits) queues here instead of taking memory without bound.
static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// Runs password work on the blocking pool, when a slot is free.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::error::ApiError> {
    let _slot = SLOTS.acquire().await.map_err(|e| {
        crate::error::ApiError::Unexpected(anyhow::anyhow!("password slots: {e}"))
    })?;
    actix_web::web::block(work)
        .await
        .map_err(|e| crate::error::ApiError::Unexpected(anyhow::anyhow!("password work: {e}")))
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) to store.
pub fn hash(password: &NewPassword) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.expose().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `candidate` matches the stored PHC string. The parameters are
/// read from the stored hash, so raising them later keeps old hashes valid.
pub fn verify(candidate: &str, stored: &str) -> bool {
    hasher()
        .verify_password(candidate.as_bytes(), stored)
        .is_ok()
}

/// Spends the same time as a real verification, so that a sign-in for an
/// unknown address cannot be told apart by its timing.
pub fn verify_against_nothing(candidate: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        let placeholder = NewPassword::parse("placeholder-password").expect("long enough");
        hash(&placeholder).unwrap_or_default()
    });
    let _ = verify(candidate, dummy);
}

/// A one-time password for a new or reset account: 20 symbols from an
/// alphabet without look-alikes (≈100 bits), grouped for reading aloud.
pub fn one_time_password() -> NewPassword {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect()
        })
        .collect();
    NewPassword::parse(&groups.join("-")).expect("23 characters is long enough")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let password = one_time_password();
        assert_eq!(password.expose().len(), 23);
        let stored = hash(&password).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(password.expose(), &stored));
        assert!(!verify("wrong password!", &stored));
        assert!(!verify(password.expose(), "not a hash"));
        assert_ne!(one_time_password().expose(), password.expose());
    }
}
