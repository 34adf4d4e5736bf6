//! Average true range with Wilder's smoothing: the first value is the mean of
//! the first `period` true ranges, then atr = (atr * (n - 1) + tr) / n. The
//! first bar's true range is its high - low (there is no previous close).

#[derive(Debug, Clone, PartialEq)]
pub struct WilderAtr {
    period: u32,
    prev_close: Option<f64>,
    count: u32,
    sum: f64,
    value: f64,
}

impl WilderAtr {
    pub fn new(period: u32) -> WilderAtr {
        WilderAtr {
            period: period.max(1),
            prev_close: None,
            count: 0,
            sum: 0.0,
            value: 0.0,
        }
    }

    /// Adds one bar; returns the ATR once `period` bars have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let tr = match self.prev_close {
            Some(pc) => (high - low).max((high - pc).abs()).max((low - pc).abs()),
            None => high - low,
        };
        self.prev_close = Some(close);
        let n = f64::from(self.period);
        if self.count < self.period {
            self.count += 1;
            self.sum += tr;
            if self.count == self.period {
                self.value = self.sum / n;
            }
        } else {
            self.value = (self.value * (n - 1.0) + tr) / n;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.count >= self.period).then_some(self.value)
    }

    pub fn reset(&mut self) {
        *self = WilderAtr::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_wilder_atr() {
        let mut a = WilderAtr::new(2);
        assert_eq!(a.update(10.0, 8.0, 9.0), None); // tr 2
        assert_eq!(a.update(12.0, 9.5, 11.0), Some(2.5)); // tr max(2.5, 3, 0.5) = 3 -> (2+3)/2
                                                          // tr = max(1, |10.5-11|, |9.5-11|) = 1.5 -> (2.5 * 1 + 1.5) / 2 = 2.0
        assert_eq!(a.update(10.5, 9.5, 10.0), Some(2.0));
    }
}
