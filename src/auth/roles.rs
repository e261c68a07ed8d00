//! Nightscout's built-in roles, which always exist (a stored role of the same name replaces
//! one).

pub const BUILTIN: &[&str] = &[
    "admin",
    "denied",
    "status-only",
    "readable",
    "careportal",
    "devicestatus-upload",
    "activity",
];

/// The permissions of a built-in role; unknown names grant nothing.
pub fn builtin_permissions(role: &str) -> &'static [&'static str] {
    match role {
        "admin" => &["*"],
        "status-only" => &["api:status:read"],
        "readable" => &["*:*:read"],
        "careportal" => &["api:treatments:create"],
        "devicestatus-upload" => &["api:devicestatus:create"],
        "activity" => &["api:activity:create"],
        _ => &[],
    }
}
