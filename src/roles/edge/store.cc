// ObjectStore: the memory tier (shards, each with its byte share, its mutex and its own
// eviction policy instance from cache/eviction_policy.h), and the purges and promotions that
// span it and the disk tier (disk_tier.h).
// Purge order: the disk tier first (its index, then its queue), then the memory shards, one at
// a time. A promotion from disk holds its shard's mutex while it checks that the disk tier
// still indexes the file it read: a purge that dropped the file before that check wins, and a
// purge that drops it after finds the promoted object in memory. Put goes the other way
// (memory, then the disk queue): an object whose Put returned before a purge starts is caught
// by both halves.
// Thread-safety: see store.h; counters are atomics so that Stats takes no shard mutex.
// Ownership: shards own their objects through ObjectPtrs; policies hold pointers to each
// stored Object's key (stable while the shard holds the object).
#include "roles/edge/store.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cache/eviction_policy.h"
#include "roles/edge/disk_tier.h"

namespace millions::edge {

size_t Object::bytes() const {
  size_t n = kObjectOverhead + key.size() + vary_key.size() + headers.size() +
             meta.info.etag.size() + (body ? body->size() : 0);
  for (const std::string& t : tags) n += t.size();
  for (const std::string& v : meta.info.vary) n += v.size();
  return n;
}

namespace {

constexpr int kMaxShards = 16;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Slot {
  ObjectPtr object;
  size_t bytes = 0;
};

struct Shard {
  std::mutex mu;
  std::unique_ptr<cache::EvictionPolicy> policy;  // keys: &object->key of each stored object
  // key -> its variants, newest first (Lookup takes the first that matches).
  std::unordered_map<std::string, std::vector<Slot>, StringHash, std::equal_to<>> keys;
  std::unordered_map<std::string, std::unordered_set<const Object*>, StringHash, std::equal_to<>>
      tags;
  size_t bytes = 0;
  size_t budget = 0;
};
using KeyMap = decltype(Shard::keys);

class Store : public ObjectStore {
 public:
  explicit Store(const StoreOptions& o)
      : max_object_bytes_(o.max_object_bytes), test_hook_(o.test_hook) {
    int n = o.shards;
    if (n <= 0) {
      size_t per = std::max<size_t>(1, 2 * o.max_object_bytes);
      n = static_cast<int>(std::clamp<size_t>(o.memory_bytes / per, 1, kMaxShards));
    }
    shards_ = std::vector<Shard>(n);
    for (int i = 0; i < n; ++i) {
      shards_[i].policy = cache::MakePolicy(o.policy);
      if (!shards_[i].policy)
        throw std::invalid_argument("unknown edge store policy '" + o.policy +
                                    "' (choose lru, lfu or fifo)");
      shards_[i].budget = o.memory_bytes / n + (static_cast<size_t>(i) < o.memory_bytes % n);
    }
    if (!o.disk_dir.empty())
      disk_ = std::make_unique<DiskTier>(o.disk_dir, o.disk_bytes, Hook("disk_write"));
  }

  ObjectPtr Lookup(std::string_view key, const HeaderLookup& request) override {
    Shard& s = ShardFor(key);
    std::lock_guard lock(s.mu);
    auto it = s.keys.find(key);
    if (it == s.keys.end()) return nullptr;
    for (const Slot& slot : it->second) {
      const Object& o = *slot.object;
      if (VaryMatches(o.meta.info.vary, o.vary_key, request)) {
        s.policy->OnAccess(&o.key);
        return slot.object;
      }
    }
    return nullptr;
  }

  ObjectPtr LoadFromDisk(std::string_view key, const HeaderLookup& request) override {
    if (!disk_) return nullptr;
    std::optional<DiskTier::Candidate> c = disk_->Find(key, request);
    if (!c) return nullptr;
    std::shared_ptr<Object> loaded = disk_->Read(*c);
    if (!loaded) return nullptr;
    if (test_hook_) test_hook_("promote");
    ObjectPtr object = std::move(loaded);
    Shard& s = ShardFor(key);
    std::lock_guard lock(s.mu);
    // A Put since the file was written is newer than the file: keep and answer with it.
    ObjectPtr newer;
    if (auto it = s.keys.find(key); it != s.keys.end()) {
      for (const Slot& slot : it->second)
        if (slot.object->vary_key == object->vary_key) {
          newer = slot.object;
          break;
        }
    }
    // Purged (or rewritten) while we read it: nothing. Else the tier notes the body it promotes,
    // so that a revalidation of this object writes only a head file.
    if (!disk_->Current(*c, newer ? nullptr : object->body)) return nullptr;
    if (newer) return newer;
    Insert(s, object, object->bytes());  // memory only: the file is there already
    return object;
  }

  void Put(ObjectPtr object) override {
    if (!object) return;
    size_t bytes = object->bytes();
    Shard& s = ShardFor(object->key);
    if (bytes > max_object_bytes_) {
      // Not stored; and the variant it would replace is outdated.
      {
        std::lock_guard lock(s.mu);
        EraseVariant(s, object->key, object->vary_key);
      }
      if (disk_) disk_->Remove(object->key, object->vary_key);
      return;
    }
    {
      std::lock_guard lock(s.mu);
      Insert(s, object, bytes);
    }
    if (disk_) disk_->Write(std::move(object));
  }

  size_t PurgeKey(std::string_view key) override {
    RemovedSet removed;
    if (disk_) disk_->PurgeKey(key, &removed);
    Shard& s = ShardFor(key);
    std::lock_guard lock(s.mu);
    if (auto it = s.keys.find(key); it != s.keys.end()) EraseKey(s, it, &removed);
    return removed.size();
  }

  size_t PurgePrefix(std::string_view prefix) override {
    RemovedSet removed;
    if (disk_) disk_->PurgePrefix(prefix, &removed);
    // A scan: prefix purges are rare, and a hash map keeps the lookups cheap.
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (auto it = s.keys.begin(); it != s.keys.end();) {
        auto next = std::next(it);
        if (it->first.starts_with(prefix)) EraseKey(s, it, &removed);
        it = next;
      }
    }
    return removed.size();
  }

  size_t PurgeTag(std::string_view tag) override {
    RemovedSet removed;
    if (disk_) disk_->PurgeTag(tag, &removed);
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      auto t = s.tags.find(tag);
      if (t == s.tags.end()) continue;
      std::vector<const Object*> objects(t->second.begin(), t->second.end());
      for (const Object* o : objects) {
        auto it = s.keys.find(o->key);
        auto& slots = it->second;
        auto pos = std::find_if(slots.begin(), slots.end(),
                                [&](const Slot& slot) { return slot.object.get() == o; });
        EraseSlot(s, it, pos - slots.begin(), &removed);
      }
    }
    return removed.size();
  }

  StoreStats Stats() const override {
    StoreStats st;
    st.memory_objects = memory_objects_.load(std::memory_order_relaxed);
    st.memory_bytes = memory_bytes_.load(std::memory_order_relaxed);
    st.evictions = evictions_.load(std::memory_order_relaxed);
    if (disk_) {
      DiskTier::Stats d = disk_->GetStats();
      st.disk_objects = d.objects;
      st.disk_bytes = d.bytes;
      st.disk_errors = d.errors;
      st.disk_dropped = d.dropped;
    }
    return st;
  }

  void SyncRemovals() override {
    if (disk_) disk_->SyncRemovals();
  }
  void FlushDisk() override {
    if (disk_) disk_->Flush();
  }

 private:
  std::function<void()> Hook(std::string_view point) const {
    if (!test_hook_) return nullptr;
    return [hook = test_hook_, point] { hook(point); };
  }

  Shard& ShardFor(std::string_view key) { return shards_[StringHash{}(key) % shards_.size()]; }

  // The rest run under s.mu.

  // Stores the object (replacing its variant; dropping the key's oldest variant when it has
  // kMaxVariants), evicting by the policy to the shard's budget. An object over the budget is
  // not kept (the variant it replaces is gone all the same).
  void Insert(Shard& s, const ObjectPtr& object, size_t bytes) {
    EraseVariant(s, object->key, object->vary_key);
    if (auto it = s.keys.find(object->key);
        it != s.keys.end() && it->second.size() >= static_cast<size_t>(kMaxVariants))
      EraseSlot(s, it, it->second.size() - 1, nullptr);
    if (bytes > s.budget) return;
    while (s.bytes + bytes > s.budget) {
      const std::string* victim = s.policy->Victim();
      auto it = s.keys.find(*victim);
      auto& slots = it->second;
      auto pos = std::find_if(slots.begin(), slots.end(),
                              [&](const Slot& slot) { return &slot.object->key == victim; });
      EraseSlot(s, it, pos - slots.begin(), nullptr);
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
    auto& slots = s.keys[object->key];
    slots.insert(slots.begin(), Slot{object, bytes});
    s.policy->OnInsert(&object->key);
    for (const std::string& tag : object->tags) s.tags[tag].insert(object.get());
    s.bytes += bytes;
    memory_objects_.fetch_add(1, std::memory_order_relaxed);
    memory_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }

  void EraseVariant(Shard& s, std::string_view key, std::string_view vary_key) {
    auto it = s.keys.find(key);
    if (it == s.keys.end()) return;
    auto& slots = it->second;
    auto pos = std::find_if(slots.begin(), slots.end(),
                            [&](const Slot& slot) { return slot.object->vary_key == vary_key; });
    if (pos != slots.end()) EraseSlot(s, it, pos - slots.begin(), nullptr);
  }

  void EraseKey(Shard& s, KeyMap::iterator it, RemovedSet* removed) {
    // EraseSlot erases the map's node with the last slot.
    for (size_t n = it->second.size(); n > 0; --n) EraseSlot(s, it, n - 1, removed);
  }

  void EraseSlot(Shard& s, KeyMap::iterator it, size_t index, RemovedSet* removed) {
    auto& slots = it->second;
    Slot slot = std::move(slots[index]);
    slots.erase(slots.begin() + static_cast<std::ptrdiff_t>(index));
    const Object& o = *slot.object;
    if (removed) removed->insert(ObjectId(o.key, o.vary_key));
    s.policy->OnErase(&o.key);
    for (const std::string& tag : o.tags) {
      auto t = s.tags.find(tag);
      if (t == s.tags.end()) continue;  // a tag listed twice
      t->second.erase(&o);
      if (t->second.empty()) s.tags.erase(t);
    }
    s.bytes -= slot.bytes;
    memory_objects_.fetch_sub(1, std::memory_order_relaxed);
    memory_bytes_.fetch_sub(slot.bytes, std::memory_order_relaxed);
    if (slots.empty()) s.keys.erase(it);
  }

  const size_t max_object_bytes_;
  const std::function<void(std::string_view)> test_hook_;
  std::vector<Shard> shards_;
  std::unique_ptr<DiskTier> disk_;  // null without a disk tier
  std::atomic<uint64_t> memory_objects_{0}, memory_bytes_{0}, evictions_{0};
};

}  // namespace

std::unique_ptr<ObjectStore> OpenObjectStore(const StoreOptions& options) {
  return std::make_unique<Store>(options);
}

}  // namespace millions::edge
