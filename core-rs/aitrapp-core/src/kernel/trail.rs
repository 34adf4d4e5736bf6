//! Trailing stops inside the loop: each accepted tick's last price and the
//! engine's ATR of its instrument go to the open brackets of that instrument
//! (O(open brackets of the token)), at the tick's exchange time, after the
//! venue matched the tick and its fills reached their brackets. A bracket
//! moves its stop only when that tightens it by the minimum step and its
//! modification budget allows; the venue applies the move after its own
//! latency.

use super::Kernel;
use crate::oco::Event;
use crate::price::Price;
use crate::venue::Venue;

impl<V: Venue> Kernel<V> {
    /// The trailing step of a tick of `token` at `t`. Without trailing it
    /// is one branch in the tick loop (the work stays out of line).
    #[inline]
    pub(super) fn trail_on_tick(&mut self, token: u32, t: i64, ltp: Price) {
        if self.template.trail_atr_mult.is_some() {
            self.trail_open_brackets(token, t, ltp);
        }
    }

    #[inline(never)]
    fn trail_open_brackets(&mut self, token: u32, t: i64, ltp: Price) {
        if self.book.open_of(token).is_empty() {
            return;
        }
        // Until the instrument has its ATR (the first bars of its history)
        // nothing trails.
        let Some(atr) = self.engine.atr(i64::from(token)) else {
            return;
        };
        let mut brackets = std::mem::take(&mut self.book.trail_scratch);
        brackets.clear();
        brackets.extend_from_slice(self.book.open_of(token));
        let event = Event::PriceUpdate {
            ltp,
            atr: Some(atr),
        };
        for &ix in &brackets {
            self.handle(ix, t, &event);
        }
        self.book.trail_scratch = brackets;
        // A stop the market already passed becomes a market exit; the venue
        // may refuse it at once, and that answer belongs to this instant.
        self.route_updates();
    }
}
