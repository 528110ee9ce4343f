//! `sessbundle`: the portable session format.
pub mod interop;
pub mod records;
pub mod state;
pub use state::SessionState;
pub mod format {
    pub const MAX_CHUNK_LEN: usize = 1024 * 1024;
}
