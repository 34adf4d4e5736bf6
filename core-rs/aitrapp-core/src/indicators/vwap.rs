//! Session VWAP, exact: sums of integer paise x quantity in `i128`.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionVwap {
    sum_pv: i128,
    sum_v: i128,
}

impl SessionVwap {
    pub fn new() -> SessionVwap {
        SessionVwap::default()
    }

    /// Adds `qty` units traded at `price_paise`; zero quantity changes nothing.
    pub fn update(&mut self, price_paise: i64, qty: u64) -> Option<f64> {
        self.sum_pv += i128::from(price_paise) * i128::from(qty);
        self.sum_v += i128::from(qty);
        self.value()
    }

    /// VWAP in the unit of the prices fed in, once any volume has traded.
    #[allow(clippy::cast_precision_loss)]
    pub fn value(&self) -> Option<f64> {
        (self.sum_v > 0).then(|| self.sum_pv as f64 / self.sum_v as f64)
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
        assert_eq!(v.update(10_000, 0), None);
        assert_eq!(v.update(10_000, 1), Some(10_000.0));
        assert_eq!(v.update(10_300, 2), Some(10_200.0));
        v.reset();
        assert_eq!(v.value(), None);
    }
}
