//! Shiro-style permission strings as Nightscout matches them: `:`-separated segments, `*` in a
//! granted segment matches anything, a comma lists alternatives, and a granted permission with
//! fewer segments implies everything below it (`api:entries` grants `api:entries:read`).

/// Does the granted permission imply the wanted one?
pub(crate) fn implies(granted: &str, wanted: &str) -> bool {
    let granted: Vec<&str> = granted.split(':').collect();
    let wanted: Vec<&str> = wanted.split(':').collect();
    for (i, want) in wanted.iter().enumerate() {
        let Some(have) = granted.get(i) else {
            // Implicit trailing wildcard.
            return true;
        };
        if *have == "*" {
            continue;
        }
        let matches = have.split(',').any(|alt| alt == *want || alt == "*");
        if !matches {
            return false;
        }
    }
    // Every wanted segment matched; a longer grant is narrower unless it is all wildcards.
    granted[wanted.len()..].iter().all(|s| *s == "*")
}

/// Does any of the granted permissions imply `wanted`?
pub fn any_implies<S: AsRef<str>>(granted: &[S], wanted: &str) -> bool {
    granted.iter().any(|g| implies(g.as_ref(), wanted))
}

#[cfg(test)]
mod tests {
    use super::implies;

    #[test]
    fn wildcards_and_lists() {
        assert!(implies("*", "api:entries:read"));
        assert!(implies("*:*:read", "api:entries:read"));
        assert!(!implies("*:*:read", "api:entries:create"));
        assert!(implies(
            "api:entries,treatments:read",
            "api:treatments:read"
        ));
        assert!(!implies("api:entries,treatments:read", "api:food:read"));
        assert!(implies("api:entries", "api:entries:read"));
        assert!(!implies("api:entries:read", "api:entries"));
        assert!(implies("api:entries:*", "api:entries"));
        assert!(!implies("api:status:read", "api:entries:read"));
        // A wanted wildcard needs a granted wildcard (verifyauth checks *:*:read).
        assert!(implies("*:*:read", "*:*:read"));
        assert!(!implies("api:entries:read", "*:*:read"));
    }
}
