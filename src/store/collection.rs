//! The collections and what differs between them: table, time field, identity keys and how
//! API v1 types the values of `find[...]` filters (Nightscout's per-collection "walker").

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Entries,
    Treatments,
    DeviceStatus,
    Profile,
    Food,
    Activity,
    Settings,
}

/// How a `find` value for a field is typed before it is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Nightscout parses these with parseInt/Number: the value must be numeric.
    Number,
    /// The collection's time: compared on the `mills` column, value as ISO date or epoch ms.
    Time,
    /// `/pattern/flags` becomes a regular expression, anything else a string.
    RegexOrText,
    /// Server columns holding epoch ms (srvModified, srvCreated).
    ServerMs(&'static str),
    /// Anything else: compared as the client wrote it, also matching the number or boolean a
    /// numeric or `true`/`false` string stands for.
    Auto,
}

impl Collection {
    pub const ALL: [Collection; 7] = [
        Collection::Entries,
        Collection::Treatments,
        Collection::DeviceStatus,
        Collection::Profile,
        Collection::Food,
        Collection::Activity,
        Collection::Settings,
    ];

    /// The collections API v3 serves (and Socket.IO's `/storage` offers): all but activity, as
    /// Nightscout's lib/api3/generic/setup.js.
    pub const V3: [Collection; 6] = [
        Collection::DeviceStatus,
        Collection::Entries,
        Collection::Food,
        Collection::Profile,
        Collection::Settings,
        Collection::Treatments,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Collection::Entries => "entries",
            Collection::Treatments => "treatments",
            Collection::DeviceStatus => "devicestatus",
            Collection::Profile => "profile",
            Collection::Food => "food",
            Collection::Activity => "activity",
            Collection::Settings => "settings",
        }
    }

    pub fn from_name(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.table() == name)
    }

    /// The document field whose value is the document's time (kept in `mills`).
    pub fn time_field(self) -> &'static str {
        match self {
            Collection::Entries => "date",
            Collection::Profile => "startDate",
            _ => "created_at",
        }
    }

    /// Generated columns of the table (see schema.sql), usable in SQL instead of json_extract.
    pub fn column_for(self, field: &str) -> Option<&'static str> {
        let cols: &[&'static str] = match self {
            Collection::Entries => &["identifier", "date", "type", "device"],
            Collection::Treatments => &[
                "identifier",
                "created_at",
                "eventType",
                "enteredBy",
                "device",
            ],
            Collection::DeviceStatus => &["identifier", "created_at", "device"],
            Collection::Profile => &["identifier", "created_at", "startDate"],
            Collection::Food => &["identifier", "created_at", "type"],
            Collection::Activity | Collection::Settings => &["identifier", "created_at"],
        };
        cols.iter().copied().find(|c| *c == field)
    }

    /// Fallback identity when a document has no client identifier (API v3's
    /// dedupFallbackFields), as generated columns.
    pub fn dedup_columns(self) -> &'static [&'static str] {
        match self {
            Collection::Entries => &["date", "type"],
            Collection::Treatments => &["created_at", "eventType"],
            Collection::DeviceStatus => &["created_at", "device"],
            Collection::Profile => &["created_at"],
            Collection::Food | Collection::Activity | Collection::Settings => &[],
        }
    }

    pub fn field_kind(self, field: &str) -> FieldKind {
        match field {
            "srvModified" => return FieldKind::ServerMs("srv_modified"),
            "srvCreated" => return FieldKind::ServerMs("srv_created"),
            _ => {}
        }
        match self {
            Collection::Entries => match field {
                "date" | "dateString" | "sysTime" => FieldKind::Time,
                "sgv" | "filtered" | "unfiltered" | "rssi" | "noise" | "mbg" => FieldKind::Number,
                _ => FieldKind::Auto,
            },
            Collection::Treatments => match field {
                "created_at" => FieldKind::Time,
                "insulin" | "carbs" | "glucose" => FieldKind::Number,
                "notes" | "eventType" | "enteredBy" => FieldKind::RegexOrText,
                _ => FieldKind::Auto,
            },
            Collection::Profile => match field {
                "startDate" => FieldKind::Time,
                _ => FieldKind::Auto,
            },
            _ => match field {
                "created_at" => FieldKind::Time,
                _ => FieldKind::Auto,
            },
        }
    }

    /// Nightscout's default order for v1 lists: newest first by the time field; food has none.
    pub fn default_sort_desc(self) -> bool {
        !matches!(self, Collection::Food)
    }
}
