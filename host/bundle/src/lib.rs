//! `sessbundle`: the portable session format.
pub mod state;
pub use state::SessionState;
