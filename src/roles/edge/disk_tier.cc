// DiskTier: the index, the purges and the writer thread (see disk_tier.h for the guarantees).
// Thread-safety: mu_ guards everything but the constant options; the writer drops it while it
// writes a file. Ownership: owns the writer thread and the queued objects' references.
#include "roles/edge/disk_tier.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "core/log.h"
#include "roles/edge/object_file.h"

namespace millions::edge {

namespace fs = std::filesystem;

namespace {

// Queued writes hold their objects in memory: beyond this, a write is dropped (the disk is
// slower than the puts) rather than letting the queue grow without bound.
constexpr size_t kMaxQueuedBytes = 64 << 20;
constexpr std::string_view kObjSuffix = ".obj";
constexpr std::string_view kHeadSuffix = ".head";
constexpr std::string_view kTmpSuffix = ".tmp";  // a file being written: NAME.tmp, NAME.head.tmp
constexpr std::string_view kHeadTmpSuffix = ".head.tmp";

bool IsHexName(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool HasTag(const Object& o, std::string_view tag) {
  return std::find(o.tags.begin(), o.tags.end(), tag) != o.tags.end();
}

}  // namespace

std::string ObjectId(std::string_view key, std::string_view vary_key) {
  std::string id;
  id.reserve(key.size() + 1 + vary_key.size());
  id.append(key);
  id += '\0';
  id.append(vary_key);
  return id;
}

bool VaryMatches(const std::vector<std::string>& vary, std::string_view vary_key,
                 const HeaderLookup& request) {
  if (vary.empty()) return vary_key.empty();
  if (std::find(vary.begin(), vary.end(), "*") != vary.end()) return false;  // RFC 9111 §4.1
  return VaryKey(vary, request) == vary_key;
}

DiskTier::DiskTier(std::string dir, uint64_t max_bytes, std::function<void()> before_write)
    : dir_(std::move(dir)), max_bytes_(max_bytes), before_write_(std::move(before_write)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("edge disk tier: cannot make " + dir_ + ": " + ec.message());
  // One edge per directory: two would evict, purge and rewrite each other's files unseen. The
  // lock is the kernel's (flock), so it goes with the process, also when it is killed.
  lock_fd_ = ::open(Path(".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw std::runtime_error("edge disk tier: cannot open " + Path(".lock"));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw std::runtime_error("edge disk tier: " + dir_ +
                             " is in use by another process (its .lock is held): give each edge "
                             "a disk_dir of its own");
  }
  Scan();
  writer_ = std::thread([this] { Run(); });
}

DiskTier::~DiskTier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  writer_.join();
  ::close(lock_fd_);  // releases the flock
}

std::string DiskTier::Path(std::string_view name) const {
  std::string p = dir_;
  p += '/';
  p += name;
  return p;
}

std::string DiskTier::ObjPath(std::string_view name) const {
  return Path(std::string(name) + std::string(kObjSuffix));
}

std::string DiskTier::HeadPath(std::string_view name) const {
  return Path(std::string(name) + std::string(kHeadSuffix));
}

DiskTier::Entry DiskTier::MakeEntry(const Object& o) {
  Entry e;
  e.key = o.key;
  e.vary_key = o.vary_key;
  e.vary = o.meta.info.vary;
  e.tags = o.tags;
  return e;
}

void DiskTier::RemoveFiles(const std::string& name) const {
  ::remove(ObjPath(name).c_str());
  ::remove(HeadPath(name).c_str());
}

void DiskTier::Scan() {
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) throw std::runtime_error("edge disk tier: cannot read " + dir_ + ": " + ec.message());
  std::vector<std::pair<std::string, ObjectFile>> found;
  std::vector<std::string> head_files;  // names that have one
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::string file = it->path().filename().string();
    std::string_view f = file;
    std::error_code ignored;
    if (f.ends_with(kTmpSuffix)) {  // a write the last run did not finish
      fs::remove(it->path(), ignored);
      continue;
    }
    if (f.ends_with(kHeadSuffix) && IsHexName(f.substr(0, f.size() - kHeadSuffix.size()))) {
      head_files.emplace_back(f.substr(0, 32));  // read with its object file
      continue;
    }
    if (!f.ends_with(kObjSuffix) || !IsHexName(f.substr(0, f.size() - kObjSuffix.size())))
      continue;  // not ours
    std::string name(f.substr(0, 32));
    ObjectFile head;
    std::string error;
    ReadStatus s = ReadObjectHead(it->path().string(), &head, &error);
    if (s == ReadStatus::kOk && ObjectFileName(head.object->key, head.object->vary_key) != name) {
      s = ReadStatus::kBad;
      error = file + ": named for another object";
    }
    if (s != ReadStatus::kOk) {
      if (s == ReadStatus::kBad) {
        ++errors_;
        log::Warn("edge disk tier: removing a bad file", {{"error", error}});
      }
      fs::remove(it->path(), ignored);
      continue;
    }
    if (head.head_file == HeadFile::kBad) {
      ++errors_;
      log::Warn("edge disk tier: removing a bad head file", {{"error", head.head_file_error}});
    }
    // A head file that does not apply (a crash between a rewrite and its unlink) goes too.
    if (head.head_file == HeadFile::kBad || head.head_file == HeadFile::kIgnored)
      fs::remove(HeadPath(name), ignored);
    found.emplace_back(std::move(name), std::move(head));
  }
  if (ec) throw std::runtime_error("edge disk tier: cannot read " + dir_ + ": " + ec.message());
  // Head files without a sound object file (a crash between a removal's two unlinks).
  std::unordered_set<std::string> kept;
  for (const auto& f : found) kept.insert(f.first);
  for (const std::string& name : head_files) {
    std::error_code ignored;
    if (!kept.count(name)) fs::remove(HeadPath(name), ignored);
  }
  // Oldest first, so that the variant and byte bounds keep the newest, as when they were written.
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.second.seq < b.second.seq; });
  std::lock_guard lock(mu_);
  for (const auto& [name, f] : found) {
    Entry e = MakeEntry(*f.object);
    e.seq = f.seq;
    e.bytes = f.file_bytes;
    e.object_seq = f.object_seq;
    e.object_bytes = f.object_bytes;
    Commit(name, std::move(e));
    next_seq_ = std::max(next_seq_, f.seq + 1);
  }
  // Commit's evictions queued nothing: they unlinked at once, which is fine before the writer
  // runs.
}

void DiskTier::Write(ObjectPtr object) {
  size_t bytes = object->bytes();
  std::string name = ObjectFileName(object->key, object->vary_key);
  std::lock_guard lock(mu_);
  if (auto q = queued_.find(name); q != queued_.end() && bytes <= max_bytes_) {
    // A newer response for a variant still waiting: write only the newer one.
    queued_bytes_ = queued_bytes_ - q->second->bytes + bytes;
    q->second->object = std::move(object);
    q->second->bytes = bytes;
    return;
  }
  if (bytes > max_bytes_ || (!writes_.empty() && queued_bytes_ + bytes > kMaxQueuedBytes)) {
    // Not written: and the variant's older file must not answer instead (RFC 9111 §4: the
    // most recent response is the one to use).
    ++dropped_;
    const std::string &key = object->key, &vary_key = object->vary_key;
    CancelWrites([&](const Object& o) { return o.key == key && o.vary_key == vary_key; }, nullptr);
    if (files_.count(name)) Drop(name, nullptr);
    return;
  }
  auto job = std::make_shared<Job>(Job{std::move(object), name, bytes, false});
  queued_.emplace(std::move(name), job);
  writes_.push_back(std::move(job));
  queued_bytes_ += bytes;
  work_cv_.notify_one();
}

void DiskTier::Remove(std::string_view key, std::string_view vary_key) {
  std::string name = ObjectFileName(key, vary_key);
  std::lock_guard lock(mu_);
  CancelWrites([&](const Object& o) { return o.key == key && o.vary_key == vary_key; }, nullptr);
  if (files_.count(name)) Drop(name, nullptr);
}

std::optional<DiskTier::Candidate> DiskTier::Find(std::string_view key,
                                                  const HeaderLookup& request) const {
  std::lock_guard lock(mu_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  std::optional<Candidate> best;
  for (const std::string& name : it->second) {
    const Entry& e = files_.at(name);
    if ((!best || e.seq > best->seq) && VaryMatches(e.vary, e.vary_key, request))
      best = Candidate{name, e.seq};
  }
  return best;
}

bool DiskTier::IsCurrent(const Candidate& c) const {
  auto it = files_.find(c.name);
  return it != files_.end() && it->second.seq == c.seq;
}

bool DiskTier::Current(const Candidate& c, const std::shared_ptr<const std::string>& body) {
  std::lock_guard lock(mu_);
  if (!IsCurrent(c)) return false;
  if (body) files_.at(c.name).body = body;
  return true;
}

std::shared_ptr<Object> DiskTier::Read(const Candidate& c) {
  ObjectFile f;
  std::string error;
  ReadStatus s = ReadObjectFile(ObjPath(c.name), &f, &error);
  if (s == ReadStatus::kOk && f.head_file == HeadFile::kBad) {
    // Head files are renamed into place whole: this one was damaged since.
    s = ReadStatus::kBad;
    error = f.head_file_error;
  }
  if (s == ReadStatus::kOk) {
    if (f.seq != c.seq) return nullptr;  // rewritten since Find: a miss, not an error
    if (ObjectFileName(f.object->key, f.object->vary_key) == c.name) return std::move(f.object);
    s = ReadStatus::kBad;
    error = c.name + ": holds another object";
  }
  if (s == ReadStatus::kMissing) error = c.name + ": missing";
  std::lock_guard lock(mu_);
  bool current = IsCurrent(c);
  // Missing is only an error when the index still has it (else a purge removed it meanwhile).
  if (s == ReadStatus::kBad || current) {
    ++errors_;
    log::Warn("edge disk tier: not serving a bad file", {{"error", error}});
  }
  if (current) Drop(c.name, nullptr);
  return nullptr;
}

void DiskTier::Erase(const std::string& name) {
  auto it = files_.find(name);
  if (it == files_.end()) return;
  Entry& e = it->second;
  auto k = keys_.find(e.key);
  std::erase(k->second, name);
  if (k->second.empty()) keys_.erase(k);
  for (const std::string& tag : e.tags) {
    auto t = tags_.find(tag);
    if (t == tags_.end()) continue;  // a tag listed twice
    t->second.erase(name);
    if (t->second.empty()) tags_.erase(t);
  }
  by_seq_.erase(e.seq);
  bytes_ -= e.bytes;
  files_.erase(it);
}

void DiskTier::Drop(const std::string& name, RemovedSet* removed) {
  const Entry& e = files_.at(name);
  if (removed) removed->insert(ObjectId(e.key, e.vary_key));
  Erase(name);
  removals_.push_back(name);
  ++removals_queued_;
  work_cv_.notify_one();
}

void DiskTier::CancelWrites(const std::function<bool(const Object&)>& match, RemovedSet* removed) {
  for (auto it = queued_.begin(); it != queued_.end();) {
    Job& job = *it->second;
    if (!match(*job.object)) {
      ++it;
      continue;
    }
    if (removed) removed->insert(ObjectId(job.object->key, job.object->vary_key));
    job.cancelled = true;
    queued_bytes_ -= job.bytes;
    it = queued_.erase(it);
  }
  if (inflight_ && !inflight_->cancelled && match(*inflight_->object)) {
    if (removed) removed->insert(ObjectId(inflight_->object->key, inflight_->object->vary_key));
    inflight_->cancelled = true;
  }
}

void DiskTier::PurgeKey(std::string_view key, RemovedSet* removed) {
  std::lock_guard lock(mu_);
  CancelWrites([&](const Object& o) { return o.key == key; }, removed);
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  std::vector<std::string> names = it->second;  // Drop edits keys_
  for (const std::string& name : names) Drop(name, removed);
}

void DiskTier::PurgePrefix(std::string_view prefix, RemovedSet* removed) {
  std::lock_guard lock(mu_);
  CancelWrites([&](const Object& o) { return o.key.starts_with(prefix); }, removed);
  std::vector<std::string> names;
  for (auto it = keys_.lower_bound(prefix); it != keys_.end() && it->first.starts_with(prefix);
       ++it)
    names.insert(names.end(), it->second.begin(), it->second.end());
  for (const std::string& name : names) Drop(name, removed);
}

void DiskTier::PurgeTag(std::string_view tag, RemovedSet* removed) {
  std::lock_guard lock(mu_);
  CancelWrites([&](const Object& o) { return HasTag(o, tag); }, removed);
  auto it = tags_.find(std::string(tag));
  if (it == tags_.end()) return;
  std::vector<std::string> names(it->second.begin(), it->second.end());
  for (const std::string& name : names) Drop(name, removed);
}

void DiskTier::Commit(const std::string& name, Entry e) {
  Erase(name);  // the rename replaced its file
  auto& names = keys_[e.key];
  names.push_back(name);
  for (const std::string& tag : e.tags) tags_[tag].insert(name);
  by_seq_[e.seq] = name;
  bytes_ += e.bytes;
  files_.emplace(name, std::move(e));
  // The oldest variants and files leave; the writer (or Scan, before it) unlinks them now.
  auto unlink_oldest = [&](std::string victim) {  // a copy: Erase frees the index's
    Erase(victim);
    RemoveFiles(victim);
  };
  if (names.size() > static_cast<size_t>(ObjectStore::kMaxVariants)) {
    std::string oldest = *std::min_element(names.begin(), names.end(), [&](auto& a, auto& b) {
      return files_.at(a).seq < files_.at(b).seq;
    });
    unlink_oldest(oldest);
  }
  while (bytes_ > max_bytes_ && !by_seq_.empty()) unlink_oldest(by_seq_.begin()->second);
}

void DiskTier::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !removals_.empty() || !writes_.empty(); });
    // Removals first: they make purges durable, and they are cheap.
    while (!removals_.empty()) {
      std::string name = std::move(removals_.front());
      removals_.pop_front();
      // Written again since it was dropped: the rename replaced the old file already.
      if (!files_.count(name)) RemoveFiles(name);
      ++removals_done_;
    }
    idle_cv_.notify_all();  // SyncRemovals need not wait for the write below
    if (!writes_.empty()) {
      std::shared_ptr<Job> job = std::move(writes_.front());
      writes_.pop_front();
      if (!job->cancelled) WriteJob(job, lock);
    }
    idle_cv_.notify_all();
    if (stop_ && removals_.empty() && writes_.empty()) return;
  }
}

void DiskTier::WriteJob(const std::shared_ptr<Job>& job, std::unique_lock<std::mutex>& lock) {
  queued_.erase(job->name);
  queued_bytes_ -= job->bytes;
  inflight_ = job;
  ObjectPtr object = job->object;
  const uint64_t seq = next_seq_++;
  // A revalidation's refresh: the body is the very one the variant's indexed file holds.
  auto indexed = files_.find(job->name);
  bool refresh =
      indexed != files_.end() && object->body && indexed->second.body.lock() == object->body;
  const uint64_t base_seq = refresh ? indexed->second.object_seq : 0;
  lock.unlock();
  if (before_write_) before_write_();
  std::string tmp, error;
  uint64_t bytes = 0;
  bool ok = false;
  if (refresh) {
    BodyStamp stamp;
    // The object file as the index knows it; else (damaged since) the object is written whole.
    refresh = ReadBodyStamp(ObjPath(job->name), &stamp, &error) == ReadStatus::kOk &&
              stamp.length == object->body->size();
    if (refresh) {
      tmp = Path(job->name + std::string(kHeadTmpSuffix));
      ok = WriteHeadFile(tmp, *object, seq, stamp, &bytes, &error);
    }
  }
  if (!refresh) {
    tmp = Path(job->name + std::string(kTmpSuffix));
    ok = WriteObjectFile(tmp, *object, seq, &bytes, &error);
  }
  const std::string final_path = refresh ? HeadPath(job->name) : ObjPath(job->name);
  lock.lock();
  inflight_ = nullptr;
  // Checked and committed under mu_: a purge either cancelled this job already or runs after
  // the index has it (and then drops it). A head file also needs its object file still indexed
  // as it was: a read that found that file bad dropped it without cancelling this job.
  bool live = !job->cancelled;
  if (live && refresh) {
    auto it = files_.find(job->name);
    live = it != files_.end() && it->second.object_seq == base_seq;
  }
  if (ok && live && ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    ok = false;
    error = "rename " + final_path + " failed";
  }
  if (!ok) {
    ++errors_;
    log::Warn("edge disk tier: cannot write", {{"error", error}});
  }
  if (!ok || !live) {
    ::remove(tmp.c_str());
    return;
  }
  Entry e = MakeEntry(*object);
  e.seq = seq;
  if (refresh) {
    const Entry& old = files_.at(job->name);
    e.object_seq = old.object_seq;
    e.object_bytes = old.object_bytes;
    e.bytes = old.object_bytes + bytes;
    e.body = old.body;
  } else {
    // An older refresh's head file: superseded (and, should a crash keep it, older by seq).
    ::remove(HeadPath(job->name).c_str());
    e.object_seq = seq;
    e.object_bytes = e.bytes = bytes;
    e.body = object->body;
  }
  Commit(job->name, std::move(e));
}

void DiskTier::Flush() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return writes_.empty() && removals_.empty() && !inflight_; });
}

void DiskTier::SyncRemovals() {
  {
    std::unique_lock lock(mu_);
    const uint64_t target = removals_queued_;
    idle_cv_.wait(lock, [&] { return removals_done_ >= target; });
  }
  // The unlinks are directory entries: on disk once the directory is.
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    if (::fsync(fd) != 0)
      log::Warn("edge disk tier: fsync of the directory failed", {{"dir", dir_}});
    ::close(fd);
  }
}

DiskTier::Stats DiskTier::GetStats() const {
  std::lock_guard lock(mu_);
  return {files_.size(), bytes_, errors_, dropped_};
}

}  // namespace millions::edge
