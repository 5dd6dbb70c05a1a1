/*
 * btree.h - copy-on-write b-trees with journalled, atomic multi-key transactions.
 *
 * Owns: keys and positions, in-memory nodes and their bounded cache, lookups and iterators,
 * transactions (rd_trans_*), and checkpoints (writing dirty nodes back, copy-on-write, and
 * recording the new roots in the journal).
 *
 * Invariants:
 *  - Every update reaches the journal before it is visible in a tree; a transaction is one
 *    contiguous run of records inside a single journal entry, so it survives a crash whole
 *    or not at all.
 *  - A node on disk is never modified: a dirty node is written to fresh space at the next
 *    checkpoint and its old location is freed, reusable only once the checkpoint entry that
 *    stops referencing it is durable.
 *  - Keys in a node are strictly increasing; a node's keys lie in (prev sibling max, max_key].
 *
 * Concurrency: one index lock (inside rd_store) serialises tree access and commits. Readers
 * get private copies of keys, so nothing returned here is invalidated by a later commit.
 * Bulk data I/O never holds the index lock.
 */
#ifndef RD_BTREE_H
#define RD_BTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "refdio/image.h"

struct rd_store;
struct rd_trans;

/* ---- positions ------------------------------------------------------------------------ */

struct rd_bpos {
	uint64_t inode;
	uint64_t offset;
	uint32_t snapshot;
};

#define RD_POS(i, o)	((struct rd_bpos){ .inode = (i), .offset = (o), .snapshot = 0 })
#define RD_POS_MIN	((struct rd_bpos){ 0, 0, 0 })
#define RD_POS_MAX	((struct rd_bpos){ UINT64_MAX, UINT64_MAX, UINT32_MAX })

static inline int rd_bpos_cmp(struct rd_bpos a, struct rd_bpos b)
{
	if (a.inode != b.inode)
		return a.inode < b.inode ? -1 : 1;
	if (a.offset != b.offset)
		return a.offset < b.offset ? -1 : 1;
	if (a.snapshot != b.snapshot)
		return a.snapshot < b.snapshot ? -1 : 1;
	return 0;
}

/* The next position in key order (RD_POS_MAX stays RD_POS_MAX). */
static inline struct rd_bpos rd_bpos_successor(struct rd_bpos p)
{
	if (++p.snapshot)
		return p;
	if (++p.offset)
		return p;
	++p.inode;
	return p;
}

static inline struct rd_bpos_disk rd_bpos_to_disk(struct rd_bpos p)
{
	return (struct rd_bpos_disk){ rd_le64_of(p.inode), rd_le64_of(p.offset),
				      rd_le32_of(p.snapshot) };
}

static inline struct rd_bpos rd_bpos_from_disk(struct rd_bpos_disk d)
{
	return (struct rd_bpos){ rd_le64_get(d.inode), rd_le64_get(d.offset),
				 rd_le32_get(d.snapshot) };
}

/* ---- keys ----------------------------------------------------------------------------- */

/* A key as handed out by lookups: a private copy, in host byte order except val[], which
 * holds the on-disk value bytes (format.h structs). */
struct rd_bkey {
	struct rd_bpos pos;
	uint8_t type;		/* never 0 */
	uint16_t val_len;
	uint8_t val[] __attribute__((aligned(8)));
};

/* Largest value a key of this store may carry: a quarter of a node, minus headers, so that
 * a split always succeeds. */
size_t rd_btree_max_val(const struct rd_store *s);

/* ---- lookups -------------------------------------------------------------------------- */

/* The key at exactly pos: 0 and *out (free() it), or -ENOENT, or an I/O/corruption error. */
int rd_btree_lookup(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos,
		    struct rd_bkey **out);

/* The first key with from <= position <= to; -ENOENT if none. *out is free()d by caller. */
int rd_btree_peek(struct rd_store *s, enum rd_btree_id id, struct rd_bpos from,
		  struct rd_bpos to, struct rd_bkey **out);

/* The last key with from <= position <= to; -ENOENT if none. */
int rd_btree_peek_prev(struct rd_store *s, enum rd_btree_id id, struct rd_bpos from,
		       struct rd_bpos to, struct rd_bkey **out);

/*
 * Iterator over the keys of [from, to] in order. Each call to next returns the next key
 * after the previous one as the tree is at that moment (commits in between are seen if
 * they land after the iterator's position). The key returned stays valid until the next
 * call to next or exit.
 */
struct rd_btree_iter {
	struct rd_store		*s;
	enum rd_btree_id	id;
	struct rd_bpos		pos;	/* next position to look at */
	struct rd_bpos		to;
	bool			done;
	struct rd_bkey		*key;	/* the last key returned, owned by the iterator */
	size_t			key_cap;
	/* private: a batch of keys prefetched from one leaf, and the tree version they are
	 * valid for */
	void			*batch;
	size_t			batch_len, batch_pos;
	uint64_t		version;
};

void rd_btree_iter_init(struct rd_btree_iter *it, struct rd_store *s, enum rd_btree_id id,
			struct rd_bpos from, struct rd_bpos to);
/* 0 and *out, -ENOENT at the end, or an error. */
int rd_btree_iter_next(struct rd_btree_iter *it, const struct rd_bkey **out);
void rd_btree_iter_exit(struct rd_btree_iter *it);

/* ---- transactions --------------------------------------------------------------------- */

/* A new empty transaction; NULL if out of memory. */
struct rd_trans *rd_trans_new(struct rd_store *s);

/* Queue an insert-or-overwrite of (id, pos). val_len <= rd_btree_max_val(); type != 0. */
int rd_trans_put(struct rd_trans *t, enum rd_btree_id id, struct rd_bpos pos, uint8_t type,
		 const void *val, size_t val_len);
/* Queue a delete of (id, pos); deleting an absent key is not an error. */
int rd_trans_del(struct rd_trans *t, enum rd_btree_id id, struct rd_bpos pos);

/* Accounting carried by the transaction for the space hooks (rd_btree_space_ops; the
 * allocator's rd_alloc_account adds them): sectors a bucket gains or loses. */
struct rd_alloc_delta {
	uint64_t bucket;
	int64_t  sectors;
};
int rd_trans_add_delta(struct rd_trans *t, uint64_t bucket, int64_t sectors);
size_t rd_trans_nr_deltas(const struct rd_trans *t);
const struct rd_alloc_delta *rd_trans_delta(const struct rd_trans *t, size_t i);

/* Whether the transaction holds no updates and no deltas. */
bool rd_trans_empty(const struct rd_trans *t);

/*
 * Commits atomically: the space hooks turn the deltas into key updates, the records go
 * into the current journal entry (seq returned in *seq if not NULL), then the trees are
 * updated. Updates apply in the order queued. Frees t whatever the result. Not durable
 * until rd_store_flush(seq). -E2BIG if the transaction cannot fit in one journal entry,
 * -EROFS on a read-only store.
 */
int rd_trans_commit(struct rd_trans *t, uint64_t *seq);
/* Drops an uncommitted transaction. */
void rd_trans_free(struct rd_trans *t);

/* Deletes every key of tree id in [from, to], at most batch keys per transaction (each
 * committed alone: a crash part-way leaves a prefix deleted). No allocator accounting:
 * callers that delete extents account for them themselves, or on purpose do not. */
int rd_trans_delete_range(struct rd_store *s, enum rd_btree_id id, struct rd_bpos from,
			  struct rd_bpos to, unsigned batch);

/* ---- the space below the trees -------------------------------------------------------- */

/*
 * What the allocator plugs into the b-trees (bcachefs's triggers, in small): the trees and
 * transactions call these hooks, never the allocator by name, so the allocator can sit on
 * top of the trees it keeps its keys in. Registered once the allocator is up; until then
 * (journal replay, the first checkpoint of an open) transactions carry no deltas, no
 * pointer can be found stale, and a checkpoint has no node to write.
 */
struct rd_btree_space_ops {
	/* In a commit, index lock held, before journaling: turn t's deltas (and pending
	 * generation changes) into key updates queued in t. */
	int		(*trans_prepare)(struct rd_store *s, struct rd_trans *t);
	/* After t was journaled as seq and applied to the trees. */
	void		(*trans_done)(struct rd_store *s, struct rd_trans *t, uint64_t seq);
	/* Journal bytes trans_prepare may add per delta (the commit sizes its entry). */
	size_t		delta_journal_bytes;
	/* Node space for a checkpoint: see rd_alloc_btree_prepare / _node / _node_free. */
	int		(*node_prepare)(struct rd_store *s, uint64_t nodes, struct rd_trans *t);
	int		(*node_alloc)(struct rd_store *s, uint64_t *offset, uint32_t *gen);
	void		(*node_free)(struct rd_store *s, uint64_t offset, uint64_t seq);
	/* Node slots a checkpoint could take now (checkpoints come before it runs out). */
	uint64_t	(*node_room)(struct rd_store *s);
	/* Whether a node pointer's generation is behind its bucket's. */
	bool		(*ptr_stale)(const struct rd_store *s, uint64_t offset, uint32_t gen);
};

/* ops (static, outliving the store's use of it), or NULL when the allocator goes. */
void rd_btree_set_space(struct rd_store *s, const struct rd_btree_space_ops *ops);

/* ---- checkpoints, walks, statistics --------------------------------------------------- */

/* Writes every dirty node (copy-on-write) and a checkpoint journal entry naming the new
 * roots; on return everything committed before the call is durable. */
int rd_btree_checkpoint(struct rd_store *s);

/* What a node walk reports for each node it visits. */
struct rd_node_info {
	enum rd_btree_id id;
	unsigned	level;
	uint64_t	offset;		/* where it lives; 0 for a node not yet written */
	uint32_t	gen;		/* the generation its pointer carries */
	uint64_t	seq;
	uint32_t	nr_keys;
	uint32_t	bytes;
	struct rd_bpos	min_key, max_key;
	int		error;		/* 0, or why reading/validating this node failed */
};

/*
 * Visits every node of tree id, parents before children, in key order. With leaves false,
 * leaves are reported from their parent's pointer without being read (cheap: used at open
 * to find which buckets hold nodes). A node that fails to read or validate is reported
 * with error set and its subtree skipped; the walk goes on. Returns the first error the
 * callback returned, else 0.
 */
int rd_btree_walk(struct rd_store *s, enum rd_btree_id id, bool leaves,
		  int (*cb)(void *priv, const struct rd_node_info *ni), void *priv);

struct rd_btree_stats {
	unsigned depth[RD_BTREE_NR];	/* levels; 0 for an empty tree */
	uint64_t keys[RD_BTREE_NR];	/* counted over cached nodes only when cheap=true */
	uint64_t nodes_cached;
	uint64_t nodes_dirty;
	uint64_t cache_bytes;
	uint64_t cache_limit;
	uint64_t checkpoints;
	uint64_t node_reads;
	uint64_t node_writes;
};
void rd_btree_stats(struct rd_store *s, struct rd_btree_stats *st);

/* (rd_btree_name and rd_btree_parse: refdio/image.h) */

#endif
