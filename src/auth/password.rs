//! Password hashing with Argon2id at the OWASP-recommended parameters
//! (19 MiB, 2 passes, 1 lane). Hashing is deliberately slow, so these
//! functions are blocking: call them through [`off_thread`], never on the
//! async executor.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngExt;

use crate::domain::NewPassword;

type Job = Box<dyn FnOnce() + Send>;

/// A few threads of their own for Argon2id, one per core: each computation
/// holds 19 MiB and a core for tens of milliseconds. On the shared blocking
/// pool a flood of sign-ins would run on any of hundreds of threads, and
/// each thread's allocator arena would keep its 19 MiB afterwards (a
/// benchmark's peak memory: 3 GB); here the work queues, and the memory is
/// a few times 19 MiB whatever comes.
static WORKERS: std::sync::LazyLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
    std::sync::LazyLock::new(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for n in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("peil-argon2-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password thread");
            }
        }
        std::sync::Mutex::new(jobs)
    });

/// Runs password work on the password threads; waits for its turn.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::error::ApiError> {
    let failed = |what: &str| crate::error::ApiError::Unexpected(anyhow::anyhow!("{what}"));
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A panic drops `done`: the caller gets an error, the thread lives on.
        if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            let _ = done.send(value);
        }
    });
    WORKERS
        .lock()
        .map_err(|_| failed("the password queue is poisoned"))?
        .send(job)
        .map_err(|_| failed("no password thread is running"))?;
    result.await.map_err(|_| failed("password work failed"))
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
