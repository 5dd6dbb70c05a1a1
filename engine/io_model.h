/*
 * io_model.h - a model of the device's volatile write cache, for power-cut tests.
 *
 * Owns: the list of image writes that no completed flush covers yet ("volatile"), with the
 * bytes each one replaced and the bytes it wrote; the cut (the moment power fails); and
 * turning a cut into one of the images a real device could have left behind.
 *
 * The device it models: a write is volatile from its submission until a flush that was
 * submitted after the write completed has itself completed; from then on it is stable. At
 * a cut, each volatile write may have reached the medium whole, not at all, or torn at
 * 512-byte sectors, in any order relative to the others; every stable write is there.
 * Nothing submitted after the cut reaches the image, and nothing that completes after it is
 * reported as a success (the process would be dead): it completes with -EIO.
 *
 * How it is used: a test creates a model, passes rd_io_model_hooks() as the store's
 * rd_open_opts.io_hooks (or rd_io_opts.hooks), runs a workload until the cut (at a chosen
 * operation count, or rd_io_model_cut()), drops the store (rd_store_crash), and then asks
 * for any number of outcomes (rd_io_model_apply), each written into a copy of the image.
 * The image itself, after the store is gone, holds every write submitted before the cut.
 *
 * Must never: be on outside tests (it reads every range before it is written, with a
 * blocking pread on whatever thread submits, and keeps copies of both); let a write that
 * overlaps another write still in flight pass unnoticed (counted in overlaps: the engine
 * must never do that, and the model's outcomes assume it does not).
 */
#ifndef RD_IO_MODEL_H
#define RD_IO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

struct rd_io_model;

struct rd_io_model_opts {
	const char	*image;		/* the image file the io opens (read for pre-images) */
	/* Cut when the cut_at-th image write or flush is submitted (1-based); that request and
	 * everything after it fail. 0: only rd_io_model_cut() cuts. */
	uint64_t	cut_at;
	/* Optional: called under the model's lock for every image write and flush submitted
	 * before the cut, with its 1-based number; true cuts there (as cut_at would). */
	bool		(*cut_when)(void *priv, const struct rd_io_req *req, uint64_t op);
	void		*cut_priv;
	/* Optional: called for every image write and flush at submission, before the model
	 * records it (so rd_io_model_range_stable answers as of just before it). */
	void		(*observe)(void *priv, const struct rd_io_req *req);
	void		*observe_priv;
};

int rd_io_model_new(const struct rd_io_model_opts *o, struct rd_io_model **out);
void rd_io_model_free(struct rd_io_model *m);
/* The hooks to hand to the io; valid while m lives. */
const struct rd_io_hooks *rd_io_model_hooks(struct rd_io_model *m);

/* Power fails now. */
void rd_io_model_cut(struct rd_io_model *m);
bool rd_io_model_is_cut(struct rd_io_model *m);

/* Whether every byte of device range [off, off + len) holds only stable writes. */
bool rd_io_model_range_stable(struct rd_io_model *m, uint64_t off, uint64_t len);

struct rd_io_model_stats {
	uint64_t	ops;		/* image writes and flushes submitted before the cut */
	uint64_t	writes, flushes;
	uint64_t	volatile_writes;	/* not covered by a completed flush (now) */
	uint64_t	volatile_bytes;
	uint64_t	overlaps;	/* writes submitted over a write still in flight (bugs) */
	uint64_t	failed_after_cut;
};
void rd_io_model_stats(struct rd_io_model *m, struct rd_io_model_stats *st);

/* What one outcome did to the volatile writes. */
struct rd_io_model_outcome {
	const char	*how;		/* which kind of choice was made */
	uint64_t	kept, lost, torn;
};

/*
 * Writes into fd (a copy of the image taken after the store was dropped, or the image
 * itself) one state the device could have been left in at the cut, chosen by seed: every
 * volatile write's range is first put back as it was before the oldest of them, then the
 * writes chosen to have survived are applied (whole or torn) in the order chosen. Call only
 * once the io is closed. 0 or -errno.
 */
int rd_io_model_apply(struct rd_io_model *m, int fd, uint64_t seed,
		      struct rd_io_model_outcome *out);

#endif
