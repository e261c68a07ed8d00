//! CareLink's imported tokens (research/bridges.md §5 (c)): the first login needs a browser
//! (Auth0 with a CAPTCHA), so a community tool writes `logindata.json` and nightlite reads it,
//! refreshes the access token itself and writes the (possibly rotated) refresh token back,
//! atomically, so a restart keeps working. Nothing here logs or formats a token: messages
//! name the file and fixed words only.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::errors::SourceError;

/// Refresh when the access token has less than this left (carelink_client2 uses 10 min).
pub const REFRESH_BEFORE_MS: i64 = 10 * 60_000;

/// The token file as read: every field kept, so writing it back loses none.
#[derive(Clone)]
pub struct Tokens {
    fields: Map<String, Value>,
}

/// What a refresh sends: the token endpoint and its form.
pub struct RefreshRequest {
    pub url: String,
    pub form: Vec<(&'static str, String)>,
}

/// The token file's text; a missing or unreadable file is fatal (the user must produce it).
pub fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|e| {
        SourceError::fatal(format!(
            "cannot read the CareLink token file {} ({}): log in with a CareLink login tool \
             and put its logindata.json there (docs/bridges.md)",
            path.display(),
            e.kind()
        ))
    })
}

impl Tokens {
    /// The tokens in the file's text (read with [`read`]).
    pub fn parse(text: &str, path: &Path) -> Result<Tokens, SourceError> {
        let shown = path.display();
        let fields = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(SourceError::fatal(format!(
                    "the CareLink token file {shown} is not a JSON object"
                )))
            }
        };
        let t = Tokens { fields };
        for key in ["access_token", "refresh_token", "client_id"] {
            if t.text(key).is_none() {
                return Err(SourceError::fatal(format!(
                    "the CareLink token file {shown} has no {key}: log in again (docs/bridges.md)"
                )));
            }
        }
        Ok(t)
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn access_token(&self) -> &str {
        self.text("access_token").unwrap_or("")
    }

    /// The `mag-identifier` header the CarePartner app sends, when the file has one.
    pub fn mag_identifier(&self) -> Option<&str> {
        self.text("mag-identifier")
    }

    /// When the access token expires (its JWT `exp`), if it says.
    pub fn expires_ms(&self) -> Option<i64> {
        let payload = self.access_token().split('.').nth(1)?;
        let claims: Value =
            serde_json::from_slice(&crate::auth::jwt::b64url_decode(payload)?).ok()?;
        claims["exp"].as_i64().map(|s| s.saturating_mul(1000))
    }

    /// Whether the access token should be refreshed at `now` (unknown expiry: used until a
    /// 401 says otherwise).
    pub fn stale(&self, now: i64) -> bool {
        self.expires_ms()
            .is_some_and(|exp| exp - now < REFRESH_BEFORE_MS)
    }

    /// The refresh request, or a fatal error when the file names no token endpoint.
    pub fn refresh_request(&self, path: &Path) -> Result<RefreshRequest, SourceError> {
        let url = self.text("token_url").ok_or_else(|| {
            SourceError::fatal(format!(
                "the CareLink token file {} names no token_url (an older login tool wrote \
                 it): log in again with a current one (docs/bridges.md)",
                path.display()
            ))
        })?;
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            (
                "client_id",
                self.text("client_id").unwrap_or("").to_string(),
            ),
            (
                "refresh_token",
                self.text("refresh_token").unwrap_or("").to_string(),
            ),
        ];
        if let Some(s) = self.text("client_secret") {
            form.push(("client_secret", s.to_string()));
        }
        Ok(RefreshRequest {
            url: url.to_string(),
            form,
        })
    }

    /// Takes a refresh reply's tokens (a refresh token only when it rotated).
    pub fn refreshed(&mut self, reply: &Value) -> Result<(), SourceError> {
        let access = reply["access_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                SourceError::transient("CareLink's token refresh gave no access token")
            })?;
        self.fields
            .insert("access_token".into(), access.to_string().into());
        if let Some(r) = reply["refresh_token"].as_str().filter(|s| !s.is_empty()) {
            self.fields
                .insert("refresh_token".into(), r.to_string().into());
        }
        Ok(())
    }

    /// Writes the file back atomically: a temporary file beside it (owner-only), synced, then
    /// renamed over it, so a crash leaves the old file or the new one, never half of one.
    /// Returns the text written.
    pub fn save(&self, path: &Path) -> Result<String, SourceError> {
        let failed = |e: std::io::Error| {
            // Transient: the tokens in memory still work; the next refresh writes again.
            SourceError::transient(format!(
                "cannot write the CareLink token file {} ({})",
                path.display(),
                e.kind()
            ))
        };
        let text = serde_json::to_string_pretty(&Value::Object(self.fields.clone()))
            .map_err(|_| SourceError::transient("cannot encode the CareLink tokens"))?;
        let tmp = temporary(path);
        write_private(&tmp, text.as_bytes()).map_err(failed)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed(e)
        })?;
        Ok(text)
    }
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".nightlite-new");
    path.with_file_name(name)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwt(exp_s: i64) -> String {
        let p = crate::auth::jwt::b64url_encode(format!("{{\"exp\":{exp_s}}}").as_bytes());
        format!("eyJhbGciOiJSUzI1NiJ9.{p}.sig")
    }

    #[test]
    fn a_refresh_keeps_every_field_and_writes_the_rotated_token_back() {
        let dir = std::env::temp_dir().join(format!("nl-cl-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("logindata.json");
        let file = serde_json::json!({"access_token": jwt(1000), "refresh_token": "r1",
            "client_id": "c", "token_url": "http://127.0.0.1:1/oauth/token", "scope": "s"});
        std::fs::write(&path, file.to_string()).unwrap();
        let mut t = Tokens::parse(&read(&path).unwrap(), &path).unwrap();
        assert_eq!(t.expires_ms(), Some(1_000_000));
        assert!(t.stale(1_000_000 - REFRESH_BEFORE_MS + 1));
        assert!(!t.stale(1_000_000 - REFRESH_BEFORE_MS - 1));
        let req = t.refresh_request(&path).unwrap();
        assert!(req.form.contains(&("refresh_token", "r1".into())));
        t.refreshed(&serde_json::json!({"access_token": "a2", "refresh_token": "r2"}))
            .unwrap();
        let written = t.save(&path).unwrap();
        assert_eq!(read(&path).unwrap(), written);
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            (
                &back["access_token"],
                &back["refresh_token"],
                &back["scope"]
            ),
            (&"a2".into(), &"r2".into(), &"s".into())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
