//! A route's `[site.route.basic_auth]`: HTTP Basic authentication (RFC
//! 7617) against bcrypt hashes, as nginx's `auth_basic` with an
//! `htpasswd -B` file and Caddy's `basic_auth` do, for a staging site or
//! an admin path.
//!
//! bcrypt is slow on purpose (tens of milliseconds per check), so:
//! - a check runs on the blocking pool, never on a thread that serves
//!   connections, and at most [`CONCURRENT`] run at once;
//! - credentials that passed are remembered (the header's bytes, in
//!   memory, until the next reload), so a browser's every request does not
//!   pay for it again;
//! - an unknown user's password is checked against the first user's hash
//!   and refused whatever comes out, so the time of an answer does not
//!   tell which users exist (and no decoy hash is made, at bcrypt's cost,
//!   on every load and reload).
//!
//! Protected routes are never answered by the fast path (`h1::choose`
//! hands them to the general path), so this is the one place they are
//! checked.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::body::Body;
use crate::response;

/// bcrypt checks running at once, at most.
pub const CONCURRENT: usize = 4;
/// Credentials remembered, at most; the memory is emptied when full.
const REMEMBERED: usize = 1024;

/// One route's users and realm.
#[derive(Debug)]
pub struct BasicAuth {
    challenge: HeaderValue,
    users: Vec<(String, String)>,
    passed: Mutex<HashSet<Box<[u8]>>>,
    checks: Semaphore,
}

impl BasicAuth {
    /// `users`: (name, bcrypt hash), checked when the config loaded.
    pub fn new(realm: &str, users: Vec<(String, String)>) -> BasicAuth {
        let realm = realm.replace(['"', '\\'], "");
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"restricted\""));
        BasicAuth {
            challenge,
            users,
            passed: Mutex::new(HashSet::new()),
            checks: Semaphore::new(CONCURRENT),
        }
    }

    /// `Ok` when `headers` carry the credentials of one of the users; else
    /// the 401 that asks for them.
    pub async fn check(&self, headers: &HeaderMap) -> Result<(), Response<Body>> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(self.challenge());
        };
        if self.remembered(value.as_bytes()) {
            return Ok(());
        }
        let Some((user, password)) = credentials(value.as_bytes()) else {
            return Err(self.challenge());
        };
        let (hash, known) = match self.users.iter().find(|(name, _)| *name == user) {
            Some((_, hash)) => (hash.clone(), true),
            // As long as a real check, and refused whatever it says.
            None => match self.users.first() {
                Some((_, hash)) => (hash.clone(), false),
                None => return Err(self.challenge()),
            },
        };
        let Ok(_permit) = self.checks.acquire().await else {
            return Err(self.challenge());
        };
        let verified = tokio::task::spawn_blocking(move || {
            std::hint::black_box(bcrypt::verify(password, &hash).unwrap_or(false)) && known
        })
        .await
        .unwrap_or(false);
        if !verified {
            return Err(self.challenge());
        }
        if let Ok(mut passed) = self.passed.lock() {
            if passed.len() >= REMEMBERED {
                passed.clear();
            }
            passed.insert(value.as_bytes().into());
        }
        Ok(())
    }

    fn remembered(&self, value: &[u8]) -> bool {
        self.passed
            .lock()
            .map(|passed| passed.contains(value))
            .unwrap_or(false)
    }

    fn challenge(&self) -> Response<Body> {
        let mut response = response::status(StatusCode::UNAUTHORIZED);
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        response
    }
}

/// The user and password of a `Basic` `Authorization` value.
fn credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether `hash` is a bcrypt hash wharf can check (`$2a$`, `$2b$`,
/// `$2x$`, `$2y$`).
pub fn is_bcrypt(hash: &str) -> bool {
    hash.parse::<bcrypt::HashParts>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        let value = HeaderValue::from_str(&format!("Basic {encoded}")).expect("value");
        headers.insert(header::AUTHORIZATION, value);
        headers
    }

    #[tokio::test]
    async fn the_right_password_passes_and_anything_else_is_asked_again() {
        let hash = bcrypt::hash("s3cret: with colon", 4).expect("hash");
        assert!(is_bcrypt(&hash) && !is_bcrypt("s3cret"));
        let auth = BasicAuth::new("staging", vec![("ana".into(), hash)]);
        assert!(auth.check(&basic("ana:s3cret: with colon")).await.is_ok());
        // Remembered: passes again without bcrypt.
        assert!(auth.check(&basic("ana:s3cret: with colon")).await.is_ok());
        for wrong in [
            basic("ana:wrong"),
            basic("bob:s3cret: with colon"),
            basic("ana"),
            HeaderMap::new(),
        ] {
            let refused = auth.check(&wrong).await.expect_err("refused");
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(
                refused.headers()[header::WWW_AUTHENTICATE],
                "Basic realm=\"staging\", charset=\"UTF-8\""
            );
        }
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(auth.check(&bearer).await.is_err());
    }
}
