//! The kernel's own order pacing for a venue that refuses the order over its
//! rate (Kite: the 11th order in any one second is rejected). A client that
//! sends a burst (the kill switch exiting twenty brackets, twelve entries on
//! one bar) queues it instead: each order leaves at the earliest time that
//! keeps every one-second window within the limit, in the order decided.
//! Without pacing the burst would come back REJECTED, and a rejected exit is a
//! position left open until its retry.

use std::collections::VecDeque;

const SECOND_NS: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub(super) struct Pacer {
    limit: usize,
    /// Send times of the last `limit` orders, oldest first (never decreasing).
    sent: VecDeque<i64>,
}

impl Pacer {
    pub(super) fn new(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| Pacer {
            limit: per_second as usize,
            sent: VecDeque::with_capacity(per_second as usize + 1),
        })
    }

    /// When an order decided at `t` leaves: not before the orders decided
    /// earlier, and not until the `limit`-th order before it is a second old.
    pub(super) fn slot(&mut self, t: i64) -> i64 {
        let mut send = t.max(self.sent.back().copied().unwrap_or(t));
        if self.sent.len() >= self.limit {
            send = send.max(self.sent[self.sent.len() - self.limit] + SECOND_NS);
        }
        self.sent.push_back(send);
        if self.sent.len() > self.limit {
            self.sent.pop_front();
        }
        send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_leaves_ten_a_second_in_order() {
        let mut p = Pacer::new(10).unwrap();
        let slots: Vec<i64> = (0..25).map(|_| p.slot(5 * SECOND_NS)).collect();
        assert!(slots[..10].iter().all(|&s| s == 5 * SECOND_NS));
        assert!(slots[10..20].iter().all(|&s| s == 6 * SECOND_NS));
        assert!(slots[20..].iter().all(|&s| s == 7 * SECOND_NS));
        // Every one-second window (open at its start) holds at most ten.
        for (i, &s) in slots.iter().enumerate() {
            let inside = slots[..=i].iter().filter(|&&x| x > s - SECOND_NS).count();
            assert!(inside <= 10, "order {i} at {s}: {inside} in its window");
        }
    }

    #[test]
    fn an_order_after_a_quiet_second_leaves_at_once_but_never_before_an_earlier_one() {
        let mut p = Pacer::new(2).unwrap();
        assert_eq!(p.slot(0), 0);
        assert_eq!(p.slot(0), 0);
        assert_eq!(p.slot(100), SECOND_NS); // third in the window: waits
        assert_eq!(p.slot(200), SECOND_NS); // not ahead of the one queued
        assert_eq!(p.slot(5 * SECOND_NS), 5 * SECOND_NS);
        assert!(Pacer::new(0).is_none());
    }
}
