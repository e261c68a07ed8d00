//! Nightscout's built-in roles and the permissions each grants.

/// The permissions of a built-in role; unknown names grant nothing.
pub fn builtin_permissions(role: &str) -> &'static [&'static str] {
    match role {
        "admin" => &["*"],
        "denied" => &[],
        "status-only" => &["api:status:read"],
        "readable" => &["*:*:read"],
        "careportal" => &["api:treatments:create"],
        "devicestatus-upload" => &["api:devicestatus:create"],
        "activity" => &["api:activity:create"],
        _ => &[],
    }
}

/// The permissions of a list of role names.
pub fn permissions_of(roles: &[String]) -> Vec<String> {
    roles
        .iter()
        .flat_map(|r| builtin_permissions(r).iter().map(|p| (*p).to_string()))
        .collect()
}
