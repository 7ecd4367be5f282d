// The queue on NATS JetStream (stage 9). One subject per job (<prefix>.<id>) in a work-queue
// stream: a job leaves the stream when a worker acks it, so "does the stream hold this job's
// subject" is the reconciler's question (Holds). Publishes carry Nats-Msg-Id "job-<id>": a
// second publish of one job within the duplicate window is a no-op. One durable pull consumer
// ("workers") is shared by every worker process; AckWait and a back-off list bound how long a
// job in a dead worker's hands waits; MaxDeliver bounds deliveries, and the last one is marked
// so the worker ends the job instead of asking for another.
// libnats calls block: this queue runs on worker threads and blocking pools, never on an event
// loop (Backlog answers from a count a background thread refreshes).
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "core/log.h"
#include "queue/job_queue.h"

namespace millions::queue {
namespace {

using std::chrono::milliseconds;

constexpr const char* kRequestIdHeader = "Millions-Request-Id";
constexpr const char* kTraceIdHeader = "Millions-Trace-Id";

int64_t Nanos(milliseconds d) { return int64_t(d.count()) * 1'000'000; }

Error Unavailable(const std::string& what, natsStatus s, jsErrCode jerr = jsErrCode(0)) {
  std::string msg = "the job queue is unavailable: " + what + ": " + natsStatus_GetText(s);
  if (jerr != 0) msg += " (JetStream error " + std::to_string(int(jerr)) + ")";
  return MakeError(Errc::kUnavailable, "queue_unavailable", msg);
}

class NatsQueue : public JobQueue {
 public:
  explicit NatsQueue(NatsOptions o) : o_(std::move(o)) {
    filter_ = o_.subject_prefix + ".>";
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    std::vector<const char*> servers;
    for (const auto& u : o_.servers) servers.push_back(u.c_str());
    if (s == NATS_OK)
      s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
    if (s == NATS_OK) s = natsOptions_SetName(opts, o_.name.c_str());
    if (s == NATS_OK && !o_.password.empty())
      s = natsOptions_SetUserInfo(opts, o_.user.c_str(), o_.password.c_str());
    // Forever, quickly: a restarted nats-server is back within a second; publishes made while
    // reconnecting are buffered and answered after it.
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, 2000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 3);
    // A worker may start before nats-server: the connection keeps trying in the background.
    // (With no callback, libnats would instead retry inside Connect, MaxReconnect times:
    // forever.)
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, &OnConnected, nullptr);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &OnDisconnected, nullptr);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &OnConnected, nullptr);
    if (s == NATS_OK) {
      s = natsConnection_Connect(&nc_, opts);
      if (s == NATS_NOT_YET_CONNECTED) s = NATS_OK;
    }
    if (s == NATS_OK) {
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = o_.request_timeout.count();
      s = natsConnection_JetStream(&js_, nc_, &jo);
    }
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      // Only a bad option gets here (an unreachable server does not): start-up, so throw.
      Cleanup();
      throw std::runtime_error(std::string("nats: ") + natsStatus_GetText(s));
    }
    refresher_ = std::thread([this] { RefreshLoop(); });
  }

  ~NatsQueue() override {
    Close();
    {
      std::lock_guard lock(refresh_mu_);
      stopping_ = true;
    }
    refresh_cv_.notify_all();
    if (refresher_.joinable()) refresher_.join();
    Cleanup();
  }

  Status Enqueue(int64_t job_id) override {
    if (Status st = EnsureStreams(); !st.ok()) return st;
    std::string subject = Subject(job_id), id = "job-" + std::to_string(job_id);
    std::string body = std::to_string(job_id);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    po.MaxWait = o_.request_timeout.count();
    jsPubAck* ack = nullptr;
    jsErrCode jerr = jsErrCode(0);
    natsMsg* msg = nullptr;
    natsStatus s =
        natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    // The request's ids ride in headers, for the worker's log lines about the job.
    const log::Context& ctx = log::Current();
    std::string rid(ctx.request_id), tid(ctx.trace_id);
    if (s == NATS_OK && !rid.empty()) s = natsMsgHeader_Set(msg, kRequestIdHeader, rid.c_str());
    if (s == NATS_OK && !tid.empty()) s = natsMsgHeader_Set(msg, kTraceIdHeader, tid.c_str());
    if (s == NATS_OK) s = js_PublishMsg(&ack, js_, msg, &po, &jerr);
    natsMsg_Destroy(msg);
    jsPubAck_Destroy(ack);
    if (s != NATS_OK) return Unavailable("publishing job " + std::to_string(job_id), s, jerr);
    return Ok();
  }

  std::optional<Delivery> Dequeue(milliseconds wait) override {
    if (closed_) return std::nullopt;
    if (Status st = EnsureConsumer(); !st.ok()) {
      // Not there yet (nats-server down or starting): wait as a Dequeue would, then say none.
      std::unique_lock lock(refresh_mu_);
      refresh_cv_.wait_for(lock, wait, [this] { return closed_.load(); });
      return std::nullopt;
    }
    natsMsgList list{};
    natsStatus s;
    {
      // One fetch at a time on the shared subscription; the others wait their turn (they would
      // be idle anyway: a fetch returns as soon as a job comes).
      std::lock_guard lock(fetch_mu_);
      if (closed_ || !sub_) return std::nullopt;
      jsErrCode jerr = jsErrCode(0);
      s = natsSubscription_Fetch(&list, sub_, 1, wait.count(), &jerr);
    }
    if (s != NATS_OK || list.Count == 0) {
      natsMsgList_Destroy(&list);
      if (s != NATS_TIMEOUT && s != NATS_OK) {
        // A broken fetch (server restarted, consumer gone): sleep a little, build it again.
        std::this_thread::sleep_for(std::min(wait, milliseconds(200)));
        std::lock_guard lock(setup_mu_);
        consumer_ready_ = false;
      }
      return std::nullopt;
    }
    natsMsg* m = list.Msgs[0];
    list.Msgs[0] = nullptr;
    natsMsgList_Destroy(&list);
    Delivery d;
    d.job_id = ParseId(natsMsg_GetData(m), natsMsg_GetDataLength(m));
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      d.attempt = static_cast<int>(meta->NumDelivered);
      jsMsgMetaData_Destroy(meta);
    }
    d.last = d.attempt >= o_.max_deliver;
    const char* header = nullptr;
    if (natsMsgHeader_Get(m, kRequestIdHeader, &header) == NATS_OK && header) d.request_id = header;
    if (natsMsgHeader_Get(m, kTraceIdHeader, &header) == NATS_OK && header) d.trace_id = header;
    if (d.job_id <= 0) {
      // Not ours (a stray publish on our subjects): terminate it so it is never redelivered.
      natsMsg_Term(m, nullptr);
      natsMsg_Destroy(m);
      log::Warn("dropped a message that names no job", {{"stream", o_.stream}});
      return std::nullopt;
    }
    std::lock_guard lock(mu_);
    auto [it, fresh] = in_hand_.try_emplace(d.job_id, m);
    if (!fresh) {
      // Redelivered while still in hand (the first holder went quiet past AckWait): keep the
      // newest delivery; acking either settles the one stream message.
      natsMsg_Destroy(it->second);
      it->second = m;
    }
    return d;
  }

  Status Ack(int64_t job_id) override {
    return Settle(job_id, "ack", [](natsMsg* m) {
      jsErrCode jerr = jsErrCode(0);
      return natsMsg_AckSync(m, nullptr, &jerr);
    });
  }

  Status Retry(int64_t job_id, milliseconds delay) override {
    return Settle(job_id, "nak",
                  [&](natsMsg* m) { return natsMsg_NakWithDelay(m, delay.count(), nullptr); });
  }

  Status Progress(int64_t job_id) override {
    std::lock_guard lock(mu_);
    auto it = in_hand_.find(job_id);
    if (it == in_hand_.end()) return Ok();
    natsStatus s = natsMsg_InProgress(it->second, nullptr);
    if (s != NATS_OK) return Unavailable("extending job " + std::to_string(job_id), s);
    return Ok();
  }

  Status DeadLetter(int64_t job_id, std::string_view reason) override {
    // The record first: a job is never both gone from the queue and missing from the record.
    std::string subject = o_.dead_prefix + "." + std::to_string(job_id);
    std::string body = "{\"job_id\":" + std::to_string(job_id) + ",\"reason\":\"";
    for (char c : reason) {
      if (c == '"' || c == '\\') body += '\\';
      body += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
    }
    body += "\"}";
    jsPubAck* ack = nullptr;
    natsStatus s = js_Publish(&ack, js_, subject.c_str(), body.data(),
                              static_cast<int>(body.size()), nullptr, nullptr);
    jsPubAck_Destroy(ack);
    if (s != NATS_OK)
      log::Warn("could not record a dead letter",
                {{"job_id", job_id}, {"error", std::string(natsStatus_GetText(s))}});
    // An ack, not a Term: nats-server 2.9 keeps a terminated message in a work-queue stream
    // (Holds would say the job is still queued); an acked one is removed.
    return Settle(job_id, "ack", [](natsMsg* m) {
      jsErrCode jerr = jsErrCode(0);
      return natsMsg_AckSync(m, nullptr, &jerr);
    });
  }

  std::optional<bool> Holds(int64_t job_id) override {
    if (!EnsureStreams().ok()) return std::nullopt;
    natsMsg* m = nullptr;
    jsErrCode jerr = jsErrCode(0);
    std::string subject = Subject(job_id);
    natsStatus s = js_GetLastMsg(&m, js_, o_.stream.c_str(), subject.c_str(), nullptr, &jerr);
    natsMsg_Destroy(m);
    if (s == NATS_OK) return true;
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return false;
    return std::nullopt;
  }

  void Announce(int64_t job_id) override {
    // Core NATS, not JetStream: a missed announcement costs a waiter its wait, nothing more.
    std::string subject = o_.done_prefix + "." + std::to_string(job_id);
    natsConnection_Publish(nc_, subject.c_str(), nullptr, 0);
  }

  void Listen(std::function<void(int64_t)> on_finished) override {
    {
      std::lock_guard lock(mu_);
      on_finished_ = std::move(on_finished);
      if (done_sub_) return;
    }
    std::string subject = o_.done_prefix + ".>";
    natsSubscription* sub = nullptr;
    // Subscriptions survive reconnects (libnats subscribes again).
    if (natsConnection_Subscribe(&sub, nc_, subject.c_str(), &OnDone, this) == NATS_OK) {
      std::lock_guard lock(mu_);
      done_sub_ = sub;
    }
  }

  int64_t Backlog() override {
    want_backlog_ = true;
    refresh_cv_.notify_all();
    return backlog_.load();
  }

  void Close() override {
    closed_ = true;
    refresh_cv_.notify_all();
  }

 private:
  // Connection events, logged. They take no closure: libnats may call them on its own thread
  // while (or after) the queue is destroyed.
  static void OnConnected(natsConnection*, void*) { log::Info("connected to NATS", {}); }
  static void OnDisconnected(natsConnection* nc, void*) {
    if (natsConnection_Status(nc) != NATS_CONN_STATUS_CLOSED)
      log::Warn("disconnected from NATS, reconnecting", {});
  }

  static void OnDone(natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    auto* q = static_cast<NatsQueue*>(self);
    std::string_view subject = natsMsg_GetSubject(m);
    std::string_view id = subject.substr(subject.rfind('.') + 1);
    int64_t job = ParseId(id.data(), static_cast<int>(id.size()));
    natsMsg_Destroy(m);
    // Called under the lock, so that once Listen(nullptr) returns no call is still running.
    std::lock_guard lock(q->mu_);
    if (job > 0 && q->on_finished_) q->on_finished_(job);
  }

  std::string Subject(int64_t id) const { return o_.subject_prefix + "." + std::to_string(id); }

  static int64_t ParseId(const char* p, int n) {
    int64_t v = 0;
    if (n <= 0 || n > 19) return 0;
    for (int i = 0; i < n; ++i) {
      if (p[i] < '0' || p[i] > '9') return 0;
      v = v * 10 + (p[i] - '0');
    }
    return v;
  }

  template <class F>
  Status Settle(int64_t job_id, const char* what, F&& f) {
    natsMsg* m = nullptr;
    {
      std::lock_guard lock(mu_);
      auto it = in_hand_.find(job_id);
      if (it == in_hand_.end()) return Ok();  // settled already, or never ours
      m = it->second;
      in_hand_.erase(it);
    }
    natsStatus s = f(m);
    natsMsg_Destroy(m);
    // A lost ack is a redelivery later, which finds the job finished: not an error to report.
    if (s != NATS_OK)
      return Unavailable(std::string(what) + " of job " + std::to_string(job_id), s);
    return Ok();
  }

  // The streams exist (made once per process; a restarted server that kept its store has them).
  Status EnsureStreams() {
    std::lock_guard lock(setup_mu_);
    if (streams_ready_) return Ok();
    if (Status st = AddStream(o_.stream, o_.subject_prefix + ".>", js_WorkQueuePolicy, 0); !st.ok())
      return st;
    // Dead letters are kept a week, for an operator to read.
    if (Status st = AddStream(o_.dead_stream, o_.dead_prefix + ".>", js_LimitsPolicy,
                              Nanos(milliseconds(7LL * 24 * 3600 * 1000)));
        !st.ok())
      return st;
    streams_ready_ = true;
    return Ok();
  }

  Status AddStream(const std::string& name, const std::string& subjects,
                   jsRetentionPolicy retention, int64_t max_age) {
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char* subj[] = {subjects.c_str()};
    sc.Name = name.c_str();
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Retention = retention;
    sc.Storage = js_FileStorage;
    sc.Replicas = o_.replicas;
    sc.Duplicates = Nanos(o_.duplicate_window);
    sc.MaxAge = max_age;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = jsErrCode(0);
    natsStatus s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
      // Made by another process, maybe with other settings: make them ours.
      si = nullptr;
      s = js_UpdateStream(&si, js_, &sc, nullptr, &jerr);
      jsStreamInfo_Destroy(si);
      if (s != NATS_OK) {
        log::Warn("stream settings could not be updated",
                  {{"stream", name}, {"error", std::string(natsStatus_GetText(s))}});
        s = NATS_OK;
      }
    }
    if (s != NATS_OK) return Unavailable("creating stream " + name, s, jerr);
    return Ok();
  }

  // The durable consumer and this process' pull subscription on it.
  Status EnsureConsumer() {
    if (Status st = EnsureStreams(); !st.ok()) return st;
    std::lock_guard lock(setup_mu_);
    if (consumer_ready_) return Ok();
    std::lock_guard fetch(fetch_mu_);  // nobody fetches on a subscription being replaced
    if (sub_) {
      natsSubscription_Destroy(sub_);
      sub_ = nullptr;
    }
    // Redeliveries of a job whose worker went quiet wait longer each time (back-off); the first
    // wait is AckWait itself (nats-server takes BackOff[0] as AckWait).
    std::vector<int64_t> backoff;
    for (int i = 0; i + 1 < o_.max_deliver && i < 6; ++i)
      backoff.push_back(Nanos(o_.ack_wait) << i);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = o_.consumer.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = Nanos(o_.ack_wait);
    cc.MaxDeliver = o_.max_deliver;
    cc.BackOff = backoff.empty() ? nullptr : backoff.data();
    cc.BackOffLen = static_cast<int>(backoff.size());
    cc.FilterSubject = filter_.c_str();
    cc.MaxAckPending = 10'000;
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = jsErrCode(0);
    natsStatus s = js_AddConsumer(&ci, js_, o_.stream.c_str(), &cc, nullptr, &jerr);
    jsConsumerInfo_Destroy(ci);
    // 10148: nats-server 2.9's "consumer already exists" with other settings (newer than
    // libnats 3.4's list of codes).
    if (s != NATS_OK && (jerr == JSConsumerNameExistErr || int(jerr) == 10148)) {
      ci = nullptr;
      s = js_UpdateConsumer(&ci, js_, o_.stream.c_str(), &cc, nullptr, &jerr);
      jsConsumerInfo_Destroy(ci);
      if (s != NATS_OK) s = NATS_OK;  // an incompatible change: keep the consumer as it is
    }
    if (s != NATS_OK) return Unavailable("creating consumer " + o_.consumer, s, jerr);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o_.stream.c_str();
    so.Consumer = o_.consumer.c_str();
    s = js_PullSubscribe(&sub_, js_, filter_.c_str(), o_.consumer.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) return Unavailable("subscribing to " + o_.consumer, s, jerr);
    consumer_ready_ = true;
    return Ok();
  }

  // Refreshes the backlog once a second while someone asks for it (a scrape, the dashboard).
  void RefreshLoop() {
    std::unique_lock lock(refresh_mu_);
    while (!stopping_) {
      refresh_cv_.wait_for(lock, milliseconds(1000));
      if (stopping_ || !want_backlog_) continue;
      lock.unlock();
      jsConsumerInfo* ci = nullptr;
      jsErrCode jerr = jsErrCode(0);
      if (EnsureStreams().ok() &&
          js_GetConsumerInfo(&ci, js_, o_.stream.c_str(), o_.consumer.c_str(), nullptr, &jerr) ==
              NATS_OK) {
        backlog_ = int64_t(ci->NumPending) + ci->NumAckPending;
      } else if (jerr == JSConsumerNotFoundErr) {
        // No worker has made the consumer yet: everything in the stream waits.
        jsStreamInfo* si = nullptr;
        if (js_GetStreamInfo(&si, js_, o_.stream.c_str(), nullptr, nullptr) == NATS_OK)
          backlog_ = int64_t(si->State.Msgs);
        jsStreamInfo_Destroy(si);
      }
      jsConsumerInfo_Destroy(ci);
      lock.lock();
    }
  }

  void Cleanup() {
    natsSubscription* done = nullptr;
    {
      std::lock_guard lock(mu_);
      std::swap(done, done_sub_);
      on_finished_ = nullptr;
    }
    if (done) {
      // Drained, so that no callback still runs on libnats' thread once this object is gone
      // (the callback takes mu_: never wait for it while holding mu_).
      if (natsSubscription_Drain(done) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(done, 2000);
      natsSubscription_Destroy(done);
    }
    std::lock_guard lock(mu_);
    for (auto& [id, m] : in_hand_) natsMsg_Destroy(m);  // unacked: redelivered after AckWait
    in_hand_.clear();
    if (sub_) natsSubscription_Destroy(sub_);
    sub_ = nullptr;
    if (js_) jsCtx_Destroy(js_);
    js_ = nullptr;
    if (nc_) natsConnection_Destroy(nc_);
    nc_ = nullptr;
  }

  const NatsOptions o_;
  std::string filter_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;  // guarded by setup_mu_ (replaced) and fetch_mu_ (used)
  std::mutex setup_mu_, fetch_mu_, mu_;
  bool streams_ready_ = false, consumer_ready_ = false;  // setup_mu_
  std::map<int64_t, natsMsg*> in_hand_;                  // mu_
  natsSubscription* done_sub_ = nullptr;                 // mu_
  std::function<void(int64_t)> on_finished_;             // mu_
  std::atomic<bool> closed_{false}, want_backlog_{false};
  std::atomic<int64_t> backlog_{0};
  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;
  bool stopping_ = false;  // refresh_mu_
  std::thread refresher_;
};

}  // namespace

std::unique_ptr<JobQueue> OpenNatsQueue(const NatsOptions& options) {
  return std::make_unique<NatsQueue>(options);
}

}  // namespace millions::queue
