//! The one error type. Each variant maps to a Nightscout-shaped body
//! `{"status": <code>, "message": "..."}`; the logged cause stays separate from what the client
//! is told, so storage details and secrets never reach a response.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Client input that cannot be accepted; the message says what and how to fix it.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Gone(String),
    /// The request contradicts the resource's state (a sync conflict decided already).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// The data directory's disk is (nearly) full: new data is refused, reads still work.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The writer thread is gone (shutting down).
    #[error("the storage writer has stopped")]
    WriterGone,
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn client_message(&self) -> String {
        match self {
            Error::BadRequest(m)
            | Error::Unauthorized(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::MethodNotAllowed(m)
            | Error::Gone(m)
            | Error::Conflict(m)
            | Error::PreconditionFailed(m)
            | Error::Unprocessable(m)
            | Error::PayloadTooLarge(m)
            | Error::NotAcceptable(m)
            | Error::InsufficientStorage(m) => m.clone(),
            Error::WriterGone => "the server is shutting down".to_string(),
            Error::Sqlite(e) if is_disk_full(e) => {
                "the disk holding the database is full; nothing was written".to_string()
            }
            _ => "internal storage error; nothing was changed".to_string(),
        }
    }
}

/// SQLite ran out of disk space (the reserve check in store::disk was passed, yet the disk filled).
fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Gone(_) => StatusCode::GONE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Sqlite(e) if is_disk_full(e) => StatusCode::INSUFFICIENT_STORAGE,
            Error::WriterGone => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = serde_json::Map::new();
        body.insert("status".into(), status.as_u16().into());
        body.insert("message".into(), self.client_message().into());
        if status == StatusCode::UNAUTHORIZED {
            // Nightscout's 401 body carries this too; some clients show it.
            body.insert("description".into(), "Invalid/Missing".into());
        }
        HttpResponse::build(status).json(serde_json::Value::Object(body))
    }
}
