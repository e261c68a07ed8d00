//! nightlite: a Nightscout-compatible server on SQLite. `main.rs` parses the command line;
//! everything else lives here so tests can run the real server on an ephemeral port.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod auth;
pub mod care;
pub mod config;
pub mod connect;
pub(crate) mod connlimits;
pub mod dates;
pub(crate) mod documents;
pub(crate) mod error;
pub(crate) mod heap_trim;
pub(crate) mod https;
pub mod ids;
pub mod import;
pub(crate) mod jsnum;
pub mod lan;
mod layers;
pub(crate) mod live;
pub(crate) mod plugins;
pub(crate) mod profiles;
pub mod qs;
pub(crate) mod remote;
mod server;
pub(crate) mod spans;
pub mod store;
pub mod sync;
pub mod tls;
pub(crate) mod web;

pub use config::Config;
pub use error::{Error, Result};

/// Nightscout version reported to clients, which gate features on it.
pub const NIGHTSCOUT_VERSION: &str = "15.0.7";
pub const NIGHTLITE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The shared state as handlers receive it.
pub type State = actix_web::web::Data<AppState>;

/// What every handler can reach.
pub struct AppState {
    pub config: Config,
    pub store: store::Store,
    pub auth: auth::Authority,
    pub live: std::sync::Arc<live::Live>,
    pub socketio: live::socketio::Engine,
    /// What each bridge is doing (src/connect/, `GET /api/v4/bridges`).
    pub bridges: connect::Board,
    /// The sync with SYNC_URL (src/sync/service.rs, `/api/v4/sync/*`); None without it.
    pub sync: Option<sync::service::SyncService>,
}

impl AppState {
    /// Opens the database and builds the state. `config.api_secret` must be set
    /// (see [`Config::ensure_secret`]).
    pub async fn open(config: Config) -> Result<AppState> {
        let store =
            store::Store::open(&config.data_dir)?.with_fake_disk_free(config.test_disk_free_bytes);
        let auth = auth::Authority::load(&config, store.clone()).await?;
        let live = std::sync::Arc::new(live::Live::new(&config));
        let bridges = connect::board(&config.bridges);
        let sync = config
            .sync
            .clone()
            .map(|s| sync::service::SyncService::new(s, store.clone()));
        Ok(AppState {
            sync,
            bridges,
            config,
            store,
            auth,
            live,
            socketio: live::socketio::Engine::default(),
        })
    }
}

pub use server::{serve, serve_announced, serve_with_clock};
