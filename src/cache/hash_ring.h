// HashRing: consistent hashing of keys onto a pool of cache nodes, as mcrouter and ketama do:
// each node owns `points_per_node` points on a 64-bit circle; a key goes to the first point at or
// after its hash. Removing a node moves only its keys (to the next node clockwise); a node that
// is down is skipped by Route, so its keys go to the next node up (misses there, not errors).
// The hash function is stable across processes and builds (FNV-1a then a 64-bit mixer): every
// web node must route a key to the same cache node.
// Thread-safety: immutable after construction; share it freely. Ownership: owns its points.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/stable_hash.h"

namespace millions::cache {

using millions::StableHash;

class HashRing {
 public:
  // `nodes` are names (their order does not matter: points come from the names).
  explicit HashRing(const std::vector<std::string>& nodes, int points_per_node = 160);
  size_t size() const { return names_.size(); }
  const std::string& name(size_t node) const { return names_[node]; }
  // The node owning `key` among those for which up(node) is true; -1 when none is up.
  int Route(std::string_view key, const std::function<bool(size_t)>& up) const;
  // The owner and the next distinct node clockwise after it (ignoring health): where a key may
  // live while its owner is, or was recently, down. Second is -1 with one node.
  std::pair<int, int> OwnerAndSuccessor(std::string_view key) const;

 private:
  struct Point {
    uint64_t hash;
    uint32_t node;
  };
  size_t FirstAt(uint64_t h) const;
  std::vector<std::string> names_;
  std::vector<Point> points_;  // sorted by hash
};

}  // namespace millions::cache
