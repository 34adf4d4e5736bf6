//! Opening range: high and low of the prices seen in the first `window` of
//! the session, [open, open + window) on the IST clock.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningRange {
    open_tod_ns: i64,
    window_ns: i64,
    range: Option<(i64, i64)>,
}

impl OpeningRange {
    pub fn new(open_tod_ns: i64, window_ns: i64) -> OpeningRange {
        OpeningRange {
            open_tod_ns,
            window_ns,
            range: None,
        }
    }

    /// Adds a price seen at IST time of day `tod_ns`; prices outside the
    /// window are ignored.
    pub fn update(&mut self, tod_ns: i64, price: i64) {
        if self.in_window(tod_ns) {
            self.range = Some(match self.range {
                Some((lo, hi)) => (lo.min(price), hi.max(price)),
                None => (price, price),
            });
        }
    }

    pub fn in_window(&self, tod_ns: i64) -> bool {
        tod_ns >= self.open_tod_ns && tod_ns < self.window_end_tod_ns()
    }

    /// True once the window is over at `tod_ns`.
    pub fn is_complete(&self, tod_ns: i64) -> bool {
        tod_ns >= self.window_end_tod_ns()
    }

    pub fn window_end_tod_ns(&self) -> i64 {
        self.open_tod_ns + self.window_ns
    }

    /// (low, high) of the window so far; `None` if nothing traded in it.
    pub fn range(&self) -> Option<(i64, i64)> {
        self.range
    }

    pub fn reset(&mut self) {
        self.range = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_counts() {
        let mut r = OpeningRange::new(100, 50);
        r.update(99, 1);
        assert_eq!(r.range(), None);
        r.update(100, 10);
        r.update(120, 14);
        r.update(149, 8);
        r.update(150, 100);
        assert_eq!(r.range(), Some((8, 14)));
        assert!(!r.is_complete(149) && r.is_complete(150));
        r.reset();
        assert_eq!(r.range(), None);
    }
}
