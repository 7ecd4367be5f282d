// The object store's disk tier: a restart finds objects again, byte for byte and field for
// field; purges take effect at once even before the writer thread has caught up; torn, corrupt
// and foreign files are detected and never served; the byte bound removes the oldest written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "roles/edge/object_file.h"
#include "roles/edge/store.h"
#include "roles/edge/store_disk_test_util.h"
#include "roles/edge/store_test_util.h"

namespace millions::edge {
namespace {

namespace fs = std::filesystem;
using testing::BodyOf;
using testing::EdgeDisk;
using testing::ExpectSameObject;
using testing::FlipByte;
using testing::Full;
using testing::FullRequest;
using testing::Headers;
using testing::MakeObject;
using testing::Obj;
using testing::WriterGate;

// Two edges on one directory would evict and purge each other's files unseen: the second is
// refused, and the directory is free again once the first is gone.
TEST_F(EdgeDisk, OneStorePerDirectory) {
  auto first = Open();
  try {
    Open();
    ADD_FAILURE() << "a second store opened the same directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another process"), std::string::npos)
        << e.what();
  }
  first.reset();
  EXPECT_NE(Open(), nullptr);
}

TEST_F(EdgeDisk, RestartFindsObjectsWithIdenticalBytesAndMeta) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
    s->Put(Obj("GET /plain h", "plain"));
    s->FlushDisk();
    EXPECT_EQ(s->Stats().disk_objects, 2u);
  }
  auto s = Open();
  StoreStats st = s->Stats();
  EXPECT_EQ(st.disk_objects, 2u);
  EXPECT_EQ(st.memory_objects, 0u);  // the index only, not the objects
  EXPECT_EQ(st.disk_errors, 0u);
  EXPECT_EQ(s->Lookup(full->key, FullRequest()), nullptr);
  ObjectPtr loaded = s->LoadFromDisk(full->key, FullRequest());
  ASSERT_TRUE(loaded);
  ExpectSameObject(*loaded, *full);
  // Promoted: memory answers now.
  EXPECT_EQ(s->Lookup(full->key, FullRequest()), loaded);
  EXPECT_EQ(s->Stats().memory_objects, 1u);
  EXPECT_EQ(BodyOf(s->LoadFromDisk("GET /plain h", Headers())), "plain");
  // The Vary selection applies on disk too.
  EXPECT_EQ(s->LoadFromDisk(full->key, Headers({{"Accept-Encoding", "gzip"}})), nullptr);
}

TEST_F(EdgeDisk, ReplacedVariantSurvivesRestartAsTheNewest) {
  {
    auto s = Open();
    s->Put(Obj("GET /r h", "first"));
    s->FlushDisk();
    s->Put(Obj("GET /r h", "second"));
  }  // the destructor finishes the queue
  auto s = Open();
  EXPECT_EQ(BodyOf(s->LoadFromDisk("GET /r h", Headers())), "second");
  EXPECT_EQ(s->Stats().disk_objects, 1u);
}

// The file holds an older response than memory (the newer one's write is still queued):
// LoadFromDisk answers with the newer, and does not replace it.
TEST_F(EdgeDisk, LoadFromDiskKeepsANewerObjectInMemory) {
  {
    auto s = Open();
    s->Put(Obj("GET /n h", "old"));
  }
  WriterGate gate;
  StoreOptions o = Options();
  o.test_hook = gate.Hook("disk_write");
  auto s = OpenObjectStore(o);
  s->Put(Obj("GET /n h", "new"));
  ASSERT_TRUE(gate.WaitBlocked(1));
  EXPECT_EQ(BodyOf(s->LoadFromDisk("GET /n h", Headers())), "new");
  EXPECT_EQ(BodyOf(s->Lookup("GET /n h", Headers())), "new");
  gate.Release();
}

enum class PurgeBy { kKey, kPrefix, kTag };

size_t Purge(ObjectStore& s, PurgeBy by, const Object& o) {
  switch (by) {
    case PurgeBy::kKey:
      return s.PurgeKey(o.key);
    case PurgeBy::kPrefix:
      return s.PurgePrefix(CacheKeyPathPrefix("/media/"));
    case PurgeBy::kTag:
      return s.PurgeTag("user-1");
  }
  return 0;
}

class EdgeDiskPurge : public EdgeDisk, public ::testing::WithParamInterface<PurgeBy> {};

// The file is on disk and indexed; the writer is stuck on another object, so the removal waits
// in its queue: the purge must still be effective at once, and the file gone once it runs.
TEST_P(EdgeDiskPurge, EffectiveBeforeTheWriterRemovesTheFile) {
  auto full = Full();
  WriterGate gate;
  {
    auto s = Open();
    s->Put(full);
    s->FlushDisk();
  }
  StoreOptions o = Options();
  o.test_hook = gate.Hook("disk_write");
  auto s = OpenObjectStore(o);
  ASSERT_TRUE(s->LoadFromDisk(full->key, FullRequest()));  // in memory and on disk
  s->Put(Obj("GET /other h", "blocks the writer"));
  ASSERT_TRUE(gate.WaitBlocked(1));
  EXPECT_EQ(Purge(*s, GetParam(), *full), 1u);  // memory and disk count once
  EXPECT_TRUE(fs::exists(FileOf(*full)));       // the writer has not run
  EXPECT_EQ(s->Lookup(full->key, FullRequest()), nullptr);
  EXPECT_EQ(s->LoadFromDisk(full->key, FullRequest()), nullptr);
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  gate.Release();
  s->FlushDisk();
  EXPECT_FALSE(fs::exists(FileOf(*full)));
  EXPECT_EQ(s->Stats().disk_errors, 0u);
  s.reset();
  EXPECT_EQ(Open()->LoadFromDisk(full->key, FullRequest()), nullptr);  // not after a restart
}

// The Put is queued (or being written) when the purge comes: the write must not land.
TEST_P(EdgeDiskPurge, CancelsQueuedAndInFlightWrites) {
  auto full = Full();
  WriterGate gate;
  StoreOptions o = Options();
  o.test_hook = gate.Hook("disk_write");
  auto s = OpenObjectStore(o);
  s->Put(full);  // in flight: the writer is blocked before writing it
  auto queued = MakeObject(
      {CacheKey("GET", "edge.example", "/media/q.jpg", ""), "q", {}, Headers(), {"user-1"}});
  s->Put(queued);  // queued behind it
  ASSERT_TRUE(gate.WaitBlocked(1));
  size_t expected = GetParam() == PurgeBy::kKey ? 1 : 2;
  EXPECT_EQ(Purge(*s, GetParam(), *full), expected);
  EXPECT_EQ(s->Lookup(full->key, FullRequest()), nullptr);
  gate.Release();
  s->FlushDisk();
  EXPECT_EQ(s->LoadFromDisk(full->key, FullRequest()), nullptr);
  EXPECT_FALSE(fs::exists(FileOf(*full)));
  if (GetParam() != PurgeBy::kKey) {
    EXPECT_FALSE(fs::exists(FileOf(*queued)));
  }
  EXPECT_EQ(Files(), GetParam() == PurgeBy::kKey ? 1u : 0u);
  // A Put after the purge returned is kept.
  s->Put(full);
  s->FlushDisk();
  s.reset();
  EXPECT_TRUE(Open()->LoadFromDisk(full->key, FullRequest()));
}

// SyncRemovals (what the admin API waits for before it acknowledges a purge) returns only once
// the purged file is gone from the disk, also while the writer is busy with another file: a
// crash after the acknowledgement cannot bring the file back.
TEST_P(EdgeDiskPurge, SyncRemovalsWaitsForTheFileToGo) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
  }
  ASSERT_TRUE(fs::exists(FileOf(*full)));
  WriterGate gate;
  StoreOptions o = Options();
  o.test_hook = gate.Hook("disk_write");
  auto s = OpenObjectStore(o);
  s->Put(Obj("GET /other h", "busy"));  // the writer blocks in this write
  ASSERT_TRUE(gate.WaitBlocked(1));
  EXPECT_EQ(Purge(*s, GetParam(), *full), 1u);
  std::atomic<bool> synced{false};
  std::thread sync([&] {
    s->SyncRemovals();
    synced = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(synced) << "SyncRemovals returned while the file's removal was still queued";
  EXPECT_TRUE(fs::exists(FileOf(*full)));  // the purge has not reached the disk yet
  gate.Release();
  sync.join();
  EXPECT_TRUE(synced);
  EXPECT_FALSE(fs::exists(FileOf(*full)));
  s.reset();
  EXPECT_EQ(Open()->LoadFromDisk(full->key, FullRequest()), nullptr);
}

INSTANTIATE_TEST_SUITE_P(By, EdgeDiskPurge,
                         ::testing::Values(PurgeBy::kKey, PurgeBy::kPrefix, PurgeBy::kTag));

// A LoadFromDisk that read its file before a purge and promotes it after: the purge wins.
TEST_P(EdgeDiskPurge, LoadRacingThePurgeDoesNotPromote) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
  }
  WriterGate gate;
  StoreOptions o = Options();
  o.test_hook = gate.Hook("promote");
  auto s = OpenObjectStore(o);
  ObjectPtr loaded = Obj("x", "not set");
  std::thread load([&] { loaded = s->LoadFromDisk(full->key, FullRequest()); });
  if (!gate.WaitBlocked(1)) {  // the file is read and checked
    load.join();
    FAIL() << "LoadFromDisk did not reach the promotion";
  }
  EXPECT_EQ(Purge(*s, GetParam(), *full), 1u);
  gate.Release();
  load.join();
  EXPECT_EQ(loaded, nullptr);
  EXPECT_EQ(s->Lookup(full->key, FullRequest()), nullptr);
  EXPECT_EQ(s->Stats().memory_objects, 0u);
}

// A tag purge queues the removal of the tagged file while a newer, untagged response for the
// same variant is being written: the newer file (same name) must survive the removal.
TEST_F(EdgeDisk, PurgeDoesNotRemoveANewerFileWrittenMeanwhile) {
  auto tagged = Obj("GET /t h", "tagged", {"t"});
  {
    auto s = Open();
    s->Put(tagged);
  }
  WriterGate gate;
  StoreOptions o = Options();
  o.test_hook = gate.Hook("disk_write");
  auto s = OpenObjectStore(o);
  s->Put(Obj("GET /t h", "untagged"));  // in flight
  ASSERT_TRUE(gate.WaitBlocked(1));
  EXPECT_EQ(s->PurgeTag("t"), 1u);  // the old file only: memory holds the untagged one
  gate.Release();
  s->FlushDisk();
  s.reset();
  s = Open();
  EXPECT_EQ(BodyOf(s->LoadFromDisk("GET /t h", Headers())), "untagged");
  EXPECT_EQ(s->Stats().disk_errors, 0u);
}

TEST_F(EdgeDisk, CorruptBodyDetectedAtLoadNotServed) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
    s->FlushDisk();
  }
  fs::path file = FileOf(*full);
  FlipByte(file, fs::file_size(file) - 40);  // in the body
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_objects, 1u);  // the head is sound: indexed
  EXPECT_EQ(s->LoadFromDisk(full->key, FullRequest()), nullptr);
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  EXPECT_EQ(s->Lookup(full->key, FullRequest()), nullptr);
  s->FlushDisk();
  EXPECT_FALSE(fs::exists(file));
}

TEST_F(EdgeDisk, CorruptHeadDetectedAtOpen) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
    s->FlushDisk();
  }
  fs::path file = FileOf(*full);
  // In the header lines: the key and the body would still check out, so only the head's own
  // checksum can tell.
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = bytes.find("image/jpeg");
  ASSERT_NE(at, std::string::npos);
  FlipByte(file, at);
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(s->LoadFromDisk(full->key, FullRequest()), nullptr);
}

TEST_F(EdgeDisk, TruncatedFileDetectedAtOpen) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
    s->Put(Obj("GET /x h", "x"));
    s->FlushDisk();
  }
  fs::path file = FileOf(*full);
  fs::resize_file(file, fs::file_size(file) - 10);  // a torn write: the tail is missing
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_objects, 1u);
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(s->LoadFromDisk(full->key, FullRequest()), nullptr);
  EXPECT_EQ(BodyOf(s->LoadFromDisk("GET /x h", Headers())), "x");
}

// Open indexed the file; it is torn, or gone, by the time it is read.
TEST_F(EdgeDisk, FileDamagedWhileIndexedDetectedAtLoad) {
  auto full = Full();
  {
    auto s = Open();
    s->Put(full);
    s->Put(Obj("GET /gone h", "gone"));
  }
  auto s = Open();
  ASSERT_EQ(s->Stats().disk_objects, 2u);
  fs::path file = FileOf(*full);
  fs::resize_file(file, fs::file_size(file) - 1);
  EXPECT_EQ(s->LoadFromDisk(full->key, FullRequest()), nullptr);
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_EQ(s->Stats().disk_objects, 1u);  // no longer indexed
  fs::remove(FileOf(*Obj("GET /gone h", "")));
  EXPECT_EQ(s->LoadFromDisk("GET /gone h", Headers()), nullptr);
  EXPECT_EQ(s->Stats().disk_errors, 2u);
  EXPECT_EQ(s->Stats().disk_objects, 0u);
}

TEST_F(EdgeDisk, ForeignAndLeftoverFilesAtOpen) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "0123456789abcdef0123456789abcdef.obj") << "not an object";
  std::ofstream(dir_ / "0123456789abcdef0123456789abcdef.tmp") << "half a write";
  std::ofstream(dir_ / "README") << "someone else's";
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  EXPECT_EQ(Files(), 1u);  // only the README, which is not ours
}

TEST_F(EdgeDisk, FileNamedForAnotherObjectIsNotServed) {
  auto a = Obj("GET /a h", "a");
  auto b = Obj("GET /b h", "b");
  {
    auto s = Open();
    s->Put(a);
    s->FlushDisk();
  }
  fs::rename(FileOf(*a), FileOf(*b));  // b's name, a's content
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_EQ(s->LoadFromDisk("GET /b h", Headers()), nullptr);
}

TEST_F(EdgeDisk, BoundRemovesOldestWrittenFirst) {
  StoreOptions o = Options();
  uint64_t file_bytes = 0;
  {
    auto s = OpenObjectStore(o);
    s->Put(Obj("GET /00 h", std::string(1000, 'x')));
    s->FlushDisk();
    file_bytes = s->Stats().disk_bytes;
  }
  fs::remove_all(dir_);
  o.disk_bytes = 5 * file_bytes;
  {
    auto s = OpenObjectStore(o);
    for (int i = 0; i < 20; ++i) {
      char key[16];
      snprintf(key, sizeof key, "GET /%02d h", i);
      s->Put(Obj(key, std::string(1000, 'x')));
      if (i % 3 == 0) s->FlushDisk();
    }
    s->FlushDisk();
    StoreStats st = s->Stats();
    EXPECT_EQ(st.disk_objects, 5u);
    EXPECT_LE(st.disk_bytes, o.disk_bytes);
    EXPECT_EQ(Files(), 5u);
    EXPECT_EQ(s->LoadFromDisk("GET /14 h", Headers()), nullptr);
    EXPECT_TRUE(s->LoadFromDisk("GET /15 h", Headers()));
  }
  // A smaller bound at the next start keeps the newest.
  o.disk_bytes = 2 * file_bytes;
  auto s = OpenObjectStore(o);
  EXPECT_EQ(s->Stats().disk_objects, 2u);
  EXPECT_EQ(s->LoadFromDisk("GET /17 h", Headers()), nullptr);
  EXPECT_TRUE(s->LoadFromDisk("GET /18 h", Headers()));
  EXPECT_TRUE(s->LoadFromDisk("GET /19 h", Headers()));
}

TEST_F(EdgeDisk, OversizeReplacementRemovesTheFile) {
  StoreOptions o = Options();
  o.max_object_bytes = 4096;
  auto s = OpenObjectStore(o);
  s->Put(Obj("GET /g h", "small"));
  s->FlushDisk();
  s->Put(Obj("GET /g h", std::string(5000, 'x')));
  EXPECT_EQ(s->LoadFromDisk("GET /g h", Headers()), nullptr);
  s->FlushDisk();
  EXPECT_EQ(Files(), 0u);
}

TEST_F(EdgeDisk, UnmakeableDirThrows) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  StoreOptions o;
  o.disk_dir = (dir_ / "file" / "sub").string();
  EXPECT_THROW(OpenObjectStore(o), std::runtime_error);
}

}  // namespace
}  // namespace millions::edge
