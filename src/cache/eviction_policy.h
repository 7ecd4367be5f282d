// EvictionPolicy: decides which entry leaves a full cache. Private to the cache module and the
// edge's object store (roles/edge/store.cc), which keeps one instance per memory shard.
// Each policy is one file under policies/, registered by name in MakePolicy (eviction_policy.cc).
// Thread-safety: none; the cache calls it under its own lock. Ownership: keys are pointers to
// strings the cache owns, valid from OnInsert until OnErase.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace millions::cache {

class EvictionPolicy {
 public:
  using Key = const std::string*;
  virtual ~EvictionPolicy() = default;
  virtual void OnInsert(Key key) = 0;
  // A hit. An overwrite is not an access: the cache erases the old entry and inserts anew, so a
  // replaced value starts afresh (LFU count 1, back of the FIFO queue).
  virtual void OnAccess(Key key) = 0;
  virtual void OnErase(Key key) = 0;
  // The entry to evict next; nullptr when empty.
  virtual Key Victim() const = 0;
};

std::unique_ptr<EvictionPolicy> MakeLruPolicy();
std::unique_ptr<EvictionPolicy> MakeLfuPolicy();
std::unique_ptr<EvictionPolicy> MakeFifoPolicy();
// nullptr for an unknown name.
std::unique_ptr<EvictionPolicy> MakePolicy(std::string_view name);

}  // namespace millions::cache
