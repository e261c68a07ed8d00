//! Who is asking: a subject (recorded in API v3 documents as Nightscout does) and the
//! permissions its credentials carry.

use crate::auth::permissions;
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::store::Collection;

/// What an operation does to a collection: the last part of Nightscout's
/// `api:<collection>:<action>` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    subject: Option<String>,
    permissions: Vec<String>,
}

impl Caller {
    /// A client, as the guard resolved its credentials.
    pub fn new(access: &Access) -> Caller {
        Caller {
            subject: access.subject_name().map(str::to_string),
            permissions: access.permissions.clone(),
        }
    }

    /// nightlite itself (a bridge, replication, an import): every permission, and `name`
    /// recorded as the subject of what it writes through API v3 rules (`nightlite import`,
    /// src/import/; the bridges, `connect:<source>`).
    pub fn server(name: &str) -> Caller {
        Caller {
            subject: Some(name.to_string()),
            permissions: vec!["*".to_string()],
        }
    }

    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    pub fn can(&self, coll: Collection, action: Action) -> bool {
        self.has(&permission(coll, action))
    }

    /// Whether the caller holds `permission` (Nightscout's shiro-style `a:b:c`).
    pub fn has(&self, permission: &str) -> bool {
        permissions::any_implies(&self.permissions, permission)
    }

    /// Ok when permitted, else 403 naming the missing permission (API v3's refusal).
    pub fn require(&self, coll: Collection, action: Action) -> Result<()> {
        if self.can(coll, action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "Missing permission {}",
                permission(coll, action)
            )))
        }
    }
}

fn permission(coll: Collection, action: Action) -> String {
    format!("api:{}:{}", coll.table(), action.name())
}
