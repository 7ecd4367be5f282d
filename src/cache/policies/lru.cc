// Least recently used: a hit moves the entry to the front; the back is evicted.
#include <list>
#include <unordered_map>

#include "cache/eviction_policy.h"

namespace millions::cache {
namespace {

class Lru : public EvictionPolicy {
 public:
  void OnInsert(Key k) override { pos_[k] = order_.insert(order_.begin(), k); }
  void OnAccess(Key k) override { order_.splice(order_.begin(), order_, pos_.at(k)); }
  void OnErase(Key k) override {
    auto it = pos_.find(k);
    order_.erase(it->second);
    pos_.erase(it);
  }
  Key Victim() const override { return order_.empty() ? nullptr : order_.back(); }

 private:
  std::list<Key> order_;  // most recent first
  std::unordered_map<Key, std::list<Key>::iterator> pos_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakeLruPolicy() { return std::make_unique<Lru>(); }

}  // namespace millions::cache
