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
        })
    }

    /// Starts the sender (pending deliveries from before a restart go out now).
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(worker::run(self.clone()));
    }

    /// Checks a callback URL a job of `tenant` asks for; the error says what is wrong.
    pub fn check_callback(&self, tenant: &str, url: &str) -> Result<String, String> {
        let url = target::check_url(url, self.config.allow_private).map_err(|e| e.to_string())?;
        if self.key_for(tenant).is_none() {
            return Err(
                "webhooks are not set up on this server: it has no secret to sign \
                        them with ([webhooks] secret or [tenants.NAME] webhook_secret)"
                    .into(),
            );
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
        Duration::from_secs(self.config.timeout_seconds.max(1))
    }

    /// How long a node holds a delivery it sends: past the try's timeout, so a node
    /// that died mid-try leaves it to the others soon after.
    fn lease(&self) -> Duration {
        self.timeout() * 2 + Duration::from_secs(5)
    }

    fn backoff(&self) -> Backoff {
        match self.config.retry_base_ms {
            Some(ms) => Backoff::Exponential {
                base: Duration::from_millis(ms.max(1)),
            },
            None => Backoff::Schedule,
        }
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
        tokio::spawn(async move {
            match store.enqueue(new, cap, now_ms()).await {
                Ok((_, true)) => wake.notify_one(),
                Ok((id, false)) => {
                    tracing::warn!(%job, delivery = id, "too many webhook deliveries waiting; this one is not sent");
                }
                Err(e) => tracing::error!(%job, error = %e, "cannot record a webhook delivery"),
            }
        });
    }
}
