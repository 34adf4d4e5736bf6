//! Venues: where the kernel's orders go. `SimVenue` simulates Kite's order
//! behaviour against the ticks (paper); an external venue (Kite) is driven
//! from Python with the same commands and updates.

mod types;

pub use types::{
    Protection, Quote, Validity, VenueError, VenueModify, VenueOrder, VenueStatus, VenueUpdate,
};
