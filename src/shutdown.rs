//! The process-wide shutdown signal every background task and drain watches.

use tokio::sync::watch;

/// Resolves once the server begins shutting down.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        (sender, Self(receiver))
    }

    pub async fn wait(mut self) {
        // Err: the sender is gone, which also means the server is going away.
        let _ = self.0.wait_for(|down| *down).await;
    }

    pub fn is_down(&self) -> bool {
        *self.0.borrow()
    }
}
