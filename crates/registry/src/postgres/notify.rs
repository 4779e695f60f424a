//! Changes across the fleet: every write transaction sends a notification
//! on commit, and each node listens on its own connection, so a change
//! made on one node clears the caches of every other within a round trip.
//! The caches' TTL stays the fallback while the listener reconnects.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use aifn_postgres::Connector;
use tokio_postgres::AsyncMessage;

/// The channel the registry's writes notify.
pub(super) const CHANNEL: &str = "aifn_registry";

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Listens until the runtime shuts down. `on_change` runs on every
/// notification, and also after every (re)connection: changes made while
/// nobody listened are not replayed, so caches are cleared then too.
pub(super) async fn listen(connector: Connector, on_change: Arc<dyn Fn() + Send + Sync>) {
    loop {
        if let Ok((client, mut connection)) = connector.connect().await {
            let sql = format!("LISTEN {CHANNEL}");
            let subscribe = client.batch_execute(&sql);
            tokio::pin!(subscribe);
            // The connection must be polled for LISTEN to complete.
            let subscribed = loop {
                tokio::select! {
                    r = &mut subscribe => break r.is_ok(),
                    m = poll_fn(|cx| connection.poll_message(cx)) => {
                        if !matches!(m, Some(Ok(_))) {
                            break false;
                        }
                    }
                }
            };
            if subscribed {
                on_change();
                while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
                    if let AsyncMessage::Notification(_) = message {
                        on_change();
                    }
                }
            }
        }
        // Lost: whatever was missed is cleared once listening again.
        on_change();
        tokio::time::sleep(RECONNECT).await;
    }
}
