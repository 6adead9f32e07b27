use crate::domain::{InvalidInput, NewPassword};
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString, rand_core::OsRng},
};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords with argon2id (OWASP's minimum: 19 MiB, 2 passes, 1 lane) on blocking
/// threads, a few at a time, so a burst of sign-ins queues instead of starving the server.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the account does not exist, so an
    /// unknown e-mail costs the same time as a wrong password.
    dummy_hash: Arc<str>,
    /// How many hashes run right now, and the most that ever ran at once.
    load: Arc<Load>,
}

#[derive(Debug, Default)]
struct Load {
    running: AtomicUsize,
    peak: AtomicUsize,
    started: AtomicUsize,
}

/// Counts a hash as running for as long as it lives (even if the blocking job panics).
struct Running<'a>(&'a Load);

impl<'a> Running<'a> {
    fn new(load: &'a Load) -> Self {
        let now = load.running.fetch_add(1, Ordering::SeqCst) + 1;
        load.peak.fetch_max(now, Ordering::SeqCst);
        load.started.fetch_add(1, Ordering::SeqCst);
        Self(load)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

fn verify_blocking(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        // The parameters come from the stored hash, so older, weaker hashes still verify.
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    /// A hasher allowing `concurrency` hashes at once (each takes 19 MiB and one core for ~30 ms).
    pub fn new(concurrency: usize) -> Self {
        let random: [u8; 32] = rand::random();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: hash_blocking(&format!("{random:?}")).into(),
            load: Arc::default(),
        }
    }

    /// A hasher sized for this machine's cores.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores)
    }

    /// Runs `work` on a blocking thread once a permit is free. The permit moves into the blocking job:
    /// a caller that gives up (a client that disconnects) does not free it while the hash still runs, so
    /// no more than `concurrency` hashes ever run at once, however many requests are dropped.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let load = self.load.clone();
        tokio::task::spawn_blocking(move || {
            let running = Running::new(&load);
            let result = work();
            drop(running);
            drop(permit);
            result
        })
        .await
        .expect("password hashing does not panic")
    }

    /// How many hashes are running right now.
    pub fn running(&self) -> usize {
        self.load.running.load(Ordering::SeqCst)
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.load.peak.load(Ordering::SeqCst)
    }

    /// How many hashes have started so far.
    pub fn started(&self) -> usize {
        self.load.started.load(Ordering::SeqCst)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &str) -> String {
        let password = password.to_owned();
        self.run(move || hash_blocking(&password)).await
    }

    /// Checks a new password against the policy (length, then how guessable it is, given the account's
    /// `context`: its address and name) on a blocking thread under the same permits as the hashes: a
    /// burst of sign-ups with costly passwords queues instead of starving the server. Refusals name the
    /// field `password`.
    pub async fn check_new(&self, input: &str, context: &[&str]) -> Result<NewPassword, InvalidInput> {
        NewPassword::check_length(input)?;
        let input = input.to_owned();
        let context: Vec<String> = context.iter().map(|text| (*text).to_owned()).collect();
        self.run(move || {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            NewPassword::parse_for(&input, &context)
        })
        .await
    }

    /// Checks `password` against `hash`; with no hash (no such account), spends the same time and fails.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> bool {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self.run(move || verify_blocking(&hash, &password)).await;
        known && matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse battery").await;
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify(Some(&hash), "correct horse battery").await);
        assert!(!hasher.verify(Some(&hash), "correct horse batterz").await);
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1);
        assert!(!hasher.verify(None, "anything at all").await);
        assert!(!hasher.verify(Some("not a phc string"), "anything").await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_keeps_its_permit_until_the_hash_ends() {
        let hasher = PasswordHasher::new(1);
        for _ in 0..20 {
            let started = hasher.started();
            let call = tokio::spawn({
                let hasher = hasher.clone();
                async move { hasher.verify(None, "guess").await }
            });
            // Bounded, so a hash that never begins fails the test instead of hanging it.
            tokio::time::timeout(std::time::Duration::from_secs(30), async {
                while hasher.started() == started {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the hash began");
            call.abort();
        }
        // Bounded too: a leaked permit (the bug this looks for) would keep a hash running for ever.
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while hasher.running() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("every abandoned hash ended");
        assert_eq!(hasher.peak(), 1, "abandoned hashes ran side by side");
    }

    #[tokio::test]
    async fn salts_differ_between_hashes() {
        let hasher = PasswordHasher::new(1);
        assert_ne!(
            hasher.hash("same password").await,
            hasher.hash("same password").await
        );
    }
}
