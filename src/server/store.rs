//! The memcache processor's store: one hash table for the whole server, behind one
//! lock, as memcached's is (its item locks aside), and bounded in memory: past
//! `--store-memory` a `set` is refused with a SERVER_ERROR (memcached's `-M`), never
//! an unbounded growth.

use crate::protocol::memcache;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// What an entry costs beyond its key and value, roughly: the table's slot and the
/// allocations' headers. Counted so that a flood of empty values is bounded too.
const ENTRY_OVERHEAD: usize = 64;

pub struct Store {
    table: Mutex<Table>,
    limit: usize,
}

#[derive(Default)]
struct Table {
    items: HashMap<Box<[u8]>, Item>,
    /// What the items cost, by `cost`.
    bytes: usize,
}

struct Item {
    flags: u32,
    data: Box<[u8]>,
}

fn cost(key: &[u8], data: &[u8]) -> usize {
    Store::entry_cost(key.len(), data.len())
}

impl Store {
    /// The default bound (`--store-memory`): memcached's default `-m 64`.
    pub const DEFAULT_LIMIT: usize = 64 << 20;

    /// What one entry counts against the bound.
    pub fn entry_cost(key_len: usize, value_len: usize) -> usize {
        key_len + value_len + ENTRY_OVERHEAD
    }

    pub fn new(limit: usize) -> Store {
        Store {
            table: Mutex::new(Table::default()),
            limit,
        }
    }

    /// A thread that panicked while holding the lock left the table consistent
    /// (every change is made whole, after the check): go on with it.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl memcache::Store for Store {
    fn set(&self, key: &[u8], flags: u32, data: &[u8]) -> bool {
        let mut table = self.table();
        let old = table.items.get(key).map_or(0, |item| cost(key, &item.data));
        let bytes = table.bytes - old + cost(key, data);
        if bytes > self.limit {
            return false;
        }
        let item = Item {
            flags,
            data: data.into(),
        };
        match table.items.get_mut(key) {
            Some(kept) => *kept = item,
            None => {
                table.items.insert(key.into(), item);
            }
        }
        table.bytes = bytes;
        true
    }

    fn get(&self, key: &[u8], found: &mut dyn FnMut(u32, &[u8])) {
        if let Some(item) = self.table().items.get(key) {
            found(item.flags, &item.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memcache::Store as _;

    fn get(store: &Store, key: &[u8]) -> Option<(u32, Vec<u8>)> {
        let mut got = None;
        store.get(key, &mut |flags, data| got = Some((flags, data.to_vec())));
        got
    }

    /// Values are replaced in place, and the bound counts what is kept now, not
    /// everything ever stored.
    #[test]
    fn the_bound_refuses_growth_and_counts_replacements() {
        let store = Store::new(2 * cost(b"k", &[0; 100]));
        assert!(store.set(b"k", 1, &[1; 100]));
        assert!(
            store.set(b"k", 2, &[2; 100]),
            "a replacement costs nothing more"
        );
        assert!(store.set(b"j", 3, &[3; 99]));
        assert!(!store.set(b"i", 4, &[4; 2]), "past the bound");
        assert_eq!(get(&store, b"k"), Some((2, vec![2; 100])));
        assert_eq!(get(&store, b"i"), None);
        assert!(
            !store.set(b"k", 5, &[5; 102]),
            "a bigger replacement past the bound"
        );
        assert!(store.set(b"k", 6, &[6; 101]));
        assert_eq!(store.table().bytes, 2 * cost(b"k", &[0; 100]));
    }
}
