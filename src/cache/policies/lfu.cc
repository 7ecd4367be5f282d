// Least frequently used, ties broken by least recent use. Frequencies live in buckets, each a
// list ordered by recency, so every operation is O(log distinct frequencies).
#include <cstdint>
#include <list>
#include <map>
#include <unordered_map>

#include "cache/eviction_policy.h"

namespace millions::cache {
namespace {

class Lfu : public EvictionPolicy {
 public:
  void OnInsert(Key k) override { Place(k, 1); }
  void OnAccess(Key k) override {
    uint64_t f = Remove(k);
    Place(k, f + 1);
  }
  void OnErase(Key k) override { Remove(k); }
  Key Victim() const override {
    if (buckets_.empty()) return nullptr;
    return buckets_.begin()->second.back();  // lowest frequency, least recent within it
  }

 private:
  struct Pos {
    uint64_t freq;
    std::list<Key>::iterator it;
  };
  void Place(Key k, uint64_t f) {
    auto& bucket = buckets_[f];
    pos_[k] = {f, bucket.insert(bucket.begin(), k)};
  }
  uint64_t Remove(Key k) {
    auto p = pos_.find(k);
    uint64_t f = p->second.freq;
    auto b = buckets_.find(f);
    b->second.erase(p->second.it);
    if (b->second.empty()) buckets_.erase(b);
    pos_.erase(p);
    return f;
  }
  std::map<uint64_t, std::list<Key>> buckets_;  // freq -> keys, most recent first
  std::unordered_map<Key, Pos> pos_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakeLfuPolicy() { return std::make_unique<Lfu>(); }

}  // namespace millions::cache
