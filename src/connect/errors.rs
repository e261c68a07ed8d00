//! What can go wrong talking to a vendor, in the four classes the engine acts on. A message
//! here is shown in the status API and the log, so it never holds a credential, a token or a
//! reply body (which can carry names and medical data): sources build it from fixed words,
//! status codes and the vendor's error code.

/// How the engine reacts to an error (docs/bridges.md, "States and errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The session is gone (401, Dexcom SessionIdNotFound): log in again, once.
    Auth,
    /// Retrying cannot help and may harm (a bad password locks accounts): stop polling the
    /// source and report it until the settings change and the server restarts.
    Fatal,
    /// The vendor asks us to slow down (429, Retry-After): wait as it says, at most 15 min.
    Throttle,
    /// Anything else (5xx, timeouts, refused connections, replies we cannot read): back off
    /// exponentially, at most 6 intervals.
    Transient,
    /// Not the vendor's: one fetched document the store refused. The rest is stored and the
    /// source goes on; the status shows it and counts it.
    Refused,
}

impl ErrorClass {
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Auth => "auth",
            ErrorClass::Fatal => "fatal",
            ErrorClass::Throttle => "throttle",
            ErrorClass::Transient => "transient",
            ErrorClass::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub class: ErrorClass,
    /// Without secrets (see the module doc).
    pub message: String,
    /// A throttle's Retry-After, in ms.
    pub retry_after_ms: Option<i64>,
}

impl SourceError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> SourceError {
        SourceError {
            class,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn auth(message: impl Into<String>) -> SourceError {
        SourceError::new(ErrorClass::Auth, message)
    }

    pub fn fatal(message: impl Into<String>) -> SourceError {
        SourceError::new(ErrorClass::Fatal, message)
    }

    pub fn transient(message: impl Into<String>) -> SourceError {
        SourceError::new(ErrorClass::Transient, message)
    }

    pub fn throttle(message: impl Into<String>, retry_after_ms: Option<i64>) -> SourceError {
        SourceError {
            class: ErrorClass::Throttle,
            message: message.into(),
            retry_after_ms,
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} error: {}", self.class.name(), self.message)
    }
}
