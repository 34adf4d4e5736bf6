//! The kernel's own order pacing for a venue that refuses the order over its
//! rate (Kite: the 11th order in any one second is rejected). A client that
//! sends a burst (the kill switch exiting twenty brackets, twelve entries on
//! one bar) queues it instead: each order leaves at the earliest time that
//! keeps every one-second window within the limit. Without pacing the burst
//! would come back REJECTED, and a rejected exit is a position left open
//! until its retry.
//!
//! Protective orders (stops, targets, market exits) go ahead of entries that
//! are queued but not yet sent, as the shell's limiter does on Kite: a
//! position must not wait unprotected behind new risk. Such a protective
//! order takes the earliest slot the orders already sent and the protective
//! orders before it leave; the entries it displaced move later, still in
//! their own order and still within the limit.

use std::collections::VecDeque;

const SECOND_NS: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Paced {
    send: i64,
    decided: i64,
    entry: bool,
    /// The venue's id of an entry (what a move reschedules); 0 until bound.
    order_id: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Pacer {
    limit: usize,
    /// Orders sent in the last second and every order still queued, by send
    /// time (never decreasing): sent, then queued protective orders, then
    /// queued entries.
    paced: VecDeque<Paced>,
}

impl Pacer {
    pub(super) fn new(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| Pacer {
            limit: per_second as usize,
            paced: VecDeque::with_capacity(2 * per_second as usize),
        })
    }

    /// When an order decided at `t` leaves. An entry queues behind every
    /// order decided before it. A protective order goes ahead of the entries
    /// still queued at `t`; each entry it displaces is pushed to `moved` with
    /// its new send time (all of them, in order, even when the time is the
    /// same: at one instant the protective order must still go first).
    pub(super) fn slot(&mut self, t: i64, protective: bool, moved: &mut Vec<(u64, i64)>) -> i64 {
        // An order sent a second or more before `t` bounds no slot from `t` on.
        while self.paced.front().is_some_and(|p| p.send <= t - SECOND_NS) {
            self.paced.pop_front();
        }
        let queued = |p: &Paced| p.entry && p.send > t;
        // Queued entries are the tail; most of the time there are none.
        let at = if protective && self.paced.back().is_some_and(queued) {
            self.paced
                .iter()
                .position(queued)
                .unwrap_or(self.paced.len())
        } else {
            self.paced.len()
        };
        let send = self.earliest(at, t);
        self.paced.insert(
            at,
            Paced {
                send,
                decided: t,
                entry: !protective,
                order_id: 0,
            },
        );
        for i in at + 1..self.paced.len() {
            let later = self.earliest(i, self.paced[i].decided);
            self.paced[i].send = later;
            moved.push((self.paced[i].order_id, later));
        }
        send
    }

    /// The venue's id of the entry slotted last (so that a later protective
    /// order can move it).
    pub(super) fn bind_last(&mut self, order_id: u64) {
        if let Some(p) = self.paced.back_mut().filter(|p| p.entry) {
            p.order_id = order_id;
        }
    }

    /// The earliest send time for the order at position `i`, decided at
    /// `decided`: not before the order ahead of it, and not until the
    /// `limit`-th order before it is a second old (on times that never
    /// decrease, that keeps every one-second window within the limit).
    fn earliest(&self, i: usize, decided: i64) -> i64 {
        let mut send = decided;
        if i > 0 {
            send = send.max(self.paced[i - 1].send);
        }
        if i >= self.limit {
            send = send.max(self.paced[i - self.limit].send + SECOND_NS);
        }
        send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one-second window (open at its start) holds at most `limit`.
    fn windows_hold(slots: &[i64], limit: usize) {
        for &s in slots {
            let inside = slots
                .iter()
                .filter(|&&x| x > s - SECOND_NS && x <= s)
                .count();
            assert!(inside <= limit, "{inside} orders in the second up to {s}");
        }
    }

    fn entry(p: &mut Pacer, t: i64) -> i64 {
        let mut moved = Vec::new();
        let s = p.slot(t, false, &mut moved);
        assert!(moved.is_empty(), "an entry moves nothing");
        s
    }

    #[test]
    fn a_burst_leaves_ten_a_second_in_order() {
        let mut p = Pacer::new(10).unwrap();
        let slots: Vec<i64> = (0..25).map(|_| entry(&mut p, 5 * SECOND_NS)).collect();
        assert!(slots[..10].iter().all(|&s| s == 5 * SECOND_NS));
        assert!(slots[10..20].iter().all(|&s| s == 6 * SECOND_NS));
        assert!(slots[20..].iter().all(|&s| s == 7 * SECOND_NS));
        windows_hold(&slots, 10);
    }

    #[test]
    fn an_order_after_a_quiet_second_leaves_at_once_but_never_before_an_earlier_one() {
        let mut p = Pacer::new(2).unwrap();
        assert_eq!(entry(&mut p, 0), 0);
        assert_eq!(entry(&mut p, 0), 0);
        assert_eq!(entry(&mut p, 100), SECOND_NS); // third in the window: waits
        assert_eq!(entry(&mut p, 200), SECOND_NS); // not ahead of the one queued
        assert_eq!(entry(&mut p, 5 * SECOND_NS), 5 * SECOND_NS);
        assert!(Pacer::new(0).is_none());
    }

    #[test]
    fn a_protective_order_goes_ahead_of_the_queued_entries() {
        let mut p = Pacer::new(10).unwrap();
        let mut entries: Vec<i64> = Vec::new();
        for id in 1..=12 {
            entries.push(entry(&mut p, 0));
            p.bind_last(id);
        }
        assert_eq!(entries[10..], [SECOND_NS, SECOND_NS]);
        // Eleven stops decided at 50 ms: the window of the first ten is
        // full until 1 s, so they take 1 s (ten of them) and 2 s; the two
        // queued entries move behind them.
        let mut stops = Vec::new();
        let mut last_moves = Vec::new();
        for _ in 0..11 {
            let mut moved = Vec::new();
            stops.push(p.slot(50_000_000, true, &mut moved));
            assert_eq!(moved.len(), 2, "both queued entries move (in order)");
            assert_eq!(moved[0].0, 11);
            assert_eq!(moved[1].0, 12);
            last_moves = moved;
        }
        assert!(stops[..10].iter().all(|&s| s == SECOND_NS));
        assert_eq!(stops[10], 2 * SECOND_NS);
        assert_eq!(last_moves, vec![(11, 2 * SECOND_NS), (12, 2 * SECOND_NS)]);
        let mut all: Vec<i64> = entries[..10].to_vec();
        all.extend(&stops);
        all.extend(last_moves.iter().map(|m| m.1));
        windows_hold(&all, 10);
        // An entry decided now queues behind everything.
        assert_eq!(entry(&mut p, 60_000_000), 2 * SECOND_NS);
    }

    #[test]
    fn entries_already_sent_are_not_displaced() {
        let mut p = Pacer::new(2).unwrap();
        assert_eq!(entry(&mut p, 0), 0);
        p.bind_last(1);
        assert_eq!(entry(&mut p, 0), 0);
        p.bind_last(2);
        assert_eq!(entry(&mut p, 0), SECOND_NS);
        p.bind_last(3);
        // At 1 s the third entry is sent: a stop then queues behind it.
        let mut moved = Vec::new();
        assert_eq!(p.slot(SECOND_NS, true, &mut moved), SECOND_NS);
        assert!(moved.is_empty());
        assert_eq!(p.slot(SECOND_NS, true, &mut moved), 2 * SECOND_NS);
        assert!(moved.is_empty());
    }

    /// Seeded, synthetic: random mixes of entries and protective orders
    /// keep every window within the limit, entries keep their order and
    /// only ever move later, and a protective order never waits for an
    /// entry decided before it that was still queued.
    #[test]
    fn random_mixes_keep_the_limit_and_the_order() {
        let mut seed = 0x5eed_u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        for limit in [1_u32, 3, 10] {
            let mut p = Pacer::new(limit).unwrap();
            // id -> current send time (entries), and protective send times.
            let mut entry_send: Vec<i64> = Vec::new();
            let mut prot_send: Vec<i64> = Vec::new();
            let mut t = 0_i64;
            for _ in 0..400 {
                t += (next() % 400_000_000) as i64;
                let protective = next() % 3 == 0;
                let mut moved = Vec::new();
                let queued_before: Vec<usize> = (0..entry_send.len())
                    .filter(|&i| entry_send[i] > t)
                    .collect();
                let s = p.slot(t, protective, &mut moved);
                assert!(s >= t);
                for (id, new) in moved {
                    let i = usize::try_from(id).unwrap() - 1;
                    assert!(new >= entry_send[i], "an entry never moves earlier");
                    assert!(new >= s, "displaced behind the protective order");
                    entry_send[i] = new;
                }
                if protective {
                    for &i in &queued_before {
                        assert!(entry_send[i] >= s);
                    }
                    prot_send.push(s);
                } else {
                    entry_send.push(s);
                    p.bind_last(entry_send.len() as u64);
                }
            }
            assert!(entry_send.windows(2).all(|w| w[0] <= w[1]));
            let mut all = entry_send.clone();
            all.extend(&prot_send);
            windows_hold(&all, limit as usize);
        }
    }
}
