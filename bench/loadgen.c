// An open-loop, rate-limited HTTP/1.1 load generator for bench/warm.ts, in the manner of wrk2 (which is not
// packaged here). It is C so that requests leave when they are due, with no GC pauses of its own: the Node
// generator it replaces released requests in 1 ms bursts (a Node timer's resolution), ~45 at once at 46 k/s.
//
// Method: request k is due at start + k / rate. The loop releases every due request and sends it on an idle
// keep-alive connection (one request at a time per connection, no pipelining); a released request that finds
// no idle connection waits in FIFO order for the next one. Latency runs from the request's DUE time, so a
// stalled server, a busy connection and the generator's own lateness are all charged to the request (no
// coordinated omission). The loop sleeps at most until the next due time and at least TICK_NS, so on time,
// requests leave in bursts of about rate * TICK_NS (5 at 48 000/s).
// A recorded response other than 200 counts as an error; `x-dirigent-cold-start` is counted when present.
// `lateReleases` counts recorded requests the loop itself released more than 1 ms after they were due: the
// generator's own share of the tail (0.1-1 % of requests on this machine, against the bare server too).
//
// WebSocket mode (bench/latency.ts): with a seventh argument `ws:FUNCTION`, every connection is upgraded at PATH
// (RFC 6455 handshake, blocking, when it opens) and a request is one masked text frame
// `{"id":1,"function":"FUNCTION"}`, the data plane's /ws API; its answer is the next whole frame. Same pacing and
// accounting as HTTP: one request at a time per connection. A reply with `"error"` or a `"status"` other than 200
// counts as an error; the bare server echoes the request (no status), which counts as answered.
//
// Build: cc -O2 -o loadgen bench/loadgen.c   (bench/children.ts does this)
// Usage: loadgen PORT PATH RATE DURATION_MS WARMUP_MS CONNECTIONS [ws:FUNCTION]   -> one JSON line on stdout.
//   Requests due in the first WARMUP_MS are sent but not recorded; then DURATION_MS are recorded.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 100000LL            // the shortest sleep of the loop, ns
#define GRACE_NS 2000000000LL       // after the last request is due, answers still count for this long, ns
#define LATE_NS 1000000LL           // a release later than this after the due time counts in lateReleases, ns
#define BUFFER_BYTES 16384          // one response must fit (they are a few hundred bytes)
#define MAX_EVENTS 256

typedef struct {
  int fd;
  int busy;
  int record;
  int64_t due;                      // due time of the request in flight, ns (CLOCK_MONOTONIC)
  size_t length;                    // bytes in buffer
  char buffer[BUFFER_BYTES];
} conn_t;

/** Idle connections, taken in FIFO order. */
typedef struct {
  conn_t **slots;
  int size, head, count;
} ring_t;

static void ring_push(ring_t *r, conn_t *c) { r->slots[(r->head + r->count++) % r->size] = c; }

static conn_t *ring_take(ring_t *r) {
  conn_t *c = r->slots[r->head];
  r->head = (r->head + 1) % r->size;
  r->count--;
  return c;
}

static int port;
static char request[1024];
static size_t request_length;
static int epoll_fd;
static int websocket;               // 1: WebSocket mode
static const char *ws_path;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void fail(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

/** The RFC 6455 handshake on a blocking socket; a fixed key (loopback: no proxy cache to protect). */
static void upgrade(int fd) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   ws_path, port);
  if (write(fd, head, (size_t)n) != n) fail("write (WebSocket handshake)");
  size_t got = 0;
  // Byte by byte up to the blank line, so that no frame after it is consumed here (none is sent before a request).
  while (got < sizeof head - 1) {
    ssize_t r = read(fd, head + got, 1);
    if (r <= 0) fail("read (WebSocket handshake)");
    got++;
    if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0) break;
  }
  if (got < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
    errno = EPROTO;
    fail("WebSocket handshake refused");
  }
}

static void open_conn(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) fail("socket");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) fail("connect");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (websocket) upgrade(c->fd);
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail("epoll_ctl");
  c->busy = 0;
  c->length = 0;
}

static void reopen_conn(conn_t *c) {
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  open_conn(c);
}

static void send_on(conn_t *c, int64_t due, int record) {
  // A request of ~80 bytes into an idle connection's empty send buffer is written whole. An idle connection
  // the server closed (whose end of stream is not read yet) is reopened, and the request sent again once.
  if (write(c->fd, request, request_length) != (ssize_t)request_length) {
    reopen_conn(c);
    if (write(c->fd, request, request_length) != (ssize_t)request_length) fail("write");
  }
  c->busy = 1;
  c->due = due;
  c->record = record;
}

/** The value of header `name` (lower case, colon included) in the head [head, end), or NULL. */
static const char *header(const char *head, const char *end, const char *name) {
  size_t n = strlen(name);
  for (const char *line = memchr(head, '\n', (size_t)(end - head)); line && line + 1 + n <= end;
       line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
    if (strncasecmp(line + 1, name, n) == 0) {
      const char *v = line + 1 + n;
      while (v < end && (*v == ' ' || *v == '\t')) v++;
      return v;
    }
  }
  return NULL;
}

static int compare_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/** The q-quantile (nearest rank) of n sorted latencies, ms; -1 when there are none. */
static double percentile_ms(const int64_t *sorted, int64_t n, double q) {
  if (n == 0) return -1.0;
  int64_t rank = (int64_t)(q * (double)n + 0.999999);
  return (double)sorted[rank < 1 ? 0 : rank - 1] / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 7 && !(argc == 8 && strncmp(argv[7], "ws:", 3) == 0 && strlen(argv[7]) < 90)) {
    fprintf(stderr, "usage: loadgen PORT PATH RATE DURATION_MS WARMUP_MS CONNECTIONS [ws:FUNCTION]\n");
    return 2;
  }
  port = atoi(argv[1]);
  const char *path = argv[2];
  double rate = atof(argv[3]);
  int64_t duration_ms = atoll(argv[4]), warmup_ms = atoll(argv[5]);
  int connections = atoi(argv[6]);
  if (port <= 0 || port > 65535 || path[0] != '/' || strlen(path) > 512 || rate <= 0 || duration_ms <= 0 ||
      warmup_ms < 0 || connections <= 0 || connections > 10000) {
    fprintf(stderr, "loadgen: bad arguments\n");
    return 2;
  }
  if (argc == 8) {
    websocket = 1;
    ws_path = path;
    char payload[256];
    int n = snprintf(payload, sizeof payload, "{\"id\":1,\"function\":\"%s\"}", argv[7] + 3);
    // A masked text frame (client frames must be masked); key 0x01020304.
    const unsigned char key[4] = {1, 2, 3, 4};
    request[0] = (char)0x81;
    request[1] = (char)(0x80 | n);
    memcpy(request + 2, key, 4);
    for (int i = 0; i < n; i++) request[6 + i] = (char)(payload[i] ^ key[i & 3]);
    request_length = (size_t)(6 + n);
  } else {
    request_length = (size_t)snprintf(request, sizeof request,
                                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 0\r\n\r\n", path, port);
  }

  signal(SIGPIPE, SIG_IGN);  // a write to a closed connection fails with EPIPE instead
  epoll_fd = epoll_create1(0);
  if (epoll_fd < 0) fail("epoll_create1");
  conn_t *conns = calloc((size_t)connections, sizeof(conn_t));
  // Idle connections in a ring, taken in FIFO order: every connection carries its share of the load, so none
  // sits idle long enough for the server's idle timeout (uWS: 10 s) at a low rate.
  ring_t idle = {.slots = calloc((size_t)connections, sizeof(conn_t *)), .size = connections};
  if (!conns || !idle.slots) fail("calloc");
  for (int i = 0; i < connections; i++) {
    open_conn(&conns[i]);
    ring_push(&idle, &conns[i]);
  }

  const int64_t total = (int64_t)((double)(warmup_ms + duration_ms) / 1000.0 * rate);
  const int64_t first_recorded = (int64_t)((double)warmup_ms / 1000.0 * rate);
  const int64_t recorded_total = total - first_recorded;
  int64_t *latencies = malloc(sizeof(int64_t) * (size_t)(recorded_total > 0 ? recorded_total : 1));
  if (!latencies) fail("malloc");
  // answered: recorded requests answered or failed; measured: those with a response (and a latency).
  int64_t answered = 0, measured = 0, errors = 0, cold_starts = 0, warm = 0, done = 0, late_releases = 0;
  const int64_t start = now_ns() + 5000000LL;
#define DUE(k) (start + (int64_t)((double)(k) * 1e9 / rate))
  // Requests [sent, released) wait for a connection; [released, total) are not yet due.
  int64_t released = 0, sent = 0;
  const int64_t grace_end = DUE(total) + GRACE_NS;
  struct epoll_event events[MAX_EVENTS];

  for (;;) {
    int64_t now = now_ns();
    for (; released < total && DUE(released) <= now; released++) {
      if (released >= first_recorded && now - DUE(released) > LATE_NS) late_releases++;
    }
    while (sent < released && idle.count > 0) {
      send_on(ring_take(&idle), DUE(sent), sent >= first_recorded);
      sent++;
    }
    if (done == total || now > grace_end) break;
    int64_t wait = released < total ? DUE(released) - now : GRACE_NS;
    if (wait < TICK_NS) wait = TICK_NS;
    struct timespec timeout = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    int n = epoll_pwait2(epoll_fd, events, MAX_EVENTS, &timeout, NULL);
    if (n < 0 && errno != EINTR) fail("epoll_pwait2");
    for (int i = 0; i < n; i++) {
      conn_t *c = events[i].data.ptr;
      ssize_t got = read(c->fd, c->buffer + c->length, BUFFER_BYTES - c->length);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0 || !c->busy) {
        // Closed by the server (or bytes nobody asked for): the request in flight failed. Reconnected in
        // place: an idle connection is still in the ring, a busy one goes back into it.
        int was_busy = c->busy;
        if (was_busy) {
          done++;
          if (c->record) answered++, errors++;
        }
        reopen_conn(c);
        if (was_busy) ring_push(&idle, c);
        continue;
      }
      c->length += (size_t)got;
      if (websocket) {
        if (c->length < 2) continue;
        size_t header_bytes = 2, payload = (unsigned char)c->buffer[1] & 0x7f;
        if (payload == 126) {
          if (c->length < 4) continue;
          header_bytes = 4;
          payload = ((size_t)(unsigned char)c->buffer[2] << 8) | (unsigned char)c->buffer[3];
        } else if (payload == 127) {
          fail("WebSocket reply too large");
        }
        size_t whole = header_bytes + payload;
        if (whole > BUFFER_BYTES) fail("WebSocket reply larger than the buffer");
        if (c->length < whole) continue;
        int64_t finished = now_ns();
        const char *body = c->buffer + header_bytes;
        const char *status = memmem(body, payload, "\"status\":", 9);
        int failed = memmem(body, payload, "\"error\"", 7) != NULL || (status && strncmp(status + 9, "200", 3) != 0);
        const char *cold = memmem(body, payload, "\"x-dirigent-cold-start\":\"", 25);
        if (c->record) {
          latencies[measured++] = finished - c->due;
          answered++;
          if (failed) errors++;
          if (cold && cold[25] == 't') cold_starts++;
          else if (cold && cold[25] == 'f') warm++;
        }
        done++;
        if (c->length != whole) fail("bytes after a WebSocket reply");
        c->length = 0;
        c->busy = 0;
        ring_push(&idle, c);
        continue;
      }
      char *end = memmem(c->buffer, c->length, "\r\n\r\n", 4);
      if (!end) {
        if (c->length == BUFFER_BYTES) fail("response head larger than the buffer");
        continue;
      }
      const char *length_value = header(c->buffer, end, "content-length:");
      size_t whole = (size_t)(end + 4 - c->buffer) + (length_value ? strtoul(length_value, NULL, 10) : 0);
      if (whole > BUFFER_BYTES) fail("response larger than the buffer");
      if (c->length < whole) continue;
      int64_t finished = now_ns();
      // `HTTP/1.1 200 ...`: three digits at 9.
      int status = c->length > 12 ? (c->buffer[9] - '0') * 100 + (c->buffer[10] - '0') * 10 + (c->buffer[11] - '0') : 0;
      const char *cold = header(c->buffer, end, "x-dirigent-cold-start:");
      if (c->record) {
        latencies[measured++] = finished - c->due;
        answered++;
        if (status != 200) errors++;
        if (cold && *cold == 't') cold_starts++;
        else if (cold && *cold == 'f') warm++;
      }
      done++;
      // One request at a time per connection: nothing may follow the response.
      if (c->length != whole) fail("bytes after a response");
      c->length = 0;
      c->busy = 0;
      ring_push(&idle, c);
    }
  }

  qsort(latencies, (size_t)measured, sizeof(int64_t), compare_i64);
#define PCT_MS(q) percentile_ms(latencies, measured, q)
  printf("{\"offeredRps\":%.0f,\"achievedRps\":%.0f,\"recorded\":%lld,\"p50Ms\":%.3f,\"p90Ms\":%.3f,\"p99Ms\":%.3f,"
         "\"p999Ms\":%.3f,\"maxMs\":%.3f,\"errors\":%lld,\"coldStarts\":%lld,\"warm\":%lld,\"unanswered\":%lld,"
         "\"lateReleases\":%lld}\n",
         rate, answered / ((double)duration_ms / 1000.0), (long long)answered, PCT_MS(0.5), PCT_MS(0.9), PCT_MS(0.99),
         PCT_MS(0.999), PCT_MS(1.0), (long long)errors, (long long)cold_starts, (long long)warm,
         (long long)(recorded_total - answered), (long long)late_releases);
  return 0;
}
