#define _GNU_SOURCE
#include "CLethe.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>

int lethe_o_direct(void) { return O_DIRECT; }

int lethe_blk_size64(int fd, uint64_t *out) { return ioctl(fd, BLKGETSIZE64, out); }

int lethe_blk_logical_sector(int fd, int *out) { return ioctl(fd, BLKSSZGET, out); }

int lethe_blk_physical_sector(int fd, unsigned int *out) { return ioctl(fd, BLKPBSZGET, out); }

int lethe_getrandom(void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int lethe_errno(void) { return errno; }
