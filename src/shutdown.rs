//! The shutdown signal every long-running task waits on (a leaf: listeners, timers and
//! the ACME worker all take it).

use smol::channel::{Receiver, Sender, bounded};

/// A signal every task can wait on: it fires (the channel closes) at shutdown.
#[derive(Clone)]
pub struct Shutdown {
    rx: Receiver<()>,
}

impl Shutdown {
    pub(crate) fn new() -> (Sender<()>, Shutdown) {
        let (tx, rx) = bounded(1);
        (tx, Shutdown { rx })
    }

    /// A sender and its `Shutdown`, for code that drives sessions without [`serve`]
    /// (fuzz targets, benches): dropping or closing the sender begins shutdown.
    pub fn pair() -> (Sender<()>, Shutdown) {
        Shutdown::new()
    }

    /// Resolves when shutdown begins.
    pub async fn wait(&self) {
        let _ = self.rx.recv().await;
    }

    pub fn is_down(&self) -> bool {
        self.rx.is_closed()
    }
}
