//! The sync's states and the transitions between them, as the synchronization protocol names
//! them (spec seed 003, "State Machine"). [`Machine`] refuses any other transition, so a bug
//! shows as an error instead of a status that lies.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No sync running.
    Idle,
    /// Logging in and reading where each side stands.
    Checking,
    Uploading,
    Downloading,
    /// Settling documents changed on both sides.
    Resolving,
    /// The run succeeded (then Idle).
    Complete,
    /// The run failed (then Idle).
    Error,
    /// The site is unreachable: a run waits for it (back-off).
    Queued,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "IDLE",
            State::Checking => "CHECKING",
            State::Uploading => "UPLOADING",
            State::Downloading => "DOWNLOADING",
            State::Resolving => "RESOLVING",
            State::Complete => "COMPLETE",
            State::Error => "ERROR",
            State::Queued => "QUEUED",
        }
    }

    /// The states this one may move to.
    pub fn next(self) -> &'static [State] {
        use State::*;
        match self {
            Idle => &[Checking, Queued],
            Checking => &[Uploading, Downloading, Complete, Error],
            Uploading => &[Complete, Error, Resolving],
            Downloading => &[Complete, Error, Resolving],
            Resolving => &[Uploading, Complete, Error],
            Queued => &[Checking, Error],
            Complete => &[Idle],
            Error => &[Idle],
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transition the protocol does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub from: State,
    pub to: State,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sync state {} cannot go to {}", self.from, self.to)
    }
}

/// The current state, moved only along allowed transitions.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    state: State,
}

impl Default for Machine {
    fn default() -> Self {
        Machine { state: State::Idle }
    }
}

impl Machine {
    pub fn state(&self) -> State {
        self.state
    }

    pub fn go(&mut self, to: State) -> Result<(), Refused> {
        if self.state.next().contains(&to) {
            self.state = to;
            Ok(())
        } else {
            Err(Refused {
                from: self.state,
                to,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_protocols_transitions_are_allowed() {
        use State::*;
        let all = [
            Idle,
            Checking,
            Uploading,
            Downloading,
            Resolving,
            Complete,
            Error,
            Queued,
        ];
        let mut allowed = 0;
        for from in all {
            for to in all {
                let mut m = Machine { state: from };
                let ok = m.go(to).is_ok();
                assert_eq!(ok, from.next().contains(&to), "{from} -> {to}");
                assert_eq!(m.state(), if ok { to } else { from });
                allowed += usize::from(ok);
            }
        }
        // The protocol's list: 2 + 4 + 3 + 3 + 3 + 2 + 1 + 1.
        assert_eq!(allowed, 19);
        let mut m = Machine::default();
        for s in [Checking, Downloading, Resolving, Uploading, Complete, Idle] {
            m.go(s).unwrap();
        }
        assert_eq!(
            m.go(Uploading).unwrap_err().to_string(),
            "sync state IDLE cannot go to UPLOADING"
        );
    }
}
