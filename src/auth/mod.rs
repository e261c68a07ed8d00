//! Who is asking and what they may do. This part: the API secret (SHA-1 or SHA-512 hex,
//! any case, in the `api-secret` header or `?secret=`) grants everything; a request without
//! credentials gets AUTH_DEFAULT_ROLES; a wrong credential gets nothing (401), as in Nightscout.

pub mod permissions;
pub mod roles;

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use sha1::Digest;

use crate::error::Error;

pub struct Authority {
    secret_sha1: String,
    secret_sha512: String,
    default_permissions: Vec<String>,
}

/// What the current request may do.
#[derive(Debug, Clone)]
pub struct Access {
    pub permissions: Vec<String>,
    /// No credential was given: only the default roles apply.
    pub defaults: bool,
    /// A credential was given and matched nothing.
    pub failed: bool,
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
}

/// Compares two strings in time that depends only on their lengths.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn sha1_hex(s: &str) -> String {
    crate::ids::hex(&sha1::Sha1::digest(s.as_bytes()))
}

pub fn sha512_hex(s: &str) -> String {
    crate::ids::hex(&sha2::Sha512::digest(s.as_bytes()))
}

impl Authority {
    pub fn new(api_secret: &str, default_roles: &[String]) -> Authority {
        Authority {
            secret_sha1: sha1_hex(api_secret),
            secret_sha512: sha512_hex(api_secret),
            default_permissions: roles::permissions_of(default_roles),
        }
    }

    pub fn is_api_secret(&self, presented: &str) -> bool {
        let p = presented.trim().to_ascii_lowercase();
        constant_time_eq(&p, &self.secret_sha1) || constant_time_eq(&p, &self.secret_sha512)
    }

    pub fn resolve(&self, secret: Option<&str>, token: Option<&str>) -> Access {
        let secret = secret.filter(|s| !s.is_empty() && *s != "null");
        let token = token.filter(|t| !t.is_empty());
        if secret.is_none() && token.is_none() {
            return Access {
                permissions: self.default_permissions.clone(),
                defaults: true,
                failed: false,
            };
        }
        if secret.is_some_and(|s| self.is_api_secret(s)) {
            return Access {
                permissions: vec!["*".into()],
                defaults: false,
                failed: false,
            };
        }
        Access {
            permissions: vec![],
            defaults: false,
            failed: true,
        }
    }
}

/// The first value of a query-string parameter, percent-decoded.
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    crate::api::qs::first_value(req.query_string(), name)
}

impl FromRequest for Access {
    type Error = Error;
    type Future = Ready<Result<Access, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<crate::AppState>>() else {
            return ready(Err(Error::Internal("application state missing".into())));
        };
        // Nightscout reads ?secret= before the api-secret header.
        let secret = query_param(req, "secret").or_else(|| {
            req.headers()
                .get("api-secret")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        let token = query_param(req, "token");
        ready(Ok(state.auth.resolve(secret.as_deref(), token.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hashes_in_any_case() {
        let a = Authority::new("0123456789abc", &["denied".to_string()]);
        let sha1 = sha1_hex("0123456789abc");
        assert!(a
            .resolve(Some(&sha1.to_uppercase()), None)
            .can("api:entries:create"));
        assert!(a
            .resolve(Some(&sha512_hex("0123456789abc")), None)
            .can("api:entries:create"));
        assert!(
            !a.resolve(Some("0123456789abc"), None)
                .can("api:entries:read"),
            "plain secret is not accepted"
        );
        let none = a.resolve(None, None);
        assert!(none.defaults && !none.can("api:entries:read"));
        let wrong = a.resolve(Some(&"0".repeat(40)), None);
        assert!(wrong.failed && !wrong.can("api:status:read"));
    }

    #[test]
    fn readable_default_reads_but_does_not_write() {
        let a = Authority::new("0123456789abc", &["readable".to_string()]);
        let anon = a.resolve(None, None);
        assert!(anon.can("api:entries:read"));
        assert!(!anon.can("api:entries:create"));
    }
}
