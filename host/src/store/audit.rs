//! The audit trail: every event in the order committed, with two indexes
//! so the usual questions need no scan of the whole history — a
//! deployment's events, and events of one type or family. At 100,000 events
//! a scan for a type rarely recorded took a quarter of a second.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Store, StoreError};
use crate::events::{Event, EventFilter, NewEvent};

pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// (deployment, seq).
pub(super) const DEPLOYMENT_EVENTS: TableDefinition<(&str, u64), ()> = TableDefinition::new("deployment_events");
/// (type, seq) and (family, seq): `deployment.stop` is under both it and `deployment`.
pub(super) const KIND_EVENTS: TableDefinition<(&str, u64), ()> = TableDefinition::new("kind_events");

/// What the indexes are keyed by, read from a stored event without the rest of it.
#[derive(serde::Deserialize)]
struct About {
    deployment: Option<String>,
    #[serde(rename = "type")]
    kind: String,
}

/// Opens the trail's tables, indexing a trail written before an index existed.
pub(super) fn open(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let events = tx.open_table(EVENTS)?;
    let unindexed =
        |index| -> Result<bool, StoreError> { Ok(tx.open_table(index)?.is_empty()? && !events.is_empty()?) };
    let (by_deployment, by_kind) = (unindexed(DEPLOYMENT_EVENTS)?, unindexed(KIND_EVENTS)?);
    if !(by_deployment || by_kind) {
        return Ok(());
    }
    let mut deployments = tx.open_table(DEPLOYMENT_EVENTS)?;
    let mut kinds = tx.open_table(KIND_EVENTS)?;
    for row in events.iter()? {
        let (seq, bytes) = row?;
        let (seq, event): (u64, About) = (seq.value(), serde_json::from_slice(bytes.value())?);
        if let Some(deployment) = event.deployment.as_deref().filter(|_| by_deployment) {
            deployments.insert((deployment, seq), ())?;
        }
        if by_kind {
            index_kind(&mut kinds, &event.kind, seq)?;
        }
    }
    Ok(())
}

fn index_kind(kinds: &mut redb::Table<(&str, u64), ()>, kind: &str, seq: u64) -> Result<(), StoreError> {
    kinds.insert((kind, seq), ())?;
    if let Some((family, _)) = kind.split_once('.') {
        kinds.insert((family, seq), ())?;
    }
    Ok(())
}

pub(super) fn append_event(tx: &redb::WriteTransaction, event: NewEvent) -> Result<Event, StoreError> {
    let mut t = tx.open_table(EVENTS)?;
    let seq = t.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
    let stored = Event {
        seq,
        at: chrono::Utc::now(),
        subject: event.subject,
        deployment: event.deployment,
        actor: event.actor,
        data: event.data,
    };
    t.insert(seq, serde_json::to_vec(&stored)?.as_slice())?;
    if let Some(deployment) = &stored.deployment {
        tx.open_table(DEPLOYMENT_EVENTS)?.insert((deployment.as_str(), seq), ())?;
    }
    index_kind(&mut tx.open_table(KIND_EVENTS)?, stored.kind().as_str(), seq)?;
    Ok(stored)
}

/// Events removed at most per commit: a trail far over its limit (the
/// limit lowered) shrinks over the next commits, none of them slow.
const PRUNE_AT_MOST: u64 = 2_000;
/// The trail is pruned when an event's seq is a multiple of this: a few
/// events over the limit at times, one prune per this many events.
pub(super) const PRUNE_EVERY: u64 = 500;

/// Removes the oldest events (and their index rows) so that events from
/// `newest - keep` on remain, at most `PRUNE_AT_MOST` of them in this commit.
pub(super) fn prune(tx: &redb::WriteTransaction, newest: u64, keep: u64) -> Result<(), StoreError> {
    let Some(below) = newest.checked_sub(keep) else { return Ok(()) };
    let mut events = tx.open_table(EVENTS)?;
    let mut deployments = tx.open_table(DEPLOYMENT_EVENTS)?;
    let mut kinds = tx.open_table(KIND_EVENTS)?;
    let mut oldest = Vec::new();
    for row in events.range(..=below)?.take(PRUNE_AT_MOST as usize) {
        let (seq, bytes) = row?;
        oldest.push((seq.value(), serde_json::from_slice::<About>(bytes.value()).ok()));
    }
    for (seq, about) in oldest {
        events.remove(seq)?;
        let Some(about) = about else { continue };
        if let Some(deployment) = &about.deployment {
            deployments.remove((deployment.as_str(), seq))?;
        }
        kinds.remove((about.kind.as_str(), seq))?;
        if let Some((family, _)) = about.kind.split_once('.') {
            kinds.remove((family, seq))?;
        }
    }
    Ok(())
}

/// A stored event, or none (with a warning) when this version cannot read
/// it, say one a newer host wrote: the rest of the trail is still served.
fn readable(seq: u64, bytes: &[u8]) -> Option<Event> {
    serde_json::from_slice(bytes)
        .inspect_err(|e| tracing::warn!(seq, "an event of the audit trail cannot be read, and is left out: {e}"))
        .ok()
}

impl Store {
    /// Newest first: the usual question is "what happened lately". A
    /// deployment's events, or one type's, are read through an index.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVENTS)?;
        let limit = filter.limit.unwrap_or(500);
        let mut out = Vec::new();
        let mut take = |seq: u64, bytes: &[u8]| -> bool {
            let Some(event) = readable(seq, bytes) else { return true };
            if filter.since.is_some_and(|s| event.at < s) {
                return false;
            }
            if filter.keeps(&event) {
                out.push(event);
            }
            out.len() < limit
        };
        let index = match (&filter.deployment, &filter.kind) {
            (Some(deployment), _) => Some((DEPLOYMENT_EVENTS, deployment)),
            (None, Some(kind)) => Some((KIND_EVENTS, kind)),
            (None, None) => None,
        };
        match index {
            Some((index, key)) => {
                let index = tx.open_table(index)?;
                for row in index.range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?.rev() {
                    let seq = row?.0.value().1;
                    let Some(bytes) = t.get(seq)? else { continue };
                    if !take(seq, bytes.value()) {
                        break;
                    }
                }
            }
            None => {
                for row in t.iter()?.rev() {
                    let (seq, bytes) = row?;
                    if !take(seq.value(), bytes.value()) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventData, NoDetail};
    use crate::store::tests::entry_added;
    use crate::store::Table;
    use serde_json::json;

    #[test]
    fn the_trail_keeps_its_newest_events_and_their_index_rows_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap().with_event_limit(PRUNE_EVERY);
        for n in 0..(4 * PRUNE_EVERY) {
            let id = format!("d{}", n % 2);
            store.record(NewEvent::for_deployment(&id, EventData::HealthRecovered(NoDetail {}))).unwrap();
        }
        let all = |filter: EventFilter| store.events(&EventFilter { limit: Some(usize::MAX), ..filter }).unwrap();
        let kept = all(EventFilter::default());
        assert_eq!(kept.len() as u64, PRUNE_EVERY, "pruned at the last multiple of a batch");
        assert_eq!(kept.last().unwrap().seq, 3 * PRUNE_EVERY + 1, "the oldest went");
        let tx = store.db.begin_read().unwrap();
        assert_eq!(tx.open_table(DEPLOYMENT_EVENTS).unwrap().len().unwrap(), PRUNE_EVERY, "index rows went with them");
        assert_eq!(tx.open_table(KIND_EVENTS).unwrap().len().unwrap(), 2 * PRUNE_EVERY, "type and family rows");
        let by_deployment = all(EventFilter { deployment: Some("d0".into()), ..Default::default() });
        assert_eq!(by_deployment.len() as u64, PRUNE_EVERY / 2);
    }

    #[test]
    fn events_are_published_after_commit_and_indexed_by_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let mut published = store.subscribe();
        for (i, deployment) in ["a", "b", "a", "c", "a"].iter().enumerate() {
            let kind = if i % 2 == 0 {
                EventData::DeploymentStart(NoDetail {})
            } else {
                EventData::DeploymentStop(NoDetail {})
            };
            store.record(NewEvent::for_deployment(deployment, kind)).unwrap();
        }
        let created = store.create(Table::Catalog, "x", &json!({}), entry_added("catalog/x"));
        assert!(created.is_ok());
        let dup = store.create(Table::Catalog, "x", &json!({}), entry_added("catalog/x"));
        assert!(dup.is_err());
        let seen: Vec<u64> = std::iter::from_fn(|| published.try_recv().ok()).map(|e| e.seq).collect();
        assert_eq!(
            seen,
            [1, 2, 3, 4, 5, 6],
            "every committed event once, in order; the refused write published nothing"
        );

        let filter = EventFilter { deployment: Some("a".into()), ..Default::default() };
        let of_a: Vec<u64> = store.events(&filter).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(of_a, [5, 3, 1], "newest first, only a's");
        let filter = EventFilter { deployment: Some("a".into()), limit: Some(2), ..Default::default() };
        assert_eq!(store.events(&filter).unwrap().len(), 2);
        let filter = EventFilter { kind: Some("deployment".into()), ..Default::default() };
        assert_eq!(store.events(&filter).unwrap().len(), 5, "a family matches its kinds");
        let filter = EventFilter { kind: Some("deploy".into()), ..Default::default() };
        assert!(store.events(&filter).unwrap().is_empty(), "a prefix that is not a family matches nothing");
    }

    #[test]
    fn an_event_this_version_cannot_read_is_left_out_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        store.record(entry_added("catalog/a")).unwrap();
        let tx = store.db.begin_write().unwrap();
        let unknown =
            json!({"seq": 2, "at": chrono::Utc::now(), "type": "from.the_future", "subject": "x", "data": {}});
        tx.open_table(EVENTS).unwrap().insert(2, serde_json::to_vec(&unknown).unwrap().as_slice()).unwrap();
        tx.commit().unwrap();
        store.record(entry_added("catalog/b")).unwrap();
        let seqs: Vec<u64> = store.events(&EventFilter::default()).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 1]);
        let tx = store.db.begin_read().unwrap();
        assert!(tx.open_table(EVENTS).unwrap().get(2).unwrap().is_some(), "still stored");
    }

    #[test]
    fn a_trail_written_before_the_type_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            store.record(entry_added("catalog/a")).unwrap();
            store.record(NewEvent::for_deployment("d", EventData::DeploymentStop(NoDetail {}))).unwrap();
            let tx = store.db.begin_write().unwrap();
            tx.delete_table(KIND_EVENTS).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let by_type = |kind: &str| {
            let filter = EventFilter { kind: Some(kind.into()), ..Default::default() };
            store.events(&filter).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>()
        };
        assert_eq!((by_type("catalog"), by_type("deployment.stop"), by_type("alert")), (vec![1], vec![2], vec![]));
    }
}
