//! Fast single-path tree edits.
//!
//! A tenant folder such as `apps/` may hold tens of thousands of entries, so its tree object is
//! large (≈ 42 bytes per entry: 420 KB for 10,000 files). Going through libgit2's tree builder
//! costs a full parse, a sort and a level-1 deflate of that object on every order (≈ 15 ms). An
//! order changes exactly one entry, so instead we splice the raw, already sorted tree bytes
//! (one linear scan) and write the new tree as a loose object ourselves, deflated in *stored*
//! mode (no compression: header + adler32 only). Loose objects are transient anyway — `git gc`
//! (see [`crate::Repos::gc`]) packs them with deltas, where successive versions of the same tree
//! cost almost nothing.
//!
//! The object format is git's: `zlib("tree <len>\0" + entries)` at `objects/xx/yyyy…`, where each
//! entry is `<octal mode> <name>\0<20-byte id>`, sorted by name with trees compared as if their
//! name ended in `/`. `git fsck --strict` in the tests checks every object written here.

use std::cmp::Ordering;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use git2::{ObjectType, Oid, Repository};

use crate::GitError;

const MODE_TREE: &[u8] = b"40000";
const MODE_BLOB: &[u8] = b"100644";

/// What to do at the leaf of a path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf {
    /// Set the file to this blob (mode 100644).
    Blob(Oid),
    /// Remove the file.
    Remove,
}

/// Outcome of editing one tree.
enum Edited {
    /// The tree changed; `None` when it became empty (and so disappears from its parent).
    Changed(Option<Oid>),
    /// The edit changes nothing (same blob already there, or nothing to remove).
    Unchanged,
}

/// One entry of a raw tree: byte range in the buffer, name, mode, id.
struct Entry<'a> {
    start: usize,
    end: usize,
    mode: &'a [u8],
    name: &'a [u8],
    id: &'a [u8],
}

fn is_tree_mode(mode: &[u8]) -> bool {
    mode == MODE_TREE
}

/// Iterate the entries of a raw tree object.
fn entries(data: &[u8]) -> impl Iterator<Item = Result<Entry<'_>, GitError>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let start = pos;
        let corrupt = || GitError::Conflict("corrupt tree object".into());
        let Some(sp) = data[pos..].iter().position(|&b| b == b' ') else {
            pos = data.len();
            return Some(Err(corrupt()));
        };
        let mode = &data[pos..pos + sp];
        pos += sp + 1;
        let Some(nul) = data[pos..].iter().position(|&b| b == 0) else {
            pos = data.len();
            return Some(Err(corrupt()));
        };
        let name = &data[pos..pos + nul];
        pos += nul + 1;
        if pos + 20 > data.len() {
            pos = data.len();
            return Some(Err(corrupt()));
        }
        let id = &data[pos..pos + 20];
        pos += 20;
        Some(Ok(Entry { start, end: pos, mode, name, id }))
    })
}

/// Git's tree entry order (`base_name_compare`): bytewise, a tree's name followed by `/`.
fn entry_cmp(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> Ordering {
    let len = a.len().min(b.len());
    match a[..len].cmp(&b[..len]) {
        Ordering::Equal => {}
        other => return other,
    }
    let next = |name: &[u8], tree: bool| match name.get(len) {
        Some(&c) => c,
        None if tree => b'/',
        None => 0,
    };
    next(a, a_tree).cmp(&next(b, b_tree))
}

/// Where [`edit_path`] reads trees from and writes new objects to.
///
/// [`LooseStore`] writes straight into the repository as loose objects (one order at a time);
/// [`crate::pack::PackBuilder`] collects the objects of a batch of orders in memory and writes them
/// as one packfile.
pub(crate) trait ObjectStore {
    /// Read an object.
    fn read(&self, id: Oid) -> Result<RawObject<'_>, GitError>;
    /// Store an object; returns its id. Storing an object that exists already is a no-op.
    fn write(&self, kind: ObjectType, data: Vec<u8>) -> Result<Oid, GitError>;
    /// Store a tree `data` that is an edit of the tree `splice.base` (see [`Splice`]). A store
    /// may use the splice to store the tree as a delta against its base
    /// ([`crate::pack::PackBuilder`] does); by default it is ignored.
    fn write_spliced_tree(&self, data: Vec<u8>, splice: Splice) -> Result<Oid, GitError> {
        let _ = splice;
        self.write(ObjectType::Tree, data)
    }
}

/// How a tree written by [`edit_path`] differs from the tree it was edited from: the base's
/// bytes with `base[start..start + removed]` replaced by `new[start..start + inserted]` (one tree
/// entry inserted, replaced or removed), everything before and after unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Splice {
    /// The tree edited.
    pub(crate) base: Oid,
    /// Where the change starts (same offset in the base and in the new tree).
    pub(crate) start: usize,
    /// Bytes of the base replaced.
    pub(crate) removed: usize,
    /// Bytes of the new tree replacing them.
    pub(crate) inserted: usize,
}

/// An object read through an [`ObjectStore`].
pub(crate) enum RawObject<'a> {
    /// From the repository's object database.
    Odb(git2::OdbObject<'a>),
    /// From memory (written earlier in the same batch).
    Mem(ObjectType, std::sync::Arc<[u8]>),
}

impl RawObject<'_> {
    pub(crate) fn kind(&self) -> ObjectType {
        match self {
            RawObject::Odb(object) => object.kind(),
            RawObject::Mem(kind, _) => *kind,
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        match self {
            RawObject::Odb(object) => object.data(),
            RawObject::Mem(_, data) => data,
        }
    }
}

/// Objects read from and written (loose) into a repository.
pub(crate) struct LooseStore<'r> {
    repo: &'r Repository,
    odb: git2::Odb<'r>,
}

impl<'r> LooseStore<'r> {
    pub(crate) fn new(repo: &'r Repository) -> Result<Self, GitError> {
        Ok(LooseStore { repo, odb: repo.odb()? })
    }
}

impl ObjectStore for LooseStore<'_> {
    fn read(&self, id: Oid) -> Result<RawObject<'_>, GitError> {
        Ok(RawObject::Odb(self.odb.read(id)?))
    }

    fn write(&self, kind: ObjectType, data: Vec<u8>) -> Result<Oid, GitError> {
        write_loose(self.repo, kind, &data)
    }
}

/// Apply `leaf` at `path` (split into components) below the tree `tree` (`None` = empty tree).
fn edit(store: &impl ObjectStore, tree: Option<Oid>, path: &[&str], leaf: Leaf) -> Result<Edited, GitError> {
    let Some((first, rest)) = path.split_first() else {
        return Err(GitError::InvalidInput("empty path".into()));
    };
    let name = first.as_bytes();
    let object;
    let data: &[u8] = match tree {
        Some(id) => {
            object = store.read(id)?;
            if object.kind() != ObjectType::Tree {
                return Err(GitError::Conflict(format!("{id} is not a tree")));
            }
            object.data()
        }
        None => &[],
    };

    // Find the entry with this name (of either type) and where a new entry would go.
    let want_tree = !rest.is_empty();
    let mut found: Option<Entry<'_>> = None;
    let mut insert_at = data.len();
    for entry in entries(data) {
        let entry = entry?;
        if entry.name == name {
            found = Some(entry);
            break;
        }
        if insert_at == data.len()
            && entry_cmp(entry.name, is_tree_mode(entry.mode), name, want_tree) == Ordering::Greater
        {
            insert_at = entry.start;
            // Keep scanning only while an entry of the same name could still follow: names that
            // compare greater with either type suffix cannot be followed by an equal name.
            if entry_cmp(entry.name, is_tree_mode(entry.mode), name, !want_tree) == Ordering::Greater {
                break;
            }
        }
    }

    // The new entry for this name, or None to remove it.
    let new_entry: Option<(&[u8], Oid)> = if rest.is_empty() {
        if let Some(entry) = &found {
            if is_tree_mode(entry.mode) {
                return Err(GitError::InvalidInput(format!("{first} is a directory")));
            }
        }
        match leaf {
            Leaf::Blob(id) => {
                if let Some(entry) = &found {
                    if entry.mode == MODE_BLOB && entry.id == id.as_bytes() {
                        return Ok(Edited::Unchanged);
                    }
                }
                Some((MODE_BLOB, id))
            }
            Leaf::Remove => {
                if found.is_none() {
                    return Ok(Edited::Unchanged);
                }
                None
            }
        }
    } else {
        let sub = match &found {
            Some(entry) if is_tree_mode(entry.mode) => Some(Oid::from_bytes(entry.id)?),
            Some(_) => return Err(GitError::InvalidInput(format!("{first} is a file"))),
            None => None,
        };
        match edit(store, sub, rest, leaf)? {
            Edited::Unchanged => return Ok(Edited::Unchanged),
            Edited::Changed(Some(id)) => Some((MODE_TREE, id)),
            Edited::Changed(None) => None,
        }
    };

    let (cut_start, cut_end) = match &found {
        Some(entry) => (entry.start, entry.end),
        None => (insert_at, insert_at),
    };
    let mut out = Vec::with_capacity(data.len() + name.len() + 32);
    out.extend_from_slice(&data[..cut_start]);
    if let Some((mode, id)) = new_entry {
        out.extend_from_slice(mode);
        out.push(b' ');
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(id.as_bytes());
    }
    let inserted = out.len() - cut_start;
    out.extend_from_slice(&data[cut_end..]);
    if out.is_empty() {
        return Ok(Edited::Changed(None));
    }
    let id = match tree {
        Some(base) => {
            store.write_spliced_tree(out, Splice { base, start: cut_start, removed: cut_end - cut_start, inserted })?
        }
        None => store.write(ObjectType::Tree, out)?,
    };
    Ok(Edited::Changed(Some(id)))
}

/// Apply `leaf` at `path` (`a/b/file`) to the tree `root`; returns the new root tree, or `None`
/// when the edit changes nothing. An emptied root is written as the empty tree.
pub(crate) fn edit_path(store: &impl ObjectStore, root: Oid, path: &str, leaf: Leaf) -> Result<Option<Oid>, GitError> {
    let parts: Vec<&str> = path.split('/').collect();
    match edit(store, Some(root), &parts, leaf)? {
        Edited::Unchanged => Ok(None),
        Edited::Changed(Some(id)) => Ok(Some(id)),
        Edited::Changed(None) => Ok(Some(store.write(ObjectType::Tree, Vec::new())?)),
    }
}

/// Write an object as a loose object, zlib-wrapped in stored (uncompressed) deflate blocks.
/// Returns its id; an object that already exists loose is not rewritten.
pub(crate) fn write_loose(repo: &Repository, kind: ObjectType, data: &[u8]) -> Result<Oid, GitError> {
    let id = Oid::hash_object(kind, data)?;
    let hex = id.to_string();
    let dir = repo.path().join("objects").join(&hex[..2]);
    let file = dir.join(&hex[2..]);
    if file.exists() {
        return Ok(id);
    }
    let header = format!("{} {}\0", kind.str(), data.len());
    let mut encoded = Vec::new();
    zlib_stored(&mut encoded, &[header.as_bytes(), data]);
    fs::create_dir_all(&dir)?;
    write_atomically(&dir, &file, &encoded)?;
    Ok(id)
}

/// Write `bytes` to a temporary file in `dir` and rename it to `file` (read-only, as git does).
pub(crate) fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> Result<(), GitError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!("tmp_obj_mc_{}_{}", std::process::id(), COUNTER.fetch_add(1, AtomicOrdering::Relaxed)));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        let mut perms = fs::metadata(&tmp)?.permissions();
        perms.set_readonly(true);
        fs::set_permissions(&tmp, perms)?;
        fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(result?)
}

/// Append to `out` the zlib stream (RFC 1950) of the concatenation of `parts`, using stored
/// deflate blocks (RFC 1951 §3.2.4): no compression, just framing and the adler32 checksum.
pub(crate) fn zlib_stored(out: &mut Vec<u8>, parts: &[&[u8]]) {
    const MAX_BLOCK: usize = 65_535;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let blocks = total.div_ceil(MAX_BLOCK).max(1);
    out.reserve(2 + total + blocks * 5 + 4);
    out.extend_from_slice(&[0x78, 0x01]);
    let mut adler = Adler32::new();
    let mut written = 0;
    let mut chain = parts.iter().flat_map(|p| p.chunks(MAX_BLOCK)).peekable();
    // Emit blocks of up to MAX_BLOCK bytes, crossing part boundaries.
    let mut block: Vec<u8> = Vec::with_capacity(MAX_BLOCK.min(total));
    loop {
        while block.len() < MAX_BLOCK {
            let Some(chunk) = chain.peek_mut() else { break };
            let take = (MAX_BLOCK - block.len()).min(chunk.len());
            block.extend_from_slice(&chunk[..take]);
            *chunk = &chunk[take..];
            if chunk.is_empty() {
                chain.next();
            }
        }
        written += block.len();
        let last = written == total;
        let len = block.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(&block);
        adler.update(&block);
        block.clear();
        if last {
            break;
        }
    }
    out.extend_from_slice(&adler.finish().to_be_bytes());
}

/// Adler-32 checksum (RFC 1950 §8.2).
struct Adler32 {
    a: u32,
    b: u32,
}

impl Adler32 {
    const MOD: u32 = 65_521;
    /// Largest n such that 255·n·(n+1)/2 + (n+1)·(MOD−1) fits in u32.
    const NMAX: usize = 5_552;

    fn new() -> Self {
        Self { a: 1, b: 0 }
    }

    fn update(&mut self, data: &[u8]) {
        for chunk in data.chunks(Self::NMAX) {
            for &byte in chunk {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    fn finish(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_known_value() {
        let mut a = Adler32::new();
        a.update(b"Wikipedia");
        assert_eq!(a.finish(), 0x11E6_0398);
        let mut big = Adler32::new();
        big.update(&vec![0xff; 100_000]);
        // Reference computed bytewise with u64 and modulo on every step.
        let (mut x, mut y) = (1u64, 0u64);
        for _ in 0..100_000 {
            x = (x + 0xff) % 65_521;
            y = (y + x) % 65_521;
        }
        assert_eq!(big.finish() as u64, (y << 16) | x);
    }

    #[test]
    fn tree_order_matches_git() {
        // "a.b" < "a" (tree, compared as "a/") < "a0"; a blob "a" sorts before "a.b".
        assert_eq!(entry_cmp(b"a.b", false, b"a", true), Ordering::Less);
        assert_eq!(entry_cmp(b"a", true, b"a0", false), Ordering::Less);
        assert_eq!(entry_cmp(b"a", false, b"a.b", false), Ordering::Less);
        assert_eq!(entry_cmp(b"a", false, b"a", false), Ordering::Equal);
    }

    #[test]
    fn stored_objects_are_readable_by_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        for len in [0usize, 1, 65_534, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let id = write_loose(&repo, ObjectType::Blob, &data).unwrap();
            assert_eq!(id, repo.blob(&data).unwrap());
            let odb = repo.odb().unwrap();
            let obj = odb.read(id).unwrap();
            assert_eq!(obj.data(), &data[..]);
        }
    }

    #[test]
    fn edits_match_libgit2_tree_builder() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = |s: &str| repo.blob(s.as_bytes()).unwrap();
        // Start with a tree holding files and directories with tricky names.
        let mut up = git2::build::TreeUpdateBuilder::new();
        for p in ["a.b", "a/x", "a0", "b/c/d", "z"] {
            up.upsert(p, blob(p), git2::FileMode::Blob);
        }
        let empty = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
        let mut current = up.create_updated(&repo, &empty).unwrap();
        let store = LooseStore::new(&repo).unwrap();
        let edits: &[(&str, Option<&str>)] = &[
            ("a/y", Some("1")),
            ("a-", Some("2")),
            ("a.b", Some("3")),
            ("b/c/e", Some("4")),
            ("b/c/d", None),
            ("b/c/e", None),
            ("new/deep/file", Some("5")),
            ("a/x", None),
            ("a/y", None),
        ];
        for (path, content) in edits {
            let base = repo.find_tree(current).unwrap();
            let mut up = git2::build::TreeUpdateBuilder::new();
            let leaf = match content {
                Some(c) => {
                    let id = blob(c);
                    up.upsert(*path, id, git2::FileMode::Blob);
                    Leaf::Blob(id)
                }
                None => {
                    up.remove(*path);
                    Leaf::Remove
                }
            };
            let expected = up.create_updated(&repo, &base).unwrap();
            let ours = edit_path(&store, current, path, leaf).unwrap().unwrap();
            assert_eq!(ours, expected, "{path}");
            current = ours;
        }
        // No-op edits.
        assert_eq!(edit_path(&store, current, "a.b", Leaf::Blob(blob("3"))).unwrap(), None);
        assert_eq!(edit_path(&store, current, "missing", Leaf::Remove).unwrap(), None);
        assert_eq!(edit_path(&store, current, "b/missing", Leaf::Remove).unwrap(), None);
        // Type clashes.
        assert!(edit_path(&store, current, "new", Leaf::Blob(blob("x"))).is_err());
        assert!(edit_path(&store, current, "z/file", Leaf::Blob(blob("x"))).is_err());
    }
}
