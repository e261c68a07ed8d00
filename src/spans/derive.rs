//! A category's events, oldest first, folded into its spans.

use serde_json::Value;

use super::rules::{self, Effect};
use super::{Category, Event, Layering, Span};

/// The id of the `part`th span a treatment gives (a profile switch interrupted by a temporary
/// one and holding again after it gives two).
pub fn span_id(category: Category, origin: &str, part: usize) -> String {
    crate::ids::derived_uuid(&format!("span:{}:{origin}:{part}", category.name()))
}

/// The spans of `category` from its events, which must be sorted by (mills, seq). Events of
/// other categories are skipped.
pub fn derive(category: Category, events: &[Event]) -> Vec<Span> {
    if category.layering() == Layering::Stack {
        let effects: Vec<(&Event, Effect)> = events
            .iter()
            .filter_map(|e| effect_in(category, e).map(|effect| (e, effect)))
            .collect();
        return stack(category, &effects);
    }
    let mut fold = Fold::new(category);
    let mut spans: Vec<Span> = events.iter().flat_map(|e| fold.push(e)).collect();
    spans.extend(fold.finish());
    spans
}

/// What `e` does to `category`, if it feeds it.
fn effect_in(category: Category, e: &Event) -> Option<Effect> {
    match rules::classify(&e.doc) {
        Some((c, effect)) if c == category => Some(effect),
        _ => None,
    }
}

/// The spans of a category whose spans do not come back after they end (replace and
/// independent layering), one event at a time: only the span in force is held, so deriving
/// years of temp basals needs no more memory than one (store/spans.rs streams them).
/// A stack category (profiles) needs all its events at once: use [`derive`].
pub struct Fold {
    category: Category,
    /// The newest span of a replace category, until an event shows it can no longer change.
    current: Option<Span>,
}

impl Fold {
    pub fn new(category: Category) -> Fold {
        debug_assert!(category.layering() != Layering::Stack);
        Fold {
            category,
            current: None,
        }
    }

    /// Takes the next event (in (mills, seq) order); returns the span it finished, if any.
    pub fn push(&mut self, e: &Event) -> Option<Span> {
        let effect = effect_in(self.category, e)?;
        let next = opened(self.category, e, &effect);
        if self.category.layering() == Layering::Independent {
            return next;
        }
        // One at a time: a start ends the span in force and begins its own; an end just
        // ends it. A span not in force at this event cannot change any more (events come in
        // time order).
        let mut done = self.current.take();
        if let Some(current) = done.as_mut().filter(|s| s.covers(e.mills)) {
            current.end = Some(e.mills);
            match &next {
                Some(n) => {
                    current.superseded_by = Some(n.id.clone());
                    current.superseded_at = Some(e.mills);
                }
                None => current.ended_by = Some(e.origin.clone()),
            }
        }
        self.current = next;
        done
    }

    /// The span still held when the events run out.
    pub fn finish(self) -> Option<Span> {
        self.current
    }
}

fn opened(category: Category, e: &Event, effect: &Effect) -> Option<Span> {
    let Effect::Start {
        state,
        duration,
        metadata,
    } = effect
    else {
        return None;
    };
    Some(Span {
        id: span_id(category, &e.origin, 0),
        category,
        state: state.clone(),
        start: e.mills,
        end: duration.map(|d| e.mills.saturating_add(d)),
        source: rules::source(&e.doc),
        metadata: metadata.clone(),
        origin: e.origin.clone(),
        origin_seq: e.seq,
        origin_kind: super::OriginKind::Treatment,
        superseded_by: None,
        superseded_at: None,
        ended_by: None,
        shadowed_by: None,
    })
}

/// The newest event covering a moment is in force: pieces between the moments where that
/// changes, a piece for each stretch an event holds (an event interrupted by a temporary one
/// holds again after it, as a second piece).
fn stack(category: Category, effects: &[(&Event, Effect)]) -> Vec<Span> {
    // Each start with its own range; later in the list = newer (the input is in (mills, seq)
    // order).
    let starts: Vec<Span> = effects
        .iter()
        .filter_map(|(e, effect)| opened(category, e, effect))
        .collect();
    let mut bounds: Vec<i64> = starts
        .iter()
        .flat_map(|s| [Some(s.start), s.end])
        .flatten()
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut pieces: Vec<Span> = Vec::new();
    let mut parts = vec![0usize; starts.len()];
    let mut current: Option<usize> = None;
    for (&t, winner) in bounds.iter().zip(winners(&starts, &bounds)) {
        if winner == current {
            continue;
        }
        if let (Some(piece), Some(_)) = (pieces.last_mut(), current) {
            piece.end = Some(t);
            // Ended by a newer start, not by its own end: superseded.
            if let Some(w) = winner.filter(|w| current.is_some_and(|c| *w > c)) {
                let next = &starts[w];
                if next.start == t {
                    piece.superseded_by = Some(span_id(category, &next.origin, parts[w]));
                    piece.superseded_at = Some(t);
                }
            }
        }
        if let Some(w) = winner {
            let origin_span = &starts[w];
            // Its end stays its own unless the winner changes before (set above).
            let mut piece = origin_span.clone();
            piece.id = span_id(category, &origin_span.origin, parts[w]);
            piece.start = t;
            if parts[w] > 0 {
                piece.metadata.insert("resumed".into(), Value::Bool(true));
            }
            parts[w] += 1;
            pieces.push(piece);
        }
        current = winner;
    }
    pieces
}

/// The newest of `starts` (sorted by start) covering each of `bounds` (sorted), by a sweep:
/// starts enter a max-heap of their indexes as the bounds pass them, and leave it when they
/// are on top and over. O(n log n) where asking every start at every bound was O(n²).
fn winners(starts: &[Span], bounds: &[i64]) -> Vec<Option<usize>> {
    let mut heap = std::collections::BinaryHeap::new();
    let mut next = 0;
    bounds
        .iter()
        .map(|&t| {
            while next < starts.len() && starts[next].start <= t {
                heap.push(next);
                next += 1;
            }
            // Below the top, an ended start waits until it is on top: it cannot win meanwhile.
            while heap.peek().is_some_and(|&i| !starts[i].covers(t)) {
                heap.pop();
            }
            heap.peek().copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spans::OriginKind;

    /// The sweep picks what asking every start at every bound picks, on random switches.
    #[test]
    fn the_sweep_finds_the_newest_covering_start() {
        let mut seed = 17_u64;
        let mut below = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            i64::try_from((seed >> 33) % n).unwrap()
        };
        for _ in 0..200 {
            let mut at = 0;
            let starts: Vec<Span> = (0..below(30))
                .map(|i| {
                    at += below(4) * 10;
                    let d = below(5);
                    Span {
                        id: i.to_string(),
                        category: Category::Profile,
                        state: "Active".into(),
                        start: at,
                        end: (d > 0).then_some(at + d * 7),
                        source: String::new(),
                        metadata: Default::default(),
                        origin: String::new(),
                        origin_seq: i,
                        origin_kind: OriginKind::Treatment,
                        superseded_by: None,
                        superseded_at: None,
                        ended_by: None,
                        shadowed_by: None,
                    }
                })
                .collect();
            let bounds: Vec<i64> = (-5..at + 40).collect();
            let brute: Vec<Option<usize>> = bounds
                .iter()
                .map(|&t| starts.iter().rposition(|s| s.covers(t)))
                .collect();
            assert_eq!(winners(&starts, &bounds), brute);
        }
    }
}
