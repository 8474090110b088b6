/* cdef for sgpy's iSCSI extension (sgpy._iscsiffi), over libiscsi.
 *
 * libiscsi's own types are opaque here or declared by name with "...;",
 * and its constants as "#define X ..." / "enum { X, ... };" so cffi takes
 * the values from <iscsi/iscsi.h> when it compiles the module.
 */

struct iscsi_context;
struct scsi_task;

/* <iscsi/iscsi.h> */
enum iscsi_session_type { ISCSI_SESSION_DISCOVERY, ISCSI_SESSION_NORMAL, ... };
enum iscsi_header_digest {
    ISCSI_HEADER_DIGEST_NONE,
    ISCSI_HEADER_DIGEST_NONE_CRC32C,
    ISCSI_HEADER_DIGEST_CRC32C_NONE,
    ISCSI_HEADER_DIGEST_CRC32C,
    ...
};
#define LIBISCSI_API_VERSION ...

int iscsi_get_fd(struct iscsi_context *iscsi);
int iscsi_which_events(struct iscsi_context *iscsi);
int iscsi_queue_length(struct iscsi_context *iscsi);
int iscsi_out_queue_length(struct iscsi_context *iscsi);
const char *iscsi_get_error(struct iscsi_context *iscsi);
int iscsi_set_targetname(struct iscsi_context *iscsi, const char *targetname);
int iscsi_set_alias(struct iscsi_context *iscsi, const char *alias);
int iscsi_set_session_type(struct iscsi_context *iscsi, enum iscsi_session_type session_type);
int iscsi_set_header_digest(struct iscsi_context *iscsi, enum iscsi_header_digest header_digest);
int iscsi_set_initiator_username_pwd(struct iscsi_context *iscsi, const char *user, const char *passwd);
int iscsi_set_target_username_pwd(struct iscsi_context *iscsi, const char *user, const char *passwd);
int iscsi_is_logged_in(struct iscsi_context *iscsi);
const char *iscsi_get_target_address(struct iscsi_context *iscsi);

/* <poll.h>: iscsi_which_events / iscsi_service speak poll() events. */
#define POLLIN ...
#define POLLOUT ...
#define POLLERR ...
#define POLLHUP ...

/* sgpy's helpers (sgpy/_iscsi.c). */
#define SGPY_ISCSI_SENSE_MAX ...
#define SGPY_ISCSI_REC ...
#define SGPY_ISCSI_CDB_MAX ...
#define SGPY_ISCSI_CANCELLED ...
#define SGPY_ISCSI_ERROR ...
#define SGPY_ISCSI_TIMEOUT ...

/* One connection (session) to one LUN.  ``rec`` holds ``ndone`` completion
 * records of SGPY_ISCSI_REC ints (id, status, resid, duration_ms,
 * sense_len), record i's sense bytes at sense + i * SGPY_ISCSI_SENSE_MAX;
 * the reader sets ndone back to 0.  ``lost``: libiscsi dropped the session
 * (it cancelled tasks on its own, or iscsi_service failed).  ``op_*``: the
 * last connect/login/logout/discovery step; ``text`` the discovery answer,
 * one "name\tportal\tportal...\n" line per target. */
struct sgpy_iscsi {
    struct iscsi_context *ctx;
    int lun;
    int ndone;
    int64_t *rec;
    unsigned char *sense;
    int lost;
    int op_done;
    int op_status;
    char *text;
    char op_error[256];
    int outstanding;
    ...;
};

struct sgpy_iscsi *sgpy_iscsi_new(const char *initiator_name);
void sgpy_iscsi_free(struct sgpy_iscsi *c);
int sgpy_iscsi_connect(struct sgpy_iscsi *c, const char *portal);
int sgpy_iscsi_login(struct sgpy_iscsi *c);
int sgpy_iscsi_logout(struct sgpy_iscsi *c);
int sgpy_iscsi_discovery(struct sgpy_iscsi *c);
int sgpy_iscsi_submit(struct sgpy_iscsi *c, uint64_t id, const char *cdb, int cdb_len, int dir,
                      void *buf, unsigned int len);
int sgpy_iscsi_abort(struct sgpy_iscsi *c, uint64_t id);
void sgpy_iscsi_cancel_all(struct sgpy_iscsi *c);
int sgpy_iscsi_service(struct sgpy_iscsi *c, int revents);
int sgpy_iscsi_flush(struct sgpy_iscsi *c);
int sgpy_iscsi_poll_once(struct sgpy_iscsi *c, int timeout_ms);

int sgpy_timer_new(void);
int sgpy_timer_set(int fd, long first_ms, long every_ms);
long sgpy_timer_drain(int fd);
