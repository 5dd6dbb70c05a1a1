/*
 * btree_internal.h - what the b-tree files (btree_node.c, btree_cache.c, btree.c,
 * btree_iter.c, btree_checkpoint.c, trans.c) and store.c share. Not part of the engine's
 * public API: nothing outside engine/ includes it.
 *
 * Owns: the in-memory node (struct rd_bnode), the per-store b-tree state, and the
 * prototypes that cross those files.
 *
 * In-memory node invariants (kept by btree.c and btree_cache.c):
 *  - keys[0..nr) are strictly increasing and lie in [min_key, max_key];
 *  - interior nodes (level > 0) have nr >= 1, keys[i]->pos == children[i]'s max_key when
 *    loaded, keys[nr - 1]->pos == max_key, and keys[i]->val holds the child's current
 *    on-disk pointer (struct rd_btree_ptr, zero when it was never written);
 *  - bytes == sizeof(struct rd_btree_node) + sum of rd_bkey_packed(val_len);
 *  - a dirty node's parent is dirty (copy-on-write rewrites the path to the root), so a
 *    clean node has only clean descendants;
 *  - a node is on the LRU list iff it is cached, clean and not a root;
 *  - nr_loaded == number of non-NULL children[].
 */
#ifndef RD_BTREE_INTERNAL_H
#define RD_BTREE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"
#include "btree.h"
#include "format.h"
#include "sb.h"

/* A node pointer in host order. offset 0: never written. */
struct rd_bptr {
	uint64_t offset;
	uint64_t seq;
	uint32_t gen;
};

static inline struct rd_btree_ptr rd_bptr_to_disk(struct rd_bptr p)
{
	return (struct rd_btree_ptr){ rd_le64_of(p.offset), rd_le64_of(p.seq),
				      rd_le32_of(p.gen), rd_le32_of(0) };
}

static inline struct rd_bptr rd_bptr_from_disk(const void *val)
{
	struct rd_btree_ptr d;

	__builtin_memcpy(&d, val, sizeof(d));
	return (struct rd_bptr){ rd_le64_get(d.offset), rd_le64_get(d.seq), rd_le32_get(d.gen) };
}

struct rd_bnode {
	struct rd_bnode		*parent;	/* NULL for a root and for unlinked nodes */
	struct rd_bnode		*lru_prev, *lru_next;
	struct rd_bkey		**keys;		/* individually allocated, owned */
	struct rd_bnode		**children;	/* interior only, parallel to keys */
	uint32_t		nr, cap;
	uint32_t		bytes;		/* packed size as it would be written */
	uint32_t		nr_loaded;
	uint8_t			id, level;
	bool			dirty;
	bool			in_lru;
	bool			cached;		/* charged to the cache (not a walk's temp) */
	struct rd_bpos		min_key, max_key;
	struct rd_bptr		ptr;		/* current on-disk version; offset 0 = none */
};

/* What a node read from disk must match: its parent's expectations. */
struct rd_bnode_expect {
	uint8_t id, level;
	uint64_t seq;
	struct rd_bpos min_key, max_key;
};

struct rd_btree_root {
	struct rd_bnode	*node;		/* loaded root, or NULL */
	struct rd_bptr	ptr;		/* where the root lives while node is NULL */
	uint8_t		level;
};

/* Nodes a checkpoint reserves beyond the dirty ones (the alloc keys its own reservation
 * dirties). */
#define RD_BTREE_CKPT_SLACK	8

struct rd_btree_state {
	struct rd_btree_root	roots[RD_BTREE_NR];
	struct rd_bnode		lru;		/* list head: lru.lru_next is most recent */
	uint64_t		cache_limit;	/* bytes */
	uint64_t		nodes_cached;	/* each charged geo.btree_node_size */
	uint64_t		nodes_dirty;
	uint64_t		checkpoints, node_reads, node_writes;
	uint64_t		version[RD_BTREE_NR];	/* bumped on each change of a tree */
	/* On-disk locations of nodes removed from the trees (merges, root collapses) since
	 * the last checkpoint: freed by the next checkpoint, with its seq. */
	uint64_t		*pending_free;
	size_t			nr_pending_free, pending_cap;
	void			*read_buf;	/* node_size, aligned; under the index lock */
	void			**write_bufs;	/* checkpoint write buffers, kept across */
	unsigned		nr_write_bufs;
	bool			replaying;	/* raw apply: no merges, no stale checks */
	/* The allocator's hooks, once it is up (rd_btree_set_space); NULL before. */
	const struct rd_btree_space_ops *space;
	int			err;		/* trees no longer match the journal: fatal */
};

/* ---- btree_node.c: pure node logic, no I/O ------------------------------------------ */

static inline size_t rd_bkey_packed(size_t val_len)
{
	return sizeof(struct rd_bkey_disk) + ((val_len + 7) & ~(size_t)7);
}

/* Bytes the key occupies in memory (its allocation). */
static inline size_t rd_bkey_bytes(size_t val_len)
{
	return sizeof(struct rd_bkey) + ((val_len + 7) & ~(size_t)7);
}

struct rd_bkey *rd_bkey_new(struct rd_bpos pos, uint8_t type, const void *val, size_t val_len);
struct rd_bkey *rd_bkey_dup(const struct rd_bkey *k);

struct rd_bnode *rd_bnode_alloc(uint8_t id, uint8_t level);
/* Frees the node and its keys (not its children). */
void rd_bnode_free(struct rd_bnode *n);
/* Index of the first key >= pos (nr if none). */
uint32_t rd_bnode_lower_bound(const struct rd_bnode *n, struct rd_bpos pos);
/* Inserts k (ownership passes) and child at idx; -ENOMEM leaves n unchanged. */
int rd_bnode_insert_at(struct rd_bnode *n, uint32_t idx, struct rd_bkey *k,
		       struct rd_bnode *child);
/* Removes key idx and returns it (the caller frees it); child pointer dropped. */
struct rd_bkey *rd_bnode_remove_at(struct rd_bnode *n, uint32_t idx);
/* Replaces key idx by k (ownership passes); returns the old key. */
struct rd_bkey *rd_bnode_replace_at(struct rd_bnode *n, uint32_t idx, struct rd_bkey *k);

/* Encodes n into buf (node_size bytes, all of it written: the tail is zeroed). Returns the
 * node's bytes. */
uint32_t rd_bnode_encode(const struct rd_bnode *n, const struct rd_geometry *g, uint64_t seq,
			 uint64_t journal_seq, void *buf);
/* Validates buf (len bytes as read from disk) against e and builds a node (unlinked, not
 * cached, clean). -RD_ERR_NODE_CSUM, -RD_ERR_NODE_INVALID or -ENOMEM. Every length in buf
 * is bounded before use. */
int rd_bnode_decode(const void *buf, size_t len, const struct rd_geometry *g,
		    const struct rd_bnode_expect *e, struct rd_bnode **out);

/* ---- btree_cache.c: loading, linking, LRU, dirty tracking -------------------------- */

int rd_btree_state_init(struct rd_store *s, uint64_t cache_bytes);
void rd_btree_state_free(struct rd_store *s);
/* Sets root id from a root record (sb or checkpoint entry); nothing is read yet. */
void rd_btree_set_root(struct rd_store *s, enum rd_btree_id id,
		       const struct rd_btree_root_disk *r);
void rd_btree_get_root(struct rd_store *s, enum rd_btree_id id, struct rd_btree_root_disk *r);
/* The root node of id, read if needed; an empty tree gets an empty (clean) leaf. */
int rd_btree_root_node(struct rd_store *s, enum rd_btree_id id, struct rd_bnode **out);
/* Child idx of interior node p, read and linked if needed. */
int rd_btree_child(struct rd_store *s, struct rd_bnode *p, uint32_t idx, struct rd_bnode **out);
/* Reads the children [idx, idx + RD_BTREE_READAHEAD) of p that are not in memory, in
 * parallel, and links those that validate; best effort (sequential iteration). */
#define RD_BTREE_READAHEAD	16
void rd_btree_readahead(struct rd_store *s, struct rd_bnode *p, uint32_t idx);
/* Reads and validates the node ptr points to without linking or caching it. */
int rd_btree_node_read(struct rd_store *s, struct rd_bptr ptr, const struct rd_bnode_expect *e,
		       struct rd_bnode **out);
/* A new empty in-memory node, charged to the cache; NULL on ENOMEM. */
struct rd_bnode *rd_btree_node_new(struct rd_store *s, uint8_t id, uint8_t level);
/* Removes n (already unlinked from its parent) from memory; its on-disk version, if any,
 * is queued to be freed at the next checkpoint. Children must have been moved away. */
int rd_btree_node_drop(struct rd_store *s, struct rd_bnode *n);
/* Marks n and its ancestors dirty (pins them until the next checkpoint). */
void rd_btree_node_dirty(struct rd_store *s, struct rd_bnode *n);
/* n was written: clean again, evictable. */
void rd_btree_node_clean(struct rd_store *s, struct rd_bnode *n);
void rd_btree_lru_touch(struct rd_store *s, struct rd_bnode *n);
/* Index of child c in its parent (found by c's max_key). */
uint32_t rd_btree_parent_idx(const struct rd_bnode *c);
/* Evicts clean leaves-first nodes until the cache fits its bound. Only call between
 * operations: it frees nodes that callers may still point to otherwise. */
void rd_btree_cache_shrink(struct rd_store *s);
/* Frees every in-memory node (close/crash). */
void rd_btree_drop_all(struct rd_store *s);
bool rd_btree_want_checkpoint(struct rd_store *s);

/* ---- btree.c: updates and lookups (index lock held) -------------------------------- */

/* Inserts or overwrites k (ownership passes, freed on error). */
int rd_btree_insert_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bkey *k);
int rd_btree_delete_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos);
/* Loads the path to the leaf that holds pos (so that an update cannot fail on a read). */
int rd_btree_prefetch_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos);
/* Up to max keys from pos on (<= to), from the one leaf holding the first of them, copied
 * into a packed buffer of rd_bkey records (each rd_bkey_bytes long). -ENOENT if none.
 * readahead: the caller goes on in order (an iterator): read the next leaves too. */
int rd_btree_peek_batch_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos,
			       struct rd_bpos to, unsigned max, bool readahead, void **buf,
			       size_t *len);

/* ---- btree_checkpoint.c ------------------------------------------------------------ */

int rd_btree_checkpoint_locked(struct rd_store *s);

/* ---- trans.c ----------------------------------------------------------------------- */

/* Commit used by the checkpoint for its allocator keys: no checkpoint triggers. */
int rd_trans_commit_locked(struct rd_trans *t, uint64_t *seq, bool may_checkpoint);

#endif
