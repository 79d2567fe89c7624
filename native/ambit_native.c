/*
 * ambit_native: the few Linux socket capabilities Node.js lacks, for Ambit's sys/ room.
 * Plain C against Node-API (node_api.h); no npm dependency. Built by scripts/setup.sh.
 *
 *   abiVersion                    number; src/sys/native.ts refuses an addon of another version
 *   getOriginalDst(fd)         -> { address, port, family: 'IPv4' | 'IPv6' }
 *                                 getsockopt SOL_IP SO_ORIGINAL_DST, or SOL_IPV6
 *                                 IP6T_SO_ORIGINAL_DST for a (non v4-mapped) IPv6 socket
 *   setMark(fd, mark)             setsockopt SO_MARK
 *   getMark(fd)                -> number
 *   openNetns(path)            -> fd (O_RDONLY | O_CLOEXEC)
 *   closeFd(fd)
 *   makeSocket(options)        -> fd of a new TCP socket, non-blocking and close-on-exec:
 *     { family: 4 | 6, netnsFd?: number (-1 = the calling thread's own netns),
 *       mark?, reuseAddr?, reusePort?, transparent?, freebind?, v6Only?,
 *       bindAddress?: string, bindPort?: number, listen?: boolean, backlog?: number }
 *   ...and the unix SEQPACKET / SCM_RIGHTS / uv_poll functions of ambit_fdpass.c
 *
 * Invariants:
 *  - A socket belongs for life to the network namespace its creating thread was in when it
 *    called socket(). makeSocket moves the calling thread (only that thread, never the
 *    process) into the target netns with setns(CLONE_NEWNET), calls socket(), and moves the
 *    thread back at once, to the netns it was in when the addon was loaded (an fd of which
 *    is kept as instance data). Nothing else runs in between: every other step (options,
 *    bind, listen) happens after the thread is back home, since they follow the socket.
 *  - If the thread cannot be moved back, the process aborts (napi_fatal_error): every later
 *    socket Node made on that thread would silently live in the wrong namespace.
 *  - Every fd this file creates is close-on-exec, so child processes never inherit them.
 *  - Errors are JS Errors with `code` = the errno name (ECONNREFUSED, EPERM, ...),
 *    `errno` = the negated errno (as Node does) and `syscall`; bad arguments throw TypeError
 *    with code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IP_FREEBIND
#define IP_FREEBIND 15
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

#define AMBIT_NATIVE_ABI_VERSION 2

typedef struct {
  int home_netns_fd; /* the netns of the thread that loaded the addon, or -1 */
  int home_netns_errno;
} instance_t;

/* ---------- errors ---------- */

static const char *errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

/* Throws an Error like Node's ErrnoException: "<syscall> <CODE> (<text>)[: detail]". */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *detail) {
  char text[128];
  char msg[512];
  const char *desc = strerror_r(err, text, sizeof text);
  const char *name = errno_name(err);
  if (detail && *detail)
    snprintf(msg, sizeof msg, "%s %s (%s): %s", syscall, name, desc, detail);
  else
    snprintf(msg, sizeof msg, "%s %s (%s)", syscall, name, desc);
  napi_value code_v, msg_v, error, errno_v, syscall_v;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_v);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_error(env, code_v, msg_v, &error);
  napi_create_int32(env, -err, &errno_v);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, error, "syscall", syscall_v);
  napi_throw(env, error);
  return NULL;
}

napi_value ambit_throw_type(napi_env env, const char *code, const char *msg) {
  napi_throw_type_error(env, code, msg);
  return NULL;
}

/* ---------- argument helpers (return false after throwing) ---------- */

bool ambit_arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out) {
  char msg[160];
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) {
    snprintf(msg, sizeof msg, "%s must be a number", what);
    ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (d != d || d < (double)min || d > (double)max || d != (double)(int64_t)d) {
    snprintf(msg, sizeof msg, "%s must be an integer in [%lld, %lld]", what, (long long)min, (long long)max);
    ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool ambit_arg_fd(napi_env env, size_t argc, napi_value *argv, size_t i, int *fd) {
  int64_t v;
  if (i >= argc) {
    ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "fd must be a number");
    return false;
  }
  if (!ambit_arg_int(env, argv[i], "fd", 0, 0x7fffffff, &v)) return false;
  *fd = (int)v;
  return true;
}

/* Optional property: *present=false when missing/undefined/null. */
static bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present) {
  bool has = false;
  napi_has_named_property(env, obj, key, &has);
  *present = false;
  if (!has) return true;
  napi_get_named_property(env, obj, key, out);
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  *present = !(t == napi_undefined || t == napi_null);
  return true;
}

static bool opt_int(napi_env env, napi_value obj, const char *key, int64_t min, int64_t max, int64_t dflt, int64_t *out, bool *present) {
  napi_value v;
  bool p;
  get_prop(env, obj, key, &v, &p);
  if (present) *present = p;
  if (!p) {
    *out = dflt;
    return true;
  }
  return ambit_arg_int(env, v, key, min, max, out);
}

static bool opt_bool(napi_env env, napi_value obj, const char *key, bool *out) {
  napi_value v;
  bool p;
  get_prop(env, obj, key, &v, &p);
  *out = false;
  if (!p) return true;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_boolean) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a boolean", key);
    ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  napi_get_value_bool(env, v, out);
  return true;
}

static bool opt_string(napi_env env, napi_value obj, const char *key, char *buf, size_t len, bool *present) {
  napi_value v;
  get_prop(env, obj, key, &v, present);
  buf[0] = 0;
  if (!*present) return true;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", key);
    ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  size_t n = 0;
  napi_get_value_string_utf8(env, v, buf, len, &n);
  if (n + 1 >= len) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long", key);
    ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  return true;
}

static napi_value make_u32(napi_env env, uint32_t v) {
  napi_value out;
  napi_create_uint32(env, v, &out);
  return out;
}

static napi_value undefined(napi_env env) {
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

/* ---------- getOriginalDst ---------- */

static napi_value get_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;

  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) return throw_errno(env, errno, "getsockname", NULL);

  char text[INET6_ADDRSTRLEN];
  uint16_t port;
  const char *family;
  bool v6 = local.ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr);
  if (v6) {
    struct sockaddr_in6 dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, errno, "getsockopt", "IP6T_SO_ORIGINAL_DST (was the connection redirected by ip6tables?)");
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    port = ntohs(dst.sin6_port);
    family = "IPv6";
  } else if (local.ss_family == AF_INET || local.ss_family == AF_INET6) {
    /* AF_INET, or an IPv4 connection accepted on a dual-stack IPv6 socket (v4-mapped). */
    struct sockaddr_in dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, errno, "getsockopt", "SO_ORIGINAL_DST (was the connection redirected by iptables?)");
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    port = ntohs(dst.sin_port);
    family = "IPv4";
  } else {
    return throw_errno(env, EAFNOSUPPORT, "getsockopt", "SO_ORIGINAL_DST needs an IPv4 or IPv6 socket");
  }

  napi_value out, addr_v, port_v, fam_v;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &addr_v);
  napi_create_uint32(env, port, &port_v);
  napi_create_string_utf8(env, family, NAPI_AUTO_LENGTH, &fam_v);
  napi_set_named_property(env, out, "address", addr_v);
  napi_set_named_property(env, out, "port", port_v);
  napi_set_named_property(env, out, "family", fam_v);
  return out;
}

/* ---------- SO_MARK ---------- */

static napi_value set_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  int64_t mark;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  if (argc < 2) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "mark must be a number");
  if (!ambit_arg_int(env, argv[1], "mark", 0, 0xffffffffLL, &mark)) return NULL;
  uint32_t m = (uint32_t)mark;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m) != 0) return throw_errno(env, errno, "setsockopt", "SO_MARK");
  return undefined(env);
}

static napi_value get_mark(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  uint32_t m = 0;
  socklen_t len = sizeof m;
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &m, &len) != 0) return throw_errno(env, errno, "getsockopt", "SO_MARK");
  return make_u32(env, m);
}

/* ---------- netns fds ---------- */

static napi_value open_netns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t != napi_string) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
  char path[4096];
  size_t n = 0;
  napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n);
  if (n + 1 >= sizeof path) return ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "path is too long");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open", path);
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (!ambit_arg_fd(env, argc, argv, 0, &fd)) return NULL;
  /* On Linux the fd is released even when close() reports EINTR: never retry. */
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, errno, "close", NULL);
  return undefined(env);
}

/* ---------- makeSocket ---------- */

typedef struct {
  int family; /* AF_INET or AF_INET6 */
  int netns_fd;
  bool has_mark;
  uint32_t mark;
  bool reuse_addr, reuse_port, transparent, freebind, v6only, has_v6only;
  bool bind;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  bool listen;
  int backlog;
  bool dgram; /* SOCK_DGRAM (UDP) instead of SOCK_STREAM */
} socket_opts_t;

static bool parse_socket_opts(napi_env env, napi_value obj, socket_opts_t *o) {
  int64_t v;
  bool present;
  memset(o, 0, sizeof *o);

  if (!opt_int(env, obj, "family", 4, 6, 0, &v, &present)) return false;
  if (!present || (v != 4 && v != 6)) {
    ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "family must be 4 or 6");
    return false;
  }
  o->family = v == 4 ? AF_INET : AF_INET6;
  if (!opt_int(env, obj, "netnsFd", -1, 0x7fffffff, -1, &v, NULL)) return false;
  o->netns_fd = (int)v;
  if (!opt_int(env, obj, "mark", 0, 0xffffffffLL, 0, &v, &o->has_mark)) return false;
  o->mark = (uint32_t)v;
  if (!opt_bool(env, obj, "reuseAddr", &o->reuse_addr)) return false;
  if (!opt_bool(env, obj, "reusePort", &o->reuse_port)) return false;
  if (!opt_bool(env, obj, "transparent", &o->transparent)) return false;
  if (!opt_bool(env, obj, "freebind", &o->freebind)) return false;
  {
    napi_value tmp;
    get_prop(env, obj, "v6Only", &tmp, &o->has_v6only);
    if (!opt_bool(env, obj, "v6Only", &o->v6only)) return false;
  }

  char host[INET6_ADDRSTRLEN + 1];
  bool has_host, has_port;
  if (!opt_string(env, obj, "bindAddress", host, sizeof host, &has_host)) return false;
  if (!opt_int(env, obj, "bindPort", 0, 65535, 0, &v, &has_port)) return false;
  o->bind = has_host || has_port;
  if (o->bind) {
    if (o->family == AF_INET) {
      struct sockaddr_in *sin = (struct sockaddr_in *)&o->addr;
      sin->sin_family = AF_INET;
      sin->sin_port = htons((uint16_t)v);
      if (has_host && inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "bindAddress must be an IPv4 address for family 4");
        return false;
      }
      o->addr_len = sizeof *sin;
    } else {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o->addr;
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons((uint16_t)v);
      if (has_host && inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
        ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "bindAddress must be an IPv6 address for family 6");
        return false;
      }
      o->addr_len = sizeof *sin6;
    }
  }
  if (!opt_bool(env, obj, "listen", &o->listen)) return false;
  if (!opt_bool(env, obj, "dgram", &o->dgram)) return false;
  if (o->dgram && o->listen) {
    ambit_throw_type(env, "ERR_INVALID_ARG_VALUE", "a datagram socket cannot listen");
    return false;
  }
  if (!opt_int(env, obj, "backlog", 0, 65535, 511, &v, NULL)) return false;
  o->backlog = (int)v;
  return true;
}

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

/* Applies options, bind and listen; returns 0, or an errno with *what naming the step. */
static int configure_socket(int fd, const socket_opts_t *o, const char **syscall, const char **what) {
  bool v6 = o->family == AF_INET6;
  *syscall = "setsockopt";
  if (o->has_mark) {
    *what = "SO_MARK";
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &o->mark, sizeof o->mark) != 0) return errno;
  }
  if (o->reuse_addr) {
    *what = "SO_REUSEADDR";
    if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0) return errno;
  }
  if (o->reuse_port) {
    *what = "SO_REUSEPORT";
    if (set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0) return errno;
  }
  if (o->transparent) {
    *what = v6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT";
    if (set_int_opt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, 1) != 0) return errno;
  }
  if (o->freebind) {
    *what = v6 ? "IPV6_FREEBIND" : "IP_FREEBIND";
    if (set_int_opt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_FREEBIND : IP_FREEBIND, 1) != 0) return errno;
  }
  if (v6 && o->has_v6only) {
    *what = "IPV6_V6ONLY";
    if (set_int_opt(fd, SOL_IPV6, IPV6_V6ONLY, o->v6only ? 1 : 0) != 0) return errno;
  }
  if (o->bind) {
    *syscall = "bind";
    *what = NULL;
    if (bind(fd, (const struct sockaddr *)&o->addr, o->addr_len) != 0) return errno;
  }
  if (o->listen) {
    *syscall = "listen";
    *what = NULL;
    if (listen(fd, o->backlog) != 0) return errno;
  }
  return 0;
}

static napi_value make_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t != napi_object) return ambit_throw_type(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  socket_opts_t o;
  if (!parse_socket_opts(env, argv[0], &o)) return NULL;

  instance_t *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);

  int fd, err = 0;
  if (o.netns_fd >= 0) {
    if (!inst || inst->home_netns_fd < 0)
      return throw_errno(env, inst ? inst->home_netns_errno : ENOENT, "open", "/proc/thread-self/ns/net (needed to come back after setns)");
    if (setns(o.netns_fd, CLONE_NEWNET) != 0) return throw_errno(env, errno, "setns", "entering the target network namespace");
    fd = socket(o.family, (o.dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) err = errno;
    if (setns(inst->home_netns_fd, CLONE_NEWNET) != 0) {
      static const char msg[] =
          "could not return this thread to its own network namespace after creating a socket in another; "
          "aborting, since every later socket would be created in the wrong namespace";
      napi_fatal_error("ambit_native makeSocket", NAPI_AUTO_LENGTH, msg, NAPI_AUTO_LENGTH);
    }
  } else {
    fd = socket(o.family, (o.dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) err = errno;
  }
  if (fd < 0) return throw_errno(env, err, "socket", NULL);

  const char *syscall = NULL, *what = NULL;
  err = configure_socket(fd, &o, &syscall, &what);
  if (err) {
    close(fd);
    return throw_errno(env, err, syscall, what);
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

/* ---------- shared with ambit_fdpass.c ---------- */

napi_value ambit_throw_errno(napi_env env, int err, const char *syscall, const char *detail) {
  return throw_errno(env, err, syscall, detail);
}

/* The fd of the netns the addon was loaded in, or -1 with *err set. */
int ambit_home_netns_fd(napi_env env, int *err) {
  instance_t *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);
  if (!inst) {
    *err = ENOENT;
    return -1;
  }
  *err = inst->home_netns_errno;
  return inst->home_netns_fd;
}

void ambit_fdpass_init(napi_env env, napi_value exports);

/* ---------- module ---------- */

static void finalize_instance(napi_env env, void *data, void *hint) {
  instance_t *inst = data;
  if (inst->home_netns_fd >= 0) close(inst->home_netns_fd);
  free(inst);
}

static napi_value init(napi_env env, napi_value exports) {
  instance_t *inst = calloc(1, sizeof *inst);
  if (!inst) {
    napi_throw_error(env, "ENOMEM", "ambit_native: out of memory");
    return NULL;
  }
  inst->home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  inst->home_netns_errno = inst->home_netns_fd < 0 ? errno : 0;
  napi_set_instance_data(env, inst, finalize_instance, NULL);

  napi_property_descriptor props[] = {
      {"getOriginalDst", NULL, get_original_dst, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMark", NULL, set_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getMark", NULL, get_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openNetns", NULL, open_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"makeSocket", NULL, make_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"abiVersion", NULL, NULL, NULL, NULL, make_u32(env, AMBIT_NATIVE_ABI_VERSION), napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  ambit_fdpass_init(env, exports); /* SEQPACKET, SCM_RIGHTS, uv_poll, fd facts */
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
