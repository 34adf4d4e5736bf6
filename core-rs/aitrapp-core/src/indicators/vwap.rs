//! Session VWAP and the volume-weighted standard deviation of price around
//! it (the "VWAP bands" sigma), exact: sums of integer paise x quantity in
//! `i128`.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionVwap {
    sum_pv: i128,
    sum_p2v: i128,
    sum_v: i128,
}

impl SessionVwap {
    pub fn new() -> SessionVwap {
        SessionVwap::default()
    }

    /// Adds `qty` units traded at `price_paise`; zero quantity changes nothing.
    pub fn update(&mut self, price_paise: i64, qty: u64) {
        if qty == 0 {
            return;
        }
        let (p, v) = (i128::from(price_paise), i128::from(qty));
        self.sum_pv += p * v;
        // p^2 x v stays far inside i128 for any price and a day's volume.
        self.sum_p2v = self.sum_p2v.saturating_add(p * p * v);
        self.sum_v += v;
    }

    /// VWAP in the unit of the prices fed in, once any volume has traded.
    #[allow(clippy::cast_precision_loss)]
    pub fn value(&self) -> Option<f64> {
        (self.sum_v > 0).then(|| self.sum_pv as f64 / self.sum_v as f64)
    }

    /// Volume-weighted standard deviation of the traded prices around the
    /// VWAP: sqrt(sum v (p - VWAP)^2 / sum v), in the unit of the prices.
    #[allow(clippy::cast_precision_loss)]
    pub fn stdev(&self) -> Option<f64> {
        if self.sum_v <= 0 {
            return None;
        }
        // sum v x sum p^2 v - (sum p v)^2 = (sum v)^2 x variance, exact
        // while it fits (always, for real sessions); floats otherwise.
        let exact = self
            .sum_v
            .checked_mul(self.sum_p2v)
            .zip(self.sum_pv.checked_mul(self.sum_pv))
            .map(|(a, b)| a - b);
        let v = self.sum_v as f64;
        Some(match exact {
            Some(n) => (n.max(0) as f64).sqrt() / v,
            None => {
                let mean = self.sum_pv as f64 / v;
                (self.sum_p2v as f64 / v - mean * mean).max(0.0).sqrt()
            }
        })
    }

    pub fn volume(&self) -> i128 {
        self.sum_v
    }

    pub fn reset(&mut self) {
        *self = SessionVwap::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_weighted_and_resettable() {
        let mut v = SessionVwap::new();
        v.update(10_000, 0);
        assert_eq!(v.value(), None);
        assert_eq!(v.stdev(), None);
        v.update(10_000, 1);
        assert_eq!(v.value(), Some(10_000.0));
        assert_eq!(v.stdev(), Some(0.0));
        v.update(10_300, 2);
        assert_eq!(v.value(), Some(10_200.0));
        // (1 x 200^2 + 2 x 100^2) / 3 = 20,000: sigma 141.42...
        assert!((v.stdev().unwrap() - 20_000f64.sqrt()).abs() < 1e-9);
        v.reset();
        assert_eq!(v.value(), None);
    }

    #[test]
    fn stdev_is_exact_for_large_prices_and_volumes() {
        // A 1-lakh-rupee stock, a crore of units at +-1 rupee around the mean.
        let mut v = SessionVwap::new();
        v.update(10_000_000 - 100, 10_000_000);
        v.update(10_000_000 + 100, 10_000_000);
        assert_eq!(v.value(), Some(10_000_000.0));
        assert_eq!(v.stdev(), Some(100.0));
    }
}
