//! A source's session (authenticate → authorize): one login at a time, reused until it is
//! `ttl` old, dropped at once when the vendor says it is gone (the engine calls
//! [`Sessions::invalidate`] on an auth error and logs in again once).

use std::future::Future;

use super::errors::SourceError;

pub struct Sessions<S> {
    held: tokio::sync::Mutex<Option<(S, i64)>>,
    ttl_ms: i64,
}

impl<S: Clone> Sessions<S> {
    pub fn new(ttl_ms: i64) -> Sessions<S> {
        Sessions {
            held: tokio::sync::Mutex::new(None),
            ttl_ms,
        }
    }

    /// The live session, or a new one from `login` (run while the lock is held, so two
    /// callers never log in at once: the second gets the first's session).
    pub async fn get<F, Fut>(&self, now: i64, login: F) -> Result<S, SourceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<S, SourceError>>,
    {
        let mut held = self.held.lock().await;
        if let Some((s, since)) = held.as_ref() {
            if now - since < self.ttl_ms {
                return Ok(s.clone());
            }
        }
        *held = None;
        let s = login().await?;
        *held = Some((s.clone(), now));
        Ok(s)
    }

    pub async fn invalidate(&self) {
        *self.held.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn a_session_is_reused_until_it_expires_or_is_invalidated() {
        let logins = Cell::new(0);
        let sessions = Sessions::new(1000);
        let login = || async {
            logins.set(logins.get() + 1);
            Ok::<_, SourceError>(logins.get())
        };
        assert_eq!(sessions.get(0, login).await.unwrap(), 1);
        assert_eq!(sessions.get(999, login).await.unwrap(), 1);
        assert_eq!(sessions.get(1000, login).await.unwrap(), 2);
        sessions.invalidate().await;
        assert_eq!(sessions.get(1001, login).await.unwrap(), 3);
        let failed = sessions
            .get(1002, || async { Err::<i32, _>(SourceError::fatal("no")) })
            .await;
        assert!(failed.is_ok(), "a live session needs no login");
    }
}
