/*
 * ambit_fdpass: unix SOCK_SEQPACKET sockets with SCM_RIGHTS, readiness from libuv, and the fd
 * facts the node agent and the ztunnel need to hand network namespaces and listening sockets
 * to each other (the ZDS protocol). Part of the ambit_native addon (see ambit_native.c).
 *
 *   seqpacketListen(path, backlog)   -> fd  socket(AF_UNIX, SOCK_SEQPACKET), bind, listen
 *   seqpacketConnect(path)           -> fd  connected (a unix connect completes at once or fails)
 *   acceptPeer(fd)                   -> { fd, pid, uid, gid } | null (EAGAIN); SO_PEERCRED of the peer
 *   recvMsg(fd, maxBytes, maxFds)    -> { data: Buffer, fds: number[], truncated, ctruncated }
 *                                       | null (EAGAIN) | { eof: true }
 *   sendMsg(fd, data, fds)           -> true, or false on EAGAIN (nothing was sent)
 *   poll(fd, events, callback)       -> { update(events), stop() }   events: 1 readable | 2 writable;
 *                                       callback(status, events) on the main thread (uv_poll)
 *   dupFd(fd)                        -> fd  (F_DUPFD_CLOEXEC)
 *   fdInfo(fd)                       -> { kind: 'netns' | 'socket' | 'other', dev, ino,
 *                                         socketType?, family?, listening?, port? }
 *   writeSysctlInNetns(netnsFd, name, value)   e.g. ('net/ipv4/tcp_migrate_req', '1')
 *
 * Invariants:
 *  - Nothing here blocks: every socket is non-blocking, every call uses MSG_DONTWAIT, and
 *    readiness comes from a uv_poll_t on the Node event loop, which calls back on the main
 *    thread. A caller loops recvMsg/acceptPeer until null (EAGAIN) after each readable event.
 *  - Every fd received (SCM_RIGHTS, MSG_CMSG_CLOEXEC) or created here is close-on-exec and
 *    is returned to the caller, who owns it from then on. When the control buffer was too
 *    small (MSG_CTRUNC), the fds that did arrive are still returned, so the caller can close
 *    them: none leaks.
 *  - A poll handle keeps its JS object alive while it is active; stop() (or the fd's owner
 *    closing it after stop) ends it. The C struct is freed only when both libuv has closed the
 *    handle and the JS object was collected.
 *  - writeSysctlInNetns enters the namespace on the calling thread only for the open() of the
 *    /proc/sys file (which binds the file to that namespace) and comes straight back, as
 *    makeSocket does; failing to come back aborts the process.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_args.h"
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS_PER_MESSAGE 64
#define MAX_MESSAGE_BYTES (1 << 20)

/* Shared with ambit_native.c. */
napi_value ambit_throw_errno(napi_env env, int err, const char *syscall, const char *detail);
int ambit_home_netns_fd(napi_env env, int *err);

/* A unix socket path; false after throwing. */
static bool arg_path(napi_env env, size_t argc, napi_value *argv, size_t i, struct sockaddr_un *addr, socklen_t *len) {
  napi_valuetype t = napi_undefined;
  if (i < argc) napi_typeof(env, argv[i], &t);
  if (t != napi_string) {
    ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return false;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t n = 0;
  napi_get_value_string_utf8(env, argv[i], addr->sun_path, sizeof addr->sun_path, &n);
  if (n == 0 || n + 1 >= sizeof addr->sun_path) {
    ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "path must be 1..107 bytes (a unix socket path)");
    return false;
  }
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return true;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

static napi_value make_bool(napi_env env, bool v) {
  napi_value out;
  napi_get_boolean(env, v, &out);
  return out;
}

static napi_value make_null(napi_env env) {
  napi_value out;
  napi_get_null(env, &out);
  return out;
}

static napi_value make_undefined(napi_env env) {
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

static void set_prop(napi_env env, napi_value obj, const char *key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

/* ---------- seqpacketListen / seqpacketConnect ---------- */

static napi_value seqpacket_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un addr;
  socklen_t len;
  int64_t backlog = 128;
  if (!arg_path(env, argc, argv, 0, &addr, &len)) return NULL;
  if (argc >= 2 && !ambit_arg_int(env, argv[1], "backlog", 1, 65535, &backlog)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ambit_throw_errno(env, errno, "socket", "AF_UNIX SOCK_SEQPACKET");
  if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
    int err = errno;
    close(fd);
    return ambit_throw_errno(env, err, "bind", addr.sun_path);
  }
  if (listen(fd, (int)backlog) != 0) {
    int err = errno;
    close(fd);
    return ambit_throw_errno(env, err, "listen", addr.sun_path);
  }
  return make_int(env, fd);
}

static napi_value seqpacket_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un addr;
  socklen_t len;
  if (!arg_path(env, argc, argv, 0, &addr, &len)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ambit_throw_errno(env, errno, "socket", "AF_UNIX SOCK_SEQPACKET");
  /* A unix-domain connect never returns EINPROGRESS: it is done or refused (EAGAIN when the
     listener's backlog is full, which the caller retries like a refusal). */
  if (connect(fd, (struct sockaddr *)&addr, len) != 0) {
    int err = errno;
    close(fd);
    return ambit_throw_errno(env, err, "connect", addr.sun_path);
  }
  return make_int(env, fd);
}

/* ---------- acceptPeer ---------- */

static napi_value accept_peer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR) return make_null(env);
    return ambit_throw_errno(env, errno, "accept4", NULL);
  }
  struct ucred cred;
  socklen_t clen = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
    cred.pid = 0;
    cred.uid = (uid_t)-1;
    cred.gid = (gid_t)-1;
  }
  napi_value out;
  napi_create_object(env, &out);
  set_prop(env, out, "fd", make_int(env, c));
  set_prop(env, out, "pid", make_int(env, cred.pid));
  set_prop(env, out, "uid", make_int(env, (int64_t)(int32_t)cred.uid));
  set_prop(env, out, "gid", make_int(env, (int64_t)(int32_t)cred.gid));
  return out;
}

/* ---------- recvMsg / sendMsg ---------- */

static napi_value recv_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  int64_t max_bytes = 65536, max_fds = 8;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  if (argc >= 2 && !ambit_arg_int(env, argv[1], "maxBytes", 1, MAX_MESSAGE_BYTES, &max_bytes)) return NULL;
  if (argc >= 3 && !ambit_arg_int(env, argv[2], "maxFds", 0, MAX_FDS_PER_MESSAGE, &max_fds)) return NULL;

  char *buf = malloc((size_t)max_bytes);
  if (!buf) return ambit_throw_errno(env, ENOMEM, "recvmsg", NULL);
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MESSAGE)];
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {.iov_base = buf, .iov_len = (size_t)max_bytes};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.space;
  msg.msg_controllen = max_fds > 0 ? CMSG_SPACE(sizeof(int) * (size_t)max_fds) : 0;
  if (max_fds == 0) msg.msg_control = NULL;

  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    int err = errno;
    free(buf);
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return make_null(env);
    return ambit_throw_errno(env, err, "recvmsg", NULL);
  }

  napi_value fds;
  napi_create_array(env, &fds);
  uint32_t nfds = 0;
  for (struct cmsghdr *c = msg.msg_control ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *p = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int received;
      memcpy(&received, p + i, sizeof received);
      napi_set_element(env, fds, nfds++, make_int(env, received));
    }
  }

  if (n == 0 && nfds == 0) {
    free(buf);
    napi_value out;
    napi_create_object(env, &out);
    set_prop(env, out, "eof", make_bool(env, true));
    return out;
  }
  napi_value data;
  void *copy = NULL;
  napi_create_buffer_copy(env, (size_t)n, buf, &copy, &data);
  free(buf);
  napi_value out;
  napi_create_object(env, &out);
  set_prop(env, out, "data", data);
  set_prop(env, out, "fds", fds);
  set_prop(env, out, "truncated", make_bool(env, (msg.msg_flags & MSG_TRUNC) != 0));
  set_prop(env, out, "ctruncated", make_bool(env, (msg.msg_flags & MSG_CTRUNC) != 0));
  return out;
}

static napi_value send_msg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  bool is_buffer = false, is_typed = false;
  if (argc >= 2) {
    napi_is_buffer(env, argv[1], &is_buffer);
    napi_is_typedarray(env, argv[1], &is_typed);
  }
  if (!is_buffer && !is_typed) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "data must be a Buffer or Uint8Array");
  void *data = NULL;
  size_t length = 0;
  if (is_buffer) {
    napi_get_buffer_info(env, argv[1], &data, &length);
  } else {
    napi_typedarray_type type;
    napi_value ab;
    size_t offset;
    napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset);
    if (type != napi_uint8_array) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "data must be a Buffer or Uint8Array");
  }
  if (length == 0) return ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "data must not be empty (an empty SEQPACKET message reads as end of stream)");

  int fds[MAX_FDS_PER_MESSAGE];
  uint32_t nfds = 0;
  if (argc >= 3) {
    bool is_array = false;
    napi_is_array(env, argv[2], &is_array);
    if (!is_array) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "fds must be an array of numbers");
    napi_get_array_length(env, argv[2], &nfds);
    if (nfds > MAX_FDS_PER_MESSAGE) return ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "too many fds in one message");
    for (uint32_t i = 0; i < nfds; i++) {
      napi_value v;
      int64_t x;
      napi_get_element(env, argv[2], i, &v);
      if (!ambit_arg_int(env, v, "fds[i]", 0, 0x7fffffff, &x)) return NULL;
      fds[i] = (int)x;
    }
  }

  struct iovec iov = {.iov_base = data, .iov_len = length};
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MESSAGE)];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(&control, 0, sizeof control);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control.space;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_bool(env, false);
    return ambit_throw_errno(env, errno, "sendmsg", NULL);
  }
  return make_bool(env, true);
}

/* ---------- poll (uv_poll_t) ---------- */

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_ref self;             /* strong while active */
  napi_async_context context;
  bool active;
  bool uv_closed;
  bool wrapper_gone;
} poller_t;

static void poller_maybe_free(poller_t *p) {
  if (p->uv_closed && p->wrapper_gone) free(p);
}

static void poller_on_close(uv_handle_t *h) {
  poller_t *p = (poller_t *)h->data;
  p->uv_closed = true;
  poller_maybe_free(p);
}

static void poller_stop(poller_t *p) {
  if (!p->active) return;
  p->active = false;
  uv_poll_stop(&p->handle);
  uv_close((uv_handle_t *)&p->handle, poller_on_close);
  if (p->callback) {
    napi_delete_reference(p->env, p->callback);
    p->callback = NULL;
  }
  if (p->context) {
    napi_async_destroy(p->env, p->context);
    p->context = NULL;
  }
  if (p->self) {
    napi_delete_reference(p->env, p->self);
    p->self = NULL;
  }
}

static void poller_on_event(uv_poll_t *h, int status, int events) {
  poller_t *p = (poller_t *)h->data;
  if (!p->active || !p->callback) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, argv[2], result;
  napi_get_reference_value(env, p->callback, &fn);
  napi_get_global(env, &recv);
  int flags = 0;
  if (events & UV_READABLE) flags |= 1;
  if (events & UV_WRITABLE) flags |= 2;
  if (events & UV_DISCONNECT) flags |= 4;
  argv[0] = make_int(env, status);
  argv[1] = make_int(env, flags);
  napi_status s = napi_make_callback(env, p->context, recv, fn, 2, argv, &result);
  if (s == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static int uv_events(int64_t flags) {
  int e = 0;
  if (flags & 1) e |= UV_READABLE | UV_DISCONNECT;
  if (flags & 2) e |= UV_WRITABLE;
  return e;
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  poller_t *p = (poller_t *)data;
  p->wrapper_gone = true;
  if (p->active) poller_stop(p);
  poller_maybe_free(p);
}

static poller_t *unwrap_poller(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    ambit_throw_type(env, "ERR_INVALID_THIS", "not a poll handle");
    return NULL;
  }
  return (poller_t *)data;
}

static napi_value poller_update(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  poller_t *p = unwrap_poller(env, info, &argc, argv);
  if (!p) return NULL;
  int64_t flags;
  if (argc < 1 || !ambit_arg_int(env, argv[0], "events", 0, 3, &flags)) return NULL;
  if (!p->active) return make_undefined(env);
  int r = flags ? uv_poll_start(&p->handle, uv_events(flags), poller_on_event) : uv_poll_stop(&p->handle);
  if (r != 0) return ambit_throw_errno(env, -r, "uv_poll_start", NULL);
  return make_undefined(env);
}

static napi_value poller_stop_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = unwrap_poller(env, info, &argc, NULL);
  if (!p) return NULL;
  poller_stop(p);
  return make_undefined(env);
}

static napi_value poll_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  int64_t flags;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  if (argc < 2 || !ambit_arg_int(env, argv[1], "events", 0, 3, &flags)) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &t);
  if (t != napi_function) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");

  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return ambit_throw_errno(env, EINVAL, "napi_get_uv_event_loop", NULL);
  poller_t *p = calloc(1, sizeof *p);
  if (!p) return ambit_throw_errno(env, ENOMEM, "poll", NULL);
  p->env = env;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r != 0) {
    free(p);
    return ambit_throw_errno(env, -r, "uv_poll_init", NULL);
  }
  p->handle.data = p;
  p->active = true;

  napi_value obj, fn_update, fn_stop, name;
  napi_create_object(env, &obj);
  napi_create_function(env, "update", NAPI_AUTO_LENGTH, poller_update, NULL, &fn_update);
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, poller_stop_js, NULL, &fn_stop);
  set_prop(env, obj, "update", fn_update);
  set_prop(env, obj, "stop", fn_stop);
  napi_wrap(env, obj, p, poller_finalize, NULL, NULL);
  napi_create_reference(env, argv[2], 1, &p->callback);
  napi_create_reference(env, obj, 1, &p->self);
  napi_create_string_utf8(env, "ambit:poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, obj, name, &p->context);
  if (flags) {
    r = uv_poll_start(&p->handle, uv_events(flags), poller_on_event);
    if (r != 0) {
      poller_stop(p);
      return ambit_throw_errno(env, -r, "uv_poll_start", NULL);
    }
  }
  return obj;
}

/* ---------- dupFd / fdInfo ---------- */

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return ambit_throw_errno(env, errno, "fcntl", "F_DUPFD_CLOEXEC");
  return make_int(env, d);
}

static napi_value fd_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) return ambit_throw_errno(env, errno, "fstat", NULL);
  napi_value out, kind;
  napi_create_object(env, &out);
  napi_value dev, ino;
  napi_create_double(env, (double)st.st_dev, &dev);
  napi_create_double(env, (double)st.st_ino, &ino);
  set_prop(env, out, "dev", dev);
  set_prop(env, out, "ino", ino);
  const char *k = "other";
  if (S_ISSOCK(st.st_mode)) {
    k = "socket";
    int type = 0, domain = 0, listening = 0;
    socklen_t len = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    set_prop(env, out, "socketType", make_int(env, type));
    set_prop(env, out, "family", make_int(env, domain == AF_INET ? 4 : domain == AF_INET6 ? 6 : domain == AF_UNIX ? 1 : 0));
    set_prop(env, out, "listening", make_bool(env, listening != 0));
    struct sockaddr_storage ss;
    len = sizeof ss;
    if ((domain == AF_INET || domain == AF_INET6) && getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
      char text[INET6_ADDRSTRLEN] = "";
      int port = 0;
      if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
        port = ntohs(s4->sin_port);
      } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text);
        port = ntohs(s6->sin6_port);
      }
      napi_value addr;
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &addr);
      set_prop(env, out, "address", addr);
      set_prop(env, out, "port", make_int(env, port));
    }
  } else {
    int nstype = ioctl(fd, NS_GET_NSTYPE);
    if (nstype == CLONE_NEWNET) k = "netns";
  }
  napi_create_string_utf8(env, k, NAPI_AUTO_LENGTH, &kind);
  set_prop(env, out, "kind", kind);
  return out;
}

/* ---------- writeSysctlInNetns ---------- */

static napi_value write_sysctl_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int ns_fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &ns_fd)) return NULL;
  char name[128], value[64], path[192];
  size_t n = 0;
  napi_valuetype t1 = napi_undefined, t2 = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t1);
  if (argc >= 3) napi_typeof(env, argv[2], &t2);
  if (t1 != napi_string || t2 != napi_string) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "name and value must be strings");
  napi_get_value_string_utf8(env, argv[1], name, sizeof name, &n);
  if (n == 0 || n + 1 >= sizeof name || strstr(name, "..") || name[0] == '/' || strncmp(name, "net/", 4) != 0)
    return ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "name must be a net/... sysctl path such as net/ipv4/tcp_migrate_req");
  napi_get_value_string_utf8(env, argv[2], value, sizeof value, &n);
  if (n + 1 >= sizeof value) return ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "value is too long");
  snprintf(path, sizeof path, "/proc/sys/%s", name);

  int err = 0;
  int home = ambit_home_netns_fd(env, &err);
  if (home < 0) return ambit_throw_errno(env, err ? err : ENOENT, "open", "/proc/thread-self/ns/net (needed to come back after setns)");
  if (setns(ns_fd, CLONE_NEWNET) != 0) return ambit_throw_errno(env, errno, "setns", "entering the target network namespace");
  int f = open(path, O_WRONLY | O_CLOEXEC);
  int open_err = f < 0 ? errno : 0;
  if (setns(home, CLONE_NEWNET) != 0) {
    static const char msg[] = "could not return this thread to its own network namespace after opening a sysctl in another; aborting";
    napi_fatal_error("ambit_native writeSysctlInNetns", NAPI_AUTO_LENGTH, msg, NAPI_AUTO_LENGTH);
  }
  if (f < 0) return ambit_throw_errno(env, open_err, "open", path);
  ssize_t w = write(f, value, strlen(value));
  int write_err = w < 0 ? errno : 0;
  close(f);
  if (w < 0) return ambit_throw_errno(env, write_err, "write", path);
  return make_undefined(env);
}

/* ---------- registration ---------- */

void ambit_fdpass_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"seqpacketListen", NULL, seqpacket_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seqpacketConnect", NULL, seqpacket_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptPeer", NULL, accept_peer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvMsg", NULL, recv_msg, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendMsg", NULL, send_msg, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poll", NULL, poll_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dupFd", NULL, dup_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdInfo", NULL, fd_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeSysctlInNetns", NULL, write_sysctl_in_netns, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
