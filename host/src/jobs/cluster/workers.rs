//! The tasks a node runs beside its HTTP server when it shares a database:
//! - the **claimer** takes queued jobs for the node's free slots, when the database says
//!   a job was queued, when a slot frees here, or after a reconnect;
//! - the **lease keeper** renews the node's heartbeat and the leases of its jobs every
//!   `lease_renew`, then takes over jobs whose node stopped renewing (re-queued or
//!   interrupted) — but only once this node has itself been connected for a full renewal,
//!   so after an outage every live node gets to renew before anyone is declared dead;
//! - the **cancel relay** stops a job running here when another node asks.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::Cluster;
use crate::jobs::Tracker;
use crate::storage::postgres::listener::Notice;

/// Starts the node's cluster tasks; they live as long as the runtime.
pub fn start(cluster: Arc<Cluster>, tracker: Arc<Tracker>) {
    tokio::spawn(claim_loop(cluster.clone(), tracker.clone()));
    tokio::spawn(lease_loop(cluster.clone(), tracker.clone()));
    tokio::spawn(cancel_relay(cluster, tracker));
}

async fn claim_loop(cluster: Arc<Cluster>, tracker: Arc<Tracker>) {
    let mut notices = cluster.listener.subscribe();
    let lease = cluster.options.lease_expiry;
    loop {
        while tracker.free_slots() > 0 && cluster.is_claiming() {
            let limits = |tenant: &str| tracker.tenant_max_running(tenant);
            let started = |record: &crate::storage::JobRecord| cluster.started(record);
            match cluster
                .database
                .claim(&cluster.options.node, lease, &limits, &started)
                .await
            {
                Ok(Some(claimed)) => tracker.start_claimed(claimed),
                Ok(None) => break,
                Err(e) => {
                    cluster.database.note_error(&e);
                    tracing::warn!(error = %e, "cannot claim jobs from the database");
                    break;
                }
            }
        }
        // Wake on new work, on a freed slot, after a reconnect, or at the next lease
        // tick (a job may have been re-queued by a reaper on a node that then died).
        tokio::select! {
            notice = notices.recv() => match notice {
                Ok(Notice::Queued | Notice::Resync) | Err(RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(RecvError::Closed) => return,
            },
            () = tracker.slot_freed().notified() => {}
            () = tokio::time::sleep(cluster.options.lease_renew) => {}
        }
    }
}

async fn lease_loop(cluster: Arc<Cluster>, tracker: Arc<Tracker>) {
    let renew = cluster.options.lease_renew;
    let expiry = cluster.options.lease_expiry;
    let mut connected_ticks = 0u32;
    let mut interval = tokio::time::interval(renew);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let running = tracker.running_here();
        let slots = tracker.slots();
        match cluster
            .database
            .heartbeat(&cluster.options.node, slots, &running, expiry)
            .await
        {
            Ok(()) => connected_ticks = connected_ticks.saturating_add(1),
            Err(e) => {
                cluster.database.note_error(&e);
                if connected_ticks > 0 {
                    tracing::warn!(error = %e, "cannot renew this node's leases");
                }
                connected_ticks = 0;
                continue;
            }
        }
        if connected_ticks < 2 {
            continue;
        }
        let decide = |expired: &crate::storage::postgres::queue::Expired| cluster.reaped(expired);
        match cluster.database.reap_expired(expiry, &decide).await {
            Ok((0, interrupted)) if interrupted.is_empty() => {}
            Ok((requeued, interrupted)) => {
                tracing::warn!(
                    requeued,
                    interrupted = interrupted.len(),
                    "took over the jobs of a node that stopped"
                );
                for record in &interrupted {
                    if let Some(snapshot) = super::snapshot_of(record) {
                        tracker.announce_ended(&record.tenant, &snapshot);
                    }
                }
            }
            Err(e) => {
                cluster.database.note_error(&e);
                tracing::warn!(error = %e, "cannot check for jobs of stopped nodes");
            }
        }
    }
}

async fn cancel_relay(cluster: Arc<Cluster>, tracker: Arc<Tracker>) {
    let mut notices = cluster.listener.subscribe();
    loop {
        match notices.recv().await {
            Ok(Notice::Cancel(id)) => tracker.cancel_here(id),
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
