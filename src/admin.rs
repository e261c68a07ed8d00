//! Offline administration on the data directory (`nightlite token ...`), so an appliance owner
//! can hand a follower a read token without the web page. A running server picks the change
//! up when the token is first used (its cache reloads on a miss).

use crate::auth::{tokens, AuthData};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::auth::{self as auth_store, AuthDoc, AuthTable};
use crate::store::Store;

/// A subject as the token commands print it.
pub struct TokenLine {
    pub name: String,
    pub roles: Vec<String>,
    pub access_token: String,
}

fn run<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    actix_web::rt::System::new().block_on(fut)
}

async fn load(store: &Store, secret_sha1: &str) -> Result<AuthData> {
    let (subjects, roles) = store
        .read(|c| {
            Ok((
                auth_store::list(c, AuthTable::Subjects)?,
                auth_store::list(c, AuthTable::Roles)?,
            ))
        })
        .await?;
    Ok(AuthData::build(secret_sha1, subjects, roles))
}

/// The database's path, or why the offline commands refuse this data directory: they must
/// not create a fresh one somewhere the server does not look.
pub fn existing_database(config: &Config) -> Result<std::path::PathBuf> {
    let db = config.data_dir.join(crate::store::DB_FILE);
    if db.is_file() {
        return Ok(db);
    }
    Err(Error::NotFound(format!(
        "no nightlite database in {} (no {}); point NIGHTLITE_DATA_DIR, or the --config file \
         the server uses, at the server's data directory",
        config.data_dir.display(),
        crate::store::DB_FILE
    )))
}

/// The SHA-1 of the secret the server uses: the configured one, else the one in the data
/// directory. Never generates one, and refuses a secret other than the server's.
fn secret_sha1(config: &mut Config) -> Result<String> {
    existing_database(config)?;
    if !config.stored_secret() {
        return Err(Error::NotFound(format!(
            "no API secret: API_SECRET is not set and {} holds none; use the server's settings \
             (the same --config file, and API_SECRET if the server has it in its environment)",
            config.secret_file().display()
        )));
    }
    config
        .check_same_secret_as_server()
        .map_err(|e| Error::bad_request(e.to_string()))?;
    let secret = config
        .api_secret
        .as_deref()
        .ok_or_else(|| Error::Internal("no API secret".into()))?;
    Ok(crate::auth::sha1_hex(secret))
}

/// Refuses AUTH_DEFAULT_ROLES naming a role that is neither built in nor stored in the
/// database (read only; a fresh data directory has none stored).
pub fn check_default_roles(config: &Config) -> std::result::Result<(), crate::config::ConfigError> {
    let builtin = crate::auth::roles::BUILTIN;
    if config
        .auth_default_roles
        .iter()
        .all(|r| builtin.contains(&r.as_str()))
    {
        return Ok(());
    }
    let db = config.data_dir.join(crate::store::DB_FILE);
    let stored: Vec<String> = if db.is_file() {
        auth_store::stored_role_names(&db)
    } else {
        Vec::new()
    };
    config.check_default_roles(&stored)
}

fn lines(data: &AuthData) -> Vec<TokenLine> {
    data.subjects
        .iter()
        .map(|s| TokenLine {
            name: s.name.clone(),
            roles: s.roles.clone(),
            access_token: s.access_token.clone(),
        })
        .collect()
}

/// Creates a subject with `roles` and returns its access token.
pub fn token_create(mut config: Config, name: &str, roles: &[String]) -> Result<TokenLine> {
    if name.trim().is_empty() {
        return Err(Error::bad_request("--name must not be empty"));
    }
    let sha = secret_sha1(&mut config)?;
    run(async {
        let store = Store::open(&config.data_dir)?;
        let data = load(&store, &sha).await?;
        for r in roles {
            if !data.roles.iter().any(|known| &known.name == r) {
                let known: Vec<&str> = data.roles.iter().map(|r| r.name.as_str()).collect();
                return Err(Error::bad_request(format!(
                    "unknown role '{r}'; known roles: {}",
                    known.join(", ")
                )));
            }
        }
        let mut doc = serde_json::Map::new();
        doc.insert("name".into(), name.into());
        doc.insert("roles".into(), serde_json::json!(roles));
        doc.insert("notes".into(), "created with nightlite token create".into());
        doc.insert(
            "created_at".into(),
            crate::dates::to_iso(crate::dates::now_ms()).into(),
        );
        let d = AuthDoc {
            id: crate::ids::object_id(),
            doc,
        };
        let id = d.id.clone();
        store
            .write(move |c| auth_store::save(c, AuthTable::Subjects, &d))
            .await?;
        let digest = tokens::subject_digest(&sha, &id);
        Ok(TokenLine {
            name: name.to_string(),
            roles: roles.to_vec(),
            access_token: tokens::access_token(name, &digest),
        })
    })
}

pub fn token_list(mut config: Config) -> Result<Vec<TokenLine>> {
    let sha = secret_sha1(&mut config)?;
    run(async {
        let store = Store::open(&config.data_dir)?;
        Ok(lines(&load(&store, &sha).await?))
    })
}

/// Removes every subject with this name; returns how many.
pub fn token_revoke(mut config: Config, name: &str) -> Result<usize> {
    let sha = secret_sha1(&mut config)?;
    run(async {
        let store = Store::open(&config.data_dir)?;
        let data = load(&store, &sha).await?;
        let ids: Vec<String> = data
            .subjects
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.id.clone())
            .collect();
        let n = ids.len();
        store
            .write(move |c| {
                for id in &ids {
                    auth_store::remove(c, AuthTable::Subjects, id)?;
                }
                Ok(())
            })
            .await?;
        Ok(n)
    })
}
