/*
 * The floor of a WebSocket fan-out (issue 15): a program that does nothing but what a fan-out costs the kernel.
 * It writes one pre-framed WebSocket text frame per delivery, with one write() per socket, to loopback TCP
 * sockets that other processes (the bench's load-generator workers) drain. The bench measures its CPU time
 * per delivery exactly as it does for the servers.
 *
 * Build:  cc -O2 -o floor bench/floor/floor.c        (C99 + POSIX; Linux for prctl, elsewhere without it)
 * Run:    floor [--port N]                          (default port 0: the kernel picks one)
 *
 * Control, over stdin and stdout, one line each:
 *   stdout  "listening <port>"                 once the socket listens on 127.0.0.1:<port>
 *   stdin   "run <rooms> <viewers> <syncHz> <chatHz> <seconds> [syncBytes] [chatBytes]"
 *           waits (at most 60 s, still accepting) until rooms 0..rooms-1 each have a host and at least
 *           <viewers> viewers, then runs the schedule below; payload sizes default to 200 bytes.
 *   stdout  one JSON object: {"syncs","chats","frames","bytes","shortWrites","eagain","writeErrors",
 *           "userUs","sysUs","wallUs","wakeups","maxLagUs","meanLagUs"} (getrusage of the run), or
 *           {"error":"..."}. Further "run" lines may follow on the same connections.
 *   stdin   "quit" or end of file: exit. SIGTERM exits too; on Linux the program dies with its parent
 *           (PR_SET_PDEATHSIG), so it never outlives the bench.
 *
 * Connections (RFC 6455 handshake, answered with 101 and Sec-WebSocket-Accept):
 *   GET /floor?room=R&role=host|viewer   a member of room R (0-based) at once; nothing else is sent.
 *   GET /ws?userId=...                   the bench's JSON protocol, as far as the load generator uses it:
 *       the floor sends {"type":"connected",...}; the client's requests {"type":"create_room","id":..}
 *       (makes the next room, the sender its host, replies {"room":{"id":"floor-R"}}) and
 *       {"type":"join_room","id":..,"data":{"roomId":"floor-R"}} (the sender becomes a viewer of R) are
 *       answered with a frame carrying "replyTo". So bench/loadgen/worker.ts's `hosts` and `viewers`
 *       commands populate the floor unchanged, and its viewers time the floor's frames like any server's.
 *   Client frames are read only before a run (handshake and requests); nothing is read during a run
 *   (clients send nothing then: the floor sends no pings), and unread bytes only sit in the kernel.
 *
 * The schedule is the bench's (drive() in bench/loadgen/worker.ts): room i of n syncs at
 *   start + (k + i/n) / syncHz   to its viewers (not the host), and chats at
 *   start + (k + i/n) / chatHz + 1 / (2 syncHz)   to every member including the host,
 * for times before start + seconds, start being 5 ms after the run command. Each sync or chat is ONE frame
 * (2- or 4-byte header + payload) built once when it is due, then written with one write() per socket.
 * Payloads are JSON text carrying the bench's timing marker ~S<us>~ or ~C<us>~ (CLOCK_MONOTONIC
 * microseconds, the clock of nowUs() in bench/lib/histogram.ts), padded to syncBytes/chatBytes.
 * Between events the program sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME). Sockets have
 * TCP_NODELAY and are non-blocking: a short write or EAGAIN is counted, then the rest is written after
 * poll(POLLOUT), so nothing is lost; a failed write (peer gone) is counted in writeErrors.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* ---------- SHA-1 (FIPS 180-1) and base64, for Sec-WebSocket-Accept ---------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
  uint32_t h[5] = { 0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u };
  size_t total = ((len + 8) / 64 + 1) * 64;
  unsigned char *buf = calloc(total, 1);
  if (buf == NULL) abort();
  memcpy(buf, msg, len);
  buf[len] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
  for (size_t chunk = 0; chunk < total; chunk += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
      const unsigned char *p = buf + chunk + 4 * i;
      w[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    }
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999u; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1u; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
      else { f = b ^ c ^ d; k = 0xCA62C1D6u; }
      uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
  }
  free(buf);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (unsigned char)(h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(h[i] >> 8);
    out[4 * i + 3] = (unsigned char)h[i];
  }
}

static void base64(const unsigned char *in, size_t len, char *out) {
  static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    out[o++] = table[(v >> 18) & 63];
    out[o++] = table[(v >> 12) & 63];
    out[o++] = i + 1 < len ? table[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? table[v & 63] : '=';
  }
  out[o] = '\0';
}

/* ---------- connections and rooms ---------- */

enum { HANDSHAKE, JSON_PROTOCOL, MEMBER, CLOSED };

typedef struct {
  int fd;
  int state;
  size_t len, cap;
  unsigned char *in; /* bytes read and not yet consumed (handshake, client frames) */
} Conn;

typedef struct {
  int host; /* fd, or -1 */
  int *viewers;
  int count, cap;
} Room;

static Conn **conns;  /* indexed by fd */
static int conns_cap;
static int *pending;  /* fds still being read (not yet members), with the listener and stdin polled too */
static int npending, pending_cap;
static Room *rooms;
static int nrooms, rooms_cap;
static int next_created; /* the room index the next create_room makes */

static void *grow(void *p, int *cap, int need, size_t size) {
  if (need <= *cap) return p;
  int n = *cap == 0 ? 64 : *cap;
  while (n < need) n *= 2;
  void *q = realloc(p, (size_t)n * size);
  if (q == NULL) abort();
  memset((char *)q + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
  *cap = n;
  return q;
}

static Room *room_at(int index) {
  if (index >= nrooms) {
    rooms = grow(rooms, &rooms_cap, index + 1, sizeof(Room));
    for (int i = nrooms; i <= index; i++) rooms[i].host = -1;
    nrooms = index + 1;
  }
  return &rooms[index];
}

static void room_add(int index, int fd, int host) {
  Room *r = room_at(index);
  if (host) {
    r->host = fd;
  } else {
    r->viewers = grow(r->viewers, &r->cap, r->count + 1, sizeof(int));
    r->viewers[r->count++] = fd;
  }
}

static void pending_remove(int fd) {
  for (int i = 0; i < npending; i++) {
    if (pending[i] == fd) {
      pending[i] = pending[--npending];
      return;
    }
  }
}

static void conn_close(Conn *c) {
  pending_remove(c->fd);
  /* A member that leaves stays in its room's list: its writes then fail and count as writeErrors. */
  if (c->state != MEMBER) {
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->in);
    free(c);
  } else {
    c->state = CLOSED;
  }
}

/* Blocking-equivalent write on a non-blocking socket: counts short writes and EAGAIN, loses nothing. */
static unsigned long long short_writes, eagain, write_errors;

static int write_all(int fd, const unsigned char *buf, size_t len) {
  size_t off = 0;
  for (;;) {
    ssize_t n = write(fd, buf + off, len - off);
    if (n == (ssize_t)(len - off)) return 0;
    if (n >= 0) {
      short_writes++;
      off += (size_t)n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      eagain++;
      struct pollfd p = { fd, POLLOUT, 0 };
      if (poll(&p, 1, 10000) <= 0) { write_errors++; return -1; }
      continue;
    }
    write_errors++;
    return -1;
  }
}

/* A server-to-client frame (FIN, opcode text, unmasked) around `payload`; returns the header length. */
static size_t frame_header(unsigned char *out, size_t length) {
  out[0] = 0x81;
  if (length < 126) { out[1] = (unsigned char)length; return 2; }
  if (length < 65536) { out[1] = 126; out[2] = (unsigned char)(length >> 8); out[3] = (unsigned char)length; return 4; }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (unsigned char)((uint64_t)length >> (8 * (7 - i)));
  return 10;
}

static int send_text(int fd, const char *text) {
  size_t length = strlen(text);
  unsigned char *frame = malloc(length + 10);
  if (frame == NULL) abort();
  size_t h = frame_header(frame, length);
  memcpy(frame + h, text, length);
  int r = write_all(fd, frame, h + length);
  free(frame);
  return r;
}

/* The string value of "key" in a flat JSON text (enough for the load generator's requests), or 0. */
static int json_string(const char *json, const char *key, char *out, size_t cap) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *p = strstr(json, pattern);
  if (p == NULL) return 0;
  p += strlen(pattern);
  while (*p == ' ') p++;
  if (*p != '"') return 0;
  p++;
  size_t n = 0;
  while (*p != '\0' && *p != '"' && n + 1 < cap) out[n++] = *p++;
  out[n] = '\0';
  return *p == '"';
}

static void on_request(Conn *c, char *text) {
  char type[64], id[64], reply[256];
  if (!json_string(text, "type", type, sizeof type)) return;
  if (!json_string(text, "id", id, sizeof id)) return; /* fire-and-forget: nothing to answer */
  if (strcmp(type, "create_room") == 0) {
    int index = next_created++;
    room_add(index, c->fd, 1);
    c->state = MEMBER;
    snprintf(reply, sizeof reply, "{\"type\":\"room_created\",\"replyTo\":\"%s\",\"data\":{\"room\":{\"id\":\"floor-%d\"}}}", id, index);
  } else if (strcmp(type, "join_room") == 0) {
    char roomId[64];
    int index = -1;
    if (json_string(text, "roomId", roomId, sizeof roomId) && strncmp(roomId, "floor-", 6) == 0) index = atoi(roomId + 6);
    if (index < 0 || index >= nrooms || rooms[index].host < 0) {
      snprintf(reply, sizeof reply, "{\"type\":\"error\",\"replyTo\":\"%s\",\"data\":{\"code\":\"ROOM_NOT_FOUND\"}}", id);
    } else {
      room_add(index, c->fd, 0);
      c->state = MEMBER;
      snprintf(reply, sizeof reply, "{\"type\":\"room_joined\",\"replyTo\":\"%s\",\"data\":{\"roomId\":\"floor-%d\"}}", id, index);
    }
  } else {
    snprintf(reply, sizeof reply, "{\"type\":\"error\",\"replyTo\":\"%s\",\"data\":{\"code\":\"UNSUPPORTED\"}}", id);
  }
  send_text(c->fd, reply);
}

/* Consumes complete client frames (masked) from c->in; returns -1 when the connection should close. */
static int read_frames(Conn *c) {
  size_t off = 0;
  while (c->len - off >= 2) {
    unsigned char *p = c->in + off;
    int opcode = p[0] & 0x0f;
    int masked = (p[1] & 0x80) != 0;
    uint64_t length = p[1] & 0x7f;
    size_t header = 2;
    if (length == 126) {
      if (c->len - off < 4) break;
      length = ((uint64_t)p[2] << 8) | p[3];
      header = 4;
    } else if (length == 127) {
      if (c->len - off < 10) break;
      length = 0;
      for (int i = 0; i < 8; i++) length = (length << 8) | p[2 + i];
      header = 10;
    }
    if (length > (1u << 20)) return -1;
    size_t mask_at = header;
    if (masked) header += 4;
    if (c->len - off < header + length) break;
    unsigned char *payload = p + header;
    if (masked) for (uint64_t i = 0; i < length; i++) payload[i] ^= p[mask_at + (i & 3)];
    if (opcode == 0x8) return -1;
    if (opcode == 0x1 && c->state == JSON_PROTOCOL) {
      char *text = malloc(length + 1);
      if (text == NULL) abort();
      memcpy(text, payload, length);
      text[length] = '\0';
      on_request(c, text);
      free(text);
    }
    off += header + length;
  }
  memmove(c->in, c->in + off, c->len - off);
  c->len -= off;
  return 0;
}

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* The handshake once the request's head is complete; returns -1 to close. */
static int handshake(Conn *c, size_t head_end) {
  char *req = (char *)c->in;
  req[head_end] = '\0';
  char path[512];
  if (sscanf(req, "GET %511s HTTP/1.1", path) != 1) return -1;
  char key[128] = "";
  for (char *line = strstr(req, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
      char *v = line + 2 + 18;
      while (*v == ' ') v++;
      size_t n = 0;
      while (v[n] != '\r' && v[n] != '\0' && n + 1 < sizeof key) { key[n] = v[n]; n++; }
      key[n] = '\0';
      break;
    }
  }
  if (key[0] == '\0') {
    const char *bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    write_all(c->fd, (const unsigned char *)bad, strlen(bad));
    return -1;
  }
  unsigned char concat[256], digest[20];
  size_t klen = strlen(key);
  memcpy(concat, key, klen);
  memcpy(concat + klen, GUID, sizeof GUID - 1);
  sha1(concat, klen + sizeof GUID - 1, digest);
  char accept[32];
  base64(digest, 20, accept);
  char response[512];
  int n = snprintf(response, sizeof response,
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
  if (write_all(c->fd, (const unsigned char *)response, (size_t)n) < 0) return -1;
  /* The rest of the buffer (a client frame that came with the request) stays for read_frames. */
  size_t rest = c->len - (head_end + 4);
  memmove(c->in, c->in + head_end + 4, rest);
  c->len = rest;
  if (strncmp(path, "/floor", 6) == 0) {
    const char *r = strstr(path, "room=");
    const char *role = strstr(path, "role=");
    if (r == NULL || role == NULL) return -1;
    int index = atoi(r + 5);
    if (index < 0 || index > 1000000) return -1;
    room_add(index, c->fd, strncmp(role + 5, "host", 4) == 0);
    c->state = MEMBER;
    pending_remove(c->fd);
    return 0;
  }
  c->state = JSON_PROTOCOL;
  if (send_text(c->fd, "{\"type\":\"connected\",\"data\":{\"floor\":true}}") < 0) return -1;
  return read_frames(c);
}

static void on_readable(Conn *c) {
  for (;;) {
    if (c->cap - c->len < 4096) {
      c->cap = c->cap * 2 + 4096;
      c->in = realloc(c->in, c->cap);
      if (c->in == NULL) abort();
    }
    ssize_t n = read(c->fd, c->in + c->len, c->cap - c->len - 1);
    if (n == 0) { conn_close(c); return; }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      conn_close(c);
      return;
    }
    c->len += (size_t)n;
  }
  if (c->state == HANDSHAKE) {
    c->in[c->len] = '\0';
    char *end = strstr((char *)c->in, "\r\n\r\n");
    if (end == NULL) {
      if (c->len > 16384) conn_close(c);
      return;
    }
    if (handshake(c, (size_t)(end - (char *)c->in)) < 0) { conn_close(c); return; }
  } else if (c->state == JSON_PROTOCOL) {
    if (read_frames(c) < 0) { conn_close(c); return; }
  }
  /* A JSON-protocol member stops being polled: during a run nothing is read. */
  if (c->state == MEMBER) pending_remove(c->fd);
}

static void on_accept(int listener) {
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) return; /* EAGAIN, or out of files (EMFILE): the client sees the refusal */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns = grow(conns, &conns_cap, fd + 1, sizeof(Conn *));
    Conn *c = calloc(1, sizeof(Conn));
    if (c == NULL) abort();
    c->fd = fd;
    c->state = HANDSHAKE;
    conns[fd] = c;
    pending = grow(pending, &pending_cap, npending + 1, sizeof(int));
    pending[npending++] = fd;
  }
}

/* ---------- the schedule ---------- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t rusage_us(int user) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  struct timeval tv = user ? ru.ru_utime : ru.ru_stime;
  return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* The payload: {"type":"<type>","data":{"m":"~K<us>~","p":"xxx..."}} padded to exactly `size` bytes. */
static size_t build_frame(unsigned char *out, char kind, const char *type, size_t size) {
  char head[128];
  int64_t us = now_ns() / 1000;
  int n = snprintf(head, sizeof head, "{\"type\":\"%s\",\"data\":{\"m\":\"~%c%lld~\",\"p\":\"", type, kind, (long long)us);
  size_t tail = 3; /* "}} */
  size_t length = size > (size_t)n + tail ? size : (size_t)n + tail;
  size_t h = frame_header(out, length);
  memcpy(out + h, head, (size_t)n);
  memset(out + h + n, 'x', length - (size_t)n - tail);
  memcpy(out + h + length - tail, "\"}}", tail);
  return h + length;
}

typedef struct {
  int rooms, viewers;
  double sync_hz, chat_hz, seconds;
  size_t sync_bytes, chat_bytes;
} Run;

static void run_schedule(const Run *run) {
  const int n = run->rooms;
  const double sync_every = run->sync_hz > 0 ? 1e9 / run->sync_hz : 0;
  const double chat_every = run->chat_hz > 0 ? 1e9 / run->chat_hz : 0;
  const double chat_offset = run->sync_hz > 0 ? sync_every / 2 : 0;
  unsigned char *sync_frame = malloc(run->sync_bytes + 200);
  unsigned char *chat_frame = malloc(run->chat_bytes + 200);
  if (sync_frame == NULL || chat_frame == NULL) abort();
  short_writes = eagain = write_errors = 0;
  unsigned long long syncs = 0, chats = 0, frames = 0, bytes = 0, wakeups = 0;
  double lag_sum = 0, lag_max = 0;
  const int64_t user0 = rusage_us(1), sys0 = rusage_us(0);
  const int64_t start = now_ns() + 5000000;
  const double duration = run->seconds * 1e9;
  /* Both streams are in time order: cycle k, then room i; each stream's next event is (k, i). */
  long long sk = 0, ck = 0;
  int si = 0, ci = 0;
  for (;;) {
    double ts = sync_every > 0 ? ((double)sk + (double)si / n) * sync_every : duration;
    double tc = chat_every > 0 ? ((double)ck + (double)ci / n) * chat_every + chat_offset : duration;
    int is_sync = ts <= tc;
    double t = is_sync ? ts : tc;
    if (t >= duration) {
      /* This stream is done; the other may still have events. */
      if (is_sync && tc < duration) is_sync = 0, t = tc;
      else if (!is_sync && ts < duration) is_sync = 1, t = ts;
      else break;
    }
    int64_t due = start + (int64_t)t;
    int64_t now = now_ns();
    if (due > now) {
      struct timespec ts_due = { (time_t)(due / 1000000000), (long)(due % 1000000000) };
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts_due, NULL) == EINTR) {}
      wakeups++;
      now = now_ns();
    }
    double lag = (double)(now - due) / 1000.0;
    lag_sum += lag;
    if (lag > lag_max) lag_max = lag;
    if (is_sync) {
      Room *r = &rooms[si];
      size_t len = build_frame(sync_frame, 'S', "sync", run->sync_bytes);
      for (int v = 0; v < r->count; v++) {
        if (write_all(r->viewers[v], sync_frame, len) == 0) { frames++; bytes += len; }
      }
      syncs++;
      if (++si == n) { si = 0; sk++; }
    } else {
      Room *r = &rooms[ci];
      size_t len = build_frame(chat_frame, 'C', "chat", run->chat_bytes);
      if (write_all(r->host, chat_frame, len) == 0) { frames++; bytes += len; }
      for (int v = 0; v < r->count; v++) {
        if (write_all(r->viewers[v], chat_frame, len) == 0) { frames++; bytes += len; }
      }
      chats++;
      if (++ci == n) { ci = 0; ck++; }
    }
  }
  const int64_t wall = now_ns() - (start - 5000000);
  const int64_t user = rusage_us(1) - user0, sys = rusage_us(0) - sys0;
  unsigned long long events = syncs + chats;
  printf("{\"syncs\":%llu,\"chats\":%llu,\"frames\":%llu,\"bytes\":%llu,\"shortWrites\":%llu,\"eagain\":%llu,\"writeErrors\":%llu,"
         "\"userUs\":%lld,\"sysUs\":%lld,\"wallUs\":%lld,\"wakeups\":%llu,\"maxLagUs\":%.0f,\"meanLagUs\":%.1f}\n",
    syncs, chats, frames, bytes, short_writes, eagain, write_errors,
    (long long)user, (long long)sys, (long long)(wall / 1000), wakeups, lag_max, events == 0 ? 0.0 : lag_sum / (double)events);
  fflush(stdout);
  free(sync_frame);
  free(chat_frame);
}

/* Rooms 0..rooms-1 each have a host and at least `viewers` viewers. */
static int ready(const Run *run) {
  if (nrooms < run->rooms) return 0;
  for (int i = 0; i < run->rooms; i++) if (rooms[i].host < 0 || rooms[i].count < run->viewers) return 0;
  return 1;
}

/* ---------- main loop ---------- */

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else { fprintf(stderr, "usage: floor [--port N]\n"); return 2; }
  }
#ifdef __linux__
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1; /* the parent died before the prctl */
#endif
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) { perror("socket"); return 1; }
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
  if (listen(listener, 4096) < 0) { perror("listen"); return 1; }
  fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK);
  socklen_t alen = sizeof addr;
  getsockname(listener, (struct sockaddr *)&addr, &alen);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  char line[512];
  size_t line_len = 0;
  Run run;
  int waiting = 0;
  int64_t wait_until = 0;
  struct pollfd *fds = NULL;
  int fds_cap = 0;
  for (;;) {
    fds = grow(fds, &fds_cap, npending + 2, sizeof(struct pollfd));
    fds[0].fd = 0; fds[0].events = POLLIN; fds[0].revents = 0;
    fds[1].fd = listener; fds[1].events = POLLIN; fds[1].revents = 0;
    for (int i = 0; i < npending; i++) { fds[i + 2].fd = pending[i]; fds[i + 2].events = POLLIN; fds[i + 2].revents = 0; }
    int nfds = npending + 2;
    int r = poll(fds, (nfds_t)nfds, waiting ? 50 : 1000);
    if (r < 0 && errno != EINTR) { perror("poll"); return 1; }
    if (fds[0].revents != 0) {
      ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
      if (n <= 0) return 0; /* stdin closed: the bench is done with us */
      line_len += (size_t)n;
      line[line_len] = '\0';
      char *nl;
      while ((nl = strchr(line, '\n')) != NULL) {
        *nl = '\0';
        if (strncmp(line, "run ", 4) == 0) {
          memset(&run, 0, sizeof run);
          unsigned long sb = 200, cb = 200;
          int got = sscanf(line + 4, "%d %d %lf %lf %lf %lu %lu", &run.rooms, &run.viewers, &run.sync_hz, &run.chat_hz, &run.seconds, &sb, &cb);
          run.sync_bytes = sb > 1000000 ? 1000000 : sb;
          run.chat_bytes = cb > 1000000 ? 1000000 : cb;
          if (got < 5 || run.rooms < 1 || run.viewers < 0 || run.seconds <= 0) {
            printf("{\"error\":\"bad run line\"}\n");
            fflush(stdout);
          } else {
            waiting = 1;
            wait_until = now_ns() + (int64_t)60 * 1000000000;
          }
        } else if (strcmp(line, "quit") == 0) {
          return 0;
        }
        size_t used = (size_t)(nl - line) + 1;
        memmove(line, nl + 1, line_len - used + 1);
        line_len -= used;
      }
      if (line_len >= sizeof line - 1) line_len = 0;
    }
    if (fds[1].revents != 0) on_accept(listener);
    for (int i = 2; i < nfds; i++) {
      if (fds[i].revents == 0) continue;
      Conn *c = conns[fds[i].fd];
      if (c != NULL) on_readable(c);
    }
    if (waiting) {
      if (ready(&run)) {
        waiting = 0;
        run_schedule(&run);
      } else if (now_ns() > wait_until) {
        waiting = 0;
        int hosts = 0, viewers = 0;
        for (int i = 0; i < nrooms; i++) { hosts += rooms[i].host >= 0; viewers += rooms[i].count; }
        printf("{\"error\":\"only %d rooms (%d hosts, %d viewers) after 60 s\"}\n", nrooms, hosts, viewers);
        fflush(stdout);
      }
    }
  }
}
