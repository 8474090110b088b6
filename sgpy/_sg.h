/* cdef for sgpy's sg extension (sgpy._sgffi).
 *
 * The kernel ABI is declared here by NAME only: every struct ends in "...;"
 * and every constant is "#define X ...", so cffi takes the real layout and
 * values from <scsi/sg.h> when it compiles the module.  Nothing about the
 * layout is written down by hand, in C or in Python.
 */

typedef struct sg_io_hdr {
    int interface_id;
    int dxfer_direction;
    unsigned char cmd_len;
    unsigned char mx_sb_len;
    unsigned short iovec_count;
    unsigned int dxfer_len;
    void *dxferp;
    unsigned char *cmdp;
    unsigned char *sbp;
    unsigned int timeout;
    unsigned int flags;
    int pack_id;
    void *usr_ptr;
    unsigned char status;
    unsigned char masked_status;
    unsigned char msg_status;
    unsigned char sb_len_wr;
    unsigned short host_status;
    unsigned short driver_status;
    int resid;
    unsigned int duration;
    unsigned int info;
    ...;
} sg_io_hdr_t;

struct sg_scsi_id {
    int host_no;
    int channel;
    int scsi_id;
    int lun;
    int scsi_type;
    short h_cmd_per_lun;
    short d_queue_depth;
    ...;
};

#define SG_IO ...
#define SG_GET_VERSION_NUM ...
#define SG_SET_RESERVED_SIZE ...
#define SG_GET_RESERVED_SIZE ...
#define SG_GET_SCSI_ID ...
#define SG_GET_NUM_WAITING ...
#define SG_SET_FORCE_PACK_ID ...
#define SG_GET_PACK_ID ...
#define SG_SET_KEEP_ORPHAN ...
#define SG_GET_KEEP_ORPHAN ...
#define SG_GET_SG_TABLESIZE ...
#define SG_SET_COMMAND_Q ...
#define SG_GET_COMMAND_Q ...
#define SG_SET_TIMEOUT ...
#define SG_GET_TIMEOUT ...
#define SG_SCSI_RESET ...
#define SG_SCSI_RESET_NOTHING ...
#define SG_SCSI_RESET_DEVICE ...
#define SG_SCSI_RESET_BUS ...
#define SG_SCSI_RESET_HOST ...
#define SG_DXFER_NONE ...
#define SG_DXFER_TO_DEV ...
#define SG_DXFER_FROM_DEV ...
#define SG_DXFER_TO_FROM_DEV ...
#define SG_FLAG_DIRECT_IO ...
#define SG_FLAG_LUN_INHIBIT ...
#define SG_FLAG_MMAP_IO ...
#define SG_FLAG_NO_DXFER ...
#define SG_FLAG_Q_AT_TAIL ...
#define SG_FLAG_Q_AT_HEAD ...
#define SG_INFO_OK_MASK ...
#define SG_INFO_CHECK ...
#define SG_MAX_QUEUE ...
#define SG_DEF_RESERVED_SIZE ...

/* sgpy's own helpers (sgpy/_sg.c). */
#define SGPY_CDB_MAX ...
#define SGPY_SENSE_MAX ...

/* One submission slot: a header plus the CDB and sense storage it points
 * at, so one allocation serves a command for its whole life in the kernel. */
struct sgpy_slot {
    sg_io_hdr_t hdr;
    unsigned char cdb[...];
    unsigned char sense[...];
    ...;
};

/* Prepare a slot's header for one command (fills the v3 header's input
 * fields and points cmdp/sbp at the slot's own storage).  Returns 0, or
 * EINVAL when cdb_len does not fit. */
int sgpy_fill(struct sgpy_slot *slot, int dxfer_direction,
              const unsigned char *cdb, unsigned int cdb_len,
              void *data, unsigned int data_len,
              unsigned int timeout_ms, int pack_id, unsigned int flags);

/* write() each slot's header to fd in order; stop at the first failure.
 * Returns how many were accepted; *err is 0, or the errno that stopped it
 * (EAGAIN, EDOM when the fd's queue of 16 is full, ENODEV, ...). */
int sgpy_submit(int fd, struct sgpy_slot *const *slots, int n, int *err);

/* sgpy_fill, then write() that one slot to fd: 0, EINVAL (CDB does not
 * fit; nothing written) or write()'s errno. */
int sgpy_fill_submit(int fd, struct sgpy_slot *slot, int dxfer_direction,
                     const unsigned char *cdb, unsigned int cdb_len,
                     void *data, unsigned int data_len,
                     unsigned int timeout_ms, int pack_id, unsigned int flags);

/* Non-blocking read() of up to max completed headers into out[].  Returns
 * how many were read; *err is 0 (max reached), EAGAIN (nothing more ready)
 * or the errno that stopped it. */
int sgpy_reap(int fd, sg_io_hdr_t *out, int max, int *err);

/* sgpy_reap, packing each completion into SGPY_REC ints: pack_id, status,
 * masked_status, msg_status, sb_len_wr, host_status, driver_status, resid,
 * duration, info, clean (the duration of a plain success, else -1). */
#define SGPY_REC ...
int sgpy_reap_packed(int fd, int *out, int max, int *err);

/* sgpy_reap_packed into a buffer of `cap` records that keeps completions
 * until they are delivered: held[0] records held, held[1] delivered (the
 * caller advances it).  Reads at most `max` more; returns how many. */
int sgpy_reap_held(int fd, int *out, int cap, int max, int *held, int *err);

/* The synchronous SG_IO ioctl; returns 0 or an errno (EINTR is not retried:
 * the interrupted command has been queued already). */
int sgpy_sg_io(int fd, sg_io_hdr_t *hdr);

/* SG_IO on a bsg node: the v3 header prepared by sgpy_fill is translated
 * to <linux/bsg.h>'s sg_io_v4 and the outputs back.  0 or an errno. */
int sgpy_bsg_io(int fd, sg_io_hdr_t *hdr);

/* sgpy_fill, then SG_IO (bsg: the v4 header): 0 when the command ended
 * clean (GOOD/CONDITION MET, no host/driver status, no sense), -1 when it
 * ended otherwise, an errno when the ioctl failed or the CDB does not fit. */
int sgpy_sync_call(int fd, int bsg, struct sgpy_slot *slot, int dxfer_direction,
                   const unsigned char *cdb, unsigned int cdb_len,
                   void *data, unsigned int data_len, unsigned int timeout_ms);

/* sgpy_sync_call for the fast path: the duration (>= 0) when every other
 * output field is zero, -1 when the command ended otherwise, -1 - errno
 * when the ioctl failed or the CDB does not fit. */
long long sgpy_sync_plain(int fd, int bsg, struct sgpy_slot *slot, int dxfer_direction,
                          const unsigned char *cdb, unsigned int cdb_len,
                          void *data, unsigned int data_len, unsigned int timeout_ms);

/* An sg ioctl whose third argument is an int pointer (SG_GET_VERSION_NUM,
 * SG_SET_RESERVED_SIZE, ...); returns 0 or an errno. */
int sgpy_ioctl_int(int fd, unsigned long request, int *value);

/* SG_GET_SCSI_ID; returns 0 or an errno. */
int sgpy_get_scsi_id(int fd, struct sg_scsi_id *id);

/* Jobs (sgpy/_sg.c): many commands from one template, driven in C.  The
 * struct is sgpy's own; Python allocates it and the arrays it points at. */
#define SGPY_JOB_FREE ...
#define SGPY_JOB_INFLIGHT ...
#define SGPY_JOB_PARKED ...
#define SGPY_LBA_FIXED ...
#define SGPY_LBA_SEQUENTIAL ...
#define SGPY_LBA_RANDOM ...
#define SGPY_LBA_LIST ...
#define SGPY_HIST ...

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
    unsigned char cdb[...];
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
    uint64_t hist[...];
    uint64_t lat_min;
    uint64_t lat_max;
    uint64_t lat_sum;
    uint64_t lat_count;
    unsigned int block_size;
    int stamp;
    int verify;
    uint64_t tag;
    int mix;
    unsigned int read_pct;
    unsigned char wcdb[...];
    unsigned char *wbufs;
    int wshare;
    uint64_t mix_rng;
    int *is_write;
    uint64_t wsubmitted;
    uint64_t wcompleted;
    uint64_t wshort_transfers;
    uint64_t whist[...];
    uint64_t wlat_min;
    uint64_t wlat_max;
    uint64_t wlat_sum;
    uint64_t wlat_count;
    uint64_t rlat_min;
    uint64_t rlat_max;
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
    ...;
};

/* Fill every slot from the template and start the first commands: 0 or an
 * errno (also left in fatal). */
int sgpy_job_prime(struct sgpy_job *job);

/* Wait up to timeout_ms, then handle completions (resubmitting clean ones)
 * until budget, slice_ns (if non-zero), nothing more ready, or a parked
 * slot.  Returns the completions handled or -errno. */
int sgpy_job_step(struct sgpy_job *job, int timeout_ms, int budget, int64_t slice_ns);

/* Queue depth 1 over SG_IO: up to budget commands; count or -errno. */
int sgpy_job_sync(struct sgpy_job *job, int budget);

/* Release parked slot i, starting it again unless the job is ending. */
int sgpy_job_resubmit(struct sgpy_job *job, int i);

/* Create the job's epoll over its fds (data = fd index): the fd, or -errno. */
int sgpy_job_epoll(struct sgpy_job *job);

/* A timerfd for the IO engine's rate limit: new (fd or -errno), armed for an
 * absolute CLOCK_MONOTONIC time, cleared (0 or an errno). */
int sgpy_timer_new(void);
int sgpy_timer_arm(int fd, int64_t at_ns);
int sgpy_timer_clear(int fd);

/* The latency histogram's bucket of a value in ns (exposed for tests). */
int sgpy_hist_index(uint64_t v);

/* A batch of plain commands (Channel.execute_many): see sgpy/_sg.c. */
#define SGPY_MANY_FDS_MAX ...
#define SGPY_MANY_UNSENT ...
#define SGPY_MANY_INFLIGHT ...
#define SGPY_MANY_PARKED ...

struct sgpy_many_cmd {
    int dxfer;
    unsigned int cdb_len;
    unsigned int length;
    unsigned char cdb[...];
};

struct sgpy_many {
    int nfds;
    const int *fds;
    struct sgpy_slot *slots;
    int *free;
    int nfree;
    int *fd_inflight;
    int n;
    const struct sgpy_many_cmd *cmds;
    void *const *bufs;
    unsigned int timeout_ms;
    int stall_ms;
    int slice_ms;
    int idle_ms;
    int next;
    int inflight;
    int sent;
    int *out;
    int parked;
    int bad;
    const volatile int *stop;
};

/* Send and collect until every command is back: 0; -1: the completion in
 * slot `parked` is not plain (read it, then call again); else an errno
 * (EINTR: a signal; EAGAIN: slice_ms passed, call again; ETIMEDOUT: nothing
 * came back for stall_ms; `bad` >= 0:
 * that command's write() failed).  Once *stop is set it sends nothing more
 * and returns 0 when what is in flight is back. */
int sgpy_many_run(struct sgpy_many *m);
