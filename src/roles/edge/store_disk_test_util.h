// Helpers for the disk tier's tests (store_disk_test.cc, store_refresh_test.cc): a fixture with
// a directory of its own, an object with every field set, a gate that holds the store's threads
// at its test points, and a byte flipper.
// Thread-safety: WriterGate is shared by the test and the store's threads (its own mutex); the
// rest is the test thread's. Ownership: the fixture removes its directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "roles/edge/object_file.h"
#include "roles/edge/store.h"
#include "roles/edge/store_test_util.h"

namespace millions::edge::testing {

namespace fs = std::filesystem;

class EdgeDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized: "Name/0"
    dir_ = fs::temp_directory_path() / ("edge_disk_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  StoreOptions Options() const {
    StoreOptions o;
    o.disk_dir = dir_.string();
    return o;
  }
  std::unique_ptr<ObjectStore> Open() const { return OpenObjectStore(Options()); }
  fs::path FileOf(const Object& o) const {
    return dir_ / (ObjectFileName(o.key, o.vary_key) + ".obj");
  }
  fs::path HeadFileOf(const Object& o) const { return HeadFilePath(FileOf(o).string()); }
  size_t Files() const {  // but the lock file
    return std::count_if(
        fs::directory_iterator(dir_), fs::directory_iterator(),
        [](const fs::directory_entry& e) { return e.path().filename() != ".lock"; });
  }

  fs::path dir_;
};

// An object with every field set to something other than its default.
inline std::shared_ptr<Object> Full() {
  auto o = MakeObject({CacheKey("GET", "edge.example", "/media/abc.jpg", "w=100"),
                       std::string("\0binary\xff body\r\n", sizeof("\0binary\xff body\r\n") - 1),
                       {"accept-encoding", "accept"},
                       Headers({{"Accept-Encoding", "gzip, br"}}),
                       {"user-1", "photo-2"}});
  o->status = 203;
  o->headers = "Content-Type: image/jpeg\r\nETag: W/\"x\"\r\n";
  Stored& m = o->meta;
  m.request_time = 1700000000;
  m.response_time = 1700000002;
  m.lifetime = 31536000;
  ResponseInfo& r = m.info;
  r.status = 203;
  r.date = 1700000001;
  r.expires = 1800000000;
  r.expires_present = true;
  r.age = 5;
  r.last_modified = 1600000000;
  r.etag = "W/\"x\"";
  r.pragma_no_cache = true;
  CacheControl& c = r.cc;
  c.max_age = 31536000;
  c.s_maxage = 600;
  c.min_fresh = 1;
  c.max_stale = 2;
  c.max_stale_any = true;
  c.stale_while_revalidate = 30;
  c.stale_if_error = 86400;
  c.no_store = c.no_cache = c.private_ = c.public_ = c.must_revalidate = c.proxy_revalidate =
      c.immutable = c.only_if_cached = c.no_transform = c.must_understand = true;
  return o;
}

inline HeaderLookup FullRequest() { return Headers({{"Accept-Encoding", "gzip,br"}}); }

// Blocks the store's thread that reaches a test point (StoreOptions::test_hook) until Release;
// WaitBlocked returns once n threads have arrived.
class WriterGate {
 public:
  // Blocks at `point` only.
  std::function<void(std::string_view)> Hook(std::string where) {
    return [this, where](std::string_view point) {
      if (point != where) return;
      std::unique_lock lock(mu_);
      ++arrived_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    };
  }
  // false after 10 s without them; the gate is then open, so that the test fails instead of
  // hanging on a thread that arrives later.
  bool WaitBlocked(int n) {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::seconds(10), [&] { return arrived_ >= n; })) return true;
    open_ = true;
    cv_.notify_all();
    return false;
  }
  void Release() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool open_ = false;
};

inline void FlipByte(const fs::path& p, uintmax_t offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x20));
}

}  // namespace millions::edge::testing
