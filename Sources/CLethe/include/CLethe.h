// Linux constants and ioctls that Swift cannot import directly.
#ifndef CLETHE_H
#define CLETHE_H

#include <stdint.h>
#include <stddef.h>

/// O_DIRECT (needs _GNU_SOURCE, which Swift's Glibc import does not set).
int lethe_o_direct(void);
/// BLKGETSIZE64: device size in bytes. Returns 0 or -1 with errno set.
int lethe_blk_size64(int fd, uint64_t *out);
/// BLKSSZGET: logical sector size. Returns 0 or -1 with errno set.
int lethe_blk_logical_sector(int fd, int *out);
/// BLKPBSZGET: physical sector size. Returns 0 or -1 with errno set.
int lethe_blk_physical_sector(int fd, unsigned int *out);
/// getrandom(2), looping until `len` bytes are filled. Returns 0 or -1 with errno set.
int lethe_getrandom(void *buf, size_t len);
/// The current thread's errno.
int lethe_errno(void);

#endif
