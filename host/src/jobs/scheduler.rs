//! Fair scheduling: one FIFO queue per tenant, and the next job comes from the tenant
//! that has started the fewest jobs (ties: the one served longest ago), so one
//! tenant's hundred queued jobs do not starve another tenant's single job. A tenant that
//! becomes active starts level with the others, not with credit for the time it was
//! idle. Within a tenant, jobs run in the order they were submitted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use super::entry::JobEntry;

#[derive(Default)]
pub(super) struct FairQueue {
    queues: HashMap<String, VecDeque<Arc<JobEntry>>>,
    /// Per tenant: jobs started (levelled when it becomes active) and when it was last
    /// served (a tick of this queue's clock).
    turns: HashMap<String, (u64, u64)>,
    clock: u64,
    running: HashMap<String, usize>,
    /// Jobs running in all.
    pub total_running: usize,
    len: usize,
}

impl FairQueue {
    /// Jobs waiting in all.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn queued(&self, tenant: &str) -> usize {
        self.queues.get(tenant).map_or(0, VecDeque::len)
    }

    pub fn push(&mut self, entry: Arc<JobEntry>) {
        let tenant = entry.tenant.clone();
        if !self.queues.contains_key(&tenant) {
            // Becoming active: level with the tenants already waiting.
            let level = self
                .queues
                .keys()
                .filter_map(|t| self.turns.get(t).map(|(served, _)| *served))
                .min();
            let turn = self.turns.entry(tenant.clone()).or_default();
            if let Some(level) = level {
                turn.0 = turn.0.max(level);
            }
        }
        self.queues.entry(tenant).or_default().push_back(entry);
        self.len += 1;
    }

    /// The waiting tenant to serve next among those `eligible`.
    fn next_tenant(
        queues: &HashMap<String, VecDeque<Arc<JobEntry>>>,
        turns: &HashMap<String, (u64, u64)>,
        eligible: impl Fn(&str) -> bool,
    ) -> Option<String> {
        queues
            .iter()
            .filter(|(t, q)| !q.is_empty() && eligible(t))
            .min_by_key(|(t, _)| (turns.get(*t).copied().unwrap_or_default(), (*t).clone()))
            .map(|(t, _)| t.clone())
    }

    /// The next job to start, from the tenant whose turn it is among those that may run
    /// another job (`may_run(tenant, running)`).
    pub fn pop_next(&mut self, may_run: impl Fn(&str, usize) -> bool) -> Option<Arc<JobEntry>> {
        let running = &self.running;
        let tenant = Self::next_tenant(&self.queues, &self.turns, |t| {
            may_run(t, running.get(t).copied().unwrap_or(0))
        })?;
        let queue = self.queues.get_mut(&tenant)?;
        let entry = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&tenant);
        }
        self.clock += 1;
        let turn = self.turns.entry(tenant.clone()).or_default();
        *turn = (turn.0 + 1, self.clock);
        self.len -= 1;
        *self.running.entry(tenant).or_default() += 1;
        self.total_running += 1;
        Some(entry)
    }

    /// A running job of `tenant` ended.
    pub fn finished(&mut self, tenant: &str) {
        self.total_running = self.total_running.saturating_sub(1);
        if let Some(count) = self.running.get_mut(tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.running.remove(tenant);
            }
        }
    }

    /// Takes a queued job out; false if it was not queued.
    pub fn remove(&mut self, tenant: &str, id: Uuid) -> bool {
        let Some(queue) = self.queues.get_mut(tenant) else {
            return false;
        };
        let before = queue.len();
        queue.retain(|e| e.id != id);
        let removed = queue.len() != before;
        if removed {
            self.len -= 1;
            if queue.is_empty() {
                self.queues.remove(tenant);
            }
        }
        removed
    }

    /// Empties the queue (shutdown).
    pub fn drain(&mut self) -> Vec<Arc<JobEntry>> {
        let order = self.order();
        self.queues.clear();
        self.len = 0;
        order
    }

    /// Queued jobs in the order they will start if every tenant may run, by the same
    /// rule as [`FairQueue::pop_next`]. Position 1 is the next to run.
    pub fn order(&self) -> Vec<Arc<JobEntry>> {
        let mut queues = self.queues.clone();
        let mut turns = self.turns.clone();
        let mut clock = self.clock;
        let mut order = Vec::with_capacity(self.len);
        while let Some(tenant) = Self::next_tenant(&queues, &turns, |_| true) {
            let Some(entry) = queues.get_mut(&tenant).and_then(VecDeque::pop_front) else {
                break;
            };
            if queues.get(&tenant).is_some_and(VecDeque::is_empty) {
                queues.remove(&tenant);
            }
            clock += 1;
            let turn = turns.entry(tenant).or_default();
            *turn = (turn.0 + 1, clock);
            order.push(entry);
        }
        order
    }
}
