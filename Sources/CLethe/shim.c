#define _GNU_SOURCE
#include <malloc.h>
#include "CLethe.h"
#include <spawn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <scsi/sg.h>
#include <linux/nvme_ioctl.h>
#include <string.h>

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

int lethe_sg_io(int fd, const uint8_t *cdb, int cdb_length, int direction, void *buffer,
                unsigned int length, uint8_t *sense, int sense_capacity, unsigned int timeout_ms,
                lethe_sg_result *result) {
    sg_io_hdr_t io;
    memset(&io, 0, sizeof io);
    io.interface_id = 'S';
    io.cmdp = (unsigned char *)cdb;
    io.cmd_len = (unsigned char)cdb_length;
    io.dxfer_direction = direction == 1 ? SG_DXFER_FROM_DEV : direction == 2 ? SG_DXFER_TO_DEV : SG_DXFER_NONE;
    io.dxferp = buffer;
    io.dxfer_len = length;
    io.sbp = sense;
    io.mx_sb_len = (unsigned char)sense_capacity;
    io.timeout = timeout_ms;
    int rc = ioctl(fd, SG_IO, &io);
    if (result) {
        result->status = io.status;
        result->host_status = io.host_status;
        result->driver_status = io.driver_status;
        result->sense_length = io.sb_len_wr;
        result->resid = (unsigned int)io.resid;
    }
    return rc;
}

int lethe_nvme_admin(int fd, uint8_t opcode, uint32_t nsid, uint32_t cdw10, uint32_t cdw11,
                     void *buffer, uint32_t length, uint32_t timeout_ms, uint32_t *completion) {
    struct nvme_admin_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.opcode = opcode;
    cmd.nsid = nsid;
    cmd.addr = (uint64_t)(uintptr_t)buffer;
    cmd.data_len = length;
    cmd.cdw10 = cdw10;
    cmd.cdw11 = cdw11;
    cmd.timeout_ms = timeout_ms;
    int rc = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd);
    if (completion) *completion = cmd.result;
    return rc;
}

int lethe_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int lethe_malloc_trim(void) { return malloc_trim(0); }
