//! A remote site's credentials. An access token is never sent with data requests: it is
//! exchanged at `/api/v2/authorization/request/<token>` for a JWT (`{token, iat, exp}`), sent
//! as `Authorization: Bearer`, renewed a tenth of its life before it ends (on the engine's
//! clock, with the lifetime the site gave, so the two clocks need not agree) and at once after
//! a 401. The API secret goes as Nightscout's `api-secret` header, its SHA-1 in hex. Without
//! either, requests go unauthenticated (a site readable by anyone).
//!
//! nightscout-connect's own exchange crashed before its first use (research/bridges.md §7);
//! here a token the site refuses is fatal at once: retrying cannot help.
//!
//! With the API secret, a user of this client may ask for a subject of its own on the site
//! ([`Remote::subject_token`], as nightscout-connect makes `nightscout-connect-reader`, with
//! `roles` spelled as the API wants): its access token then replaces the secret, so API v3,
//! which takes only tokens, can be read.

use super::{encode, Remote};
use crate::config::bridges::{Password, RemoteSite};
use crate::connect::errors::SourceError;

#[derive(Clone)]
enum Credential {
    Anonymous,
    Token(Password),
    /// The secret's SHA-1, hex.
    Secret(String),
}

#[derive(Clone)]
struct Jwt {
    bearer: String,
    /// When to ask for a new one (engine clock, ms).
    renew_at: i64,
}

pub(super) struct Auth {
    credential: Credential,
    /// A subject's token obtained with the secret, used instead of it.
    subject_token: std::sync::Mutex<Option<Password>>,
    jwt: tokio::sync::Mutex<Option<Jwt>>,
}

impl Auth {
    pub(super) fn new(site: &RemoteSite) -> Auth {
        let credential = match (&site.token, &site.api_secret) {
            (Some(t), _) => Credential::Token(t.clone()),
            (None, Some(s)) => Credential::Secret(crate::auth::sha1_hex(s.reveal())),
            (None, None) => Credential::Anonymous,
        };
        Auth {
            credential,
            subject_token: std::sync::Mutex::new(None),
            jwt: tokio::sync::Mutex::new(None),
        }
    }

    /// The credential in use: the subject's token once there is one.
    fn current(&self) -> Credential {
        let held = self.subject_token.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_ref() {
            Some(t) => Credential::Token(t.clone()),
            None => self.credential.clone(),
        }
    }

    /// Whether only the API secret is there to send (no token, none obtained with it).
    pub(super) fn secret_only(&self) -> bool {
        matches!(self.current(), Credential::Secret(_))
    }

    pub(super) fn set_subject_token(&self, token: Password) {
        *self.subject_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    /// Whether requests go without the API secret (API v3 refuses it).
    pub(super) fn token_based(&self) -> bool {
        !self.secret_only()
    }

    /// Whether a 401 may be met with a new JWT.
    pub(super) fn renewable(&self) -> bool {
        matches!(self.current(), Credential::Token(_))
    }

    pub(super) async fn drop_jwt(&self) {
        *self.jwt.lock().await = None;
    }

    /// The header that authorizes a request, if any; asks for a JWT when there is none or it
    /// is due for renewal (one request at a time: the lock is held while asking).
    pub(super) async fn header(
        &self,
        remote: &Remote,
    ) -> Result<Option<(&'static str, String)>, SourceError> {
        let token = match self.current() {
            Credential::Anonymous => return Ok(None),
            Credential::Secret(hash) => return Ok(Some(("api-secret", hash))),
            Credential::Token(t) => t,
        };
        let mut held = self.jwt.lock().await;
        let now = remote.clock.now_ms();
        if let Some(j) = held.as_ref().filter(|j| now < j.renew_at) {
            return Ok(Some(("Authorization", j.bearer.clone())));
        }
        *held = None;
        let jwt = self.request(remote, &token, now).await?;
        let bearer = jwt.bearer.clone();
        *held = Some(jwt);
        Ok(Some(("Authorization", bearer)))
    }

    async fn request(
        &self,
        remote: &Remote,
        token: &Password,
        now: i64,
    ) -> Result<Jwt, SourceError> {
        let label = &remote.label;
        let url = format!(
            "{}/api/v2/authorization/request/{}",
            remote.base,
            encode(token.reveal())
        );
        let reply = remote.http.get_with(label, &url, &[]).await?;
        match reply.status {
            200 => {}
            401 | 403 | 404 => {
                return Err(SourceError::fatal(format!(
                    "{label} refused the access token (HTTP {}): check the token (its subject \
                     must exist there with a role that may read, or write for the output)",
                    reply.status
                )))
            }
            s if s >= 500 => {
                return Err(SourceError::transient(format!(
                    "{label} answered the token exchange with HTTP {s}"
                )))
            }
            s => {
                return Err(SourceError::fatal(format!(
                    "{label} refused the token exchange (HTTP {s}): is the URL a Nightscout site?"
                )))
            }
        }
        let v = reply.json().unwrap_or_default();
        let jwt = v.get("token").and_then(|t| t.as_str()).ok_or_else(|| {
            SourceError::transient(format!("{label}: the token exchange returned no JWT"))
        })?;
        let iat = v.get("iat").and_then(serde_json::Value::as_i64);
        let exp = v.get("exp").and_then(serde_json::Value::as_i64);
        // The JWT's own lifetime (Nightscout: 8 h), renewed at nine tenths of it; an hour
        // when the reply does not say.
        let life_ms = match (iat, exp) {
            (Some(i), Some(e)) if e > i => (e - i).saturating_mul(1000),
            _ => 3_600_000,
        };
        Ok(Jwt {
            bearer: format!("Bearer {jwt}"),
            renew_at: now + life_ms - life_ms / 10,
        })
    }

    /// A 401 or 403 that a new JWT did not (or could not) cure.
    pub(super) fn refused(&self, label: &str, status: u16, path: &str) -> SourceError {
        // The first path segments name what was asked, never a query or an identifier.
        let what: String = path
            .split('?')
            .next()
            .unwrap_or("")
            .split('/')
            .take(4)
            .collect::<Vec<_>>()
            .join("/");
        match (status, &self.current()) {
            (401, Credential::Token(_)) => {
                SourceError::auth(format!("{label} refused a new JWT for {what} (401)"))
            }
            (401, Credential::Secret(_)) => {
                SourceError::fatal(format!("{label} refused the API secret (401): check it"))
            }
            (401, Credential::Anonymous) => SourceError::fatal(format!(
                "{label} needs credentials for {what} (401): add ?token=<access token> to \
                 the URL"
            )),
            _ => SourceError::fatal(format!(
                "{label} does not allow {what} with these credentials ({status}): give the \
                 token's subject a role that may"
            )),
        }
    }
}
