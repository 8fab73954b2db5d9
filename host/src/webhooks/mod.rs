//! Webhooks: a job submitted with a `callback_url` has its terminal event POSTed there
//! when it ends, signed as the Standard Webhooks specification says, and retried with
//! backoff until the receiver takes it or the tries run out.
//!
//! ```text
//! Tracker (job ended) ──JobEnded──► Webhooks::job_ended ──► store (a pending row)
//!                                                      └──► wake ──► worker ──► delivery (HTTP)
//! ```
//! The tracker knows only [`JobEnded`]; everything about HTTP lives here, one idea per
//! file: [`signing`], [`target`] (where a delivery may go), [`delivery`] (one try),
//! [`backoff`], [`payload`], [`store`] (rows on SQLite or PostgreSQL), and the worker.

pub mod backoff;
pub mod delivery;
pub mod payload;
pub mod signing;
pub mod store;
pub mod target;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::{Config, WebhooksConfig};
use crate::jobs::{JobEnded, JobSnapshot};
use crate::storage::{RowsError, now_ms};
use backoff::Backoff;
use signing::SigningKey;
use store::{Attempt, Delivery, DeliveryStore, NewDelivery};

/// The node's webhook service: enqueues deliveries as jobs end, sends them.
pub struct Webhooks {
    store: DeliveryStore,
    config: WebhooksConfig,
    /// Each tenant's own signing key ...
    keys: HashMap<String, SigningKey>,
    /// ... or this one (`[webhooks] secret`).
    default_key: Option<SigningKey>,
    /// `public_url`, for absolute links in the bodies.
    public_url: Option<String>,
    node: String,
    /// Wakes the worker: a delivery was enqueued, or a try finished.
    wake: Arc<Notify>,
    /// Deliveries being written (a job just ended), so a shutdown waits for them.
    enqueuing: Arc<Enqueuing>,
}

/// A count of the enqueues under way, and a signal when it drops to none.
#[derive(Default)]
struct Enqueuing {
    count: std::sync::atomic::AtomicUsize,
    idle: Notify,
}

impl Webhooks {
    /// The service for `config` on `store`; nothing runs until [`Webhooks::start`].
    /// The config's secrets were checked when it was loaded.
    pub fn new(store: DeliveryStore, config: &Config, node: String) -> Arc<Self> {
        let keys = config
            .tenants
            .iter()
            .filter_map(|(name, tenant)| {
                let key = SigningKey::parse(tenant.webhook_secret.as_deref()?).ok()?;
                Some((name.clone(), key))
            })
            .collect();
        let default_key = config
            .webhooks
            .secret
            .as_deref()
            .and_then(|s| SigningKey::parse(s).ok());
        Arc::new(Self {
            store,
            config: config.webhooks.clone(),
            keys,
            default_key,
            public_url: config.public_url.as_ref().map(ToString::to_string),
            node,
            wake: Arc::new(Notify::new()),
            enqueuing: Arc::default(),
        })
    }

    /// Starts the sender (pending deliveries from before a restart go out now).
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(worker::run(self.clone()));
    }

    /// Waits (at most `within`) until the deliveries of jobs that just ended are
    /// recorded, so a shutdown that interrupted jobs does not lose their events: they
    /// are sent after the restart.
    pub async fn settle(&self, within: Duration) {
        use std::sync::atomic::Ordering;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let idle = self.enqueuing.idle.notified();
            if self.enqueuing.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                tracing::warn!("shutting down with webhook deliveries not yet recorded");
                return;
            }
        }
    }

    /// Checks a callback URL a job of `tenant` asks for; the error says what is wrong.
    /// A name is resolved now too, so one that points at a refused address (`localhost`,
    /// say) is refused at once rather than at its delivery; one that does not resolve
    /// now is taken (DNS may be back by then) and checked again at every try.
    pub async fn check_callback(&self, tenant: &str, url: &str) -> Result<String, String> {
        let allow_private = self.config.allow_private;
        let url = target::check_url(url, allow_private).map_err(|e| e.to_string())?;
        if self.key_for(tenant).is_none() {
            return Err(
                "webhooks are not set up on this server: it has no secret to sign \
                        them with ([webhooks] secret or [tenants.NAME] webhook_secret)"
                    .into(),
            );
        }
        if !allow_private {
            let resolved = tokio::time::timeout(self.timeout(), target::resolve(&url, false)).await;
            if let Ok(Err(e @ target::TargetError::NotPublic { .. })) = resolved {
                return Err(e.to_string());
            }
        }
        Ok(url.to_string())
    }

    /// A job's deliveries, each with its attempts (`tenant`'s only).
    pub async fn deliveries(
        &self,
        tenant: &str,
        job: Uuid,
    ) -> Result<Vec<(Delivery, Vec<Attempt>)>, RowsError> {
        self.store.for_job(tenant, job).await
    }

    fn key_for(&self, tenant: &str) -> Option<&SigningKey> {
        self.keys.get(tenant).or(self.default_key.as_ref())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_seconds.clamp(1, 120))
    }

    /// How long a node holds a delivery it sends: past the try's timeout, so a node
    /// that died mid-try leaves it to the others soon after.
    fn lease(&self) -> Duration {
        self.timeout() * 2 + Duration::from_secs(5)
    }

    fn backoff(&self) -> Backoff {
        // Checked when the config was loaded (0.001 s to a day).
        let base = Duration::try_from_secs_f64(self.config.retry_base_seconds)
            .unwrap_or(Backoff::DEFAULT_BASE);
        Backoff { base }
    }
}

impl JobEnded for Webhooks {
    fn job_ended(&self, tenant: &str, job: &JobSnapshot) {
        let Some(url) = job.callback_url.clone() else {
            return;
        };
        let now = time::OffsetDateTime::now_utc();
        let Some(body) = payload::body(job, self.public_url.as_deref(), now) else {
            return;
        };
        let new = NewDelivery {
            job_id: job.id,
            tenant: tenant.to_owned(),
            url,
            event_type: body["type"].as_str().unwrap_or_default().to_owned(),
            payload: body.to_string(),
        };
        let store = self.store.clone();
        let wake = self.wake.clone();
        let cap = self.config.max_pending_per_tenant;
        let job = job.id;
        let enqueuing = self.enqueuing.clone();
        enqueuing
            .count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            match store.enqueue(new, cap, now_ms()).await {
                Ok((_, true)) => wake.notify_one(),
                Ok((id, false)) => {
                    tracing::warn!(%job, delivery = id, "too many webhook deliveries waiting; this one is not sent");
                }
                Err(e) => tracing::error!(%job, error = %e, "cannot record a webhook delivery"),
            }
            if enqueuing
                .count
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
                == 1
            {
                enqueuing.idle.notify_waiters();
            }
        });
    }
}
