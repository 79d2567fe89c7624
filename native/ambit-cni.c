/*
 * ambit-cni: Ambit's chained CNI plugin (CNI spec 1.0.0). A container runtime runs it after
 * the plugins that make the pod's interface; it forwards the call to the node agent over the
 * agent's unix socket and prints the agent's answer (the prevResult unchanged on ADD, the
 * spec's error JSON on failure). All decisions are the agent's (src/nodeagent/cni-handler.ts);
 * the wire is src/cni/plugin-wire.ts.
 *
 * Why C and not a Node.js entry: a runtime runs a plugin once per pod sandbox and waits for
 * it. Node.js 24 takes ~90 ms to start on the project's 2-core machines before any work; this
 * binary starts in ~1 ms, so ADD costs what the agent does (see ARCHITECTURE.md, "CNI").
 *
 * Invariants:
 *  - VERSION is answered here, without the agent.
 *  - The agent's socket is the network configuration's top-level string "agent_socket". The
 *    only JSON this file reads is that string and "cniVersion" (a small scanner that walks
 *    the top-level object and skips every other value, strings with escapes included).
 *  - When the agent cannot be reached: DEL succeeds (a DEL must succeed for containers the
 *    plugin never saw, and the agent cleans up pods it missed when it returns); ADD and
 *    CHECK fail with code 11 (try again later), so no pod starts uncaptured.
 *  - Bounded: stdin and the answer are each at most 1 MiB; the agent has 60 s to answer.
 *  - Exit codes: 0 success, 1 error (with the error JSON on stdout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES (1024 * 1024)
#define ANSWER_TIMEOUT_MS 60000
#define SPEC_VERSION "1.0.0"

static const char *VERSION_JSON = "{\"cniVersion\":\"%s\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\"]}\n";
static const char *ENV_NAMES[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};

static char version[32] = SPEC_VERSION;

/* Writes s as a JSON string body (no quotes) to stdout. */
static void json_escaped(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
}

static int fail(int code, const char *msg, const char *details) {
  printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"", version, code);
  json_escaped(msg);
  printf("\"");
  if (details && *details) {
    printf(",\"details\":\"");
    json_escaped(details);
    printf("\"");
  }
  printf("}\n");
  fflush(stdout);
  return 1;
}

/* ---------- a scanner for two top-level string fields ---------- */

typedef struct {
  const char *p, *end;
} scan_t;

static void ws(scan_t *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Reads a JSON string at s->p; copies it (simple escapes decoded) into out when out != NULL. */
static bool str(scan_t *s, char *out, size_t cap) {
  if (s->p >= s->end || *s->p != '"') return false;
  s->p++;
  size_t n = 0;
  while (s->p < s->end) {
    char c = *s->p++;
    if (c == '"') {
      if (out) out[n < cap ? n : cap - 1] = 0;
      return true;
    }
    if (c == '\\') {
      if (s->p >= s->end) return false;
      char e = *s->p++;
      if (e == 'u') {
        if (s->end - s->p < 4) return false;
        s->p += 4;
        c = '?';
      } else {
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
      }
    }
    if (out && n + 1 < cap) out[n++] = c;
  }
  return false;
}

static bool value(scan_t *s, int depth) {
  ws(s);
  if (s->p >= s->end || depth > 64) return false;
  char c = *s->p;
  if (c == '"') return str(s, NULL, 0);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
      s->p++;
      return true;
    }
    for (;;) {
      if (c == '{') {
        ws(s);
        if (!str(s, NULL, 0)) return false;
        ws(s);
        if (s->p >= s->end || *s->p != ':') return false;
        s->p++;
      }
      if (!value(s, depth + 1)) return false;
      ws(s);
      if (s->p >= s->end) return false;
      if (*s->p == ',') {
        s->p++;
        continue;
      }
      if (*s->p == close) {
        s->p++;
        return true;
      }
      return false;
    }
  }
  /* number, true, false, null */
  const char *start = s->p;
  while (s->p < s->end && !strchr(",}] \t\r\n", *s->p)) s->p++;
  return s->p > start;
}

/* Finds the top-level string fields "agent_socket" and "cniVersion". */
static bool scan_config(const char *buf, size_t len, char *sock, size_t sock_cap, char *ver, size_t ver_cap) {
  scan_t s = {buf, buf + len};
  sock[0] = 0;
  ws(&s);
  if (s.p >= s.end || *s.p != '{') return false;
  s.p++;
  ws(&s);
  if (s.p < s.end && *s.p == '}') return true;
  for (;;) {
    char key[64];
    ws(&s);
    if (!str(&s, key, sizeof key)) return false;
    ws(&s);
    if (s.p >= s.end || *s.p != ':') return false;
    s.p++;
    ws(&s);
    if (strcmp(key, "agent_socket") == 0 && s.p < s.end && *s.p == '"') {
      if (!str(&s, sock, sock_cap)) return false;
    } else if (strcmp(key, "cniVersion") == 0 && s.p < s.end && *s.p == '"') {
      char v[32];
      if (!str(&s, v, sizeof v)) return false;
      bool ok = v[0] != 0;
      for (char *q = v; *q; q++) ok = ok && ((*q >= '0' && *q <= '9') || *q == '.');
      if (ok) snprintf(ver, ver_cap, "%s", v);
    } else if (!value(&s, 1)) {
      return false;
    }
    ws(&s);
    if (s.p < s.end && *s.p == ',') {
      s.p++;
      continue;
    }
    return s.p < s.end && *s.p == '}';
  }
}

/* ---------- I/O ---------- */

static char *read_stdin(size_t *len) {
  char *buf = malloc(MAX_BYTES + 1);
  if (!buf) return NULL;
  size_t n = 0;
  for (;;) {
    ssize_t r = read(0, buf + n, MAX_BYTES + 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (n > MAX_BYTES) break;
  }
  *len = n;
  return buf;
}

static bool write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

static bool field(int fd, const char *name, const char *v, size_t len) {
  char head[96];
  int h = snprintf(head, sizeof head, "%s %zu\n", name, len);
  return write_all(fd, head, (size_t)h) && write_all(fd, v, len) && write_all(fd, "\n", 1);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(void) {
  const char *command = getenv("CNI_COMMAND");
  size_t in_len = 0;
  char *in = read_stdin(&in_len);
  if (!in) return fail(5, "out of memory", NULL);
  char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  bool config_ok = in_len <= MAX_BYTES && scan_config(in, in_len, sock_path, sizeof sock_path, version, sizeof version);

  if (!command || !*command) return fail(4, "CNI_COMMAND is not set", NULL);
  if (strcmp(command, "VERSION") == 0) {
    printf(VERSION_JSON, version);
    return 0;
  }
  bool del = strcmp(command, "DEL") == 0;
  if (in_len > MAX_BYTES) return fail(6, "the network configuration on stdin is larger than 1 MiB", NULL);
  if (!config_ok) {
    /* The agent explains a bad configuration better; without its socket, say what we can. */
    return fail(6, "the network configuration on stdin is not a JSON object", NULL);
  }
  if (!sock_path[0]) {
    if (del) return 0;
    return fail(7, "the network configuration has no \"agent_socket\" (the node agent's socket path)", NULL);
  }
  if (strlen(sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return fail(7, "\"agent_socket\" is too long for a unix socket path", sock_path);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return del ? 0 : fail(5, "cannot create a unix socket", strerror(errno));
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, sock_path, strlen(sock_path));
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    char details[512];
    snprintf(details, sizeof details, "connect %s: %s", sock_path, strerror(errno));
    if (del) return 0;
    return fail(11, "the Ambit node agent is not reachable on this node; try again later", details);
  }

  bool ok = write_all(fd, "AMBIT-CNI/1\n", 12);
  for (size_t i = 0; ok && i < sizeof ENV_NAMES / sizeof ENV_NAMES[0]; i++) {
    const char *v = getenv(ENV_NAMES[i]);
    if (v) ok = field(fd, ENV_NAMES[i], v, strlen(v));
  }
  ok = ok && field(fd, "STDIN", in, in_len) && write_all(fd, "END\n", 4);
  shutdown(fd, SHUT_WR);
  if (!ok) return del ? 0 : fail(11, "the node agent closed the connection before reading the request", strerror(errno));

  char *out = malloc(MAX_BYTES + 1);
  if (!out) return fail(5, "out of memory", NULL);
  size_t n = 0;
  long deadline = now_ms() + ANSWER_TIMEOUT_MS;
  for (;;) {
    long left = deadline - now_ms();
    if (left <= 0) return del ? 0 : fail(11, "the node agent did not answer within 60 s", NULL);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t r = read(fd, out + n, MAX_BYTES - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return del ? 0 : fail(11, "reading the node agent's answer failed", strerror(errno));
    if (r == 0) break;
    n += (size_t)r;
    if (n >= MAX_BYTES) return fail(5, "the node agent's answer is larger than 1 MiB", NULL);
  }
  close(fd);
  out[n] = 0;
  char *nl = memchr(out, '\n', n);
  if (!nl || nl == out || nl - out > 3) return del ? 0 : fail(11, "the node agent's answer is malformed", NULL);
  int code = 0;
  for (char *q = out; q < nl; q++) {
    if (*q < '0' || *q > '9') return del ? 0 : fail(11, "the node agent's answer is malformed", NULL);
    code = code * 10 + (*q - '0');
  }
  if (!write_all(1, nl + 1, n - (size_t)(nl + 1 - out))) return 1;
  return code > 255 ? 1 : code;
}
