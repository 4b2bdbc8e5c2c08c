//! kubelet's container restart back-off (CrashLoopBackOff): the first restart is immediate, then each one
//! waits 10 s, 20 s, 40 s … up to 5 min after the previous exit; a container that ran for more than 10 minutes
//! (twice the cap) since the last back-off starts over. Times are wall-clock so records read back from disk
//! after an agent restart count too.

use std::time::Duration;

use jiff::Timestamp;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

/// One container's back-off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    current: Option<Duration>,
    last_update: Option<Timestamp>,
}

impl Backoff {
    /// The current delay, if any.
    pub fn current(&self) -> Option<Duration> {
        self.current
    }

    /// Whether a container that finished at `finished` may restart at `now`: `Err(remaining)` while backing
    /// off; `Ok(())` advances the back-off for the next time.
    pub fn check(&mut self, finished: Timestamp, now: Timestamp) -> Result<(), Duration> {
        let since = Duration::try_from(now.duration_since(finished)).unwrap_or(Duration::ZERO);
        if let Some(cur) = self.current {
            let expired = self.last_update.is_some_and(|last| {
                Duration::try_from(finished.duration_since(last)).unwrap_or(Duration::ZERO) > MAX * 2
            });
            if !expired && since < cur {
                return Err(cur - since);
            }
            if expired {
                self.current = None;
            }
        }
        self.current = Some(match self.current {
            None => INITIAL,
            Some(c) => (c * 2).min(MAX),
        });
        self.last_update = Some(finished);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn doubles_to_five_minutes_and_resets_after_ten() {
        let mut b = Backoff::default();
        assert_eq!(b.check(at(0), at(0)), Ok(()), "the first restart is immediate");
        assert_eq!(b.check(at(1), at(2)), Err(Duration::from_secs(9)));
        assert_eq!(b.check(at(1), at(11)), Ok(()));
        assert_eq!(b.current(), Some(Duration::from_secs(20)));
        let mut t = 11;
        for want in [40, 80, 160, 300, 300] {
            assert!(b.check(at(t), at(t + 1)).is_err());
            t += 400;
            assert_eq!(b.check(at(t - 400), at(t)), Ok(()));
            assert_eq!(b.current(), Some(Duration::from_secs(want)));
        }
        // Ran for 11 minutes: back to the start.
        assert_eq!(b.check(at(t + 660), at(t + 660)), Ok(()));
        assert_eq!(b.current(), Some(INITIAL));
    }
}
