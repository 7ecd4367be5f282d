// Load-balancing policies for `millions serve lb`: one interface, one file per policy under
// policies/, chosen by name in the topology ("round_robin", "weighted_round_robin",
// "least_outstanding", "p2c", "consistent_hash").
// The pool is an immutable snapshot (membership changes at run time publish a new one behind
// an atomic shared_ptr); the per-backend counters a policy reads are atomics that outlive
// snapshots, so picking takes no lock.
// Thread-safety: Pick may run on many threads at once. Ownership: a snapshot shares its
// backends' counters; a policy owns only its own cursor state.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace millions::lb {

// Live counters of one backend, shared by every snapshot that lists it.
struct BackendStats {
  std::atomic<int64_t> outstanding{0};     // requests in flight
  std::atomic<bool> healthy{true};         // active checks and outlier ejection agree it may serve
  std::atomic<double> weight_factor{1.0};  // slow start: ramps from near 0 to 1 after recovery
  // The balancer's health tracker for this backend (owned by the balancer, which outlives every
  // snapshot); set before the backend is published.
  class BackendHealth* health = nullptr;
};

struct Backend {
  std::string name;
  std::string address;  // host:port
  int weight = 1;       // 1..1000
  std::shared_ptr<BackendStats> stats = std::make_shared<BackendStats>();
};

struct Pool {
  std::vector<Backend> backends;
};

// What a policy may look at in the request.
struct PickContext {
  std::string_view hash_key;  // consistent_hash: the header or cookie value; may be empty
  uint64_t random = 0;        // a random draw from the caller's generator (p2c)
};

class Policy {
 public:
  virtual ~Policy() = default;
  // Index of the chosen healthy backend, or -1 when none is healthy. `exclude` (or -1) is a
  // backend to avoid, for retries on another node.
  virtual int Pick(const Pool& pool, const PickContext& ctx, int exclude) = 0;
  // Called with each new snapshot (consistent_hash rebuilds its ring).
  virtual void Rebuild(const Pool& pool) {}
};

// nullptr for an unknown name.
std::unique_ptr<Policy> MakePolicy(std::string_view name);
const std::vector<std::string>& PolicyNames();

// Effective weight: configured weight times slow-start factor, at least a sliver, so a backend
// in slow start still gets a few requests.
double EffectiveWeight(const Backend& b);
bool Eligible(const Backend& b, int index, int exclude);

}  // namespace millions::lb
