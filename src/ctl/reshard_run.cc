#include "ctl/reshard_run.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "core/env.h"
#include "ctl/reshard_nudge.h"
#include "data/shard_mover.h"

namespace millions::ctl {
namespace {

using data::MoveState;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void OnStopSignal(int) { g_stop = true; }

int64_t NowMs() { return Env::Default().WallMillis(); }

class Executor {
 public:
  Executor(data::ReshardPlan plan, const std::map<std::string, pg::Options>& clusters,
           data::ReshardEtcd& etcd, data::EtcdShardMapClient& maps, const ExecutorOptions& o)
      : plan_(std::move(plan)), etcd_(etcd), maps_(maps), opt_(o) {
    for (const auto& [name, options] : clusters) pools_[name] = std::make_unique<pg::Pool>(options);
    mover_.logical_shards = plan_.from.logical();
    mover_.own_application_name = "millions-reshard";
    for (const auto& m : plan_.moves) rows_at_start_ += m.rows;
    const auto now = Clock::now();
    for (size_t i = 0; i < plan_.moves.size(); ++i)
      if (plan_.moves[i].state == MoveState::kSwitched) switched_at_[i] = now;  // resumed
  }

  int Run() {
    const auto start = Clock::now();
    std::thread keepalive([this] { KeepAlive(); });
    std::thread progress([this] { Progress(); });
    std::vector<std::thread> workers;
    for (int i = 0; i < opt_.parallel; ++i) workers.emplace_back([this] { Work(); });
    for (auto& w : workers) w.join();
    {
      std::lock_guard lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    keepalive.join();
    progress.join();
    std::lock_guard lock(mu_);
    if (opt_.progress) std::fprintf(stderr, "\n");
    if (!plan_.done()) {
      std::fprintf(stderr,
                   "millions reshard: %s; the plan is in etcd: the same command resumes it\n",
                   error_.empty() ? "stopped" : error_.c_str());
      return 1;
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    int64_t users = 0, rows = 0;
    std::map<std::string, int> pairs;
    for (const auto& m : plan_.moves) {
      users += m.users;
      rows += m.rows;
      ++pairs[m.from + "->" + m.to];
    }
    std::string moved;
    for (const auto& [pair, n] : pairs)
      moved += (moved.empty() ? "" : ", ") + pair + " " + std::to_string(n);
    std::fprintf(stderr, "%s\n", PartsLine().c_str());
    const PauseStats p = Pauses(plan_);
    if (auto cur = maps_.Read(); cur.ok()) published_version_ = cur->map.version;
    // A resumed run: the rate is of the rows this run moved, in this run's time.
    const int64_t rows_now = rows - rows_at_start_;
    std::printf(
        "resharded: %zu logical shards moved (%s), %lld users, %lld rows; this run %lld rows in "
        "%.1f s (%.0f rows/s); write pause per shard p50 %lld ms, p99 %lld ms, max %lld ms; map "
        "version %lld\n",
        plan_.moves.size(), moved.c_str(), static_cast<long long>(users),
        static_cast<long long>(rows), static_cast<long long>(rows_now), s,
        s > 0 ? rows_now / s : 0.0, static_cast<long long>(p.p50), static_cast<long long>(p.p99),
        static_cast<long long>(p.max), static_cast<long long>(published_version_));
    return 0;
  }

 private:
  // Worker: picks a move no other worker has, does one step of it, again, until none is left.
  void Work() {
    for (;;) {
      size_t pick = 0;
      {
        std::unique_lock lock(mu_);
        for (;;) {
          if (!error_.empty() || plan_.done()) return;
          bool found = false;
          const auto now = Clock::now();
          bool cutting = false;  // a cut-over in progress: finish it even when stopping
          for (size_t i = 0; i < plan_.moves.size(); ++i) {
            const MoveState s = plan_.moves[i].state;
            if (s == MoveState::kFrozen || s == MoveState::kVerified) cutting = true;
          }
          if (g_stop && !cutting) return;
          for (size_t i : data::NextMoves(plan_, opt_.parallel)) {
            const MoveState s = plan_.moves[i].state;
            if (busy_.count(i) || s == MoveState::kCleaned) continue;
            if (g_stop && s != MoveState::kFrozen && s != MoveState::kVerified) continue;
            if (s == MoveState::kSwitched && now < switched_at_[i] + opt_.grace) continue;
            pick = i;
            found = true;
            break;
          }
          if (found) break;
          cv_.wait_for(lock, std::chrono::milliseconds(50));
        }
        busy_.insert(pick);
      }
      Status st = Step(pick);
      std::lock_guard lock(mu_);
      busy_.erase(pick);
      if (!st.ok()) {
        const auto& mv = plan_.moves[pick];
        std::fprintf(stderr, "\nmillions reshard: shard %d (%s -> %s, %s): %s\n", mv.logical,
                     mv.from.c_str(), mv.to.c_str(),
                     std::string(data::MoveStateName(mv.state)).c_str(),
                     st.error().message.c_str());
        // A cluster that is unavailable (its primary died, Patroni promotes a replica) is
        // waited for up to opt_.unavailable_for; any other error stops the run after 5 tries.
        const auto now = Clock::now();
        const bool unavailable = st.error().kind == Errc::kUnavailable;
        if (unavailable && !unavailable_since_.count(pick)) unavailable_since_[pick] = now;
        const bool give_up = unavailable ? now - unavailable_since_[pick] > opt_.unavailable_for
                                         : ++failures_[pick] >= 5;
        if (give_up || st.error().code == "verify_failed" || st.error().code == "lock_lost")
          error_ = "shard " + std::to_string(mv.logical) + ": " + st.error().message;
      } else {
        unavailable_since_.erase(pick);
      }
      cv_.notify_all();
      if (!st.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  // Advances move `m` to `next`, lets `update` set its counts, and records the plan in etcd
  // before it returns.
  Status Record(size_t m, MoveState next, const std::function<void(data::ShardMove&)>& update) {
    data::ReshardPlan snapshot;
    uint64_t seq = 0;
    {
      std::lock_guard lock(mu_);
      if (lock_lost_) return MakeError(Errc::kConflict, "lock_lost", "the reshard lock was lost");
      if (Status st = data::Advance(&plan_, m, next, NowMs()); !st.ok()) return st;
      if (update) update(plan_.moves[m]);
      snapshot = plan_;
      seq = ++plan_seq_;
    }
    return Save(snapshot, seq);
  }

  // Writes a snapshot of the plan, unless a later one was written meanwhile (which holds every
  // change this one does): the etcd write is outside mu_, so that other moves go on.
  Status Save(const data::ReshardPlan& snapshot, uint64_t seq) {
    std::lock_guard lock(write_mu_);
    if (seq <= written_seq_) return Ok();
    Status st = etcd_.WritePlan(snapshot);
    for (int i = 0; i < 3 && !st.ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      st = etcd_.WritePlan(snapshot);
    }
    if (st.ok()) written_seq_ = seq;
    return st;
  }

  Status Step(size_t m) {
    data::ShardMove mv;
    {
      std::lock_guard lock(mu_);
      mv = plan_.moves[m];
    }
    auto src = pools_.at(mv.from)->Acquire();
    if (!src.ok()) return src.error();
    auto dst = pools_.at(mv.to)->Acquire();
    if (!dst.ok()) return dst.error();
    data::ShardMover mover(**src, **dst, mv.logical, mover_);
    const int64_t v = plan_.from.version;
    switch (mv.state) {
      case MoveState::kPending: {
        if (Status st = mover.PrepareTarget(v); !st.ok()) return st;
        if (Status st = mover.StartCapture(v); !st.ok()) return st;
        return Record(m, MoveState::kCopying, nullptr);
      }
      case MoveState::kCopying: {
        if (Status st = mover.PrepareTarget(v); !st.ok()) return st;
        if (Status st = mover.StartCapture(v); !st.ok()) return st;
        auto c = mover.Copy();
        if (!c.ok()) return c.error();
        return Record(m, MoveState::kCatchingUp, [&](data::ShardMove& x) {
          x.users = c->users;
          x.rows = c->rows;
          x.applied_seq = 0;
        });
      }
      case MoveState::kCatchingUp: {
        // A crash during a cut-over may have left the source frozen: writes go on meanwhile.
        if (Status st = mover.StartCapture(v); !st.ok()) return st;
        int64_t seq = mv.applied_seq, rows = 0;
        for (int round = 0; round < opt_.catch_up_rounds; ++round) {
          auto r = mover.Replay(seq);
          if (!r.ok()) return r.error();
          seq = r->applied_seq;
          rows += r->rows;
          if (r->changes <= opt_.small_tail) break;
        }
        if (g_stop) {  // no new freeze on the way out; the replay so far is kept
          data::ReshardPlan snapshot;
          uint64_t n = 0;
          {
            std::lock_guard lock(mu_);
            plan_.moves[m].applied_seq = seq;
            plan_.moves[m].rows += rows;
            snapshot = plan_;
            n = ++plan_seq_;
          }
          return Save(snapshot, n);
        }
        return Record(m, MoveState::kFrozen, [&](data::ShardMove& x) {
          x.applied_seq = seq;
          x.rows += rows;
        });
      }
      case MoveState::kFrozen: {
        // A crash after the map was published (the plan still says frozen, the source may be
        // `gone` already): the cut-over is done but for its record.
        if (auto done = PublishedTo(mv); !done.ok()) {
          return done.error();
        } else if (*done) {
          return SwitchOver(mover, m, mv, Clock::now(), Clock::now());
        }
        // The target `frozen` before the pause begins: nobody routes there until the publish,
        // so this needs not wait for the freeze, and it is one commit fewer inside the pause.
        if (Status st = mover.MarkTargetFrozen(v); !st.ok()) return st;
        const auto t0 = Clock::now();
        if (Status st = mover.Freeze(); !st.ok()) return st;
        const auto t_frozen = Clock::now();
        {
          std::lock_guard lock(mu_);
          frozen_at_.emplace(m, t0);
        }
        // On an error the source is thawed (writes go on) until the step is tried again.
        auto r = mover.Replay(mv.applied_seq);
        if (!r.ok()) {
          Thaw(mover, m, v);
          return r.error();
        }
        const auto t_replayed = Clock::now();
        auto verified = mover.Verify();
        if (!verified.ok()) {
          Thaw(mover, m, v);
          return verified.error();
        }
        const auto t_verified = Clock::now();
        if (!verified->ok()) {
          Status thawed = mover.StartCapture(v);  // writes go on while the copy is redone
          {
            std::lock_guard lock(mu_);
            frozen_at_.erase(m);
            std::fprintf(stderr, "\nmillions reshard: shard %d failed verification:\n", mv.logical);
            for (size_t i = 0; i < verified->mismatches.size() && i < 5; ++i)
              std::fprintf(stderr, "  %s\n", verified->mismatches[i].c_str());
          }
          if (!thawed.ok()) return thawed;
          int failed = 0;
          {
            std::lock_guard lock(mu_);
            failed = ++verify_failures_[m];
          }
          if (failed >= 3)
            return MakeError(Errc::kInternal, "verify_failed",
                             "the copy differs from the source three times (" +
                                 verified->mismatches.front() + ")");
          return Record(m, MoveState::kCopying, nullptr);
        }
        // Verified: the cut-over follows at once, in this step, while the source is frozen.
        // The `verified` state is not written to etcd (an etcd write, an fsync, inside the
        // pause): a crash before the publish redoes the freeze and the verify; one after it is
        // found by PublishedTo above.
        {
          std::lock_guard lock(mu_);
          if (Status st = data::Advance(&plan_, m, MoveState::kVerified, NowMs()); !st.ok())
            return st;
          plan_.moves[m].applied_seq = r->applied_seq;
          plan_.moves[m].rows += r->rows;
          plan_.moves[m].users = verified->users;
          mv = plan_.moves[m];
          Parts& parts = parts_[m];
          parts.freeze = Ms(t_frozen - t0);
          parts.replay = Ms(t_replayed - t_frozen);
          parts.verify = Ms(t_verified - t_replayed);
        }
        return SwitchOver(mover, m, mv, t0, t_verified);
      }
      case MoveState::kVerified: {  // after a failed publish: the source is still frozen
        // (A plan recorded `verified` by an older reshard: its target may not be frozen yet.)
        if (Status st = mover.MarkTargetFrozen(v); !st.ok()) return st;
        Clock::time_point t0 = Clock::now();
        {
          std::lock_guard lock(mu_);
          if (auto it = frozen_at_.find(m); it != frozen_at_.end()) t0 = it->second;
        }
        return SwitchOver(mover, m, mv, t0, Clock::now());
      }
      case MoveState::kSwitched: {
        auto n = mover.Cleanup(mv.applied_seq);
        if (!n.ok()) return n.error();
        return Record(m, MoveState::kCleaned, nullptr);
      }
      case MoveState::kCleaned:
        return Ok();
    }
    return Ok();
  }

  // The cut-over of a verified move: the target holds the shard frozen, the map says so, every
  // web node re-reads the map, then the target owns the shard and the source gives it up (its
  // writers, frozen until now, get wrong_shard and re-read the map); then the plan records
  // `switched` with the pause (freeze at `t0` to the source given up). No node reads the old
  // cluster once a write has gone to the new one (but a node that missed the nudge: its poll).
  Status SwitchOver(data::ShardMover& mover, size_t m, const data::ShardMove& mv,
                    Clock::time_point t0, Clock::time_point t_cut) {
    auto version = CutOver(mover, mv);
    if (!version.ok()) return version.error();
    const auto t_published = Clock::now();
    NudgeWebNodes(*version);
    const auto t_nudged = Clock::now();
    // Both sides at once, each on its own connection: writes routed by the new map (every node
    // now) go on at the target, and those of a node that missed the nudge get wrong_shard at
    // the source and re-read the map.
    auto owned = std::async(std::launch::async, [&] { return mover.MarkTargetOwned(*version); });
    Status dropped = mover.DropSource(*version);
    Status owned_done = owned.get();
    if (!owned_done.ok()) return owned_done;
    if (!dropped.ok()) return dropped;
    const auto t_released = Clock::now();
    const int64_t pause =
        std::chrono::duration_cast<std::chrono::milliseconds>(t_released - t0).count();
    {
      std::lock_guard lock(mu_);
      switched_at_[m] = t_released;
      frozen_at_.erase(m);
      parts_[m].publish = Ms(t_published - t_cut);
      parts_[m].nudge = Ms(t_nudged - t_published);
      parts_[m].release = Ms(t_released - t_nudged);
      parts_[m].total = Ms(t_released - t0);
      if (plan_.moves[m].state == MoveState::kFrozen)  // resumed after the publish
        (void)data::Advance(&plan_, m, MoveState::kVerified, NowMs());
    }
    return Record(m, MoveState::kSwitched, [&](data::ShardMove& x) { x.pause_ms = pause; });
  }

  // Every web node re-reads the map now and answers the version it routes by (at least
  // `version`), all at once, each bounded by opt_.nudge_timeout. A node that does not answer is
  // not asked again in this run (it may be down, or unreachable from here under netns): its
  // 500 ms poll remains.
  void NudgeWebNodes(int64_t version) {
    std::vector<std::string> nodes;
    {
      std::lock_guard lock(mu_);
      for (const auto& n : opt_.web_nodes)
        if (!unreachable_.count(n)) nodes.push_back(n);
    }
    const std::vector<bool> answered =
        ctl::NudgeWebNodes(nodes, version, opt_.nudge_token, opt_.nudge_timeout);
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (answered[i]) continue;
      std::lock_guard lock(mu_);
      if (unreachable_.insert(nodes[i]).second)
        std::fprintf(stderr,
                     "\nmillions reshard: web node %s did not re-read the map (version %lld); "
                     "it follows by its poll\n",
                     nodes[i].c_str(), static_cast<long long>(version));
    }
  }

  // Whether the map (as this run published it, or as etcd has it) puts the move's shard on its
  // target already.
  Result<bool> PublishedTo(const data::ShardMove& mv) {
    std::lock_guard lock(publish_mu_);
    if (!known_) {
      auto cur = maps_.Read();
      if (!cur.ok()) return cur.error();
      known_ = std::move(*cur);
    }
    return known_->map.ClusterOf(mv.logical) == mv.to;
  }

  void Thaw(data::ShardMover& mover, size_t m, int64_t version) {
    (void)mover.StartCapture(version);
    std::lock_guard lock(mu_);
    frozen_at_.erase(m);
  }

  // The map that puts the shard on the target (frozen there since the freeze) is published (the
  // one in etcd with this shard on the target, one version on): the version now in force.
  Result<int64_t> CutOver(data::ShardMover& mover, const data::ShardMove& mv) {
    std::lock_guard lock(publish_mu_);
    for (int attempt = 0; attempt < 5; ++attempt) {
      // The map as this run last published it (the reshard is the map's only writer while it
      // holds the lock), or as etcd has it.
      if (!known_) {
        auto cur = maps_.Read();
        if (!cur.ok()) return cur.error();
        known_ = std::move(*cur);
      }
      const data::ShardMap& now = known_->map;
      if (now.ClusterOf(mv.logical) == mv.to) {  // published before a crash
        if (Status st = mover.MarkTargetFrozen(now.version); !st.ok()) return st.error();
        published_version_ = std::max(published_version_, now.version);
        return now.version;
      }
      data::ShardMap next = now;
      auto at = std::find(next.clusters.begin(), next.clusters.end(), mv.to);
      if (at == next.clusters.end()) {
        next.clusters.push_back(mv.to);
        at = next.clusters.end() - 1;
      }
      next.owner[size_t(mv.logical)] = static_cast<uint16_t>(at - next.clusters.begin());
      next.version = now.version + 1;  // the target is `frozen` already (the kFrozen step)
      int64_t revision = 0;
      Status pub = maps_.Publish(next, known_->mod_revision, &revision);
      if (pub.ok() && revision > 0) {
        published_version_ = next.version;
        known_ = data::VersionedShardMap{std::move(next), revision};
        return published_version_;
      }
      const int64_t version = next.version;
      known_.reset();  // read it again
      if (pub.ok()) {
        published_version_ = version;
        return version;
      }
      if (pub.error().code != "stale_revision") return pub.error();
    }
    return MakeError(Errc::kConflict, "stale_revision",
                     "the shard map kept changing under the reshard");
  }

  void KeepAlive() {
    const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(opt_.lock_ttl) / 4;
    auto last_ok = Clock::now();
    std::unique_lock lock(mu_);
    while (!finished_) {
      cv_.wait_for(lock, every);
      if (finished_) break;
      lock.unlock();
      Status st = etcd_.KeepAlive();
      lock.lock();
      if (st.ok()) {
        last_ok = Clock::now();
      } else if (st.error().code == "lock_lost" || Clock::now() - last_ok > opt_.lock_ttl) {
        lock_lost_ = true;
        if (error_.empty()) error_ = "the reshard lock was lost: " + st.error().message;
        cv_.notify_all();
      }
    }
  }

  void Progress() {
    const bool tty = isatty(2);
    auto last_line = Clock::now();
    std::unique_lock lock(mu_);
    while (!finished_) {
      cv_.wait_for(lock, std::chrono::milliseconds(500));
      if (!opt_.progress) continue;
      const std::string line = data::ProgressLine(data::Progress(plan_, NowMs()));
      if (tty) {
        std::fprintf(stderr, "\r%s   ", line.c_str());
      } else if (Clock::now() - last_line > std::chrono::seconds(2) || finished_) {
        std::fprintf(stderr, "%s\n", line.c_str());
        last_line = Clock::now();
      }
    }
  }

  static double Ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }

  // Where a cut-over's pause goes (this run's cut-overs only), for the summary.
  struct Parts {
    double freeze = -1, replay = -1, verify = -1, publish = -1, nudge = -1, release = -1,
           total = -1;
  };
  std::string PartsLine() const {  // under mu_
    auto at = [&](double Parts::*f, double q) {
      std::vector<double> v;
      for (const auto& [m, p] : parts_)
        if (p.*f >= 0) v.push_back(p.*f);
      if (v.empty()) return -1.0;
      std::sort(v.begin(), v.end());
      return v[std::min(v.size() - 1, static_cast<size_t>(q * double(v.size())))];
    };
    std::string out = "pause parts, ms p50/p99:";
    const std::pair<const char*, double Parts::*> parts[] = {
        {"freeze", &Parts::freeze},
        {"last replay", &Parts::replay},
        {"verify", &Parts::verify},
        {"map published", &Parts::publish},
        {"web nodes re-read the map", &Parts::nudge},
        {"target owned and source given up", &Parts::release},
        {"total", &Parts::total}};
    for (const auto& [name, f] : parts) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s %s %.1f/%.1f", name == parts[0].first ? "" : ",", name,
                    at(f, 0.5), at(f, 0.99));
      out += buf;
    }
    return out;
  }

  data::ReshardPlan plan_;
  data::ReshardEtcd& etcd_;
  data::EtcdShardMapClient& maps_;
  ExecutorOptions opt_;
  data::MoverOptions mover_;
  std::map<std::string, std::unique_ptr<pg::Pool>> pools_;

  std::mutex mu_;  // guards everything below and plan_
  std::condition_variable cv_;
  std::set<size_t> busy_;
  std::map<size_t, Clock::time_point> frozen_at_, switched_at_;
  std::map<size_t, int> failures_, verify_failures_;
  std::map<size_t, Clock::time_point> unavailable_since_;
  std::set<std::string> unreachable_;  // web nodes that did not answer a nudge
  std::map<size_t, Parts> parts_;
  uint64_t plan_seq_ = 0;      // snapshots taken
  int64_t rows_at_start_ = 0;  // rows the plan had moved before this run

  std::mutex write_mu_;       // one plan write at a time, in order
  uint64_t written_seq_ = 0;  // guarded by write_mu_
  std::string error_;
  bool lock_lost_ = false, finished_ = false;

  std::mutex publish_mu_;
  std::optional<data::VersionedShardMap> known_;  // guarded by publish_mu_
  int64_t published_version_ = 0;  // guarded by publish_mu_ (read after the workers end)
};

}  // namespace

PauseStats Pauses(const data::ReshardPlan& plan) {
  std::vector<int64_t> v;
  for (const auto& m : plan.moves)
    if (m.pause_ms >= 0) v.push_back(m.pause_ms);
  PauseStats p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  p.count = static_cast<int>(v.size());
  p.p50 = v[(v.size() - 1) / 2];
  p.p99 = v[std::min(v.size() - 1, (v.size() * 99 + 99) / 100 - 1)];
  p.max = v.back();
  return p;
}

int RunPlan(data::ReshardPlan plan, const std::map<std::string, pg::Options>& clusters,
            data::ReshardEtcd& etcd, data::EtcdShardMapClient& maps, const ExecutorOptions& o) {
  g_stop = false;
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  Executor x(std::move(plan), clusters, etcd, maps, o);
  const int rc = x.Run();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return rc;
}

}  // namespace millions::ctl
