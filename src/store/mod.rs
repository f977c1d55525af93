//! The resource store seam: one trait (`Store`) over Kubernetes-shaped objects with
//! optimistic concurrency, label selectors and watch; the embedded SQLite backend;
//! the Kubernetes backend (kube-rs);
//! and `TypedStore`, the typed helpers controllers and the provisioner use.

mod backend;
mod embedded;
mod error;
mod kube_decode;
mod kubernetes;
mod selector;
mod typed;
mod watch_slots;

pub use backend::{ObjectList, Store, WatchEvent, WatchEventType, WatchStream, Write};
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use kubernetes::KubeStore;
pub use selector::LabelSelector;
pub use typed::{TypedStore, to_typed};
pub use watch_slots::{NoSlot, WatchSlot, WatchSlots};
