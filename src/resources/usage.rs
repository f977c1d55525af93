//! What a namespace holds of the objects a store keeps, or may hold: its
//! quota is one too.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub objects: u64,
    /// Of the objects as stored (JSON).
    pub bytes: u64,
}
