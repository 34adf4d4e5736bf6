//! Exponential moving average, alpha = 2 / (period + 1), seeded with the
//! simple mean of the first `period` values (TA-Lib's convention).

#[derive(Debug, Clone, PartialEq)]
pub struct Ema {
    period: u32,
    alpha: f64,
    value: f64,
    count: u32,
}

impl Ema {
    /// `period` of 0 is treated as 1 (config validation rejects it earlier).
    pub fn new(period: u32) -> Ema {
        let period = period.max(1);
        Ema {
            period,
            alpha: 2.0 / (f64::from(period) + 1.0),
            value: 0.0,
            count: 0,
        }
    }

    /// Adds a value; returns the EMA once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if self.count < self.period {
            // Running mean until the seed window is full.
            self.count += 1;
            self.value += (x - self.value) / f64::from(self.count);
        } else {
            self.value += self.alpha * (x - self.value);
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.count >= self.period).then_some(self.value)
    }

    pub fn period(&self) -> u32 {
        self.period
    }

    pub fn reset(&mut self) {
        *self = Ema::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_with_the_mean_then_smooths() {
        let mut e = Ema::new(3);
        assert_eq!(e.update(1.0), None);
        assert_eq!(e.update(2.0), None);
        assert_eq!(e.update(3.0), Some(2.0));
        // alpha = 0.5: 2 + 0.5 * (6 - 2) = 4
        assert_eq!(e.update(6.0), Some(4.0));
        e.reset();
        assert_eq!(e.value(), None);
    }
}
