#include "roles/lb/balancer.h"

#include <algorithm>

namespace millions::lb {

std::unique_ptr<Policy> MakeRoundRobin();
std::unique_ptr<Policy> MakeWeightedRoundRobin();
std::unique_ptr<Policy> MakeLeastOutstanding();
std::unique_ptr<Policy> MakeP2C();
std::unique_ptr<Policy> MakeConsistentHash();

const std::vector<std::string>& PolicyNames() {
  static const std::vector<std::string> names = {"round_robin", "weighted_round_robin",
                                                 "least_outstanding", "p2c", "consistent_hash"};
  return names;
}

std::unique_ptr<Policy> MakePolicy(std::string_view name) {
  if (name == "round_robin") return MakeRoundRobin();
  if (name == "weighted_round_robin") return MakeWeightedRoundRobin();
  if (name == "least_outstanding") return MakeLeastOutstanding();
  if (name == "p2c") return MakeP2C();
  if (name == "consistent_hash") return MakeConsistentHash();
  return nullptr;
}

double EffectiveWeight(const Backend& b) {
  return std::max(0.05, b.stats->weight_factor.load(std::memory_order_relaxed)) * b.weight;
}

bool Eligible(const Backend& b, int index, int exclude) {
  return index != exclude && b.stats->healthy.load(std::memory_order_relaxed);
}

}  // namespace millions::lb
