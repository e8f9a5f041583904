//! Writing the new objects of a batch of orders as one packfile.
//!
//! Why a hand-written pack writer: creating a file costs 0.3–1 ms on a loaded ext4 file system
//! (inode allocation), and an order written object by object creates about six (blob, two trees,
//! commit, branch ref, main's lock). [`crate::Repos::apply_batch`] therefore keeps every object of
//! a batch in memory ([`PackBuilder`], which doubles as the object store the tree edits of later
//! orders in the batch read from) and writes them as one pack + index: two files per batch,
//! however many orders it holds. libgit2 offers no cheap way to do this: its pack builder deflates
//! at the default level and searches for deltas (tens of milliseconds for one 420 KB tree), and
//! its indexer re-parses and re-hashes every object we have just hashed.
//!
//! The format (`gitformat-pack(5)`):
//!
//! - pack v2: `PACK`, version 2, object count, then per object a type-and-size header followed
//!   by the zlib stream of its content, then the SHA-1 of everything before. Zlib streams use
//!   *stored* deflate blocks (no compression, see [`crate::tree_edit`]), like our loose
//!   objects: `git gc` later repacks everything with real compression.
//! - Deltas: every order of a batch rewrites the trees on its path, and in a big tenant folder
//!   (`apps/` with 10,000 files: a 420 KB tree) writing each version whole made a batch of 64
//!   orders a 27 MB pack. The tree edit knows which bytes changed (one entry inserted, replaced
//!   or removed: a [`Splice`]), so a tree whose previous version is **in the same pack** is
//!   stored as an `OFS_DELTA` (type 6: header, distance back to the base's entry, zlib stream of
//!   the delta data) whose delta is "copy the prefix, insert the new entry, copy the suffix"
//!   ([`encode_delta`]): about a hundred bytes instead of 420 KB, computed without any search.
//!
//!   Direction: like git's own packs, the *newest* version of a tree is stored whole and each
//!   older version as a delta against the version edited from it (item *N − 1*'s tree against
//!   item *N*'s, the splice inverted), so the tree main points to after the batch — which the
//!   next batch and every reader of main read first — costs no delta resolution; only history
//!   does. (With forward deltas, a tree at depth 50 took libgit2 about 8 ms to read.) An
//!   `OFS_DELTA` base must come earlier in the pack, so objects are written newest first.
//!   Chains stop at [`MAX_DELTA_DEPTH`]: the next older version is stored whole and starts a
//!   new chain. Bases are always in the same pack: a version whose base lives in an older pack
//!   could only be a `REF_DELTA` to an object outside the pack, a *thin* pack, which git and
//!   libgit2 accept over the wire but not on disk. Blobs, commits, small trees (where the delta
//!   would not halve the size, e.g. the root tree) and versions nothing in the batch was edited
//!   from are stored whole. When two versions were edited from the same tree (an order left for
//!   review, then the next one on main), the later one is its base.
//! - index v2: magic, version, 256-entry fan-out table, sorted object ids, CRC-32 of each packed
//!   entry (for a delta: of its header, base distance and zlib stream as packed), 31-bit offsets
//!   (larger ones in a 64-bit table), the pack's checksum, and the SHA-1 of the index itself.
//!   The id of a delta entry is that of the object it resolves to, which we know already (the
//!   full tree is kept in memory for the batch's reads anyway), so no delta is ever applied
//!   when writing.
//!
//! The pack is renamed into place before its index, so a reader never finds an index without its
//! pack; libgit2 handles rescan `objects/pack` when they miss an object, so pooled handles see
//! the new pack without being reopened.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::{ObjectType, Odb, OdbLookupFlags, Oid, Repository};
use sha1::{Digest, Sha1};

use crate::tree_edit::{write_atomically, zlib_stored, ObjectStore, RawObject, Splice};
use crate::GitError;

/// Git's object id: SHA-1 of `"<type> <len>\0" + data`.
///
/// Computed with the `sha1` crate (SHA-NI where the CPU has it) rather than libgit2's
/// collision-detecting SHA-1, which is several times slower on 420 KB trees. Only objects we
/// build ourselves are hashed here.
pub(crate) fn object_id(kind: ObjectType, data: &[u8]) -> Result<Oid, GitError> {
    let mut hasher = Sha1::new();
    hasher.update(kind.str().as_bytes());
    hasher.update(format!(" {}\0", data.len()).as_bytes());
    hasher.update(data);
    Ok(Oid::from_bytes(&hasher.finalize())?)
}

/// Longest delta chain [`PackBuilder`] builds (git's default `pack.depth`). Reading an object at
/// depth *d* applies *d* deltas to its base, each producing a full copy of the tree.
pub(crate) const MAX_DELTA_DEPTH: u32 = 50;

/// Largest size of one delta copy instruction we emit: git's own `diff-delta.c` never emits
/// more, although the format allows 24-bit sizes.
const MAX_COPY: usize = 0x10000;

struct PackObject {
    id: Oid,
    kind: ObjectType,
    /// The full content: what [`ObjectStore::read`] returns during the batch.
    data: Arc<[u8]>,
    /// For a tree edited from an earlier tree of the batch: that tree's index in
    /// [`PackBuilder::objects`] (always lower) and the edit.
    edited_from: Option<(usize, Splice)>,
}

/// An object stored as an `OFS_DELTA` against another object of the same pack.
#[derive(Debug)]
struct Delta {
    /// Index of the base in [`PackBuilder::objects`] (always higher than the object's own: the
    /// base is the newer version, written earlier).
    base: usize,
    /// Length of the chain down to a full object (1 = the base is full).
    depth: u32,
    /// The delta data ([`encode_delta`]).
    bytes: Vec<u8>,
}

/// New objects of a batch, held in memory until [`PackBuilder::write_pack`].
///
/// Reads consult the in-memory objects first, then the repository's object database, so the
/// orders of a batch can build on each other. Objects that already exist in the repository are
/// not collected.
pub(crate) struct PackBuilder<'r> {
    odb: Odb<'r>,
    objects: RefCell<Vec<PackObject>>,
    index: RefCell<HashMap<Oid, usize>>,
}

/// A packfile written by [`PackBuilder::write_pack`].
#[derive(Debug)]
pub(crate) struct WrittenPack {
    /// `objects/pack/pack-<checksum>.pack`.
    pub(crate) path: PathBuf,
    /// Number of objects in it.
    pub(crate) objects: usize,
    /// Size of the pack in bytes.
    pub(crate) bytes: usize,
}

impl<'r> PackBuilder<'r> {
    /// A builder for `repo`. Rescans the repository's packs once, so that the existence checks
    /// of [`ObjectStore::write`] can skip libgit2's rescan on every miss (the tenant's repository
    /// is written by one serialised worker; a stale view could at worst pack an object twice,
    /// which git tolerates).
    pub(crate) fn new(repo: &'r Repository) -> Result<Self, GitError> {
        let odb = repo.odb()?;
        odb.refresh()?;
        Ok(PackBuilder { odb, objects: RefCell::default(), index: RefCell::default() })
    }

    /// Number of objects collected so far (a mark for [`PackBuilder::truncate`]).
    pub(crate) fn len(&self) -> usize {
        self.objects.borrow().len()
    }

    /// Forget the objects collected after `mark` (those of an order that failed).
    pub(crate) fn truncate(&self, mark: usize) {
        let mut objects = self.objects.borrow_mut();
        let mut index = self.index.borrow_mut();
        for object in objects.drain(mark..) {
            index.remove(&object.id);
        }
    }

    /// Write the collected objects as `objects/pack/pack-<checksum>.{pack,idx}` under `git_dir`.
    /// Nothing is written (and `None` returned) when no object was collected.
    pub(crate) fn write_pack(&self, git_dir: &Path) -> Result<Option<WrittenPack>, GitError> {
        let objects = self.objects.borrow();
        if objects.is_empty() {
            return Ok(None);
        }
        let EncodedPack { bytes: pack, checksum, mut entries } = encode_pack(&objects)?;
        entries.sort_unstable_by_key(|e| e.id);
        let idx = encode_index(&entries, &checksum);

        let dir = git_dir.join("objects").join("pack");
        std::fs::create_dir_all(&dir)?;
        let name = format!("pack-{}", hex(&checksum));
        let path = dir.join(format!("{name}.pack"));
        // Pack first, index last: an index is what makes readers look at a pack.
        write_atomically(&dir, &path, &pack)?;
        write_atomically(&dir, &dir.join(format!("{name}.idx")), &idx)?;
        Ok(Some(WrittenPack { path, objects: objects.len(), bytes: pack.len() }))
    }
}

impl ObjectStore for PackBuilder<'_> {
    fn read(&self, id: Oid) -> Result<RawObject<'_>, GitError> {
        if let Some(&i) = self.index.borrow().get(&id) {
            let objects = self.objects.borrow();
            let object = &objects[i];
            return Ok(RawObject::Mem(object.kind, Arc::clone(&object.data)));
        }
        Ok(RawObject::Odb(self.odb.read(id)?))
    }

    fn write(&self, kind: ObjectType, data: Vec<u8>) -> Result<Oid, GitError> {
        let id = object_id(kind, &data)?;
        if !self.known(id) {
            self.push(id, kind, data, None);
        }
        Ok(id)
    }

    /// Records the edit when `splice.base` is a tree of this pack (an earlier order of the batch
    /// edited the same tree), so that [`plan_deltas`] can store the base as a delta against
    /// this newer version. A base outside the pack is not recorded.
    fn write_spliced_tree(&self, data: Vec<u8>, splice: Splice) -> Result<Oid, GitError> {
        let id = object_id(ObjectType::Tree, &data)?;
        if self.known(id) {
            return Ok(id);
        }
        let edited_from = self
            .index
            .borrow()
            .get(&splice.base)
            .copied()
            .filter(|&base| self.objects.borrow()[base].kind == ObjectType::Tree)
            .map(|base| (base, splice));
        self.push(id, ObjectType::Tree, data, edited_from);
        Ok(id)
    }
}

impl PackBuilder<'_> {
    /// Whether `id` is collected already or exists in the repository.
    fn known(&self, id: Oid) -> bool {
        self.index.borrow().contains_key(&id) || self.odb.exists_ext(id, OdbLookupFlags::NO_REFRESH)
    }

    fn push(&self, id: Oid, kind: ObjectType, data: Vec<u8>, edited_from: Option<(usize, Splice)>) {
        let mut objects = self.objects.borrow_mut();
        self.index.borrow_mut().insert(id, objects.len());
        objects.push(PackObject { id, kind, data: data.into(), edited_from });
    }
}

/// Which objects to store as deltas, by index in `objects` (see the module documentation): each
/// tree that a later tree was edited from (the latest such tree, when several were) becomes a
/// delta against it, unless that would make the chain longer than [`MAX_DELTA_DEPTH`] or the
/// delta is not smaller than half the tree.
fn plan_deltas(objects: &[PackObject]) -> Vec<Option<Delta>> {
    let mut successor: Vec<Option<(usize, Splice)>> = vec![None; objects.len()];
    for (index, object) in objects.iter().enumerate() {
        if let Some((base, splice)) = object.edited_from {
            successor[base] = Some((index, splice));
        }
    }
    let mut deltas: Vec<Option<Delta>> = Vec::new();
    deltas.resize_with(objects.len(), || None);
    // Newest first: a successor's depth is known before its predecessors are planned.
    for index in (0..objects.len()).rev() {
        let Some((next, splice)) = successor[index] else {
            continue;
        };
        let depth = deltas[next].as_ref().map_or(0, |d| d.depth) + 1;
        if depth > MAX_DELTA_DEPTH {
            continue;
        }
        // `next` is `splice` applied to this object; this object is the inverse applied to it.
        let inverse =
            Splice { base: objects[next].id, start: splice.start, removed: splice.inserted, inserted: splice.removed };
        let data = &objects[index].data;
        if let Some(bytes) = encode_delta(objects[next].data.len(), data, &inverse) {
            if bytes.len() < data.len() / 2 {
                deltas[index] = Some(Delta { base: next, depth, bytes });
            }
        }
    }
    deltas
}

/// Git delta data (`gitformat-pack(5)`, "Deltified representation") turning a base of
/// `base_len` bytes into `new`, where `new` is the base with one range replaced as `splice`
/// describes: the base size and the result size (7-bit little-endian varints), then *copy*
/// instructions for the unchanged prefix, *insert* instructions carrying the new bytes (at most
/// 127 per instruction), and copy instructions for the unchanged suffix. No search for matches
/// is needed: the tree edit knows the one range that changed. `None` when the splice does not
/// fit the lengths, or for bases over 4 GiB (copy offsets are 32-bit).
pub(crate) fn encode_delta(base_len: usize, new: &[u8], splice: &Splice) -> Option<Vec<u8>> {
    let Splice { start, removed, inserted, .. } = *splice;
    let suffix = base_len.checked_sub(start.checked_add(removed)?)?;
    if new.len() != start + inserted + suffix || u32::try_from(base_len).is_err() {
        return None;
    }
    let copies = start.div_ceil(MAX_COPY) + suffix.div_ceil(MAX_COPY);
    let mut out = Vec::with_capacity(20 + copies * 8 + inserted + inserted.div_ceil(127));
    push_varint(&mut out, base_len as u64);
    push_varint(&mut out, new.len() as u64);
    push_copies(&mut out, 0, start);
    for chunk in new[start..start + inserted].chunks(127) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    push_copies(&mut out, start + removed, suffix);
    Some(out)
}

/// Delta header sizes: little-endian groups of 7 bits, high bit set when more follow.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Copy instructions for `len` bytes of the base from `offset`: `1sssoooo` where each bit says
/// that the corresponding offset (4) or size (3) byte follows, little-endian; zero bytes are
/// left out.
fn push_copies(out: &mut Vec<u8>, mut offset: usize, mut len: usize) {
    while len > 0 {
        let size = len.min(MAX_COPY);
        let at = out.len();
        out.push(0x80);
        for (i, byte) in (offset as u32).to_le_bytes().into_iter().enumerate() {
            if byte != 0 {
                out[at] |= 1 << i;
                out.push(byte);
            }
        }
        for (i, byte) in (size as u32).to_le_bytes()[..3].iter().enumerate() {
            if *byte != 0 {
                out[at] |= 0x10 << i;
                out.push(*byte);
            }
        }
        offset += size;
        len -= size;
    }
}

/// One object's place in the pack, for the index.
struct IndexEntry {
    id: Oid,
    crc: u32,
    offset: u64,
}

/// An encoded pack.
struct EncodedPack {
    /// The pack, with its trailing checksum.
    bytes: Vec<u8>,
    /// SHA-1 of the pack (before the checksum itself).
    checksum: [u8; 20],
    /// The index entries, in pack order.
    entries: Vec<IndexEntry>,
}

fn encode_pack(objects: &[PackObject]) -> Result<EncodedPack, GitError> {
    let count =
        u32::try_from(objects.len()).map_err(|_| GitError::InvalidInput("too many objects for one pack".into()))?;
    let payload: usize = objects.iter().map(|o| o.data.len()).sum();
    // Per object: ≤ 10 header bytes, zlib framing (6) and 5 bytes per 64 KB stored block.
    let mut pack = Vec::with_capacity(32 + payload + payload / 13_000 + objects.len() * 24);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let deltas = plan_deltas(objects);
    let mut offsets = vec![0u64; objects.len()];
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(objects.len());
    // Newest first, so that every delta's base (a newer object) precedes it.
    for (index, object) in objects.iter().enumerate().rev() {
        let offset = pack.len();
        offsets[index] = offset as u64;
        match &deltas[index] {
            None => {
                push_entry_header(&mut pack, pack_type(object.kind)?, object.data.len() as u64);
                zlib_stored(&mut pack, &[&object.data]);
            }
            Some(delta) => {
                push_entry_header(&mut pack, OBJ_OFS_DELTA, delta.bytes.len() as u64);
                push_base_distance(&mut pack, offset as u64 - offsets[delta.base]);
                zlib_stored(&mut pack, &[&delta.bytes]);
            }
        }
        // The index records the CRC-32 of the entry as packed (header, base distance, zlib
        // stream) and the id of the object it resolves to.
        entries.push(IndexEntry { id: object.id, crc: crc32fast::hash(&pack[offset..]), offset: offset as u64 });
    }
    let checksum: [u8; 20] = Sha1::digest(&pack).into();
    pack.extend_from_slice(&checksum);
    Ok(EncodedPack { bytes: pack, checksum, entries })
}

/// Pack object type numbers (`OBJ_COMMIT` = 1, `OBJ_TREE` = 2, `OBJ_BLOB` = 3, `OBJ_TAG` = 4).
fn pack_type(kind: ObjectType) -> Result<u8, GitError> {
    match kind {
        ObjectType::Commit => Ok(1),
        ObjectType::Tree => Ok(2),
        ObjectType::Blob => Ok(3),
        ObjectType::Tag => Ok(4),
        other => Err(GitError::InvalidInput(format!("cannot pack an object of type {other}"))),
    }
}

/// Pack type of an object stored as a delta against the object a given distance before it in
/// the same pack.
const OBJ_OFS_DELTA: u8 = 6;

/// The distance back to an `OFS_DELTA`'s base: big-endian groups of 7 bits, high bit set when
/// more follow, and each continuation adding one (`(n + 1) << 7`), so that every distance has a
/// single encoding.
fn push_base_distance(out: &mut Vec<u8>, mut distance: u64) {
    let mut buf = [0u8; 10];
    let mut pos = buf.len() - 1;
    buf[pos] = (distance & 0x7f) as u8;
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        pos -= 1;
        buf[pos] = 0x80 | (distance & 0x7f) as u8;
        distance >>= 7;
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Entry header: `1ttt ssss` then the rest of the size in little-endian groups of 7 bits, the
/// high bit of each byte telling whether another byte follows.
fn push_entry_header(out: &mut Vec<u8>, kind: u8, size: u64) {
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// Pack index v2 for `entries` (sorted by id) of the pack with checksum `pack_checksum`.
fn encode_index(entries: &[IndexEntry], pack_checksum: &[u8; 20]) -> Vec<u8> {
    let mut idx = Vec::with_capacity(8 + 256 * 4 + entries.len() * 28 + 40);
    idx.extend_from_slice(&[0xff, b't', b'O', b'c']);
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for entry in entries {
        fanout[usize::from(entry.id.as_bytes()[0])] += 1;
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        idx.extend_from_slice(&total.to_be_bytes());
    }
    for entry in entries {
        idx.extend_from_slice(entry.id.as_bytes());
    }
    for entry in entries {
        idx.extend_from_slice(&entry.crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for entry in entries {
        let small = match u32::try_from(entry.offset) {
            Ok(offset) if offset < 0x8000_0000 => offset,
            _ => {
                let slot = 0x8000_0000 | large.len() as u32;
                large.push(entry.offset);
                slot
            }
        };
        idx.extend_from_slice(&small.to_be_bytes());
    }
    for offset in large {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack_checksum);
    let own: [u8; 20] = Sha1::digest(&idx).into();
    idx.extend_from_slice(&own);
    idx
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree_edit::{edit_path, Leaf};

    /// Apply git delta data to `base` (test-only; libgit2 does it for real reads).
    fn apply_delta(base: &[u8], delta: &[u8]) -> Vec<u8> {
        let mut pos = 0;
        let mut varint = || {
            let (mut value, mut shift) = (0u64, 0);
            loop {
                let byte = delta[pos];
                pos += 1;
                value |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    return value as usize;
                }
            }
        };
        assert_eq!(varint(), base.len(), "base size");
        let size = varint();
        let mut out = Vec::new();
        while pos < delta.len() {
            let op = delta[pos];
            pos += 1;
            if op & 0x80 != 0 {
                let mut field = |bits: u8, count: usize| {
                    let mut value = 0usize;
                    for i in 0..count {
                        if bits & (1 << i) != 0 {
                            value |= usize::from(delta[pos]) << (8 * i);
                            pos += 1;
                        }
                    }
                    value
                };
                let offset = field(op & 0x0f, 4);
                let len = match field((op >> 4) & 0x07, 3) {
                    0 => 0x10000,
                    len => len,
                };
                out.extend_from_slice(&base[offset..offset + len]);
            } else {
                assert_ne!(op, 0, "reserved instruction");
                let len = usize::from(op);
                out.extend_from_slice(&delta[pos..pos + len]);
                pos += len;
            }
        }
        assert_eq!(out.len(), size, "result size");
        out
    }

    /// Decode an `OFS_DELTA` base distance (as git's `get_delta_base`).
    fn read_base_distance(bytes: &[u8]) -> (u64, usize) {
        let mut c = bytes[0];
        let mut value = u64::from(c & 0x7f);
        let mut used = 1;
        while c & 0x80 != 0 {
            c = bytes[used];
            used += 1;
            value = ((value + 1) << 7) | u64::from(c & 0x7f);
        }
        (value, used)
    }

    #[test]
    fn base_distance_round_trip() {
        let mut out = Vec::new();
        push_base_distance(&mut out, 127);
        assert_eq!(out, [0x7f]);
        out.clear();
        push_base_distance(&mut out, 128);
        assert_eq!(out, [0x80, 0x00]);
        for distance in [1u64, 127, 128, 16_511, 16_512, 420_000, 27_000_000, u64::MAX / 2] {
            out.clear();
            push_base_distance(&mut out, distance);
            assert_eq!(read_base_distance(&out), (distance, out.len()), "{distance}");
        }
    }

    #[test]
    fn delta_round_trip() {
        let base: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let long: Vec<u8> = (0..1_000u32).map(|i| (i % 7) as u8 + b'a').collect();
        // (start, removed, inserted bytes)
        let cases: &[(usize, usize, &[u8])] = &[
            (0, 0, b"new entry at the front"),
            (base.len(), 0, b"new entry at the end"),
            (65_536, 0, b"at a copy boundary"),
            (123_457, 40, b"replaced entry"),
            (200_000, 45, b""),
            (0, base.len(), b"everything replaced"),
            (1, 0, &long),
            (256, 0, &[0u8; 127]),
            (256, 0, &[0u8; 128]),
        ];
        for &(start, removed, insert) in cases {
            let mut new = base[..start].to_vec();
            new.extend_from_slice(insert);
            new.extend_from_slice(&base[start + removed..]);
            let splice = Splice { base: Oid::zero(), start, removed, inserted: insert.len() };
            let delta = encode_delta(base.len(), &new, &splice).unwrap();
            assert!(delta.len() < insert.len() + 100, "{start}: {}", delta.len());
            assert!(apply_delta(&base, &delta) == new, "{start} {removed}");
        }
        // An empty base and an empty result.
        let splice = |removed, inserted| Splice { base: Oid::zero(), start: 0, removed, inserted };
        let delta = encode_delta(0, b"abc", &splice(0, 3)).unwrap();
        assert_eq!(apply_delta(b"", &delta), b"abc");
        let delta = encode_delta(3, b"", &splice(3, 0)).unwrap();
        assert_eq!(apply_delta(b"abc", &delta), b"");
        // Lengths that do not add up.
        assert!(encode_delta(3, b"abcd", &splice(0, 0)).is_none());
        assert!(encode_delta(3, b"abc", &splice(4, 0)).is_none());
    }

    /// 60 successive one-entry edits of a 2,000-entry tree in one pack: the newest tree is
    /// stored whole, older ones chain back from it as deltas up to [`MAX_DELTA_DEPTH`], then a
    /// full tree starts a new chain. git and libgit2 read them all back.
    #[test]
    fn chained_tree_deltas_verify_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        let mut dir_tree = repo.treebuilder(None).unwrap();
        for i in 0..2_000 {
            let blob = repo.blob(format!("{i}").as_bytes()).unwrap();
            dir_tree.insert(format!("f{i:05}"), blob, 0o100_644).unwrap();
        }
        root.insert("apps", dir_tree.write().unwrap(), 0o040_000).unwrap();
        let mut current = root.write().unwrap();

        let builder = PackBuilder::new(&repo).unwrap();
        let mut names: std::collections::BTreeSet<String> = (0..2_000).map(|i| format!("f{i:05}")).collect();
        let mut counts = Vec::new();
        let mut roots = Vec::new();
        for n in 0..60 {
            let blob = builder.write(ObjectType::Blob, format!("edit {n}").into_bytes()).unwrap();
            // Inserts, replacements and removals.
            let (name, leaf) = match n % 3 {
                0 => (format!("new-{n:03}"), Leaf::Blob(blob)),
                1 => (format!("f{:05}", n * 7), Leaf::Blob(blob)),
                _ => (format!("f{:05}", n * 11), Leaf::Remove),
            };
            current = edit_path(&builder, current, &format!("apps/{name}"), leaf).unwrap().unwrap();
            match leaf {
                Leaf::Blob(_) => names.insert(name),
                Leaf::Remove => names.remove(&name),
            };
            counts.push(names.len());
            roots.push(current);
        }
        // The expected trees, from memory before the pack is written.
        let expected: Vec<(Oid, Vec<u8>)> = builder
            .objects
            .borrow()
            .iter()
            .filter(|o| o.kind == ObjectType::Tree)
            .map(|o| (o.id, o.data.to_vec()))
            .collect();
        let deltas = plan_deltas(&builder.objects.borrow());
        let depths: Vec<u32> = deltas.iter().flatten().map(|d| d.depth).collect();
        // Of the 60 `apps` trees, 58 are deltas (roots are small: stored whole): the newest is
        // whole, the 50 before it chain back from it, the 51st before it is whole again.
        assert_eq!(depths.len(), 58, "{depths:?}");
        assert_eq!(depths[..8], (1..=8).rev().collect::<Vec<_>>());
        assert_eq!(depths[8..], (1..=50).rev().collect::<Vec<_>>());
        // Trees are written leaf first: the last `apps` tree comes just before the last root.
        let last_apps = builder.index.borrow()[&expected[expected.len() - 2].0];
        assert!(deltas[last_apps].is_none());
        assert!(deltas.iter().flatten().all(|d| {
            let objects = builder.objects.borrow();
            objects[d.base].kind == ObjectType::Tree && d.bytes.len() < 200
        }));

        let written = builder.write_pack(dir.path()).unwrap().unwrap();
        assert!(written.bytes < 2 * 2_000 * 48 + 60 * 1_000, "{}", written.bytes);
        // verify-pack re-indexes the pack and compares the result with our index byte for byte
        // (ids, CRC-32s, offsets); -v lists the delta chains.
        let out = std::process::Command::new("git")
            .arg("verify-pack")
            .arg("-v")
            .arg(written.path.with_extension("idx"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("chain length = 50: 1 object"), "{stdout}");
        assert!(!stdout.contains("chain length = 51"), "{stdout}");
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(dir.path())
            .args(["fsck", "--strict", "--no-dangling"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        // A fresh handle reads every tree, newest first (cold chains) and parses the roots.
        let fresh = Repository::open_bare(dir.path()).unwrap();
        let odb = fresh.odb().unwrap();
        for (id, data) in expected.iter().rev() {
            let object = odb.read(*id).unwrap();
            assert_eq!(object.kind(), ObjectType::Tree);
            assert!(object.data() == &data[..], "{id}");
        }
        for (n, (root, count)) in roots.iter().zip(counts).enumerate() {
            let tree = fresh.find_tree(*root).unwrap();
            let apps = tree.get_name("apps").unwrap().to_object(&fresh).unwrap();
            assert_eq!(apps.as_tree().unwrap().len(), count, "{n}");
        }
    }

    #[test]
    fn object_id_matches_libgit2() {
        for (kind, data) in
            [(ObjectType::Blob, &b""[..]), (ObjectType::Blob, &b"hello\n"[..]), (ObjectType::Tree, &[0u8; 1000][..])]
        {
            assert_eq!(object_id(kind, data).unwrap(), Oid::hash_object(kind, data).unwrap());
        }
    }

    #[test]
    fn entry_header_sizes() {
        let mut out = Vec::new();
        push_entry_header(&mut out, 3, 15);
        assert_eq!(out, [0x3f]);
        out.clear();
        push_entry_header(&mut out, 2, 16);
        assert_eq!(out, [0xa0, 0x01]);
        out.clear();
        push_entry_header(&mut out, 1, 420_000);
        // 420000 = 0x668A0: low nibble 0, then 0x668A >> 0 in 7-bit groups.
        assert_eq!(out, [0x90, 0x8a, 0xcd, 0x01]);
    }

    #[test]
    fn written_pack_is_readable_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let builder = PackBuilder::new(&repo).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let ids: Vec<Oid> =
            [&b"one"[..], b"two", &big].iter().map(|d| builder.write(ObjectType::Blob, d.to_vec()).unwrap()).collect();
        // Duplicates and rolled-back objects are not packed.
        builder.write(ObjectType::Blob, b"one".to_vec()).unwrap();
        let mark = builder.len();
        builder.write(ObjectType::Blob, b"dropped".to_vec()).unwrap();
        builder.truncate(mark);
        assert_eq!(builder.len(), 3);
        assert!(matches!(builder.read(ids[1]).unwrap(), RawObject::Mem(..)));

        let written = builder.write_pack(dir.path()).unwrap().unwrap();
        assert_eq!(written.objects, 3);
        let odb = repo.odb().unwrap();
        assert_eq!(odb.read(ids[2]).unwrap().data(), &big[..]);
        assert_eq!(odb.read(ids[0]).unwrap().data(), b"one");
        let out = std::process::Command::new("git")
            .arg("verify-pack")
            .arg("-v")
            .arg(written.path.with_extension("idx"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Nothing collected: no pack.
        let empty = PackBuilder::new(&repo).unwrap();
        assert_eq!(empty.write(ObjectType::Blob, b"one".to_vec()).unwrap(), ids[0]);
        assert!(empty.write_pack(dir.path()).unwrap().is_none());
    }
}
