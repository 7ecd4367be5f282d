// The name -> policy factory, apart from cache.cc so adding a policy never touches the cache.
#include "cache/eviction_policy.h"

namespace millions::cache {

std::unique_ptr<EvictionPolicy> MakePolicy(std::string_view name) {
  if (name == "lru") return MakeLruPolicy();
  if (name == "lfu") return MakeLfuPolicy();
  if (name == "fifo") return MakeFifoPolicy();
  return nullptr;
}

}  // namespace millions::cache
