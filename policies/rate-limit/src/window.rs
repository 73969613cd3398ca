//! Fixed windows: every window of `len` ms starts at a multiple of `len` since the epoch, so
//! every instance and every gateway sharing the store agrees on it without talking.

/// The window `now` falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Which window since the epoch; part of the counter key, so a new window is a new counter.
    pub index: u64,
    /// Until the window ends: the counter's TTL and a refused caller's wait.
    pub remaining_ms: u64,
}

pub fn slot(now_ms: u64, len_ms: u64) -> Slot {
    let len = len_ms.max(1);
    Slot { index: now_ms / len, remaining_ms: len - now_ms % len }
}

/// The outcome of one counted request: admitted while the count is within the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Admitted { remaining: u64 },
    Refused { retry_after_ms: u64 },
}

/// `count` is the counter's value after this request's increment.
pub fn judge(count: i64, limit: u64, slot: Slot) -> Count {
    let count = u64::try_from(count).unwrap_or(0);
    if count <= limit { Count::Admitted { remaining: limit - count } } else { Count::Refused { retry_after_ms: slot.remaining_ms } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_epoch_and_report_what_is_left() {
        assert_eq!(slot(0, 60_000), Slot { index: 0, remaining_ms: 60_000 });
        assert_eq!(slot(59_999, 60_000), Slot { index: 0, remaining_ms: 1 });
        assert_eq!(slot(60_000, 60_000), Slot { index: 1, remaining_ms: 60_000 });
        assert_eq!(slot(125_500, 60_000), Slot { index: 2, remaining_ms: 54_500 });
        assert_eq!(slot(5, 0).index, 5, "a zero length cannot divide by zero");
    }

    #[test]
    fn exactly_the_limit_is_admitted() {
        let s = slot(10_000, 60_000);
        let outcomes: Vec<Count> = (1..=4).map(|n| judge(n, 3, s)).collect();
        assert_eq!(
            outcomes,
            [Count::Admitted { remaining: 2 }, Count::Admitted { remaining: 1 }, Count::Admitted { remaining: 0 }, Count::Refused { retry_after_ms: 50_000 }]
        );
        assert_eq!(judge(-5, 3, s), Count::Admitted { remaining: 3 });
    }
}
