//! The resource store seam: one trait (`Store`) over Kubernetes-shaped objects with
//! optimistic concurrency, label selectors and watch; the embedded SQLite backend;
//! and `TypedStore`, the typed helpers controllers and the provisioner use.

mod backend;
mod embedded;
mod error;
mod selector;
mod typed;

pub use backend::{ObjectList, Store, WatchEvent, WatchEventType, WatchStream};
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use selector::LabelSelector;
pub use typed::TypedStore;
