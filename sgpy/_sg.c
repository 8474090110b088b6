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
 * driver_status, resid, duration, info) so Python reads them with one
 * ffi.unpack instead of one attribute access per field. */
#define SGPY_REC 10

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
    }
    return i;
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
