#include "cache/hash_ring.h"

#include <algorithm>

namespace millions::cache {

HashRing::HashRing(const std::vector<std::string>& nodes, int points_per_node) : names_(nodes) {
  points_.reserve(nodes.size() * static_cast<size_t>(points_per_node));
  for (size_t n = 0; n < nodes.size(); ++n)
    for (int p = 0; p < points_per_node; ++p)
      points_.push_back({StableHash(nodes[n] + "#" + std::to_string(p)), uint32_t(n)});
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.node < b.node;
  });
}

size_t HashRing::FirstAt(uint64_t h) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), h,
                             [](const Point& p, uint64_t v) { return p.hash < v; });
  return it == points_.end() ? 0 : size_t(it - points_.begin());
}

int HashRing::Route(std::string_view key, const std::function<bool(size_t)>& up) const {
  if (points_.empty()) return -1;
  size_t start = FirstAt(StableHash(key));
  // Walk clockwise; each node is asked at most once.
  std::vector<bool> asked(names_.size(), false);
  size_t left = names_.size();
  for (size_t i = 0; i < points_.size() && left > 0; ++i) {
    uint32_t n = points_[(start + i) % points_.size()].node;
    if (asked[n]) continue;
    if (up(n)) return int(n);
    asked[n] = true;
    --left;
  }
  return -1;
}

std::pair<int, int> HashRing::OwnerAndSuccessor(std::string_view key) const {
  if (points_.empty()) return {-1, -1};
  size_t start = FirstAt(StableHash(key));
  int owner = int(points_[start].node);
  for (size_t i = 1; i < points_.size(); ++i) {
    int n = int(points_[(start + i) % points_.size()].node);
    if (n != owner) return {owner, n};
  }
  return {owner, -1};
}

}  // namespace millions::cache
