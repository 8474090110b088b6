/* The floor of the sgpy benchmarks: the same strategy as sgpy's engine, in C.
 *
 *   floor syscall SECONDS             getppid() loop (the syscall inflation probe)
 *   floor tur SECONDS DEV             SG_IO TEST UNIT READY loop
 *   floor read SECONDS DEV            SG_IO READ(10) of 4 KiB at random LBAs, one at a time
 *   floor async SECONDS QD DEV...     random 4 KiB READ(10) at queue depth QD on each DEV
 *
 * "async" does what sgpy's channels and reactor do: a pool of up to 16 fds
 * per device, one command in flight per fd before any fd takes a second (so
 * each command can use its fd's reserve buffer; sg.c lets one request per fd
 * use it), write() one sg_io_hdr per command, epoll for EPOLLIN, read() every
 * ready completion (pack_id -1: any) and submit the next command on the same
 * fd at once.  It prints "ops N seconds S".
 *
 * sg v3 interface: <scsi/sg.h>.  READ(10): SBC-4 5.15, table 60.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <scsi/sg.h>

#define XFER 4096
#define MAX_PER_FD 16
#define MAX_FDS_PER_DEV 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void read10(unsigned char *cdb, uint32_t lba, uint16_t blocks)
{
    memset(cdb, 0, 10);
    cdb[0] = 0x28; /* READ(10) */
    cdb[2] = lba >> 24;
    cdb[3] = lba >> 16;
    cdb[4] = lba >> 8;
    cdb[5] = lba;
    cdb[7] = blocks >> 8;
    cdb[8] = blocks;
}

/* READ CAPACITY(10): SBC-4 5.20; returns (last LBA + 1) and the block size. */
static void capacity(int fd, uint32_t *blocks, uint32_t *bsize)
{
    unsigned char cdb[10] = {0x25}, buf[8], sense[32];
    sg_io_hdr_t h;
    memset(&h, 0, sizeof(h));
    h.interface_id = 'S';
    h.dxfer_direction = SG_DXFER_FROM_DEV;
    h.cmd_len = 10;
    h.cmdp = cdb;
    h.dxfer_len = sizeof(buf);
    h.dxferp = buf;
    h.mx_sb_len = sizeof(sense);
    h.sbp = sense;
    h.timeout = 60000;
    if (ioctl(fd, SG_IO, &h) < 0 || h.status)
        die("READ CAPACITY");
    *blocks = ((uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3]) + 1;
    *bsize = (uint32_t)buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7];
}

static int sync_loop(double secs, const char *dev, int read)
{
    int fd = open(dev, O_RDWR);
    if (fd < 0)
        die(dev);
    uint32_t blocks = 1, bsize = 512;
    if (read)
        capacity(fd, &blocks, &bsize);
    uint16_t per = XFER / bsize;
    unsigned char cdb[10], sense[32], *buf = malloc(XFER);
    sg_io_hdr_t h;
    long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 256; i++) {
            memset(&h, 0, sizeof(h));
            h.interface_id = 'S';
            if (read) {
                read10(cdb, (rnd() % (blocks / per)) * per, per);
                h.cmd_len = 10;
                h.dxfer_direction = SG_DXFER_FROM_DEV;
                h.dxfer_len = XFER;
                h.dxferp = buf;
            } else {
                memset(cdb, 0, 6); /* TEST UNIT READY: SPC-5 6.47 */
                h.cmd_len = 6;
                h.dxfer_direction = SG_DXFER_NONE;
            }
            h.cmdp = cdb;
            h.mx_sb_len = sizeof(sense);
            h.sbp = sense;
            h.timeout = 60000;
            if (ioctl(fd, SG_IO, &h) < 0)
                die("SG_IO");
            if (h.status || h.host_status || (h.driver_status & ~0x08))
                die("command failed");
        }
        n += 256;
        t = now();
    } while (t - t0 < secs);
    printf("ops %ld seconds %.6f\n", n, t - t0);
    return 0;
}

struct slot {
    sg_io_hdr_t h;
    unsigned char cdb[10];
    unsigned char sense[32];
    unsigned char *buf;
};

struct fdst {
    int fd;
    int dev;
    int inflight;
    struct slot slots[MAX_PER_FD];
    int free[MAX_PER_FD];
    int nfree;
};

static uint32_t dev_blocks[64];
static uint16_t dev_per[64];

static int submit(struct fdst *f)
{
    int idx = f->free[--f->nfree];
    struct slot *s = &f->slots[idx];
    uint32_t units = dev_blocks[f->dev] / dev_per[f->dev];
    read10(s->cdb, (rnd() % units) * dev_per[f->dev], dev_per[f->dev]);
    memset(&s->h, 0, sizeof(s->h));
    s->h.interface_id = 'S';
    s->h.dxfer_direction = SG_DXFER_FROM_DEV;
    s->h.cmd_len = 10;
    s->h.cmdp = s->cdb;
    s->h.dxfer_len = XFER;
    s->h.dxferp = s->buf;
    s->h.mx_sb_len = sizeof(s->sense);
    s->h.sbp = s->sense;
    s->h.timeout = 60000;
    s->h.pack_id = idx;
    s->h.usr_ptr = s;
    for (;;) {
        ssize_t r = write(f->fd, &s->h, sizeof(s->h));
        if (r >= 0)
            break;
        if (errno != EINTR)
            die("write");
    }
    f->inflight++;
    return 0;
}

static int async_loop(double secs, int qd, int ndev, char **devs)
{
    int nfds = qd < MAX_FDS_PER_DEV ? qd : MAX_FDS_PER_DEV;
    int per_fd = (qd + nfds - 1) / nfds;
    int total = nfds * ndev;
    struct fdst *fs = calloc(total, sizeof(*fs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (per_fd > MAX_PER_FD) {
        fprintf(stderr, "queue depth too large\n");
        return 1;
    }
    for (int d = 0; d < ndev; d++) {
        for (int j = 0; j < nfds; j++) {
            struct fdst *f = &fs[d * nfds + j];
            f->fd = open(devs[d], O_RDWR | O_NONBLOCK);
            if (f->fd < 0)
                die(devs[d]);
            f->dev = d;
            if (j == 0) {
                uint32_t bsize;
                capacity(f->fd, &dev_blocks[d], &bsize);
                dev_per[d] = XFER / bsize;
            }
            int rs = XFER;
            ioctl(f->fd, SG_SET_RESERVED_SIZE, &rs);
            for (int k = 0; k < MAX_PER_FD; k++) {
                f->slots[k].buf = aligned_alloc(4096, XFER);
                f->free[k] = MAX_PER_FD - 1 - k;
            }
            f->nfree = MAX_PER_FD;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = f};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev) < 0)
                die("epoll_ctl");
        }
    }
    /* One per fd first, then round-robin up to QD per device. */
    for (int d = 0; d < ndev; d++)
        for (int q = 0; q < qd; q++)
            submit(&fs[d * nfds + q % nfds]);
    long n = 0;
    double t0 = now(), t = t0, end = t0 + secs;
    int stopping = 0, outstanding = qd * ndev;
    struct epoll_event evs[64];
    sg_io_hdr_t h;
    while (outstanding) {
        int k = epoll_wait(ep, evs, 64, 1000);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int e = 0; e < k; e++) {
            struct fdst *f = evs[e].data.ptr;
            /* At most one queue's worth per wake-up: with delay=0 each new
             * command completes inside its write(), so "until EAGAIN" would
             * never end. */
            for (int reads = 0; reads < MAX_PER_FD; reads++) {
                memset(&h, 0, sizeof(h));
                h.interface_id = 'S';
                h.pack_id = -1;
                ssize_t r = read(f->fd, &h, sizeof(h));
                if (r < 0) {
                    if (errno == EAGAIN)
                        break;
                    if (errno == EINTR)
                        continue;
                    die("read");
                }
                if (h.status || h.host_status || (h.driver_status & ~0x08))
                    die("command failed");
                f->free[f->nfree++] = h.pack_id;
                f->inflight--;
                outstanding--;
                n++;
                if (!stopping) {
                    submit(f);
                    outstanding++;
                }
            }
        }
        if (!stopping) {
            t = now();
            if (t >= end)
                stopping = 1;
        }
    }
    t = now();
    printf("ops %ld seconds %.6f\n", n, t - t0);
    return 0;
}

static int syscall_loop(double secs)
{
    long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 1024; i++)
            syscall(SYS_getppid);
        n += 1024;
        t = now();
    } while (t - t0 < secs);
    printf("ops %ld seconds %.6f\n", n, t - t0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "syscall"))
        return syscall_loop(atof(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "tur"))
        return sync_loop(atof(argv[2]), argv[3], 0);
    if (argc == 4 && !strcmp(argv[1], "read"))
        return sync_loop(atof(argv[2]), argv[3], 1);
    if (argc >= 5 && !strcmp(argv[1], "async") && argc - 4 <= 64)
        return async_loop(atof(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
    fprintf(stderr, "usage: floor syscall SECS | tur SECS DEV | read SECS DEV | async SECS QD DEV...\n");
    return 2;
}
