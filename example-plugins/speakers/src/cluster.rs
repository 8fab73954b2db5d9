//! Grouping window embeddings by voice: agglomerative clustering with average linkage on
//! cosine similarity, cut at a known number of clusters or, when the number is not
//! known, where the closest pair of clusters is less alike than a threshold.
//!
//! Every merge keeps each cluster's best partner, so a merge costs O(n) updates plus a
//! rescan of the rows whose partner was merged: about O(n²) for n windows, instead of
//! O(n³) rescans of the whole matrix.

/// Cosine similarity of two unit vectors (their dot product).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One merge of the dendrogram: cluster `b` joined cluster `a` at `similarity`.
#[derive(Clone, Copy, Debug)]
struct Merge {
    a: usize,
    b: usize,
    similarity: f32,
}

/// The full merge history of a set of embeddings.
pub struct Dendrogram {
    n: usize,
    merges: Vec<Merge>,
}

impl Dendrogram {
    /// Builds the tree for unit-length `embeddings`.
    pub fn build<E: AsRef<[f32]>>(embeddings: &[E]) -> Self {
        let n = embeddings.len();
        let mut sim = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                sim[i * n + j] = similarity(embeddings[i].as_ref(), embeddings[j].as_ref());
            }
        }
        let mut size = vec![1usize; n];
        let mut active = vec![true; n];
        let best_of = |sim: &[f32], active: &[bool], i: usize| -> Option<(usize, f32)> {
            (0..n)
                .filter(|&j| j != i && active[j])
                .map(|j| (j, sim[i * n + j]))
                .max_by(|x, y| x.1.total_cmp(&y.1))
        };
        let mut best: Vec<Option<(usize, f32)>> =
            (0..n).map(|i| best_of(&sim, &active, i)).collect();
        let mut merges = Vec::with_capacity(n.saturating_sub(1));
        for _ in 1..n {
            let Some((a, (b, s))) = (0..n)
                .filter(|&i| active[i])
                .filter_map(|i| best[i].map(|p| (i, p)))
                .max_by(|x, y| x.1.1.total_cmp(&y.1.1))
            else {
                break;
            };
            let (a, b) = (a.min(b), a.max(b));
            merges.push(Merge {
                a,
                b,
                similarity: s,
            });
            active[b] = false;
            // Average linkage (Lance-Williams): the merged cluster's similarity to k is
            // the size-weighted mean of its parts'.
            let (sa, sb) = (size[a] as f32, size[b] as f32);
            for k in 0..n {
                if active[k] && k != a {
                    let v = (sa * sim[a * n + k] + sb * sim[b * n + k]) / (sa + sb);
                    sim[a * n + k] = v;
                    sim[k * n + a] = v;
                }
            }
            size[a] += size[b];
            best[b] = None;
            best[a] = best_of(&sim, &active, a);
            for k in 0..n {
                if !active[k] || k == a {
                    continue;
                }
                match best[k] {
                    Some((p, _)) if p == a || p == b => best[k] = best_of(&sim, &active, k),
                    Some((_, s)) if sim[k * n + a] > s => best[k] = Some((a, sim[k * n + a])),
                    _ => {}
                }
            }
        }
        Self { n, merges }
    }

    /// Labels `0..k` (in order of first appearance) with exactly `k` clusters (`k` is
    /// clamped to `1..=n`).
    pub fn cut(&self, k: usize) -> Vec<usize> {
        if self.n == 0 {
            return Vec::new();
        }
        let k = k.clamp(1, self.n);
        let mut parent: Vec<usize> = (0..self.n).collect();
        for m in self.merges.iter().take(self.n - k) {
            parent[m.b] = m.a;
        }
        let root = |mut i: usize| {
            while parent[i] != i {
                i = parent[i];
            }
            i
        };
        let mut names: Vec<Option<usize>> = vec![None; self.n];
        let mut next = 0;
        (0..self.n)
            .map(|i| {
                let r = root(i);
                *names[r].get_or_insert_with(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    }

    /// The similarity of each merge, last (least alike) first: for the job's log, and
    /// for tuning the threshold.
    pub fn last_merges(&self, count: usize) -> Vec<f32> {
        self.merges
            .iter()
            .rev()
            .take(count)
            .map(|m| m.similarity)
            .collect()
    }

    /// How many clusters remain when merging stops at the first pair less alike than
    /// `threshold`.
    pub fn clusters_above(&self, threshold: f32) -> usize {
        let merged = self
            .merges
            .iter()
            .take_while(|m| m.similarity >= threshold)
            .count();
        self.n - merged
    }
}

/// The unit-length mean of each cluster's embeddings.
pub fn centroids<E: AsRef<[f32]>>(embeddings: &[E], labels: &[usize]) -> Vec<Vec<f32>> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let dim = embeddings.first().map_or(0, |e| e.as_ref().len());
    let mut sums = vec![vec![0f32; dim]; k];
    for (e, &l) in embeddings.iter().zip(labels) {
        for (s, v) in sums[l].iter_mut().zip(e.as_ref()) {
            *s += v;
        }
    }
    for s in &mut sums {
        let norm = s.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            s.iter_mut().for_each(|v| *v /= norm);
        }
    }
    sums
}

/// Mean silhouette on cosine distance (1 - similarity): near 1 when clusters are tight
/// and apart, near 0 or below when a split is arbitrary. 0 with fewer than 2 clusters.
pub fn silhouette<E: AsRef<[f32]>>(embeddings: &[E], labels: &[usize]) -> f32 {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    if k < 2 {
        return 0.0;
    }
    let n = embeddings.len();
    let mut total = 0.0;
    for i in 0..n {
        let mut sum = vec![0f32; k];
        let mut count = vec![0usize; k];
        for j in 0..n {
            if i != j {
                let d = 1.0 - similarity(embeddings[i].as_ref(), embeddings[j].as_ref());
                sum[labels[j]] += d;
                count[labels[j]] += 1;
            }
        }
        let own = labels[i];
        if count[own] == 0 {
            continue; // a singleton scores 0
        }
        let a = sum[own] / count[own] as f32;
        let b = (0..k)
            .filter(|&c| c != own && count[c] > 0)
            .map(|c| sum[c] / count[c] as f32)
            .fold(f32::INFINITY, f32::min);
        if b.is_finite() {
            total += (b - a) / a.max(b).max(f32::EPSILON);
        }
    }
    total / n as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// Two tight groups around the x and y axes, interleaved, plus one near z.
    fn points() -> Vec<Vec<f32>> {
        vec![
            unit(&[1.0, 0.1, 0.0]),
            unit(&[0.1, 1.0, 0.0]),
            unit(&[1.0, 0.0, 0.1]),
            unit(&[0.0, 1.0, 0.1]),
            unit(&[1.0, 0.05, 0.05]),
            unit(&[0.1, 0.1, 1.0]),
        ]
    }

    #[test]
    fn cutting_the_tree_separates_the_groups_in_order_of_appearance() {
        let tree = Dendrogram::build(&points());
        assert_eq!(tree.cut(3), [0, 1, 0, 1, 0, 2]);
        assert_eq!(tree.cut(1), [0; 6]);
        assert_eq!(tree.cut(6), [0, 1, 2, 3, 4, 5]);
        assert_eq!(tree.cut(99), [0, 1, 2, 3, 4, 5]);
        // Average linkage: the z point is equally far from both groups, so at 2 the
        // two axis groups merge or z joins one; either way the x group stays together.
        let two = tree.cut(2);
        assert_eq!(two[0], two[2]);
        assert_eq!(two[2], two[4]);
    }

    #[test]
    fn a_threshold_counts_the_clusters_less_alike_than_it() {
        let tree = Dendrogram::build(&points());
        assert_eq!(tree.clusters_above(0.9), 3);
        assert_eq!(tree.clusters_above(-1.0), 1);
        assert_eq!(tree.clusters_above(1.1), 6);
    }

    #[test]
    fn silhouette_prefers_the_true_split_and_centroids_are_unit_means() {
        let p = points();
        let good = silhouette(&p, &[0, 1, 0, 1, 0, 2]);
        let bad = silhouette(&p, &[0, 0, 1, 1, 0, 1]);
        assert!(good > 0.5 && bad < good, "{good} {bad}");
        assert_eq!(silhouette(&p, &[0; 6]), 0.0);
        let c = centroids(&p, &[0, 1, 0, 1, 0, 2]);
        assert_eq!(c.len(), 3);
        assert!((similarity(&c[2], &c[2]) - 1.0).abs() < 1e-5);
        assert!(similarity(&c[0], &p[0]) > 0.99);
    }

    #[test]
    fn empty_and_single_inputs_do_not_panic() {
        let none: Vec<Vec<f32>> = Vec::new();
        assert!(Dendrogram::build(&none).cut(2).is_empty());
        assert_eq!(Dendrogram::build(&[unit(&[1.0, 0.0])]).cut(3), [0]);
    }
}
