/* sgpy's iSCSI helpers: libiscsi's asynchronous API, driven from Python.
 *
 * libiscsi (<iscsi/iscsi.h>) calls back into the application when a PDU
 * exchange ends.  Rather than calling into Python once per command, every
 * callback here only writes a small record (command id, SCSI status,
 * residual, duration, sense bytes) into an array owned by the connection;
 * Python reads the whole batch after each iscsi_service() call.  Commands
 * are identified by a 64-bit id chosen by Python, never by pointer.
 *
 * Facts used from libiscsi 1.19 (lib/iscsi-command.c, lib/pdu.c,
 * lib/connect.c):
 *  - on CHECK CONDITION, task->datain holds the SCSI Response PDU's data
 *    segment: a 2-byte SenseLength followed by the sense data (RFC 7143
 *    11.4.7.2);
 *  - a task given an input iovector (scsi_task_set_iov_in) receives its
 *    Data-In straight into that memory;
 *  - iscsi_scsi_cancel_task / iscsi_scsi_cancel_all_tasks invoke the task's
 *    callback with SCSI_STATUS_CANCELLED and free the PDU, not the task;
 *  - with auto-reconnect switched off, a dropped session cancels every task
 *    from inside iscsi_service(), which then returns 0;
 *  - ABORT TASK only asks the target: the task stays queued locally until it
 *    is answered or cancelled.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

/* SPC-5 4.4.1: sense data is at most 252 bytes. */
#define SGPY_ISCSI_SENSE_MAX 252
/* Ints per completion record: id, status, resid, duration_ms, sense_len. */
#define SGPY_ISCSI_REC 5
/* libiscsi carries the CDB in the SCSI Command PDU's 16-byte CDB field
 * and sends no additional header segment (SCSI_CDB_MAX_SIZE). */
#define SGPY_ISCSI_CDB_MAX SCSI_CDB_MAX_SIZE

/* Record status values that are not a SCSI status byte. */
#define SGPY_ISCSI_CANCELLED (-1)
#define SGPY_ISCSI_ERROR (-2)
#define SGPY_ISCSI_TIMEOUT (-3)

#define SGPY_CMD_DONE 1          /* libiscsi has called the task back */
#define SGPY_CMD_CANCELLING 2    /* we cancelled it ourselves */
#define SGPY_CMD_ABORTING 4      /* an ABORT TASK is outstanding for it */

struct sgpy_iscsi;

struct sgpy_iscsi_cmd {
    struct sgpy_iscsi *conn;
    struct scsi_task *task;
    uint64_t id;
    struct scsi_iovec iov;
    struct timespec start;
    int flags;
    struct sgpy_iscsi_cmd *prev, *next;
};

struct sgpy_iscsi {
    struct iscsi_context *ctx;
    int lun;
    int ndone;
    int capdone;
    int64_t *rec;
    unsigned char *sense;
    int lost;
    int op_done;
    int op_status;
    char *text;
    char op_error[256];
    int outstanding;
    int discarding;
    struct sgpy_iscsi_cmd *cmds;
};

static void sgpy_cmd_unlink(struct sgpy_iscsi_cmd *cmd)
{
    struct sgpy_iscsi *c = cmd->conn;
    if (cmd->prev)
        cmd->prev->next = cmd->next;
    else
        c->cmds = cmd->next;
    if (cmd->next)
        cmd->next->prev = cmd->prev;
    free(cmd);
}

static int64_t *sgpy_push(struct sgpy_iscsi *c, unsigned char **sense)
{
    if (c->ndone == c->capdone) {
        int cap = c->capdone ? c->capdone * 2 : 256;
        int64_t *rec = realloc(c->rec, (size_t)cap * SGPY_ISCSI_REC * sizeof(int64_t));
        unsigned char *sb;
        if (rec == NULL)
            return NULL;
        c->rec = rec;
        sb = realloc(c->sense, (size_t)cap * SGPY_ISCSI_SENSE_MAX);
        if (sb == NULL)
            return NULL;
        c->sense = sb;
        c->capdone = cap;
    }
    *sense = c->sense + (size_t)c->ndone * SGPY_ISCSI_SENSE_MAX;
    return c->rec + (size_t)(c->ndone++) * SGPY_ISCSI_REC;
}

static void sgpy_task_cb(struct iscsi_context *ctx, int status, void *command_data, void *private_data)
{
    struct sgpy_iscsi_cmd *cmd = private_data;
    struct sgpy_iscsi *c = cmd->conn;
    struct scsi_task *task = cmd->task;
    struct timespec now;
    int64_t *r;
    unsigned char *sb;
    long ms;
    int code;

    (void)ctx;
    (void)command_data;
    c->outstanding--;
    switch (status) {
    case SCSI_STATUS_CANCELLED:
        code = SGPY_ISCSI_CANCELLED;
        if (!(cmd->flags & SGPY_CMD_CANCELLING))
            c->lost = 1; /* libiscsi dropped the session */
        break;
    case SCSI_STATUS_ERROR:
        code = SGPY_ISCSI_ERROR;
        break;
    case SCSI_STATUS_TIMEOUT:
        code = SGPY_ISCSI_TIMEOUT;
        break;
    default:
        code = status & 0xff;
    }
    if (!c->discarding && (r = sgpy_push(c, &sb)) != NULL) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (now.tv_sec - cmd->start.tv_sec) * 1000L + (now.tv_nsec - cmd->start.tv_nsec) / 1000000L;
        r[0] = (int64_t)cmd->id;
        r[1] = code;
        r[2] = 0;
        r[3] = ms < 0 ? 0 : ms;
        r[4] = 0;
        if (task != NULL && code >= 0) {
            /* SAM residual: only an underflow leaves part of the buffer
             * unused (RFC 7143 11.4.5); sg reports the same as resid. */
            if (task->residual_status == SCSI_RESIDUAL_UNDERFLOW)
                r[2] = (int64_t)task->residual;
            if (code == SCSI_STATUS_CHECK_CONDITION && task->datain.data != NULL && task->datain.size >= 2) {
                size_t n = ((size_t)task->datain.data[0] << 8) | task->datain.data[1];
                if (n > (size_t)task->datain.size - 2)
                    n = (size_t)task->datain.size - 2;
                if (n > SGPY_ISCSI_SENSE_MAX)
                    n = SGPY_ISCSI_SENSE_MAX;
                memcpy(sb, task->datain.data + 2, n);
                r[4] = (int64_t)n;
            }
        }
    }
    if (task != NULL)
        scsi_free_scsi_task(task);
    cmd->task = NULL;
    cmd->flags |= SGPY_CMD_DONE;
    if (!(cmd->flags & SGPY_CMD_ABORTING))
        sgpy_cmd_unlink(cmd);
}

static void sgpy_abort_cb(struct iscsi_context *ctx, int status, void *command_data, void *private_data)
{
    struct sgpy_iscsi_cmd *cmd = private_data;
    (void)command_data;
    cmd->flags &= ~SGPY_CMD_ABORTING;
    if (cmd->flags & SGPY_CMD_DONE) {
        sgpy_cmd_unlink(cmd);
        return;
    }
    /* The target answered the ABORT TASK (RFC 7143 11.6): whatever it
     * said, it will not answer the task itself any more, so release it
     * here.  On a torn-down session the task is cancelled anyway. */
    if (status == SCSI_STATUS_GOOD && cmd->task != NULL) {
        cmd->flags |= SGPY_CMD_CANCELLING;
        iscsi_scsi_cancel_task(ctx, cmd->task);
    }
}

static void sgpy_op_cb(struct iscsi_context *ctx, int status, void *command_data, void *private_data)
{
    struct sgpy_iscsi *c = private_data;
    (void)command_data;
    c->op_status = status;
    c->op_done = 1;
    /* Keep libiscsi's reason now: iscsi_service() overwrites it with a
     * generic one on its way out of a failed connect or login. */
    if (status != SCSI_STATUS_GOOD) {
        const char *e = iscsi_get_error(ctx);
        strncpy(c->op_error, e ? e : "", sizeof(c->op_error) - 1);
        c->op_error[sizeof(c->op_error) - 1] = '\0';
    }
}

static void sgpy_discovery_cb(struct iscsi_context *ctx, int status, void *command_data, void *private_data)
{
    struct sgpy_iscsi *c = private_data;
    struct iscsi_discovery_address *a;
    struct iscsi_target_portal *p;
    size_t size = 1;
    char *out;

    sgpy_op_cb(ctx, status, NULL, c);
    if (status != SCSI_STATUS_GOOD)
        return;
    /* The list is freed by libiscsi when this returns: flatten it into
     * "name\tportal\tportal...\n" lines. */
    for (a = command_data; a != NULL; a = a->next) {
        size += strlen(a->target_name) + 1;
        for (p = a->portals; p != NULL; p = p->next)
            size += strlen(p->portal) + 1;
    }
    out = malloc(size);
    if (out == NULL) {
        c->op_status = SCSI_STATUS_ERROR;
        return;
    }
    out[0] = '\0';
    for (a = command_data; a != NULL; a = a->next) {
        strcat(out, a->target_name);
        for (p = a->portals; p != NULL; p = p->next) {
            strcat(out, "\t");
            strcat(out, p->portal);
        }
        strcat(out, "\n");
    }
    free(c->text);
    c->text = out;
}

static struct sgpy_iscsi *sgpy_iscsi_new(const char *initiator_name)
{
    struct sgpy_iscsi *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ctx = iscsi_create_context(initiator_name);
    if (c->ctx == NULL) {
        free(c);
        return NULL;
    }
    /* sgpy decides what a lost session means (sgpy/iscsi.py); commands
     * time out in sgpy, not in libiscsi. */
    iscsi_set_noautoreconnect(c->ctx, 1);
    iscsi_set_timeout(c->ctx, 0);
    return c;
}

static void sgpy_iscsi_cancel_all(struct sgpy_iscsi *c)
{
    struct sgpy_iscsi_cmd *cmd;
    int saved = c->discarding;
    for (cmd = c->cmds; cmd != NULL; cmd = cmd->next)
        cmd->flags |= SGPY_CMD_CANCELLING;
    c->discarding = 1;
    iscsi_scsi_cancel_all_tasks(c->ctx);
    c->discarding = saved;
}

static void sgpy_iscsi_free(struct sgpy_iscsi *c)
{
    struct sgpy_iscsi_cmd *cmd;
    if (c == NULL)
        return;
    sgpy_iscsi_cancel_all(c);
    c->discarding = 1;
    iscsi_destroy_context(c->ctx);
    /* Whatever libiscsi did not call back (tasks of a session that never
     * logged in, ABORT TASKs in flight) is released here. */
    while ((cmd = c->cmds) != NULL) {
        if (cmd->task != NULL)
            scsi_free_scsi_task(cmd->task);
        sgpy_cmd_unlink(cmd);
    }
    free(c->rec);
    free(c->sense);
    free(c->text);
    free(c);
}

static void sgpy_op_start(struct sgpy_iscsi *c)
{
    c->op_done = 0;
    c->op_status = 0;
    c->op_error[0] = '\0';
}

static int sgpy_iscsi_connect(struct sgpy_iscsi *c, const char *portal)
{
    sgpy_op_start(c);
    return iscsi_connect_async(c->ctx, portal, sgpy_op_cb, c);
}

static int sgpy_iscsi_login(struct sgpy_iscsi *c)
{
    sgpy_op_start(c);
    return iscsi_login_async(c->ctx, sgpy_op_cb, c);
}

static int sgpy_iscsi_logout(struct sgpy_iscsi *c)
{
    sgpy_op_start(c);
    return iscsi_logout_async(c->ctx, sgpy_op_cb, c);
}

static int sgpy_iscsi_discovery(struct sgpy_iscsi *c)
{
    sgpy_op_start(c);
    return iscsi_discovery_async(c->ctx, sgpy_discovery_cb, c);
}

/* Queue one command.  dir: 0 none, 1 data in (read), 2 data out (write).
 * Returns 0, -1 when libiscsi refused it (see iscsi_get_error), -2 when
 * the CDB is longer than libiscsi carries, -3 when memory ran out. */
static int sgpy_iscsi_submit(struct sgpy_iscsi *c, uint64_t id, const char *cdb, int cdb_len, int dir,
                             void *buf, unsigned int len)
{
    struct sgpy_iscsi_cmd *cmd;
    struct scsi_task *task;
    int xfer = dir == 1 ? SCSI_XFER_READ : dir == 2 ? SCSI_XFER_WRITE : SCSI_XFER_NONE;

    if (cdb_len < 1 || cdb_len > SGPY_ISCSI_CDB_MAX)
        return -2;
    if (len == 0)
        xfer = SCSI_XFER_NONE;
    cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return -3;
    task = scsi_create_task(cdb_len, (unsigned char *)cdb, xfer, (int)len);
    if (task == NULL) {
        free(cmd);
        return -3;
    }
    cmd->conn = c;
    cmd->task = task;
    cmd->id = id;
    cmd->iov.iov_base = buf;
    cmd->iov.iov_len = len;
    if (xfer == SCSI_XFER_READ)
        scsi_task_set_iov_in(task, &cmd->iov, 1);
    else if (xfer == SCSI_XFER_WRITE)
        scsi_task_set_iov_out(task, &cmd->iov, 1);
    clock_gettime(CLOCK_MONOTONIC, &cmd->start);
    if (iscsi_scsi_command_async(c->ctx, c->lun, task, sgpy_task_cb, NULL, cmd) != 0) {
        scsi_free_scsi_task(task);
        free(cmd);
        return -1;
    }
    cmd->next = c->cmds;
    if (c->cmds)
        c->cmds->prev = cmd;
    c->cmds = cmd;
    c->outstanding++;
    return 0;
}

/* Ask the target to abort command ``id`` (ABORT TASK); it is released when
 * the target answers.  Returns 0, -1 when libiscsi refused, 1 when the
 * command is not outstanding. */
static int sgpy_iscsi_abort(struct sgpy_iscsi *c, uint64_t id)
{
    struct sgpy_iscsi_cmd *cmd;
    for (cmd = c->cmds; cmd != NULL; cmd = cmd->next) {
        if (cmd->id == id && !(cmd->flags & (SGPY_CMD_DONE | SGPY_CMD_ABORTING)) && cmd->task != NULL) {
            if (iscsi_task_mgmt_abort_task_async(c->ctx, cmd->task, sgpy_abort_cb, cmd) != 0)
                return -1;
            cmd->flags |= SGPY_CMD_ABORTING;
            return 0;
        }
    }
    return 1;
}

/* iscsi_service, and whether the session was lost on the way. */
static int sgpy_iscsi_service(struct sgpy_iscsi *c, int revents)
{
    int rc = iscsi_service(c->ctx, revents & (POLLIN | POLLOUT | POLLERR | POLLHUP));
    if (rc < 0)
        c->lost = 1;
    return rc;
}

/* Write what libiscsi has queued, as few TCP segments as possible: with
 * TCP_CORK set around the burst (tcp(7)), the PDUs of a batch leave
 * together and wake the target once rather than once per PDU. */
static int sgpy_iscsi_flush(struct sgpy_iscsi *c)
{
    int fd = iscsi_get_fd(c->ctx);
    int on = 1, off = 0, rc;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    rc = sgpy_iscsi_service(c, POLLOUT);
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    return rc;
}

/* Wait for the socket (at most timeout_ms) and service it once.  For the
 * synchronous steps (connect, login, discovery) before a channel joins a
 * reactor.  Returns 0, or -1 when iscsi_service failed; EINTR is not an
 * error. */
static int sgpy_iscsi_poll_once(struct sgpy_iscsi *c, int timeout_ms)
{
    struct pollfd pfd;
    int n;
    pfd.fd = iscsi_get_fd(c->ctx);
    pfd.events = (short)iscsi_which_events(c->ctx);
    pfd.revents = 0;
    if (pfd.fd < 0)
        return -1;
    n = poll(&pfd, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (n == 0)
        return sgpy_iscsi_service(c, 0);
    return sgpy_iscsi_service(c, pfd.revents);
}

/* A monotonic timerfd (non-blocking, close-on-exec); -1 with errno. */
static int sgpy_timer_new(void)
{
    return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

/* Arm (first_ms > 0) or disarm (first_ms == 0) a timerfd; 0 or an errno. */
static int sgpy_timer_set(int fd, long first_ms, long every_ms)
{
    struct itimerspec t;
    t.it_value.tv_sec = first_ms / 1000;
    t.it_value.tv_nsec = (first_ms % 1000) * 1000000L;
    t.it_interval.tv_sec = every_ms / 1000;
    t.it_interval.tv_nsec = (every_ms % 1000) * 1000000L;
    return timerfd_settime(fd, 0, &t, NULL) < 0 ? errno : 0;
}

/* Read a timerfd's expiry count (0 when it has not expired). */
static long sgpy_timer_drain(int fd)
{
    uint64_t n = 0;
    if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
        return 0;
    return (long)n;
}
