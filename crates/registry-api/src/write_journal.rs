//! Which repositories this replica has written to lately, for garbage
//! collection: gc-worker lists the whole store before its read-only
//! window, and inside the window lists again only the repositories some
//! replica wrote to since (the `RepositoriesWritten` call).
//!
//! Each write is numbered when the write gate admits it. A position is the
//! number of the oldest write still in flight, or the next number when
//! none is: a write admitted before a position was taken and still
//! writing after it is reported from that position. Only each
//! repository's newest number is kept, for at most [`REMEMBERED`]
//! repositories; past that the oldest are forgotten, and a question from
//! before them is answered "incomplete" (gc-worker then lists everything).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use registry_core::RepositoryName;

/// Repositories remembered; about 100 bytes each.
const REMEMBERED: usize = 20_000;

/// The journal of one replica's writes.
#[derive(Debug, Default)]
pub struct WriteJournal {
    inner: Mutex<Journal>,
}

#[derive(Debug, Default)]
struct Journal {
    next: u64,
    newest: HashMap<RepositoryName, u64>,
    by_number: BTreeMap<u64, RepositoryName>,
    in_flight: BTreeSet<u64>,
    /// Numbers below this were forgotten.
    forgotten_below: u64,
}

/// A write recorded in the journal; dropping it ends the write.
#[derive(Debug)]
pub struct JournalEntry<'a> {
    journal: &'a WriteJournal,
    number: u64,
}

impl Drop for JournalEntry<'_> {
    fn drop(&mut self) {
        self.journal.lock().in_flight.remove(&self.number);
    }
}

impl WriteJournal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.inner.lock().expect("never poisoned")
    }

    /// Records a write to `repository` beginning now.
    pub fn record(&self, repository: &RepositoryName) -> JournalEntry<'_> {
        let mut journal = self.lock();
        let number = journal.next;
        journal.next += 1;
        if let Some(older) = journal.newest.insert(repository.clone(), number) {
            journal.by_number.remove(&older);
        }
        journal.by_number.insert(number, repository.clone());
        journal.in_flight.insert(number);
        while journal.by_number.len() > REMEMBERED {
            let (oldest, name) = journal.by_number.pop_first().expect("not empty");
            journal.newest.remove(&name);
            journal.forgotten_below = oldest + 1;
        }
        JournalEntry {
            journal: self,
            number,
        }
    }

    /// Where to ask from next time: the oldest write still in flight, or
    /// the next to come.
    pub fn position(&self) -> u64 {
        let journal = self.lock();
        journal.in_flight.first().copied().unwrap_or(journal.next)
    }

    /// The repositories written to from `position` on, or `None` when
    /// some of them were forgotten.
    pub fn written_since(&self, position: u64) -> Option<Vec<RepositoryName>> {
        let journal = self.lock();
        (position >= journal.forgotten_below).then(|| {
            journal
                .by_number
                .range(position..)
                .map(|(_, name)| name.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> RepositoryName {
        text.parse().expect("a repository name")
    }

    #[test]
    fn a_write_in_flight_when_the_position_is_taken_is_reported_from_it() {
        let journal = WriteJournal::default();
        drop(journal.record(&name("done/before")));
        let slow = journal.record(&name("slow"));
        drop(journal.record(&name("quick")));
        let position = journal.position();
        assert_eq!(
            journal.written_since(position),
            Some(vec![name("slow"), name("quick")]),
            "the slow write may land after a listing that starts now"
        );
        drop(slow);
        let later = journal.position();
        assert_eq!(journal.written_since(later), Some(Vec::new()));
        drop(journal.record(&name("slow")));
        assert_eq!(journal.written_since(later), Some(vec![name("slow")]));
        assert_eq!(
            journal.written_since(position),
            Some(vec![name("quick"), name("slow")])
        );
    }

    #[test]
    fn a_question_from_before_forgotten_writes_is_incomplete() {
        let journal = WriteJournal::default();
        let position = journal.position();
        for index in 0..=REMEMBERED {
            drop(journal.record(&name(&format!("r{index}"))));
        }
        assert_eq!(journal.written_since(position), None);
        let recent = journal.position() - 1;
        assert_eq!(
            journal.written_since(recent),
            Some(vec![name(&format!("r{REMEMBERED}"))])
        );
        // Writing again to a repository keeps only its newest number.
        drop(journal.record(&name("r5000")));
        assert_eq!(
            journal.written_since(recent),
            Some(vec![name(&format!("r{REMEMBERED}")), name("r5000")])
        );
    }
}
