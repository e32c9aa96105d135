// Linux constants and ioctls that Swift cannot import directly.
#ifndef CLETHE_H
#define CLETHE_H

#include <stdint.h>
#include <stddef.h>

#include <spawn.h>

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+, needs _GNU_SOURCE): close every
/// descriptor from `from` up in the child. Returns 0 or an errno value.
int lethe_spawn_closefrom(posix_spawn_file_actions_t *actions, int from);

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
/// The outcome of one SG_IO request.
typedef struct {
    int status;          ///< SCSI status byte
    int host_status;
    int driver_status;
    int sense_length;    ///< bytes of sense data written
    unsigned int resid;  ///< bytes not transferred
} lethe_sg_result;

/// SG_IO with a CDB. direction: 0 none, 1 from device, 2 to device. Returns the ioctl's
/// result (0 or -1 with errno set); the device's answer is in `result` and `sense`.
int lethe_sg_io(int fd, const uint8_t *cdb, int cdb_length, int direction, void *buffer,
                unsigned int length, uint8_t *sense, int sense_capacity, unsigned int timeout_ms,
                lethe_sg_result *result);

/// NVME_IOCTL_ADMIN_CMD. Returns -1 with errno set when the ioctl fails, otherwise the NVMe
/// status field (0 = success). `completion` gets command dword 0 of the completion.
int lethe_nvme_admin(int fd, uint8_t opcode, uint32_t nsid, uint32_t cdw10, uint32_t cdw11,
                     void *buffer, uint32_t length, uint32_t timeout_ms, uint32_t *completion);

/// malloc_trim(0): gives the free memory of every malloc arena back to the kernel. Returns 1
/// when some was released.
int lethe_malloc_trim(void);

/// The current thread's errno.
int lethe_errno(void);

#endif
