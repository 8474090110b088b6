/* sgpy's sg helpers: the few loops that are worth doing in C.
 *
 * Everything here follows the sg v3 interface as documented in
 * <scsi/sg.h> and the kernel's drivers/scsi/sg.c: a command is queued by
 * write()-ing a struct sg_io_hdr to the sg fd, and its completion is
 * collected by read()-ing one back.  At most SG_MAX_QUEUE (16) commands are
 * outstanding per fd; the next write() fails with EDOM (sg.c, sg_new_write:
 * "if (!(srp = sg_add_request(sfp))) return -EDOM").
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <scsi/sg.h>
#include <linux/bsg.h>

/* glibc's copy of <scsi/sg.h> predates these flags; the values are the
 * kernel's (include/scsi/sg.h, "following flag values can be or-ed"). */
#ifndef SG_FLAG_MMAP_IO
#define SG_FLAG_MMAP_IO 4
#endif
#ifndef SG_FLAG_Q_AT_TAIL
#define SG_FLAG_Q_AT_TAIL 0x10
#endif
#ifndef SG_FLAG_Q_AT_HEAD
#define SG_FLAG_Q_AT_HEAD 0x20
#endif

/* CDBs are at most 260 bytes in SPC; sg takes at most 252 (MAX_COMMAND_SIZE
 * for variable-length CDBs in the v3 interface is cmd_len <= 255).  32 covers
 * every CDB sgpy builds; larger ones are refused with EINVAL. */
#define SGPY_CDB_MAX 32
/* SCSI_SENSE_BUFFERSIZE in the kernel (include/scsi/scsi_cmnd.h) is 96. */
#define SGPY_SENSE_MAX 96

struct sgpy_slot {
    sg_io_hdr_t hdr;
    unsigned char cdb[SGPY_CDB_MAX];
    unsigned char sense[SGPY_SENSE_MAX];
};

static int sgpy_fill(struct sgpy_slot *slot, int dxfer_direction,
                     const unsigned char *cdb, unsigned int cdb_len,
                     void *data, unsigned int data_len,
                     unsigned int timeout_ms, int pack_id, unsigned int flags)
{
    sg_io_hdr_t *h = &slot->hdr;
    if (cdb_len == 0 || cdb_len > SGPY_CDB_MAX)
        return EINVAL;
    memset(h, 0, sizeof(*h));
    memcpy(slot->cdb, cdb, cdb_len);
    h->interface_id = 'S';
    h->dxfer_direction = dxfer_direction;
    h->cmd_len = (unsigned char)cdb_len;
    h->mx_sb_len = SGPY_SENSE_MAX;
    h->dxfer_len = data_len;
    h->dxferp = data;
    h->cmdp = slot->cdb;
    h->sbp = slot->sense;
    h->timeout = timeout_ms;
    h->flags = flags;
    h->pack_id = pack_id;
    h->usr_ptr = slot;
    return 0;
}

static int sgpy_submit(int fd, struct sgpy_slot *const *slots, int n, int *err)
{
    int i;
    *err = 0;
    for (i = 0; i < n; i++) {
        ssize_t r;
        do {
            r = write(fd, &slots[i]->hdr, sizeof(sg_io_hdr_t));
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            *err = errno;
            break;
        }
    }
    return i;
}

/* sgpy_fill then write() in one call: the per-command submission of the
 * engine's fast path (one Python-to-C crossing per command instead of two).
 * Returns 0 when the kernel took the command, EINVAL (nothing written) when
 * the CDB does not fit, or the errno of write(). */
static int sgpy_fill_submit(int fd, struct sgpy_slot *slot, int dxfer_direction,
                            const unsigned char *cdb, unsigned int cdb_len,
                            void *data, unsigned int data_len,
                            unsigned int timeout_ms, int pack_id, unsigned int flags)
{
    ssize_t r;
    if (sgpy_fill(slot, dxfer_direction, cdb, cdb_len, data, data_len, timeout_ms, pack_id, flags))
        return EINVAL;
    do {
        r = write(fd, &slot->hdr, sizeof(sg_io_hdr_t));
    } while (r < 0 && errno == EINTR);
    return r < 0 ? errno : 0;
}

static int sgpy_reap(int fd, sg_io_hdr_t *out, int max, int *err)
{
    int i;
    *err = 0;
    for (i = 0; i < max; i++) {
        ssize_t r;
        /* pack_id -1 asks for any completed command (sg.c, sg_read). */
        out[i].interface_id = 'S';
        out[i].pack_id = -1;
        do {
            r = read(fd, &out[i], sizeof(sg_io_hdr_t));
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            *err = errno;
            break;
        }
    }
    return i;
}

/* No retry on EINTR: when a signal interrupts SG_IO the kernel has already
 * queued the command and marks it an orphan (sg.c, sg_ioctl_common, case
 * SG_IO); issuing it again would run the command twice.  The caller sees
 * EINTR and decides. */
/* Like sgpy_reap, but packs each completion's output fields into SGPY_REC
 * ints (pack_id, status, masked_status, msg_status, sb_len_wr, host_status,
 * driver_status, resid, duration, info, clean) so Python reads them with one
 * ffi.unpack instead of one attribute access per field.  `clean` is the
 * duration when every other output field is zero (a plain success, which
 * Python finishes without looking at the rest), else -1. */
#define SGPY_REC 11

/* A plain completion: every output field zero but the duration (GOOD, no
 * sense, nothing left over) -- what Python finishes without looking at the
 * rest.  One test for the packed records, SG_IO and batches. */
static int sgpy_hdr_plain(const sg_io_hdr_t *h)
{
    return (h->status | h->masked_status | h->msg_status | h->sb_len_wr | h->host_status | h->driver_status) == 0 &&
           h->resid == 0 && h->info == 0;
}

static int sgpy_reap_packed(int fd, int *out, int max, int *err)
{
    sg_io_hdr_t h;
    int i;
    *err = 0;
    for (i = 0; i < max; i++) {
        ssize_t r;
        int *o = out + (size_t)i * SGPY_REC;
        memset(&h, 0, sizeof(h));
        h.interface_id = 'S';
        h.pack_id = -1;
        do {
            r = read(fd, &h, sizeof(h));
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            *err = errno;
            break;
        }
        o[0] = h.pack_id;
        o[1] = h.status;
        o[2] = h.masked_status;
        o[3] = h.msg_status;
        o[4] = h.sb_len_wr;
        o[5] = h.host_status;
        o[6] = h.driver_status;
        o[7] = h.resid;
        o[8] = (int)h.duration;
        o[9] = (int)h.info;
        o[10] = sgpy_hdr_plain(&h) && o[8] >= 0 ? o[8] : -1;
    }
    return i;
}

/* sgpy_reap_packed into a buffer that holds completions until Python has
 * delivered them: held[0] records are in `out`, the first held[1] of them
 * delivered.  Once all are delivered it starts again from the front; it
 * reads at most `max` more, and never past `cap` records.  The count is
 * updated here, in C, as the records are read, so a Python exception raised
 * the moment this returns (a signal handler's KeyboardInterrupt: CPython
 * runs handlers between bytecodes, Python/ceval.c) cannot lose a completion
 * the kernel has already handed over: sg hands each out once (sg.c,
 * sg_read -> sg_get_rq_mark takes it off the fd's list).  Returns how many
 * were read; *err as sgpy_reap_packed. */
static int sgpy_reap_held(int fd, int *out, int cap, int max, int *held, int *err)
{
    int n;
    if (held[1] >= held[0])
        held[0] = held[1] = 0;
    if (max > cap - held[0])
        max = cap - held[0];
    if (max <= 0) {
        *err = 0;
        return 0;
    }
    n = sgpy_reap_packed(fd, out + (size_t)held[0] * SGPY_REC, max, err);
    held[0] += n;
    return n;
}

static int sgpy_sg_io(int fd, sg_io_hdr_t *hdr)
{
    return ioctl(fd, SG_IO, hdr) < 0 ? errno : 0;
}

static int sgpy_ioctl_int(int fd, unsigned long request, int *value)
{
    return ioctl(fd, request, value) < 0 ? errno : 0;
}

static int sgpy_get_scsi_id(int fd, struct sg_scsi_id *id)
{
    return ioctl(fd, SG_GET_SCSI_ID, id) < 0 ? errno : 0;
}

/* SG_IO on a bsg node (/dev/bsg/H:C:T:L) takes the v4 header of
 * <linux/bsg.h> (guard 'Q'; block/bsg.c, bsg_sg_io).  Translate a v3 header
 * prepared by sgpy_fill into one, and the outputs back, so callers see one
 * header type.  Returns 0 or an errno (EINTR is not retried, as for SG_IO). */
static int sgpy_bsg_io(int fd, sg_io_hdr_t *h)
{
    struct sg_io_v4 v;
    memset(&v, 0, sizeof(v));
    v.guard = 'Q';
    v.protocol = BSG_PROTOCOL_SCSI;
    v.subprotocol = BSG_SUB_PROTOCOL_SCSI_CMD;
    v.request_len = h->cmd_len;
    v.request = (__u64)(unsigned long)h->cmdp;
    v.max_response_len = h->mx_sb_len;
    v.response = (__u64)(unsigned long)h->sbp;
    if (h->dxfer_direction == SG_DXFER_TO_DEV) {
        v.dout_xfer_len = h->dxfer_len;
        v.dout_xferp = (__u64)(unsigned long)h->dxferp;
    } else if (h->dxfer_direction == SG_DXFER_FROM_DEV) {
        v.din_xfer_len = h->dxfer_len;
        v.din_xferp = (__u64)(unsigned long)h->dxferp;
    }
    v.timeout = h->timeout;
    if (ioctl(fd, SG_IO, &v) < 0)
        return errno;
    h->status = (unsigned char)v.device_status;
    h->masked_status = (unsigned char)((v.device_status >> 1) & 0x7f);
    h->host_status = (unsigned short)v.transport_status;
    h->driver_status = (unsigned short)v.driver_status;
    h->resid = h->dxfer_direction == SG_DXFER_TO_DEV ? v.dout_resid : v.din_resid;
    h->duration = v.duration;
    h->info = v.info;
    h->sb_len_wr = (unsigned char)(v.response_len > h->mx_sb_len ? h->mx_sb_len : v.response_len);
    return 0;
}

/* sgpy_fill, then SG_IO (bsg: the v4 header): 0, or the errno (EINVAL:
 * the CDB does not fit, nothing sent).  The shared part of the two
 * synchronous calls below. */
static int sgpy_sync_run(int fd, int bsg, struct sgpy_slot *slot, int dxfer_direction,
                         const unsigned char *cdb, unsigned int cdb_len,
                         void *data, unsigned int data_len, unsigned int timeout_ms)
{
    if (sgpy_fill(slot, dxfer_direction, cdb, cdb_len, data, data_len, timeout_ms, 0, 0))
        return EINVAL;
    return bsg ? sgpy_bsg_io(fd, &slot->hdr) : sgpy_sg_io(fd, &slot->hdr);
}

/* One synchronous command in one crossing: sgpy_fill, then SG_IO (the v3
 * header on an sg or block node, the v4 one on a bsg node).  Returns 0 when
 * the command ended clean -- GOOD or CONDITION MET (SAM-6 5.3), no host or
 * driver status beyond DRIVER_SENSE, no sense bytes: the caller's fast path
 * then reads only resid, duration and info --, -1 when it ended otherwise
 * (the caller reads every output field), or an errno (>0) when the ioctl
 * failed or the CDB does not fit (EINVAL, nothing sent). */
static int sgpy_sync_call(int fd, int bsg, struct sgpy_slot *slot, int dxfer_direction,
                          const unsigned char *cdb, unsigned int cdb_len,
                          void *data, unsigned int data_len, unsigned int timeout_ms)
{
    sg_io_hdr_t *h = &slot->hdr;
    int err = sgpy_sync_run(fd, bsg, slot, dxfer_direction, cdb, cdb_len, data, data_len, timeout_ms);
    if (err)
        return err;
    if ((h->status == 0 || h->status == 4) && h->host_status == 0 &&
        (h->driver_status & ~0x08) == 0 && h->sb_len_wr == 0)
        return 0;
    return -1;
}

/* sgpy_sync_call for the per-command fast path: returns the duration (ms,
 * >= 0) when the command ended "plain" -- every output field zero but the
 * duration: status GOOD, no masked, message, host or driver status, no
 * residue, no info bits, no sense (<scsi/sg.h>, struct sg_io_hdr) -- so the
 * caller reads nothing more; -1 when it ended otherwise (the caller reads
 * every output field); -1 - errno when the ioctl failed or the CDB does
 * not fit (-1 - EINVAL, nothing sent). */
static long long sgpy_sync_plain(int fd, int bsg, struct sgpy_slot *slot, int dxfer_direction,
                                 const unsigned char *cdb, unsigned int cdb_len,
                                 void *data, unsigned int data_len, unsigned int timeout_ms)
{
    sg_io_hdr_t *h = &slot->hdr;
    int err = sgpy_sync_run(fd, bsg, slot, dxfer_direction, cdb, cdb_len, data, data_len, timeout_ms);
    if (err)
        return -1 - (long long)err;
    if (sgpy_hdr_plain(h))
        return (long long)h->duration;
    return -1;
}

/* ------------------------------------------------------------------------
 * Jobs: many commands from one template, driven entirely in C.
 *
 * A job keeps `depth` commands in flight over `nfds` sg fds (slot i lives on
 * fds[i % nfds]), varies the template's LOGICAL BLOCK ADDRESS per command,
 * and resubmits each slot as soon as its completion is read, until a count
 * or a deadline is reached.  Clean completions never leave C; a completion
 * that is not clean is "parked" (its slot is not resubmitted) and handed to
 * Python, which classifies it and calls sgpy_job_resubmit or stops the job.
 *
 * "Clean" is sg's own test: no SG_INFO_CHECK in info, which sg sets when any
 * of masked_status, host_status or driver_status is non-zero (drivers/scsi/
 * sg.c, sg_new_read/sg_rq_end_io).
 */
#include <stdint.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#define SGPY_JOB_FREE 0
#define SGPY_JOB_INFLIGHT 1
#define SGPY_JOB_PARKED 2

#define SGPY_LBA_FIXED 0
#define SGPY_LBA_SEQUENTIAL 1
#define SGPY_LBA_RANDOM 2
#define SGPY_LBA_LIST 3

/* Latency histogram: values below 64 ns get a bucket each; above, each power
 * of two is split in 64 buckets (at most 1/64 relative error, fio's
 * resolution: FIO_IO_U_PLAT_BITS 6 in fio's stat.h), up to 2^64:
 * 64 + (63 - 6 + 1) * 64 buckets. */
#define SGPY_HIST_SUB_BITS 6
#define SGPY_HIST 3776

struct sgpy_job {
    int nfds;
    int *fds;
    int *fd_inflight;
    int epfd;
    int depth;
    struct sgpy_slot *slots;
    unsigned char *bufs;
    unsigned int buf_len;
    int share_buf;
    int direction;
    unsigned char cdb[SGPY_CDB_MAX];
    unsigned int cdb_len;
    unsigned int timeout_ms;
    int lba_offset;
    int lba_bytes;
    int lba_mode;
    uint64_t lba_first;
    uint64_t lba_units;
    uint64_t lba_step;
    const uint64_t *lba_list;
    uint64_t lba_list_len;
    uint64_t rng;
    uint64_t next_index;
    uint64_t limit;
    int64_t deadline_ns;
    int latency;
    int sync;
    int stopping;
    int inflight;
    int fatal;
    uint64_t submitted;
    uint64_t completed;
    uint64_t short_transfers;
    uint64_t strays;
    int *state;
    int64_t *started;
    uint64_t *lba_of;
    int nparked;
    int *parked;
    uint64_t hist[SGPY_HIST];
    uint64_t lat_min;
    uint64_t lat_max;
    uint64_t lat_sum;
    uint64_t lat_count;
    unsigned int block_size;
    int stamp;
    int verify;
    uint64_t tag;
    /* Mixed reads and writes (fio's rw=randrw, rwmixread): when mix is set,
     * each command is a read (the template cdb, into the slot's buffer in
     * bufs) with probability read_pct/100, else a write (wcdb, from wbufs:
     * one shared buffer, or one per slot when stamping).  The choice draws
     * from its own generator, so the LBAs are those of an unmixed job. */
    int mix;
    unsigned int read_pct;
    unsigned char wcdb[SGPY_CDB_MAX];
    unsigned char *wbufs;
    int wshare;
    uint64_t mix_rng;
    int *is_write;
    uint64_t wsubmitted;
    uint64_t wcompleted;
    uint64_t wshort_transfers;
    uint64_t whist[SGPY_HIST];
    uint64_t wlat_min;
    uint64_t wlat_max;
    uint64_t wlat_sum;
    uint64_t wlat_count;
    uint64_t rlat_min;
    uint64_t rlat_max;
    /* Rate limit (fio's rate_iops): a token bucket of rate commands per
     * second.  rate_next is when the next token is due (ns, CLOCK_MONOTONIC);
     * it may lag the clock by at most rate_burst_ns, the bucket's depth.  A
     * slot with no token waits in `throttled`; the job's epoll instance
     * holds timerfd, armed for the next token, so a reactor waiting on it
     * wakes in time. */
    uint64_t rate;
    uint64_t rate_interval;
    uint64_t rate_rem;
    uint64_t rate_frac;
    int64_t rate_next;
    int64_t rate_burst_ns;
    int timerfd;
    int64_t timer_at;
    int nthrottled;
    int *throttled;
};

static int64_t sgpy_now_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux (kernel/time/posix-timers.c);
     * should it, 1 ns keeps "0: not read yet" apart and ends any deadline
     * no later than it would have. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int sgpy_hist_index(uint64_t v)
{
    int msb;
    if (v < (1u << SGPY_HIST_SUB_BITS))
        return (int)v;
    msb = 63 - __builtin_clzll(v);
    return (1 << SGPY_HIST_SUB_BITS) + (msb - SGPY_HIST_SUB_BITS) * (1 << SGPY_HIST_SUB_BITS)
           + (int)((v >> (msb - SGPY_HIST_SUB_BITS)) & ((1u << SGPY_HIST_SUB_BITS) - 1));
}

/* Every command's latency goes to hist; a mixed job's writes also to whist
 * (the reads' histogram is the difference, bucket by bucket), and each
 * direction keeps its own minimum and maximum. */
static void sgpy_job_record(struct sgpy_job *j, int i, int64_t start, int64_t end)
{
    uint64_t v = end > start ? (uint64_t)(end - start) : 0;
    int b = sgpy_hist_index(v);
    j->hist[b]++;
    if (j->lat_count == 0 || v < j->lat_min)
        j->lat_min = v;
    if (v > j->lat_max)
        j->lat_max = v;
    j->lat_sum += v;
    j->lat_count++;
    if (j->mix && j->is_write[i]) {
        j->whist[b]++;
        if (j->wlat_count == 0 || v < j->wlat_min)
            j->wlat_min = v;
        if (v > j->wlat_max)
            j->wlat_max = v;
        j->wlat_sum += v;
        j->wlat_count++;
    } else if (j->mix) {
        /* the reads' count and sum are the totals less the writes' */
        if (j->lat_count - j->wlat_count == 1 || v < j->rlat_min)
            j->rlat_min = v;
        if (v > j->rlat_max)
            j->rlat_max = v;
    }
}

/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift
 * generators, scrambled"): fast, and reproducible from the seed. */
static uint64_t sgpy_xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t sgpy_job_random(struct sgpy_job *j)
{
    return sgpy_xorshift(&j->rng);
}

static uint64_t sgpy_job_next_lba(struct sgpy_job *j)
{
    uint64_t k;
    switch (j->lba_mode) {
    case SGPY_LBA_SEQUENTIAL:
        k = j->next_index++ % j->lba_units;
        return j->lba_first + k * j->lba_step;
    case SGPY_LBA_RANDOM:
        k = sgpy_job_random(j) % j->lba_units;
        return j->lba_first + k * j->lba_step;
    case SGPY_LBA_LIST:
        return j->lba_list[j->next_index++ % j->lba_list_len];
    default:
        return j->lba_first;
    }
}

/* May another command be started?  Not when stopping, past the count, or
 * past the deadline (now is 0 when the caller did not read the clock). */
static int sgpy_job_more(struct sgpy_job *j, int64_t *now)
{
    if (j->stopping || j->fatal)
        return 0;
    if (j->limit && j->submitted >= j->limit)
        return 0;
    if (j->deadline_ns) {
        if (*now == 0)
            *now = sgpy_now_ns();
        if (*now >= j->deadline_ns)
            return 0;
    }
    return 1;
}

/* Put the next LBA into slot i's CDB (big-endian, SBC-4 4.2). */
static void sgpy_job_set_lba(struct sgpy_job *j, int i)
{
    struct sgpy_slot *s = &j->slots[i];
    uint64_t lba = sgpy_job_next_lba(j);
    int b;
    j->lba_of[i] = lba;
    if (j->lba_offset < 0)
        return;
    for (b = j->lba_bytes - 1; b >= 0; b--) {
        s->cdb[j->lba_offset + b] = (unsigned char)lba;
        lba >>= 8;
    }
}

/* Data stamps: every block of a stamping job begins with its own LBA and the
 * job's tag, 8 bytes each, big-endian, so a later read can tell a block
 * that holds its own data from a stale, misplaced or torn one. */
static void sgpy_put_be64(unsigned char *p, uint64_t v)
{
    int b;
    for (b = 7; b >= 0; b--) {
        p[b] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t sgpy_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    int b;
    for (b = 0; b < 8; b++)
        v = (v << 8) | p[b];
    return v;
}

static unsigned char *sgpy_job_buf(struct sgpy_job *j, int i)
{
    return j->share_buf ? j->bufs : j->bufs + (size_t)i * j->buf_len;
}

/* The data-out buffer of a mixed job's writes from slot i. */
static unsigned char *sgpy_job_wbuf(struct sgpy_job *j, int i)
{
    return j->wshare ? j->wbufs : j->wbufs + (size_t)i * j->buf_len;
}

static void sgpy_job_stamp(struct sgpy_job *j, int i)
{
    unsigned char *p = j->mix ? sgpy_job_wbuf(j, i) : sgpy_job_buf(j, i);
    unsigned int b, n = j->buf_len / j->block_size;
    for (b = 0; b < n; b++, p += j->block_size) {
        sgpy_put_be64(p, j->lba_of[i] + b);
        sgpy_put_be64(p + 8, j->tag);
    }
}

/* 0 when every block read into slot i holds its own stamp, else the first
 * bad block's index + 1. */
static uint32_t sgpy_job_check(struct sgpy_job *j, int i)
{
    const unsigned char *p = sgpy_job_buf(j, i);
    sg_io_hdr_t *h = &j->slots[i].hdr;
    unsigned int got = j->buf_len - (h->resid > 0 ? (unsigned int)h->resid : 0);
    unsigned int b, n;
    if (got > j->buf_len)
        got = j->buf_len;
    n = got / j->block_size;
    for (b = 0; b < n; b++, p += j->block_size)
        if (sgpy_get_be64(p) != j->lba_of[i] + b || sgpy_get_be64(p + 8) != j->tag)
            return b + 1;
    return 0;
}

/* Make slot i's next command: in a mixed job, read or write (the header's
 * CDB, direction and buffer follow the choice); then its LBA, and its
 * stamps when it writes them. */
static void sgpy_job_prepare(struct sgpy_job *j, int i)
{
    int w = 0;
    if (j->mix) {
        sg_io_hdr_t *h = &j->slots[i].hdr;
        /* The high 32 bits: xorshift64*'s best (Vigna 2016, section 5). */
        w = (uint32_t)(sgpy_xorshift(&j->mix_rng) >> 32) % 100u >= j->read_pct;
        j->is_write[i] = w;
        memcpy(j->slots[i].cdb, w ? j->wcdb : j->cdb, j->cdb_len);
        h->cmdp = j->slots[i].cdb;
        h->cmd_len = (unsigned char)j->cdb_len;
        h->dxfer_direction = w ? SG_DXFER_TO_DEV : SG_DXFER_FROM_DEV;
        h->dxferp = w ? sgpy_job_wbuf(j, i) : sgpy_job_buf(j, i);
        h->dxfer_len = j->buf_len;
        if (w)
            j->wsubmitted++;
    } else {
        w = j->direction == SG_DXFER_TO_DEV;
    }
    sgpy_job_set_lba(j, i);
    if (j->stamp && w)
        sgpy_job_stamp(j, i);
}

/* write() slot i to its fd.  0, or the errno (the slot is then free). */
static int sgpy_job_write(struct sgpy_job *j, int i, int64_t now)
{
    ssize_t r;
    int f = i % j->nfds;
    sgpy_job_prepare(j, i);
    if (j->latency)
        j->started[i] = now ? now : sgpy_now_ns();
    do {
        r = write(j->fds[f], &j->slots[i].hdr, sizeof(sg_io_hdr_t));
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        j->state[i] = SGPY_JOB_FREE;
        return errno;
    }
    j->state[i] = SGPY_JOB_INFLIGHT;
    j->submitted++;
    j->inflight++;
    j->fd_inflight[f]++;
    return 0;
}

/* Take a token from the rate limit's bucket: 1 when the command may go now,
 * 0 when it must wait until rate_next.  The clock is read at most once per
 * call, and only by a rate-limited job (CLOCK_MONOTONIC through the vDSO). */
static int sgpy_job_token(struct sgpy_job *j, int64_t *now)
{
    if (!j->rate)
        return 1;
    if (*now == 0)
        *now = sgpy_now_ns();
    if (*now < j->rate_next)
        return 0;
    if (j->rate_next < *now - j->rate_burst_ns)
        j->rate_next = *now - j->rate_burst_ns; /* a full bucket holds no more */
    j->rate_next += (int64_t)j->rate_interval;
    j->rate_frac += j->rate_rem; /* 1e9 / rate exactly: the remainder carries */
    if (j->rate_frac >= j->rate) {
        j->rate_frac -= j->rate;
        j->rate_next++;
    }
    return 1;
}

/* Arm the timer for the next token (or the deadline, if sooner) while slots
 * wait for one.  0 or an errno. */
static int sgpy_job_arm(struct sgpy_job *j)
{
    struct itimerspec its;
    int64_t at;
    if (!j->nthrottled || j->timerfd < 0)
        return 0;
    at = j->rate_next;
    if (j->deadline_ns && j->deadline_ns < at)
        at = j->deadline_ns;
    if (at <= 0)
        at = 1; /* it_value 0 would disarm it */
    if (at == j->timer_at)
        return 0;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(at / 1000000000LL);
    its.it_value.tv_nsec = (long)(at % 1000000000LL);
    if (timerfd_settime(j->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        return errno;
    j->timer_at = at;
    return 0;
}

/* Start free slot i's next command if the job goes on: at once when the
 * rate limit has a token, else it waits in `throttled`.  0 or an errno. */
static int sgpy_job_next(struct sgpy_job *j, int i, int64_t *now)
{
    if (!sgpy_job_more(j, now))
        return 0;
    if (!sgpy_job_token(j, now)) {
        if (j->nthrottled >= j->depth)
            return EOVERFLOW; /* cannot happen: a slot waits at most once */
        j->throttled[j->nthrottled++] = i;
        return sgpy_job_arm(j);
    }
    return sgpy_job_write(j, i, *now);
}

/* Start the waiting slots the bucket has tokens for; drop them all when the
 * job ends (count, deadline, stop).  0 or an errno. */
static int sgpy_job_unthrottle(struct sgpy_job *j, int64_t *now)
{
    while (j->nthrottled > 0) {
        int err;
        if (!sgpy_job_more(j, now)) {
            j->nthrottled = 0;
            return 0;
        }
        if (!sgpy_job_token(j, now))
            return sgpy_job_arm(j);
        err = sgpy_job_write(j, j->throttled[--j->nthrottled], *now);
        if (err)
            return err;
    }
    return 0;
}

/* Prepare every slot from the template and start the first commands.
 * Returns 0 or an errno (j->fatal is then set). */
static int sgpy_job_prime(struct sgpy_job *j)
{
    int i, err;
    int64_t now = 0;
    for (i = 0; i < j->depth; i++) {
        void *data = NULL;
        if (j->buf_len)
            data = j->share_buf ? j->bufs : j->bufs + (size_t)i * j->buf_len;
        if (sgpy_fill(&j->slots[i], j->direction, j->cdb, j->cdb_len, data, j->buf_len,
                      j->timeout_ms, i, 0))
            return j->fatal = EINVAL;
        j->state[i] = SGPY_JOB_FREE;
    }
    j->nthrottled = 0;
    j->timer_at = 0;
    if (j->rate)
        j->rate_next = sgpy_now_ns(); /* the bucket starts with one token */
    if (j->sync)
        return 0; /* sgpy_job_sync sends them, one SG_IO at a time */
    for (i = 0; i < j->depth; i++) {
        if (!sgpy_job_more(j, &now))
            break;
        err = sgpy_job_next(j, i, &now);
        if (err)
            return j->fatal = err;
    }
    return 0;
}

/* A slot's command came back (its header already copied into the slot). */
static void sgpy_job_complete(struct sgpy_job *j, int i, int64_t *now)
{
    sg_io_hdr_t *h = &j->slots[i].hdr;
    int w = j->mix ? j->is_write[i] : j->direction == SG_DXFER_TO_DEV;
    j->inflight--;
    j->fd_inflight[i % j->nfds]--;
    if (j->latency) {
        if (*now == 0)
            *now = sgpy_now_ns();
        sgpy_job_record(j, i, j->started[i], *now);
    }
    if ((h->info & SG_INFO_OK_MASK) != SG_INFO_OK
            || (j->verify && !w && sgpy_job_check(j, i) != 0)) {
        j->state[i] = SGPY_JOB_PARKED;
        j->parked[j->nparked++] = i;
        return;
    }
    j->completed++;
    if (j->mix && w)
        j->wcompleted++;
    if (h->resid) {
        j->short_transfers++;
        if (j->mix && w)
            j->wshort_transfers++;
    }
    j->state[i] = SGPY_JOB_FREE;
    if (!j->sync) {
        int err = sgpy_job_next(j, i, now);
        if (err)
            j->fatal = err;
    }
}

/* Read up to `want` completions from fd index f.  Returns how many. */
static int sgpy_job_reap_fd(struct sgpy_job *j, int f, int want, int64_t *now)
{
    sg_io_hdr_t h;
    int n = 0;
    while (n < want && j->fd_inflight[f] > 0) {
        ssize_t r;
        int i;
        memset(&h, 0, sizeof(h));
        h.interface_id = 'S';
        h.pack_id = -1;
        do {
            r = read(j->fds[f], &h, sizeof(h));
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno != EAGAIN)
                j->fatal = errno;
            break;
        }
        i = h.pack_id;
        if (i < 0 || i >= j->depth || i % j->nfds != f || j->state[i] != SGPY_JOB_INFLIGHT) {
            j->strays++;
            continue;
        }
        memcpy(&j->slots[i].hdr, &h, sizeof(h));
        sgpy_job_complete(j, i, now);
        n++;
    }
    return n;
}

/* The rate limit's timer fired: consume its expirations (it is non-blocking,
 * so EAGAIN means another read got them first). */
static void sgpy_job_timer_fired(struct sgpy_job *j)
{
    uint64_t expirations;
    ssize_t r;
    do {
        r = read(j->timerfd, &expirations, sizeof(expirations));
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EAGAIN)
        j->fatal = errno;
    j->timer_at = 0;
}

/* Wait up to timeout_ms for completions, then keep processing whatever is
 * ready until `budget` completions were handled, `slice_ns` nanoseconds
 * passed (when non-zero: an event loop sharing the thread gets its turn) or
 * nothing more is ready.
 * Each ready fd gives at most the commands it held when it was reported, so
 * one fd whose commands complete inside write() cannot starve the others.
 * Slots waiting for the rate limit are started as its tokens come (its
 * timer is one of the epoll instance's fds, index nfds).
 * Returns the completions handled, or -errno when the job cannot go on. */
static int sgpy_job_step(struct sgpy_job *j, int timeout_ms, int budget, int64_t slice_ns)
{
    struct epoll_event ev[64];
    int done = 0;
    int wait = timeout_ms;
    int64_t until = slice_ns > 0 ? sgpy_now_ns() + slice_ns : 0;
    while (done < budget && (j->inflight > 0 || j->nthrottled > 0) && !j->fatal) {
        int n, k, err;
        int64_t now = 0;
        if (j->nthrottled) {
            err = sgpy_job_unthrottle(j, &now);
            if (err) {
                j->fatal = err;
                break;
            }
            if (j->inflight == 0 && j->nthrottled == 0)
                break;
        }
        if (until && wait == 0 && sgpy_now_ns() >= until)
            break;
        n = epoll_wait(j->epfd, ev, 64, wait);
        if (n < 0) {
            if (errno == EINTR)
                break;
            j->fatal = errno;
            break;
        }
        if (n == 0)
            break;
        wait = 0;
        now = 0;
        for (k = 0; k < n && !j->fatal; k++) {
            int f = (int)ev[k].data.u32, got;
            if (f == j->nfds) {
                sgpy_job_timer_fired(j);
                continue;
            }
            if (f < 0 || f > j->nfds) {
                j->fatal = EINVAL;
                break;
            }
            got = sgpy_job_reap_fd(j, f, j->fd_inflight[f], &now);
            done += got;
            if (got == 0 && (ev[k].events & (EPOLLHUP | EPOLLERR)))
                j->fatal = ENODEV;
        }
        if (j->nparked)
            break;
    }
    if (!j->fatal && j->nthrottled) {
        int64_t now = 0;
        int err = sgpy_job_unthrottle(j, &now);
        if (err)
            j->fatal = err;
    }
    return j->fatal ? -j->fatal : done;
}

/* The synchronous form for queue depth 1: SG_IO on slot 0, fd 0, up to
 * `budget` commands.  Returns the commands run, or -errno.  (A rate-limited
 * job does not come here: it waits for tokens on its epoll instance.) */
static int sgpy_job_sync(struct sgpy_job *j, int budget)
{
    int done = 0;
    sg_io_hdr_t *h = &j->slots[0].hdr;
    /* One clock read per command: a completion's time starts the next one. */
    int64_t now = 0;
    while (done < budget && !j->fatal && !j->nparked) {
        int64_t start;
        if (!sgpy_job_more(j, &now))
            break;
        sgpy_job_prepare(j, 0);
        start = j->latency ? (now ? now : sgpy_now_ns()) : 0;
        j->submitted++;
        if (ioctl(j->fds[0], SG_IO, h) < 0) {
            /* EINTR: the kernel has queued the command already (see
             * sgpy_sg_io); the job ends rather than run it twice. */
            j->fatal = errno;
            break;
        }
        j->state[0] = SGPY_JOB_INFLIGHT;
        j->inflight++;
        j->fd_inflight[0]++;
        if (j->latency)
            j->started[0] = start;
        now = 0;
        sgpy_job_complete(j, 0, &now);
        done++;
    }
    return j->fatal ? -j->fatal : done;
}

/* After Python handled parked slot i: start it again when the job goes on.
 * Returns 0 or an errno. */
static int sgpy_job_resubmit(struct sgpy_job *j, int i)
{
    int64_t now = 0;
    j->state[i] = SGPY_JOB_FREE;
    if (j->sync)
        return 0;
    return sgpy_job_next(j, i, &now);
}

/* The job's own epoll instance over its fds, each registered with its index
 * (not its fd number) as data, so a ready fd finds its counters directly;
 * a rate-limited job's timerfd is added with index nfds.
 * Returns the epoll fd, or -errno. */
static int sgpy_job_epoll(struct sgpy_job *j)
{
    struct epoll_event ev;
    int f, ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    for (f = 0; f < j->nfds; f++) {
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)f;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, j->fds[f], &ev) < 0) {
            int err = errno;
            close(ep);
            return -err;
        }
    }
    if (j->rate && j->timerfd < 0) {
        int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (t < 0) {
            int err = errno;
            close(ep);
            return -err;
        }
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)j->nfds;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev) < 0) {
            int err = errno;
            close(t);
            close(ep);
            return -err;
        }
        j->timerfd = t;
    }
    j->epfd = ep;
    return ep;
}

/* ------------------------------------------------------------------------
 * A bare timerfd, for the rate limit of jobs that run on IOs (sgpy.job's IO
 * engine: iSCSI sessions), whose loop is Python's: the reactor watches the
 * fd and the job sends the commands that waited for a token when it fires.
 */

/* A non-blocking CLOCK_MONOTONIC timerfd: the fd, or -errno. */
static int sgpy_timer_new(void)
{
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    return t < 0 ? -errno : t;
}

/* Fire once at at_ns (CLOCK_MONOTONIC, absolute; at least 1).  0 or an errno. */
static int sgpy_timer_arm(int fd, int64_t at_ns)
{
    struct itimerspec its;
    if (at_ns <= 0)
        at_ns = 1;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000LL);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000LL);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? errno : 0;
}

/* Consume the expirations (none pending is not an error).  0 or an errno. */
static int sgpy_timer_clear(int fd)
{
    uint64_t expirations;
    ssize_t r;
    do {
        r = read(fd, &expirations, sizeof(expirations));
    } while (r < 0 && errno == EINTR);
    return r < 0 && errno != EAGAIN ? errno : 0;
}

/* ------------------------------------------------------------------------
 * A batch of plain commands: Channel.execute_many's synchronous path.
 *
 * The commands go out in order over `nfds` fds of the caller's own (slot s
 * lives on fds[s / SG_MAX_QUEUE], at most SG_MAX_QUEUE per fd, sg's limit),
 * each sent as soon as a slot is free, and their completions are read back
 * as they come.  A completion with every output field zero but the
 * duration (as sgpy_sync_plain) only leaves its duration in out[i]; any
 * other one is handed to Python (sgpy_many_run returns -1 with its slot in
 * `parked`), which reads the whole header and sense from the slot before
 * calling again.  No fd is shared: nothing but this loop reads them, so a
 * completion can only be one of the batch's (the pack id is the command's
 * index, checked against out[]).
 *
 * Data is copied to the caller's buffers only by read() (sg's indirect I/O:
 * drivers/scsi/sg.c, sg_new_read -> sg_finish_rem_req; a command whose fd
 * is closed first is finished as an orphan without the copy), so a batch
 * abandoned with commands in flight closes their fds and the kernel never
 * writes to buffers the caller has let go.
 */
#include <poll.h>

/* The most fds one batch uses (16 commands each). */
#define SGPY_MANY_FDS_MAX 64
/* out[i] before the command is sent, while it is in flight, and once a
 * completion that is not plain was handed to Python; >= 0: the duration
 * (ms) of a plain success. */
#define SGPY_MANY_UNSENT -2
#define SGPY_MANY_INFLIGHT -3
#define SGPY_MANY_PARKED -1

/* One command of a batch, as Python packs it (struct.Struct("=iII32s")). */
struct sgpy_many_cmd {
    int dxfer;
    unsigned int cdb_len;
    unsigned int length;
    unsigned char cdb[SGPY_CDB_MAX];
};

struct sgpy_many {
    int nfds;
    const int *fds;
    struct sgpy_slot *slots;    /* nfds * SG_MAX_QUEUE */
    int *free;                  /* free slot indexes (a stack) */
    int nfree;
    int *fd_inflight;           /* per fd */
    int n;
    const struct sgpy_many_cmd *cmds;
    void *const *bufs;          /* per command (NULL: none moves data) */
    unsigned int timeout_ms;
    int stall_ms;               /* in flight and nothing back for this long: ETIMEDOUT */
    int slice_ms;               /* the longest one call waits: then EAGAIN (Python looks at signals) */
    int idle_ms;                /* waited so far with nothing back */
    int next;                   /* the next command to send */
    int inflight;
    int sent;                   /* commands the kernel took */
    int *out;                   /* per command, SGPY_MANY_UNSENT to start with */
    int parked;                 /* slot of the completion handed to Python, or -1 */
    int bad;                    /* the command whose write() failed (the errno returned), or -1 */
    const volatile int *stop;   /* non-zero: send nothing more (the channel is closing) */
};

static int sgpy_many_send(struct sgpy_many *m)
{
    while (!*m->stop && m->next < m->n && m->nfree > 0) {
        int i = m->next;
        int s = m->free[m->nfree - 1];
        int f = s / SG_MAX_QUEUE;
        const struct sgpy_many_cmd *c = &m->cmds[i];
        struct sgpy_slot *slot = &m->slots[s];
        ssize_t r;
        if (sgpy_fill(slot, c->dxfer, c->cdb, c->cdb_len, m->bufs ? m->bufs[i] : NULL, c->length,
                      m->timeout_ms, i, 0)) {
            m->bad = i;
            m->next = i + 1;
            return EINVAL;
        }
        do {
            r = write(m->fds[f], &slot->hdr, sizeof(sg_io_hdr_t));
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            int e = errno;
            if ((e == EAGAIN || e == EDOM) && m->inflight > 0)
                return 0; /* full for now: send it once a completion is read */
            m->bad = i;
            m->next = i + 1;
            return e;
        }
        m->nfree--;
        m->fd_inflight[f]++;
        m->inflight++;
        m->out[i] = SGPY_MANY_INFLIGHT;
        m->next = i + 1;
        m->sent++;
    }
    return 0;
}

/* Read fd f's ready completions: 0 (none left ready), -1 (one parked), or
 * an errno (EPROTO: a completion that is not one of the batch's). */
static int sgpy_many_reap(struct sgpy_many *m, int f, int *got)
{
    sg_io_hdr_t h;
    while (m->fd_inflight[f] > 0) {
        ssize_t r;
        long s;
        int i;
        memset(&h, 0, sizeof(h));
        h.interface_id = 'S';
        h.pack_id = -1;
        do {
            r = read(m->fds[f], &h, sizeof(h));
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return errno == EAGAIN ? 0 : errno;
        s = (struct sgpy_slot *)h.usr_ptr - m->slots;
        i = h.pack_id;
        if (s < (long)f * SG_MAX_QUEUE || s >= (long)(f + 1) * SG_MAX_QUEUE || i < 0 || i >= m->n ||
            m->out[i] != SGPY_MANY_INFLIGHT)
            return EPROTO;
        m->fd_inflight[f]--;
        m->inflight--;
        m->free[m->nfree++] = (int)s;
        m->idle_ms = 0;
        (*got)++;
        if (sgpy_hdr_plain(&h)) {
            m->out[i] = (int)h.duration;
            continue;
        }
        /* Its slot is free again but not reused before Python has read it:
         * the next sgpy_many_run call comes after. */
        m->slots[s].hdr = h;
        m->out[i] = SGPY_MANY_PARKED;
        m->parked = (int)s;
        return -1;
    }
    return 0;
}

static int sgpy_many_run(struct sgpy_many *m)
{
    struct pollfd pfd[SGPY_MANY_FDS_MAX];
    m->parked = -1;
    m->bad = -1;
    if (m->nfds < 1 || m->nfds > SGPY_MANY_FDS_MAX)
        return EINVAL;
    for (;;) {
        int f, k, r, wait, gone, got = 0;
        int err = sgpy_many_send(m);
        if (err)
            return err;
        if (m->inflight == 0)
            return 0; /* every command sent (or stopped) and back */
        for (f = 0, gone = 0; f < m->nfds; f++) {
            if (m->fd_inflight[f] > 0) {
                err = sgpy_many_reap(m, f, &got);
                if (err == ENODEV || err == ENXIO || err == EIO) {
                    /* The device is going (sg_read hands out the completions
                     * already done before it looks at sdp->detaching,
                     * drivers/scsi/sg.c): drain the other fds before saying so. */
                    gone = err;
                    continue;
                }
                if (err)
                    return err;
            }
        }
        if (gone)
            return gone;
        if (got)
            continue;
        for (f = 0, k = 0; f < m->nfds; f++) {
            if (m->fd_inflight[f] > 0) {
                pfd[k].fd = m->fds[f];
                pfd[k].events = POLLIN;
                pfd[k].revents = 0;
                k++;
            }
        }
        /* A signal ends the wait (EINTR): Python runs its handlers, then
         * calls again or gives the batch up.  A signal that came just before
         * poll() does not end it, so no wait is longer than slice_ms: Python
         * then looks at its signals and calls again (EAGAIN). */
        wait = m->stall_ms - m->idle_ms;
        if (wait > m->slice_ms)
            wait = m->slice_ms;
        r = poll(pfd, (nfds_t)k, wait < 0 ? 0 : wait);
        if (r < 0)
            return errno;
        if (r == 0) {
            m->idle_ms += wait;
            return m->idle_ms >= m->stall_ms ? ETIMEDOUT : EAGAIN; /* ETIMEDOUT: nothing back for stall_ms */
        }
        for (f = 0; f < k; f++) {
            if (pfd[f].revents & POLLNVAL)
                return EBADF;
            if ((pfd[f].revents & (POLLERR | POLLHUP)) && !(pfd[f].revents & POLLIN))
                return ENODEV; /* sg_poll: POLLHUP once the device is detaching */
        }
    }
}
