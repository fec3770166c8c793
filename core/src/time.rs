//! Time as a plain number: epoch milliseconds handed in by the host.

use serde::{Deserialize, Serialize};

/// Wall-clock time in integer epoch milliseconds, always supplied by the host.
///
/// State is shared between processes and persisted, so deadlines are absolute
/// wall-clock instants. Core never reads a clock; arithmetic saturates.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// The epoch itself.
    pub const ZERO: Self = Self(0);

    /// `self + ms`, saturating at `u64::MAX`.
    #[must_use]
    pub const fn plus(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `self` until `later`, zero when `later` is not later.
    #[must_use]
    pub const fn until(self, later: Self) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

/// One second in milliseconds.
pub const SECOND: u64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE: u64 = 60 * SECOND;
/// One hour in milliseconds.
pub const HOUR: u64 = 60 * MINUTE;
/// One day in milliseconds.
pub const DAY: u64 = 24 * HOUR;
