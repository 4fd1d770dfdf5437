//! The hypervisor's single user account and its login sessions.
//!
//! The account (one user, as the reference) is created on first use and stored in `db_path` as
//! JSON: username, a random 16-byte salt and PBKDF2-HMAC-SHA256 (ring, already a workspace
//! dependency; 100 000 iterations) of the password. The file is written with mode 0600 and never
//! holds the password. Sessions are random 32-byte tokens (hex in the `swm-session` cookie) kept in
//! memory only, so a restart logs everybody out; each one expires after [`SESSION_TTL`].

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The session cookie's name (the reference's).
pub const COOKIE: &str = "swm-session";
/// Shortest accepted password.
pub const MIN_PASSWORD: usize = 8;
/// Lifetime of a login session.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// PBKDF2 rounds for new accounts.
const ITERATIONS: u32 = 100_000;
/// At most this many live sessions (the oldest is dropped).
const MAX_SESSIONS: usize = 256;

/// Errors of the account store.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `create-account` when one exists.
    #[error("an account already exists")]
    Exists,
    /// Bad username or password shape.
    #[error("{0}")]
    Invalid(String),
    /// Wrong credentials.
    #[error("incorrect username or password")]
    Denied,
    /// The user database could not be read or written.
    #[error("user database {path}: {source}")]
    Db {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The user database is not valid JSON.
    #[error("user database {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The stored account.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    username: String,
    /// `pbkdf2-sha256`.
    alg: String,
    iterations: u32,
    salt: String,
    hash: String,
    /// Unix seconds.
    created: u64,
}

/// Account and sessions.
#[derive(Debug)]
pub struct Auth {
    path: PathBuf,
    account: Mutex<Option<Account>>,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

impl Auth {
    /// Loads the account from `path` if the file exists.
    pub fn open(path: &Path) -> Result<Auth, AuthError> {
        let account = match std::fs::read(path) {
            Ok(b) => Some(
                serde_json::from_slice(&b).map_err(|source| AuthError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(AuthError::Db {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Auth {
            path: path.to_path_buf(),
            account: Mutex::new(account),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the account exists.
    pub fn has_account(&self) -> bool {
        lock(&self.account).is_some()
    }

    /// The account's username and creation time (unix seconds).
    pub fn user(&self) -> Option<(String, u64)> {
        lock(&self.account)
            .as_ref()
            .map(|a| (a.username.clone(), a.created))
    }

    /// Creates the account (only while none exists). Slow: call it off the async threads.
    pub fn create(&self, username: &str, password: &str) -> Result<(), AuthError> {
        let username = username.trim();
        if username.is_empty() || username.len() > 64 {
            return Err(AuthError::Invalid(
                "the username must have 1 to 64 characters".into(),
            ));
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(AuthError::Invalid(format!(
                "the password must have at least {MIN_PASSWORD} characters"
            )));
        }
        let mut acc = lock(&self.account);
        if acc.is_some() {
            return Err(AuthError::Exists);
        }
        let salt: [u8; 16] = rand::random();
        let hash = derive(password, &salt, ITERATIONS);
        let a = Account {
            username: username.to_string(),
            alg: "pbkdf2-sha256".into(),
            iterations: ITERATIONS,
            salt: hex::encode(salt),
            hash: hex::encode(hash),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        self.write(&a)?;
        *acc = Some(a);
        Ok(())
    }

    fn write(&self, a: &Account) -> Result<(), AuthError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| AuthError::Db {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let text = serde_json::to_vec_pretty(a).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&text).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }

    /// Checks the credentials and opens a session: its token. Slow (PBKDF2).
    pub fn login(&self, username: &str, password: &str) -> Result<String, AuthError> {
        let acc = lock(&self.account).clone().ok_or(AuthError::Denied)?;
        let salt = hex::decode(&acc.salt).map_err(|_| AuthError::Denied)?;
        let want = hex::decode(&acc.hash).map_err(|_| AuthError::Denied)?;
        let n = NonZeroU32::new(acc.iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        let same_hash = ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            n,
            &salt,
            password.as_bytes(),
            &want,
        )
        .is_ok();
        if !same_hash || username.trim() != acc.username {
            return Err(AuthError::Denied);
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        let mut s = lock(&self.sessions);
        let now = Instant::now();
        s.retain(|_, (_, t)| now.duration_since(*t) < SESSION_TTL);
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
        {
            s.remove(&oldest);
        }
        s.insert(token.clone(), (acc.username, now));
        Ok(token)
    }

    /// The username of a live session.
    pub fn session(&self, token: &str) -> Option<String> {
        let mut s = lock(&self.sessions);
        match s.get(token) {
            Some((u, t)) if t.elapsed() < SESSION_TTL => Some(u.clone()),
            Some(_) => {
                s.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) {
        lock(&self.sessions).remove(token);
    }
}

/// The `swm-session` value of a `Cookie` header.
pub fn cookie_token(header: &str) -> Option<&str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then_some(v)
    })
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn account_login_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/users.db");
        let a = Auth::open(&db).unwrap();
        assert!(!a.has_account());
        assert!(matches!(
            a.login("admin", "whatever1"),
            Err(AuthError::Denied)
        ));
        assert!(matches!(
            a.create("admin", "short"),
            Err(AuthError::Invalid(_))
        ));
        a.create("admin", "correct horse").unwrap();
        assert!(matches!(
            a.create("admin", "another pw"),
            Err(AuthError::Exists)
        ));
        let text = std::fs::read_to_string(&db).unwrap();
        assert!(!text.contains("correct horse"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Reloaded from the file.
        let a = Auth::open(&db).unwrap();
        assert!(a.has_account());
        assert!(matches!(
            a.login("admin", "wrong horse"),
            Err(AuthError::Denied)
        ));
        assert!(matches!(
            a.login("root", "correct horse"),
            Err(AuthError::Denied)
        ));
        let t = a.login("admin", "correct horse").unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(a.session(&t).as_deref(), Some("admin"));
        a.logout(&t);
        assert!(a.session(&t).is_none());
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie_token("a=1; swm-session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_token("swm-session="), None);
        assert_eq!(cookie_token("x=swm-session"), None);
        assert!(set_cookie("t").contains("HttpOnly; SameSite=Strict"));
    }
}
