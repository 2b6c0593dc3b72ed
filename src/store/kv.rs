//! The store's storage engine: named trees of byte keys and values in one redb file, with
//! multi-tree transactions. It keeps the shape the store was written against (sled's:
//! trees, ranges, prefix scans, writes that become durable at the next `flush`) so the
//! store's modules read the same, over an engine whose memory is bounded by its cache
//! whatever the file holds, that opens in constant time, and that compacts in place.
//!
//! Durability: a write outside a transaction, and a transaction run with `Durable::Later`,
//! commit without syncing (redb's `Durability::None`); `flush` makes them durable, with
//! everything before it. A transaction run with `Durable::Now` is durable when it returns.
//! Durable commits save redb's allocator state (its "quick repair"), so opening after a
//! crash does not walk the whole file.

use std::cell::RefCell;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

/// What the engine fails with.
pub type Error = redb::Error;
pub type Result<T> = std::result::Result<T, Error>;
type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Whether a transaction must be on disk when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    Now,
    /// At the next `flush` (or durable transaction).
    Later,
}

/// How a transaction ends when it does not commit: the closure's own abort, or storage.
#[derive(Debug)]
pub enum TxError<E> {
    Abort(E),
    Storage(Error),
}

/// `?` on any of redb's errors inside a transaction's closure.
macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl<E> From<$t> for TxError<E> {
            fn from(e: $t) -> Self {
                TxError::Storage(e.into())
            }
        }
    )*};
}
storage_errors!(
    Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The open file.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Database>,
    /// Write transactions in the order they held the write lock: each takes the next
    /// number while it holds it.
    begun: Arc<AtomicU64>,
    /// The highest such number a durable commit covers: a durable commit makes every
    /// transaction before it durable (redb's `Durability::None` semantics).
    durable_through: Arc<AtomicU64>,
    path: PathBuf,
}

impl Db {
    /// Opens (or creates) the file at `path`, with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Db> {
        let inner = Database::builder().set_cache_size(cache_bytes).create(path)?;
        Ok(Db {
            inner: Arc::new(inner),
            begun: Arc::new(AtomicU64::new(0)),
            durable_through: Arc::new(AtomicU64::new(0)),
            path: path.to_path_buf(),
        })
    }

    /// A tree by name, made if new.
    pub fn tree(&self, name: &'static str) -> Result<Tree> {
        let def = Def::new(name);
        // A read sees a table only once a write made it.
        self.transaction(Durable::Later, |tx| tx.open(&Tree { db: self.clone(), def }).map(drop).map_err(Into::into))
            .map_err(storage)?;
        Ok(Tree { db: self.clone(), def })
    }

    /// The names of the trees in the file.
    pub fn tree_names(&self) -> Result<Vec<String>> {
        use redb::TableHandle;
        let read = self.inner.begin_read()?;
        Ok(read.list_tables()?.map(|t| t.name().to_string()).collect())
    }

    /// Runs `f` in one write transaction over any trees it opens, committed when `f`
    /// returns `Ok`, dropped whole when it returns `Err`. Write transactions take turns.
    pub fn transaction<R, E>(
        &self,
        durable: Durable,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<R, TxError<E>>,
    ) -> std::result::Result<R, TxError<E>> {
        let mut txn = self.inner.begin_write()?;
        // Numbered under the write lock, so numbers follow the order of commits.
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        match durable {
            Durable::Now => txn.set_quick_repair(true),
            Durable::Later => txn.set_durability(Durability::None)?,
        }
        let out = f(&Tx { txn: &txn });
        match out {
            Ok(value) => {
                txn.commit()?;
                if durable == Durable::Now {
                    self.durable_through.fetch_max(number, Ordering::SeqCst);
                }
                Ok(value)
            }
            Err(e) => {
                txn.abort()?;
                Err(e)
            }
        }
    }

    /// Waits until every commit so far (from any thread) is on disk: unless a durable
    /// commit already covers the last transaction begun, an empty durable one is made,
    /// which waits for any transaction under way and covers it.
    pub fn flush(&self) -> Result<()> {
        let last = self.begun.load(Ordering::SeqCst);
        if self.durable_through.load(Ordering::SeqCst) >= last {
            return Ok(());
        }
        self.transaction::<(), ()>(Durable::Now, |_| Ok(())).map_err(storage)
    }

    /// How many keys the tree called `name` holds (0 when there is none).
    pub fn len_of(&self, name: &str) -> Result<usize> {
        let read = self.inner.begin_read()?;
        match read.open_table(TableDefinition::<&[u8], &[u8]>::new(name)) {
            Ok(table) => Ok(table.len()? as usize),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the file's free space back to the file system, in place, with nothing else
    /// open on it. Each step is a commit of its own: a compaction cut short leaves a whole
    /// store. Returns the file's size before and after.
    pub fn compact_file(path: &Path, cache_bytes: usize) -> Result<(u64, u64)> {
        let size = || std::fs::metadata(path).map(|m| m.len()).map_err(Error::from);
        let before = size()?;
        let mut db = Database::builder().set_cache_size(cache_bytes).open(path)?;
        while db.compact(redb::CompactionMode::Maximum)? {}
        drop(db);
        Ok((before, size()?))
    }

    /// The file's size.
    pub fn size_on_disk(&self) -> std::io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

/// A storage error out of a transaction that never aborts.
fn storage(e: TxError<()>) -> Error {
    match e {
        TxError::Storage(e) => e,
        TxError::Abort(()) => unreachable!("the transaction never aborts"),
    }
}

/// A named tree.
#[derive(Clone)]
pub struct Tree {
    db: Db,
    def: Def,
}

impl Tree {
    fn read(&self) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
        Ok(self.db.inner.begin_read()?.open_table(self.def)?)
    }

    fn write<R>(&self, f: impl FnOnce(&TxTree<'_>) -> Result<R>) -> Result<R> {
        self.db.transaction(Durable::Later, |tx| Ok(f(&tx.open(self)?)?)).map_err(storage)
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.read()?.get(key.as_ref())?.map(|v| v.value().to_vec()))
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.read()?.get(key.as_ref())?.is_some())
    }

    /// Writes `value` at `key`; the value it replaced, if any.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.write(|t| t.insert(key, value))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.write(|t| t.remove(key))
    }

    /// Writes `new` at `key` (or removes it, for `None`) if what is there is `old`; whether
    /// it did.
    pub fn compare_and_swap(&self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
        self.write(|t| {
            if t.get(key)?.as_deref() != old {
                return Ok(false);
            }
            match new {
                Some(new) => t.insert(key, new)?,
                None => t.remove(key)?,
            };
            Ok(true)
        })
    }

    /// How many keys the tree holds (kept by the engine, not counted).
    pub fn len(&self) -> Result<usize> {
        Ok(self.read()?.len()? as usize)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every key.
    pub fn clear(&self) -> Result<()> {
        self.write(|t| Ok(t.table.borrow_mut().retain(|_, _| false)?))
    }

    /// Every key and value, in key order (reversible).
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The keys and values in `range`, in key order (reversible). The read sees the tree as
    /// it was when it began.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let bound = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (start, end) = (bound(range.start_bound()), bound(range.end_bound()));
        match self.read().and_then(|t| Ok(t.range_owned((as_slice(&start), as_slice(&end)))?)) {
            Ok(range) => Iter { range: Some(range), failed: None },
            Err(e) => Iter { range: None, failed: Some(e) },
        }
    }

    /// The keys starting with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let prefix = prefix.as_ref().to_vec();
        match prefix_end(&prefix) {
            Some(end) => self.range(prefix..end),
            None => self.range(prefix..),
        }
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The first key after every key starting with `prefix` (none when the prefix is all 0xff).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A read of a tree's keys and values in order, owning its snapshot.
pub struct Iter {
    range: Option<redb::OwnedRange<&'static [u8], &'static [u8]>>,
    failed: Option<Error>,
}

type Entry = (Vec<u8>, Vec<u8>);

/// What a redb read yields: a key and a value, each keeping its snapshot alive.
type Guards = (redb::OwnedAccessGuard<&'static [u8]>, redb::OwnedAccessGuard<&'static [u8]>);

fn owned(item: std::result::Result<Guards, redb::StorageError>) -> Result<Entry> {
    let (k, v) = item?;
    Ok((k.value().to_vec(), v.value().to_vec()))
}

impl Iterator for Iter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        self.range.as_mut()?.next().map(owned)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        self.range.as_mut()?.next_back().map(owned)
    }
}

impl Iter {
    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<Vec<u8>>> {
        self.map(|item| item.map(|(k, _)| k))
    }

    pub fn values(self) -> impl DoubleEndedIterator<Item = Result<Vec<u8>>> {
        self.map(|item| item.map(|(_, v)| v))
    }
}

/// A write transaction under way (see `Db::transaction`).
pub struct Tx<'t> {
    txn: &'t redb::WriteTransaction,
}

impl<'t> Tx<'t> {
    /// `tree` inside this transaction. A tree is opened once per transaction.
    pub fn open(&self, tree: &Tree) -> Result<TxTree<'t>> {
        Ok(TxTree { table: RefCell::new(self.txn.open_table(tree.def)?) })
    }

    /// The tree called `name` inside this transaction, made if new.
    pub fn open_named(&self, name: &str) -> Result<TxTree<'t>> {
        Ok(TxTree { table: RefCell::new(self.txn.open_table(TableDefinition::<&[u8], &[u8]>::new(name))?) })
    }
}

/// A tree inside a write transaction: it reads the transaction's own writes.
pub struct TxTree<'t> {
    table: RefCell<redb::Table<'t, &'static [u8], &'static [u8]>>,
}

impl TxTree<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.table.borrow().get(key.as_ref())?.map(|v| v.value().to_vec()))
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.table.borrow_mut().insert(key.as_ref(), value.as_ref())?.map(|v| v.value().to_vec()))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.table.borrow_mut().remove(key.as_ref())?.map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kv"), 1 << 20).unwrap();
        (dir, db)
    }

    #[test]
    fn ranges_prefixes_and_reverse_reads_follow_key_order() {
        let (_dir, db) = open();
        let tree = db.tree("t").unwrap();
        for key in ["a", "ab", "abc", "b", "b\u{ff}"] {
            tree.insert(key, key.to_uppercase()).unwrap();
        }
        let keys = |it: Iter| it.keys().map(|k| String::from_utf8(k.unwrap()).unwrap()).collect::<Vec<_>>();
        assert_eq!(keys(tree.scan_prefix("ab")), ["ab", "abc"]);
        assert_eq!(keys(tree.range("ab".as_bytes().."b".as_bytes())), ["ab", "abc"]);
        assert_eq!(keys(tree.range(.."ab".as_bytes())), ["a"]);
        assert_eq!(tree.iter().next_back().unwrap().unwrap().0, "b\u{ff}".as_bytes());
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(tree.scan_prefix([0xff]).count(), 0);
        assert_eq!(tree.len().unwrap(), 5);
        tree.clear().unwrap();
        assert!(tree.is_empty().unwrap());
    }

    #[test]
    fn an_aborted_transaction_leaves_nothing_and_a_read_keeps_its_snapshot() {
        let (_dir, db) = open();
        let (a, b) = (db.tree("a").unwrap(), db.tree("b").unwrap());
        a.insert("k", "1").unwrap();
        let before = a.iter();
        let out = db.transaction(Durable::Now, |tx| {
            let (ta, tb) = (tx.open(&a)?, tx.open(&b)?);
            ta.insert("k", "2")?;
            tb.insert("k", "2")?;
            assert_eq!(ta.get("k")?.as_deref(), Some(&b"2"[..]), "a transaction reads its own writes");
            Err::<(), _>(TxError::Abort("no"))
        });
        assert!(matches!(out, Err(TxError::Abort("no"))));
        assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(b.get("k").unwrap(), None);
        a.insert("k2", "x").unwrap();
        assert_eq!(before.count(), 1, "a read begun before a write does not see it");
        assert!(a.compare_and_swap(b"k", Some(b"1"), Some(b"3")).unwrap());
        assert!(!a.compare_and_swap(b"k", Some(b"1"), None).unwrap());
        assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn a_flush_returns_only_once_a_durable_commit_covers_every_write_before_it_from_any_thread() {
        let (_dir, db) = open();
        let tree = db.tree("t").unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (db, tree) = (db.clone(), tree.clone());
                scope.spawn(move || {
                    for n in 0..200 {
                        tree.insert(format!("{thread}-{n}"), [1]).unwrap();
                        // Every transaction begun so far, this thread's write among them.
                        let begun = db.begun.load(Ordering::SeqCst);
                        db.flush().unwrap();
                        let covered = db.durable_through.load(Ordering::SeqCst);
                        assert!(covered >= begun, "flush returned at {covered} with {begun} begun");
                    }
                });
            }
        });
        assert_eq!(tree.len().unwrap(), 800);
    }

    #[test]
    fn writes_made_durable_by_flush_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv");
        {
            let db = Db::open(&path, 1 << 20).unwrap();
            let t = db.tree("t").unwrap();
            t.insert("k", "v").unwrap();
            db.flush().unwrap();
        }
        let db = Db::open(&path, 1 << 20).unwrap();
        assert_eq!(db.tree("t").unwrap().get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(db.tree_names().unwrap().contains(&"t".to_string()));
    }
}
