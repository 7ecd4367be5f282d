#include "app/hot_users.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

namespace millions::app {
namespace {

// Enough stripes that the io threads of a web node (and the blocking pool's, should it ever
// note reads) rarely share one.
constexpr int kStripes = 8;

int MyStripe() {
  static std::atomic<int> next{0};
  thread_local int mine = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return mine;
}

// One window's Space-Saving counters, in flat arrays: a note is one scan of `capacity` ids,
// with no allocation and no hashing.
struct Sketch {
  std::vector<int64_t> ids;
  std::vector<uint64_t> counts;
  std::vector<uint64_t> errors;

  void Clear() {
    ids.clear();
    counts.clear();
    errors.clear();
  }
  void Add(int64_t id, size_t capacity) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == id) {
        ++counts[i];
        return;
      }
    }
    if (ids.size() < capacity) {
      ids.push_back(id);
      counts.push_back(1);
      errors.push_back(0);
      return;
    }
    // Full: the least counted entry gives way, and the newcomer inherits its count as error.
    size_t min = 0;
    for (size_t i = 1; i < counts.size(); ++i)
      if (counts[i] < counts[min]) min = i;
    ids[min] = id;
    errors[min] = counts[min];
    ++counts[min];
  }
};

}  // namespace

struct HotUsers::Stripe {
  std::mutex mu;
  size_t capacity = 0;
  std::chrono::steady_clock::time_point start{};  // of the current window
  bool started = false;
  Sketch current;
  Sketch last;  // the window before `start`, complete
  bool last_valid = false;

  // Moves the windows on to `now`: after one window the current becomes the last; after two
  // or more, the last complete window saw nothing here.
  void Roll(std::chrono::steady_clock::time_point now, std::chrono::milliseconds window) {
    if (!started) {
      start = now;
      started = true;
      return;
    }
    if (now < start + window) return;
    const auto windows = (now - start) / window;
    if (windows == 1) {
      std::swap(last, current);
      last_valid = true;
    } else {
      last.Clear();
      last_valid = true;
    }
    current.Clear();
    start += windows * window;
  }
};

HotUsers::HotUsers(Env& env, int capacity, std::chrono::milliseconds window)
    : env_(env), window_(window) {
  for (int i = 0; i < kStripes; ++i) {
    auto s = std::make_unique<Stripe>();
    s->capacity = static_cast<size_t>(std::max(capacity, 1));
    s->current.ids.reserve(s->capacity);
    s->current.counts.reserve(s->capacity);
    s->current.errors.reserve(s->capacity);
    stripes_.push_back(std::move(s));
  }
}

HotUsers::~HotUsers() = default;

void HotUsers::Note(int64_t user_id) {
  Stripe& s = *stripes_[MyStripe()];
  const auto now = env_.Now();
  std::lock_guard lock(s.mu);
  s.Roll(now, window_);
  s.current.Add(user_id, s.capacity);
}

std::vector<HotUser> HotUsers::Top(int k) const {
  // Each stripe is rolled to now and its last complete window summed. The stripes' windows
  // have one length but may start apart (each starts at its first note), by less than a window:
  // the sum estimates one window's reads.
  std::unordered_map<int64_t, std::pair<uint64_t, uint64_t>> sum;  // id -> count, error
  const auto now = env_.Now();
  for (const auto& sp : stripes_) {
    std::lock_guard lock(sp->mu);
    if (!sp->started) continue;
    sp->Roll(now, window_);
    if (!sp->last_valid) continue;
    for (size_t i = 0; i < sp->last.ids.size(); ++i) {
      auto& [count, error] = sum[sp->last.ids[i]];
      count += sp->last.counts[i];
      error += sp->last.errors[i];
    }
  }
  std::vector<HotUser> out;
  out.reserve(sum.size());
  const double seconds = std::chrono::duration<double>(window_).count();
  for (const auto& [id, ce] : sum)
    out.push_back({id, double(ce.first) / seconds, double(ce.second) / seconds});
  std::sort(out.begin(), out.end(), [](const HotUser& a, const HotUser& b) {
    return a.per_second != b.per_second ? a.per_second > b.per_second : a.user_id < b.user_id;
  });
  if (out.size() > static_cast<size_t>(std::max(k, 0))) out.resize(std::max(k, 0));
  return out;
}

void HotUsers::Export(std::shared_ptr<const HotUsers> hot, metrics::Registry& registry) {
  // The registry may outlive the web app that owns `hot`: the collector holds it weakly.
  registry.AddCollector([weak = std::weak_ptr<const HotUsers>(hot)](metrics::Families* out) {
    auto self = weak.lock();
    if (!self) return;
    auto top = self->Top(10);
    auto family = metrics::AddGauge(
        out, "millions_hot_user_requests_per_second",
        "Reads of the hottest users' data on this node in the last complete window (top 10)");
    for (const auto& u : top) family.Add({{"user", std::to_string(u.user_id)}}, u.per_second);
  });
}

}  // namespace millions::app
