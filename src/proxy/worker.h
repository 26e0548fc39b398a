// The data path: one Worker per thread, each an epoll loop owning its client
// connections, its upstream connection pools and its buffers. Internal to
// src/proxy.
//
// A request's life: ClientConn reads and parses the head in place, routes it
// with the worker's copy of the routing table, takes a pooled UpstreamConn
// (or connects), forwards the head with one writev (original bytes minus
// hop-by-hop lines, plus X-Forwarded-*), then streams bodies both ways
// through two fixed buffers. No lock, no allocation in steady state.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/parser.h"
#include "proxy/loop.h"
#include "proxy/routing.h"
#include "proxy/send_batch.h"
#include "proxy/tls.h"

namespace md::proxy {

class Worker;
class ClientConn;
class UpstreamConn;

// State shared by the control plane and every worker.
struct Shared {
  Timeouts timeouts;
  Limits limits;
  int workers = 1;
  size_t buffer_size = 16 * 1024;

  // The current routing table: swapped under table_mu (control plane), then
  // generation is bumped; workers compare generations per request and take
  // the lock only when it changed.
  std::mutex table_mu;
  std::shared_ptr<const RouteTable> table;
  std::atomic<uint64_t> generation{0};

  bool batch_writes = true;  // Options::batch_writes
  std::atomic<int64_t> client_connections{0};
  std::atomic<bool> draining{false};  // stopping: close keep-alive connections after their response
};

// One listener address, shared by the workers' sockets on it: its client
// connection count and cap (Limits::max_connections, resolved). Owned by the
// Proxy; the count is changed by the workers (relaxed atomics).
struct ListenerState {
  std::string address;
  int64_t max_connections = 0;
  // WHY a share per worker: a worker can only close its own idle
  // connections to make room, so each holds an equal part of the cap.
  int64_t max_per_worker = 0;
  std::atomic<int64_t> connections{0};
};

// One bound listener socket of one worker.
struct ListenSocket {
  int fd = -1;
  bool tls = false;
  TlsContext* tls_ctx = nullptr;   // owned by the Proxy
  ListenerState* state = nullptr;  // owned by the Proxy
  mutable int64_t open = 0;        // this worker's client connections on it (worker thread only)
};

// A buffer from the worker's pool, with the unconsumed range [start, end).
struct IoBuf {
  char* data = nullptr;
  size_t start = 0;
  size_t end = 0;
  size_t size() const { return end - start; }
};

// Pending writes: iovecs into buffers that stay put until written.
struct OutQueue {
  std::vector<iovec> v;
  size_t i = 0;
  bool empty() const { return i == v.size(); }
  void clear() {
    v.clear();
    i = 0;
  }
  void add(const void* p, size_t n) {
    if (n) v.push_back(iovec{const_cast<void*>(p), n});
  }
  size_t bytes() const;
  // Advances past `n` written bytes.
  void consume(size_t n);
};

// Frame boundaries of one direction of a WebSocket stream (RFC 6455 5.2), so
// the proxy can end a drained stream with a close frame between frames.
struct WsFrames {
  uint8_t hdr[14] = {};
  uint8_t have = 0;
  uint8_t need = 2;
  uint64_t payload_left = 0;
  void feed(const char* p, size_t n);
  bool at_boundary() const { return have == 0 && payload_left == 0; }
};

// Per-request state, pooled per worker (strings and vectors keep capacity).
struct Exchange {
  // Routing. `table` keeps the service and set alive for the whole exchange.
  std::shared_ptr<const RouteTable> table;
  const ServiceRoute* svc = nullptr;
  TargetSet* set = nullptr;
  StatsShard* shard = nullptr;  // set->stats.shard(worker)
  TargetState* target = nullptr;
  TargetState* failed_target = nullptr;
  int attempts = 0;
  int64_t start_us = 0;

  // Request, as parsed (the head bytes stay in the client buffer at
  // [req_off, req_off + head_len) until the response starts).
  char method[16] = {};
  uint8_t method_len = 0;
  bool idempotent = false;
  bool is_head = false;
  bool upgrade = false;
  bool client_keep_alive = true;
  bool client_http10 = false;
  bool expect_continue = false;
  http::BodyKind req_body = http::BodyKind::kNone;
  uint64_t req_content_length = 0;
  uint64_t req_left = 0;  // Content-Length bytes not yet forwarded
  http::ChunkedScanner req_chunks;
  bool req_head_sent = false;
  bool req_done = false;
  bool req_replayable = true;  // the whole request is still in the client buffer
  size_t req_off = 0;
  size_t head_len = 0;
  size_t req_end = 0;  // end of the request's bytes in the buffer once known
  std::vector<std::pair<uint32_t, uint32_t>> head_segs;  // kept ranges of the head (offset, len)
  std::string req_extra;     // X-Forwarded-*, Connection/Upgrade for upgrades, final CRLF
  std::string cookie_value;  // sticky cookie to set on the response ("" = none)
  OutQueue up_out;           // to the upstream

  // Response.
  bool resp_started = false;  // any byte received from the upstream
  bool resp_sent = false;     // any response byte written to the client
  bool resp_head_done = false;
  bool resp_done = false;
  int status = 0;
  http::BodyKind resp_body = http::BodyKind::kNone;
  uint64_t resp_left = 0;
  http::ChunkedScanner resp_chunks;
  bool upstream_reusable = true;
  bool close_client = false;  // close the client connection after this response
  std::string resp_extra;
  OutQueue client_out;                // to the client
  size_t client_pending_consume = 0;  // upstream buffer bytes client_out refers to

  bool tunnel = false;
  bool websocket = false;  // the tunnel speaks WebSocket: frames are tracked
  WsFrames ws_c2u, ws_u2c;
  char ws_close_to_upstream[8] = {};  // a masked close frame (mask picked per stream)
  int64_t drain_at_ms = 0;            // set when its set was retired: closed then

  void reset();
};

class Worker {
 public:
  Worker(int index, Shared* shared);
  ~Worker();

  Status init(const std::vector<ListenSocket>& listeners);
  void start();  // runs the loop on a new thread
  // Thread-safe. Stops accepting; closes idle client connections; waits
  // (on the worker) up to grace for active ones; then ends the loop.
  void begin_stop(int64_t grace_ms);
  void join();
  // Thread-safe: the routing table changed. `done` is called on the worker
  // after it adopted it.
  void notify_table(std::function<void()> done);

  // ---- used by the connections (worker thread only)
  int index() const { return index_; }
  Loop& loop() { return loop_; }
  Shared& shared() { return *shared_; }
  const Timeouts& timeouts() const { return shared_->timeouts; }
  // The current routing table (refreshed when the generation moved).
  const std::shared_ptr<const RouteTable>& table();

  char* get_buffer();
  void put_buffer(char* b);
  Exchange* get_exchange();
  void put_exchange(Exchange* e);
  uint64_t random();

  http::RequestHead& req_scratch() { return *req_scratch_; }
  http::ResponseHead& resp_scratch() { return *resp_scratch_; }

  TimeoutList t_idle, t_header, t_body, t_send, t_connect, t_response, t_pool, t_tunnel, t_linger;
  Link clients;   // every ClientConn
  Link held;      // ClientConns held by a pause
  Link idle_ups;  // every pooled idle UpstreamConn
  bool stopping = false;

  // Batched writes (send_batch.h). A ClientConn in the proxying state queues
  // its next write and waits (drive() does nothing meanwhile); after the
  // event batch, flush_writes() sends every queued write in one system call
  // and hands each connection its result (ClientConn::write_done).
  bool batching() const { return batch_.ready(); }
  // Returns the handle for cancel_write().
  int queue_write(ClientConn* c, int fd, OutQueue* q, uint8_t dir);
  void cancel_write(int handle);
  // One round; true if writes queued by the resumed connections are left.
  bool flush_writes();
  // Batched reads: every connection of the event batch that is about to
  // read (Handler::prefetch_read) gets its recv in one system call.
  void prefetch_reads(epoll_event* events, int n);

  // Idle upstream connection to `t`, or nullptr. Drops stale ones.
  UpstreamConn* take_pooled(TargetState* t);
  void put_pooled(UpstreamConn* u);
  // Closes idle pooled connections to targets the table no longer names.
  void close_unused_pools();
  // Closes the oldest idle client connection of this worker on `listener`
  // (waiting for its first request, or keep-alive between requests), to make
  // room for a new one. False if there is none.
  bool evict_idle_client(const ListenerState* listener);
  // Logs `msg` at most once per 10 s per worker (floods must not flood the log).
  void warn_throttled(std::string_view msg, std::string_view listener);

 private:
  void adopt_table();
  void check_stop();

 public:
  // Arms the tick (check_stop) unless it is armed: held requests expire and
  // a stop completes on ticks; with neither, the worker sleeps in epoll_wait.
  void arm_tick();

 private:
  bool tick_armed_ = false;

  int index_;
  Shared* shared_;
  Loop loop_;
  std::thread thread_;
  std::vector<std::unique_ptr<Handler>> acceptors_;
  std::shared_ptr<const RouteTable> table_;
  uint64_t generation_ = 0;
  std::vector<char*> free_buffers_;
  std::vector<Exchange*> free_exchanges_;
  std::unique_ptr<http::RequestHead> req_scratch_;
  std::unique_ptr<http::ResponseHead> resp_scratch_;
  uint64_t rng_;
  int64_t stop_deadline_ms_ = 0;
  int64_t idle_close_at_ms_ = 0;  // stopping: idle client connections are closed from then on
  int64_t last_warn_ms_ = -1000000;
  int64_t warn_suppressed_ = 0;
  struct PendingWrite {
    ClientConn* c;  // nullptr: cancelled
    int fd;
    OutQueue* q;
    uint8_t dir;
  };
  SendBatch batch_;
  std::vector<PendingWrite> pending_, inflight_;
  std::vector<int> batch_fds_, batch_results_;
  std::vector<msghdr> batch_msgs_;
  std::vector<size_t> batch_want_;
  std::vector<Handler*> rd_handlers_;
  std::vector<iovec> rd_bufs_;
  friend class UpstreamConn;
};

// Accepts on one listen socket of one worker.
void accept_connections(Worker* w, const ListenSocket& ls);

}  // namespace md::proxy
