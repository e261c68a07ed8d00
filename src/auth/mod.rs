//! Who is asking and what they may do, as Nightscout's lib/authorization decides it:
//! 1. the API secret as its SHA-1 or SHA-512 hex (`?secret=`, `api-secret`, a body `secret`);
//! 2. an access token (`?token=`, a body `token`), or its SHA-1 hex in `api-secret`;
//! 3. `Authorization: Bearer <JWT>` from `/api/v2/authorization/request/<token>`;
//! 4. nothing: the roles of AUTH_DEFAULT_ROLES.
//!
//! A subject's permissions are those of its roles plus the default roles. Subjects and roles
//! live in SQLite and are cached here; the cache is reloaded after every change through the
//! API and, so that the offline `nightlite token` commands take effect, at most every few
//! seconds when a token is not found.

pub(crate) mod delay;
pub mod jwt;
pub mod permissions;
pub(crate) mod proxy;
pub(crate) mod request;
pub mod roles;
pub(crate) mod tokens;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};
use sha1::Digest;

use crate::config::Config;
use crate::dates::now_ms;
use crate::error::{Error, Result};
use crate::store::auth::{self as auth_store, AuthDoc, AuthTable};
use crate::store::Store;

const JWT_KEY_FILE: &str = "jwt_key";
/// A token that is not in the cache triggers a reload at most this often.
const RELOAD_ON_MISS_MS: i64 = 250;
/// A token that is found is trusted from a cache at most this old, so that a subject revoked
/// by the offline CLI stops working within this time.
const MAX_CACHE_AGE_MS: i64 = 30_000;

pub fn sha1_hex(s: &str) -> String {
    crate::ids::hex(&sha1::Sha1::digest(s.as_bytes()))
}

pub fn sha512_hex(s: &str) -> String {
    crate::ids::hex(&sha2::Sha512::digest(s.as_bytes()))
}

/// Compares two strings in time that depends only on their lengths.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && tokens::ct_starts_with(a, b)
}

/// A subject as the cache holds it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub access_token: String,
    digest: String,
    token_sha1: String,
    pub doc: AuthDoc,
}

impl Subject {
    /// Nightscout's listing shape: `_id`, `name`, `accessToken`, `roles` (+ notes, created_at).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "_id": self.id,
            "name": self.name,
            "accessToken": self.access_token,
            "roles": self.roles,
        });
        for key in ["notes", "created_at"] {
            if let (Some(obj), Some(x)) = (v.as_object_mut(), self.doc.doc.get(key)) {
                obj.insert(key.into(), x.clone());
            }
        }
        v
    }
}

/// A role: a stored one, or a built-in one not overridden by a stored one of the same name.
#[derive(Debug, Clone)]
pub struct Role {
    pub id: Option<String>,
    pub name: String,
    pub permissions: Vec<String>,
    pub doc: Option<AuthDoc>,
}

impl Role {
    pub fn to_json(&self) -> Value {
        match &self.doc {
            Some(d) => {
                let mut v = d.to_json();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("permissions".into(), json!(self.permissions));
                }
                v
            }
            None => json!({ "name": self.name, "permissions": self.permissions }),
        }
    }
}

#[derive(Debug, Default)]
pub struct AuthData {
    pub subjects: Vec<Subject>,
    pub roles: Vec<Role>,
}

impl AuthData {
    pub fn build(secret_sha1: &str, subjects: Vec<AuthDoc>, roles: Vec<AuthDoc>) -> AuthData {
        let mut all_roles: Vec<Role> = roles
            .into_iter()
            .map(|d| Role {
                id: Some(d.id.clone()),
                name: d.name().to_string(),
                permissions: d.strings("permissions"),
                doc: Some(d),
            })
            .collect();
        for name in roles::BUILTIN {
            if !all_roles.iter().any(|r| r.name == *name) {
                all_roles.push(Role {
                    id: None,
                    name: (*name).to_string(),
                    permissions: roles::builtin_permissions(name)
                        .iter()
                        .map(|p| (*p).to_string())
                        .collect(),
                    doc: None,
                });
            }
        }
        all_roles.sort_by(|a, b| a.name.cmp(&b.name));
        let subjects = subjects
            .into_iter()
            .map(|d| {
                let digest = tokens::subject_digest(secret_sha1, &d.id);
                let name = d.name().to_string();
                let access_token = tokens::access_token(&name, &digest);
                Subject {
                    id: d.id.clone(),
                    roles: d.strings("roles"),
                    token_sha1: sha1_hex(&access_token),
                    access_token,
                    digest,
                    name,
                    doc: d,
                }
            })
            .collect();
        AuthData {
            subjects,
            roles: all_roles,
        }
    }

    /// The subject an access token (or the SHA-1 hex of one) names, as Nightscout's
    /// findSubject: the part after the last `-` (at least 16 hex) starts the subject's digest,
    /// or the whole value starts the SHA-1 of its access token. Every subject is compared, in
    /// constant time, so the timing tells nothing about which prefix matched.
    pub fn find_subject(&self, token: &str) -> Option<&Subject> {
        let token = token.trim().to_ascii_lowercase();
        let prefix = token.rsplit('-').next().unwrap_or("");
        if prefix.len() < 16 {
            return None;
        }
        let mut found = None;
        for s in &self.subjects {
            let hit = tokens::ct_starts_with(&s.digest, prefix)
                | (token.len() >= 16 && tokens::ct_starts_with(&s.token_sha1, &token));
            if hit && found.is_none() {
                found = Some(s);
            }
        }
        found
    }

    /// Whether `other` grants the same: the same subjects (id, name, roles) and roles
    /// (name, permissions). Open sessions are re-checked only when this changes.
    fn same_grants(&self, other: &AuthData) -> bool {
        let subjects = |d: &AuthData| -> Vec<(String, String, Vec<String>)> {
            d.subjects
                .iter()
                .map(|s| (s.id.clone(), s.name.clone(), s.roles.clone()))
                .collect()
        };
        let roles = |d: &AuthData| -> Vec<(String, Vec<String>)> {
            d.roles
                .iter()
                .map(|r| (r.name.clone(), r.permissions.clone()))
                .collect()
        };
        subjects(self) == subjects(other) && roles(self) == roles(other)
    }

    /// The permissions of role names (unknown names grant nothing).
    pub fn permissions_of(&self, role_names: &[String]) -> Vec<String> {
        role_names
            .iter()
            .filter_map(|n| self.roles.iter().find(|r| &r.name == n))
            .flat_map(|r| r.permissions.iter().cloned())
            .collect()
    }
}

/// Credentials as a request presents them.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// `?secret=`, `api-secret`, or a body `secret`: the API secret's digest or an access token.
    pub secret: Option<String>,
    /// `Authorization: Bearer <JWT>`.
    pub bearer: Option<String>,
    /// `?token=` or a body `token`: an access token or a JWT.
    pub token: Option<String>,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.secret.is_none() && self.bearer.is_none() && self.token.is_none()
    }
}

/// What the current request may do.
#[derive(Debug, Clone)]
pub struct Access {
    pub permissions: Vec<String>,
    /// No credential was given: only the default roles apply.
    pub defaults: bool,
    /// A credential was given and matched nothing.
    pub failed: bool,
    /// The subject of a token or JWT.
    pub subject: Option<Subject>,
}

impl Access {
    pub fn can(&self, permission: &str) -> bool {
        permissions::any_implies(&self.permissions, permission)
    }

    /// Ok when permitted, else Nightscout's 401.
    pub fn require(&self, permission: &str) -> Result<(), Error> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(Error::Unauthorized("Unauthorized".into()))
        }
    }

    pub fn subject_name(&self) -> Option<&str> {
        self.subject.as_ref().map(|s| s.name.as_str())
    }
}

/// What `/api/v2/authorization/request/<token>` and status `authorized` return.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub token: String,
    pub subject: Subject,
    pub permission_groups: Vec<Vec<String>>,
    pub iat: i64,
    pub exp: i64,
}

impl Authorized {
    pub fn to_json(&self) -> Value {
        json!({
            "token": self.token,
            "sub": self.subject.name,
            "permissionGroups": self.permission_groups,
            "iat": self.iat,
            "exp": self.exp,
        })
    }
}

pub struct Authority {
    secret_sha1: String,
    secret_sha512: String,
    default_roles: Vec<String>,
    jwt_key: Vec<u8>,
    delay: delay::FailDelay,
    pub trust_proxy: proxy::ProxyTrust,
    data: RwLock<Arc<AuthData>>,
    last_reload_ms: AtomicI64,
    store: Store,
    /// Counts changes of subjects or roles, so open sessions re-check what they may do.
    changes: tokio::sync::watch::Sender<u64>,
}

/// The JWT signing key: random per install, kept in the data dir so JWTs survive restarts.
fn load_or_create_key(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(JWT_KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if text.len() >= 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(text.as_bytes().to_vec());
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let key = crate::ids::hex(&bytes);
    crate::config::write_private(&path, &key)?;
    Ok(key.into_bytes())
}

impl Authority {
    /// Builds the authority and loads subjects and roles. `config.api_secret` must be set.
    pub async fn load(config: &Config, store: Store) -> Result<Authority> {
        let secret = config
            .api_secret
            .as_deref()
            .ok_or_else(|| Error::Internal("API_SECRET is not set".into()))?;
        let a = Authority {
            secret_sha1: sha1_hex(secret),
            secret_sha512: sha512_hex(secret),
            default_roles: config.auth_default_roles.clone(),
            jwt_key: load_or_create_key(&config.data_dir)?,
            delay: delay::FailDelay::new(config.auth_fail_delay_ms),
            trust_proxy: config.trust_proxy.clone(),
            data: RwLock::new(Arc::new(AuthData::default())),
            last_reload_ms: AtomicI64::new(0),
            store,
            changes: tokio::sync::watch::channel(0).0,
        };
        a.reload().await?;
        Ok(a)
    }

    /// Re-reads subjects and roles from the database.
    pub async fn reload(&self) -> Result<()> {
        let (subjects, roles) = self
            .store
            .read(|c| {
                Ok((
                    auth_store::list(c, AuthTable::Subjects)?,
                    auth_store::list(c, AuthTable::Roles)?,
                ))
            })
            .await?;
        let data = Arc::new(AuthData::build(&self.secret_sha1, subjects, roles));
        let old = std::mem::replace(
            &mut *self.data.write().unwrap_or_else(|p| p.into_inner()),
            data.clone(),
        );
        self.last_reload_ms.store(now_ms(), Ordering::Relaxed);
        if !old.same_grants(&data) {
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Changes when subjects or roles change (through the API, or found by a reload after
    /// the offline CLI changed them): live sessions then call [`Authority::recheck`].
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// What credentials that were accepted before allow now (no failure delay or count: the
    /// client did not present them again).
    pub async fn recheck(&self, creds: &Credentials) -> Access {
        self.resolve_now(creds).await
    }

    /// Reloads subjects and roles every MAX_CACHE_AGE_MS for the life of the server, so a
    /// revocation by the offline CLI reaches open sessions, which look nothing up themselves.
    pub async fn reload_periodically(&self) {
        let every = std::time::Duration::from_millis(MAX_CACHE_AGE_MS.unsigned_abs());
        loop {
            actix_web::rt::time::sleep(every).await;
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "reloading subjects failed");
            }
        }
    }

    pub fn snapshot(&self) -> Arc<AuthData> {
        self.data.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn secret_sha1(&self) -> &str {
        &self.secret_sha1
    }

    pub fn is_api_secret(&self, presented: &str) -> bool {
        let p = presented.trim().to_ascii_lowercase();
        constant_time_eq(&p, &self.secret_sha1) | constant_time_eq(&p, &self.secret_sha512)
    }

    pub fn default_permissions(&self) -> Vec<String> {
        self.snapshot().permissions_of(&self.default_roles)
    }

    /// The subject of an access token. The cache is reloaded (rate-limited) on a miss, so
    /// subjects made by the offline CLI are found, and when older than MAX_CACHE_AGE_MS.
    async fn find_subject(&self, token: &str) -> Option<Subject> {
        let age = now_ms() - self.last_reload_ms.load(Ordering::Relaxed);
        let cached = self.snapshot().find_subject(token).cloned();
        let fresh_enough = if cached.is_some() {
            MAX_CACHE_AGE_MS
        } else {
            RELOAD_ON_MISS_MS
        };
        if age < fresh_enough {
            return cached;
        }
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "reloading subjects failed");
        }
        self.snapshot().find_subject(token).cloned()
    }

    /// The access token a JWT was issued for.
    fn jwt_access_token(&self, jwt: &str) -> Option<String> {
        jwt::verify(&self.jwt_key, jwt, now_ms() / 1000).map(|c| c.access_token)
    }

    /// A JWT for an access token (or a still valid JWT), as `/request/<token>` answers.
    pub async fn authorize(&self, token: &str) -> Option<Authorized> {
        let access_token = self
            .jwt_access_token(token)
            .unwrap_or_else(|| token.to_string());
        let subject = self.find_subject(&access_token).await?;
        let now_s = now_ms() / 1000;
        let signed = jwt::sign(&self.jwt_key, &subject.access_token, now_s)?;
        let data = self.snapshot();
        let mut role_names = subject.roles.clone();
        for r in &self.default_roles {
            if !role_names.contains(r) {
                role_names.push(r.clone());
            }
        }
        let permission_groups = role_names
            .iter()
            .map(|r| data.permissions_of(std::slice::from_ref(r)))
            .collect();
        Some(Authorized {
            token: signed,
            subject,
            permission_groups,
            iat: now_s,
            exp: now_s + jwt::LIFETIME_S,
        })
    }

    /// What a client without credentials may do (the default roles).
    pub fn defaults(&self) -> Access {
        Access {
            permissions: self.default_permissions(),
            defaults: true,
            failed: false,
            subject: None,
        }
    }

    /// Waits out `ip`'s brute-force penalty (an async sleep: no worker is held).
    async fn wait_penalty(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            let wait = self.delay.penalty_ms(ip, now_ms());
            if wait > 0 {
                actix_web::rt::time::sleep(std::time::Duration::from_millis(wait.unsigned_abs()))
                    .await;
            }
        }
    }

    /// Counts a credential's outcome for `ip`: a failure adds to its penalty, a success
    /// clears it.
    fn note_outcome(&self, ip: Option<IpAddr>, failed: bool) {
        let Some(ip) = ip else { return };
        if failed {
            self.delay.failed(ip, now_ms());
            tracing::warn!(%ip, "failed authentication");
        } else {
            self.delay.succeeded(ip);
        }
    }

    /// [`Self::authorize`] for a client: the penalty is waited out first and a token that
    /// names no subject counts as a failed credential, like any other.
    pub async fn authorize_from(&self, token: &str, ip: Option<IpAddr>) -> Option<Authorized> {
        self.wait_penalty(ip).await;
        let authorized = self.authorize(token).await;
        self.note_outcome(ip, authorized.is_none());
        authorized
    }

    /// Resolves credentials to permissions, waiting out `ip`'s brute-force penalty first.
    pub async fn resolve(&self, creds: &Credentials, ip: Option<IpAddr>) -> Access {
        self.wait_penalty(ip).await;
        let access = self.resolve_now(creds).await;
        if access.failed || !access.defaults {
            self.note_outcome(ip, access.failed);
        }
        access
    }

    async fn resolve_now(&self, creds: &Credentials) -> Access {
        let secret = creds
            .secret
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "null");
        let bearer = creds.bearer.as_deref().filter(|s| !s.is_empty());
        // A `?token=` that names no subject is ignored, as in Nightscout (defaults apply).
        let mut token_subject = None;
        if bearer.is_none() {
            if let Some(t) = creds.token.as_deref().filter(|t| !t.is_empty()) {
                let access_token = self.jwt_access_token(t).unwrap_or_else(|| t.to_string());
                token_subject = self.find_subject(&access_token).await;
            }
        }
        if secret.is_none() && bearer.is_none() && token_subject.is_none() {
            return self.defaults();
        }
        if secret.is_some_and(|s| self.is_api_secret(s)) {
            return Access {
                permissions: vec!["*".into()],
                defaults: false,
                failed: false,
                subject: None,
            };
        }
        let subject = match (token_subject, bearer) {
            (Some(s), _) => Some(s),
            (None, Some(b)) => match self.jwt_access_token(b) {
                Some(at) => self.find_subject(&at).await,
                None => None,
            },
            (None, None) => None,
        };
        let subject = match (subject, secret) {
            (Some(s), _) => Some(s),
            (None, Some(sec)) => self.find_subject(sec).await,
            (None, None) => None,
        };
        match subject {
            Some(s) => {
                let data = self.snapshot();
                let mut permissions = data.permissions_of(&s.roles);
                permissions.extend(data.permissions_of(&self.default_roles));
                Access {
                    permissions,
                    defaults: false,
                    failed: false,
                    subject: Some(s),
                }
            }
            None => Access {
                permissions: vec![],
                defaults: false,
                failed: true,
                subject: None,
            },
        }
    }

    /// Creates or replaces a subject or role document; reloads the cache.
    pub async fn save(&self, table: AuthTable, doc: AuthDoc) -> Result<AuthDoc> {
        let saved = doc.clone();
        self.store
            .write(move |c| auth_store::save(c, table, &doc))
            .await?;
        self.reload().await?;
        Ok(saved)
    }

    /// Removes a subject or role; reloads the cache. Deleting a subject revokes its token and
    /// every JWT issued for it at once, because JWTs are checked against the cache on each use.
    pub async fn remove(&self, table: AuthTable, id: String) -> Result<bool> {
        let removed = self
            .store
            .write(move |c| auth_store::remove(c, table, &id))
            .await?;
        self.reload().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn data(roles_of: &[(&str, &[&str])]) -> AuthData {
        let subjects = roles_of
            .iter()
            .enumerate()
            .map(|(i, (name, roles))| {
                let mut doc = Map::new();
                doc.insert("name".into(), json!(name));
                doc.insert("roles".into(), json!(roles));
                AuthDoc {
                    id: format!("5f1e2d3c4b5a6978877665{i:02}"),
                    doc,
                }
            })
            .collect();
        AuthData::build(&sha1_hex("0123456789abc"), subjects, vec![])
    }

    #[test]
    fn tokens_resolve_in_all_forms() {
        let d = data(&[("Reader", &["readable"]), ("Uploader", &["careportal"])]);
        let reader = &d.subjects[0];
        assert!(reader.access_token.starts_with("reader-"));
        assert_eq!(
            d.find_subject(&reader.access_token)
                .map(|s| s.name.as_str()),
            Some("Reader")
        );
        let sha = sha1_hex(&reader.access_token);
        assert_eq!(
            d.find_subject(&sha).map(|s| s.name.as_str()),
            Some("Reader")
        );
        assert_eq!(
            d.find_subject(&reader.access_token.to_uppercase())
                .map(|s| s.name.as_str()),
            Some("Reader")
        );
        assert!(d.find_subject("reader-0000000000000000").is_none());
        assert!(
            d.find_subject("reader-abc").is_none(),
            "short prefixes are refused"
        );
    }

    #[test]
    fn builtin_roles_always_exist_and_stored_ones_override() {
        let mut doc = Map::new();
        doc.insert("name".into(), json!("readable"));
        doc.insert("permissions".into(), json!(["api:entries:read"]));
        let d = AuthData::build(
            "x",
            vec![],
            vec![AuthDoc {
                id: "r1".into(),
                doc,
            }],
        );
        for name in roles::BUILTIN {
            assert!(d.roles.iter().any(|r| r.name == *name), "{name}");
        }
        assert_eq!(
            d.permissions_of(&["readable".into()]),
            vec!["api:entries:read"]
        );
        assert_eq!(d.permissions_of(&["admin".into()]), vec!["*"]);
    }
}
