// First in, first out: reads do not matter; the oldest insertion is evicted. Cheap and
// scan-resistant only by accident, it is the baseline the other policies are compared with.
#include <list>
#include <unordered_map>

#include "cache/eviction_policy.h"

namespace millions::cache {
namespace {

class Fifo : public EvictionPolicy {
 public:
  void OnInsert(Key k) override { pos_[k] = order_.insert(order_.end(), k); }
  void OnAccess(Key) override {}
  void OnErase(Key k) override {
    auto it = pos_.find(k);
    order_.erase(it->second);
    pos_.erase(it);
  }
  Key Victim() const override { return order_.empty() ? nullptr : order_.front(); }

 private:
  std::list<Key> order_;  // oldest first
  std::unordered_map<Key, std::list<Key>::iterator> pos_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakeFifoPolicy() { return std::make_unique<Fifo>(); }

}  // namespace millions::cache
