//! Highest high and lowest low of the last `period` updates, with monotonic
//! deques: each value enters and leaves a deque once, so amortised O(1).

use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq)]
pub struct RollingHighLow {
    period: u64,
    seen: u64,
    /// (index, high), highs strictly decreasing from front to back.
    highs: VecDeque<(u64, f64)>,
    /// (index, low), lows strictly increasing from front to back.
    lows: VecDeque<(u64, f64)>,
}

impl RollingHighLow {
    pub fn new(period: u32) -> RollingHighLow {
        let period = u64::from(period.max(1));
        RollingHighLow {
            period,
            seen: 0,
            highs: VecDeque::new(),
            lows: VecDeque::new(),
        }
    }

    /// Adds one (high, low); returns (highest high, lowest low) of the window.
    pub fn update(&mut self, high: f64, low: f64) -> (f64, f64) {
        let i = self.seen;
        self.seen += 1;
        while self.highs.back().is_some_and(|&(_, h)| h <= high) {
            self.highs.pop_back();
        }
        self.highs.push_back((i, high));
        while self.lows.back().is_some_and(|&(_, l)| l >= low) {
            self.lows.pop_back();
        }
        self.lows.push_back((i, low));
        let oldest = (i + 1).saturating_sub(self.period);
        while self.highs.front().is_some_and(|&(j, _)| j < oldest) {
            self.highs.pop_front();
        }
        while self.lows.front().is_some_and(|&(j, _)| j < oldest) {
            self.lows.pop_front();
        }
        self.value().unwrap_or((high, low))
    }

    /// (highest high, lowest low) of the window; `None` before any update.
    pub fn value(&self) -> Option<(f64, f64)> {
        Some((self.highs.front()?.1, self.lows.front()?.1))
    }

    /// True once the window holds `period` values.
    pub fn is_full(&self) -> bool {
        self.seen >= self.period
    }

    pub fn reset(&mut self) {
        *self = RollingHighLow::new(u32::try_from(self.period).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let mut r = RollingHighLow::new(3);
        assert_eq!(r.update(5.0, 1.0), (5.0, 1.0));
        assert_eq!(r.update(3.0, 2.0), (5.0, 1.0));
        assert_eq!(r.update(4.0, 0.5), (5.0, 0.5));
        assert!(r.is_full());
        // 5.0 leaves the window.
        assert_eq!(r.update(2.0, 3.0), (4.0, 0.5));
        assert_eq!(r.update(1.0, 3.0), (4.0, 0.5));
        assert_eq!(r.update(1.0, 3.0), (2.0, 3.0));
    }
}
