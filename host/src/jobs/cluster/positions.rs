//! Queue positions across the cluster: the order the waiting jobs will start in if every
//! tenant may run, by the claim's own rule (the tenant that has started the fewest jobs,
//! ties by served longest ago, then by name; FIFO within a tenant).

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use crate::storage::postgres::queue::QueueView;

/// The waiting jobs in the order they will start.
pub fn fair_order(view: &QueueView) -> Vec<Uuid> {
    let mut queues: HashMap<&str, VecDeque<Uuid>> = HashMap::new();
    for job in &view.queued {
        queues
            .entry(job.tenant.as_str())
            .or_default()
            .push_back(job.id);
    }
    let mut turns: HashMap<&str, (u64, u64)> = view
        .turns
        .iter()
        .map(|(tenant, served, last)| (tenant.as_str(), (*served, *last)))
        .collect();
    let mut clock = turns.values().map(|(_, last)| *last).max().unwrap_or(0);
    let mut order = Vec::with_capacity(view.queued.len());
    loop {
        let next = queues
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .min_by_key(|(tenant, _)| (turns.get(*tenant).copied().unwrap_or_default(), **tenant))
            .map(|(tenant, _)| *tenant);
        let Some(tenant) = next else { break };
        if let Some(id) = queues.get_mut(tenant).and_then(VecDeque::pop_front) {
            order.push(id);
        }
        clock += 1;
        let turn = turns.entry(tenant).or_default();
        *turn = (turn.0 + 1, clock);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::postgres::queue::QueuedRow;

    #[test]
    fn tenants_take_turns_and_each_keeps_its_order() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let view = QueueView {
            queued: vec![
                QueuedRow {
                    id: ids[0],
                    tenant: "a".into(),
                },
                QueuedRow {
                    id: ids[1],
                    tenant: "a".into(),
                },
                QueuedRow {
                    id: ids[2],
                    tenant: "a".into(),
                },
                QueuedRow {
                    id: ids[3],
                    tenant: "b".into(),
                },
            ],
            turns: vec![("a".into(), 5, 10), ("b".into(), 5, 3)],
        };
        // Level on jobs started: b was served longer ago, so b first, then alternate.
        assert_eq!(fair_order(&view), vec![ids[3], ids[0], ids[1], ids[2]]);
    }
}
