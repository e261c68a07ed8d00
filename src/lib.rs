//! nightlite: a Nightscout-compatible server on SQLite. `main.rs` parses the command line;
//! everything else lives here so tests can run the real server on an ephemeral port.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod dates;
pub mod error;
pub mod ids;
pub mod store;

use std::future::Future;
use std::net::TcpListener;

use actix_web::middleware::{Compress, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};

pub use config::Config;
pub use error::{Error, Result};

/// Nightscout version reported to clients, which gate features on it.
pub const NIGHTSCOUT_VERSION: &str = "15.0.7";
pub const NIGHTLITE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every handler can reach.
pub struct AppState {
    pub config: Config,
    pub store: store::Store,
    pub auth: auth::Authority,
}

impl AppState {
    /// Opens the database and builds the state. `config.api_secret` must be set
    /// (see [`Config::ensure_secret`]).
    pub async fn open(config: Config) -> Result<AppState> {
        let store = store::Store::open(&config.data_dir)?;
        let auth = auth::Authority::load(&config, store.clone()).await?;
        Ok(AppState {
            config,
            store,
            auth,
        })
    }
}

/// Serves on `listener` until `shutdown` completes, then stops gracefully.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = web::Data::new(
        AppState::open(config)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(state.config.max_body_bytes))
            .wrap(actix_web::middleware::from_fn(api::guard::guard))
            .wrap(Compress::default())
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(actix_web::middleware::from_fn(api::http_conventions))
            .configure(api::configure)
    })
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await
}
