// The disk tier and revalidations: a 304's refreshed object (new headers and freshness, the same
// body) writes only a head file beside the object's file, whose bytes stay as they were; a
// restart serves the refreshed head with the original body; a torn, corrupt, foreign or
// outdated head file is ignored (the object file's own head answers) and removed; purges,
// evictions and whole rewrites take the head file with them, and a purge racing a refresh wins.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

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
using testing::Obj;
using testing::WriterGate;

class EdgeRefresh : public EdgeDisk {
 protected:
  // `big` stored, the store reopened with the disk writer held by `gate` at its next write, and
  // a refresh of the loaded object queued: the writer is blocked on it when this returns.
  std::unique_ptr<ObjectStore> BlockedRefresh(const ObjectPtr& big, WriterGate* gate);
};

// Full() with a 1 MiB body: what a revalidation should not write again.
std::shared_ptr<Object> Big() {
  auto o = Full();
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 131 + 7);
  o->body = std::make_shared<const std::string>(std::move(body));
  return o;
}

// What the edge makes of a 304 (edge.cc): the stale object's copy, sharing its body, with the
// 304's headers and a new freshness.
std::shared_ptr<Object> Refreshed(const ObjectPtr& stale, int n) {
  auto o = std::make_shared<Object>(*stale);
  o->headers =
      "Content-Type: image/jpeg\r\nETag: W/\"x\"\r\nX-Validated: " + std::to_string(n) + "\r\n";
  o->meta.request_time += 1000 * n;
  o->meta.response_time += 1000 * n;
  o->meta.info.date = o->meta.response_time;
  o->meta.info.cc.max_age = 60 * n;
  return o;
}

std::unique_ptr<ObjectStore> EdgeRefresh::BlockedRefresh(const ObjectPtr& big, WriterGate* gate) {
  Open()->Put(big);
  StoreOptions o = Options();
  o.test_hook = gate->Hook("disk_write");
  auto s = OpenObjectStore(o);
  ObjectPtr loaded = s->LoadFromDisk(big->key, FullRequest());
  EXPECT_TRUE(loaded);
  if (!loaded) return s;
  s->Put(Refreshed(loaded, 1));
  EXPECT_TRUE(gate->WaitBlocked(1));
  return s;
}

std::string Contents(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A file as a rewrite would change it: its inode (a rename brings a new one), its mtime, size
// and bytes.
struct FileState {
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  std::string bytes;
  bool operator==(const FileState&) const = default;
};

FileState StateOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return {st.st_ino, int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec, Contents(p)};
}

// Sets the file's mtime in the past, so that a rewrite within the same clock tick still shows.
void Age(const fs::path& p) {
  fs::last_write_time(p, fs::last_write_time(p) - std::chrono::hours(24 * 365));
}

uint64_t SizeOf(const fs::path& p) { return fs::file_size(p); }

TEST_F(EdgeRefresh, ARevalidationWritesOnlyTheHeadFile) {
  auto s = Open();
  auto big = Big();
  s->Put(big);
  s->FlushDisk();
  fs::path obj = FileOf(*big), head = HeadFileOf(*big);
  ASSERT_TRUE(fs::exists(obj));
  EXPECT_FALSE(fs::exists(head));
  Age(obj);
  FileState before = StateOf(obj);
  auto fresh = Refreshed(big, 1);
  s->Put(fresh);
  s->FlushDisk();
  EXPECT_TRUE(StateOf(obj) == before) << "the object file was rewritten";
  ASSERT_TRUE(fs::exists(head));
  EXPECT_LT(SizeOf(head), 1024u);  // against the object file's 1 MiB and more
  EXPECT_GT(SizeOf(obj), 1u << 20);
  StoreStats st = s->Stats();
  EXPECT_EQ(st.disk_objects, 1u);
  EXPECT_EQ(st.disk_bytes, SizeOf(obj) + SizeOf(head));  // both files count
  EXPECT_EQ(st.disk_errors, 0u);
  EXPECT_EQ(s->Lookup(big->key, FullRequest()), fresh);
}

// A restart serves the refreshed head with the original body; a refresh of the object loaded
// from disk after the restart (its body read from the file) writes only the head file too.
TEST_F(EdgeRefresh, RestartServesTheRefreshedHeadWithTheOriginalBody) {
  auto big = Big();
  auto fresh = Refreshed(big, 1);
  {
    auto s = Open();
    s->Put(big);
    s->FlushDisk();
    s->Put(fresh);
  }  // the destructor finishes the queue
  fs::path obj = FileOf(*big), head = HeadFileOf(*big);
  Age(obj);
  FileState before = StateOf(obj);
  ObjectPtr loaded, second;
  {
    auto s = Open();
    StoreStats st = s->Stats();
    EXPECT_EQ(st.disk_objects, 1u);
    EXPECT_EQ(st.disk_bytes, SizeOf(obj) + SizeOf(head));
    loaded = s->LoadFromDisk(big->key, FullRequest());
    ASSERT_TRUE(loaded);
    ExpectSameObject(*loaded, *fresh);
    EXPECT_EQ(s->Stats().disk_errors, 0u);
    // The Vary selection still applies.
    EXPECT_EQ(s->LoadFromDisk(big->key, Headers({{"Accept-Encoding", "gzip"}})), nullptr);
    second = Refreshed(loaded, 2);
    s->Put(second);
  }
  EXPECT_TRUE(StateOf(obj) == before) << "the object file was rewritten";
  auto s = Open();
  loaded = s->LoadFromDisk(big->key, FullRequest());
  ASSERT_TRUE(loaded);
  ExpectSameObject(*loaded, *second);
  EXPECT_EQ(s->PurgeTag("photo-2"), 1u);  // indexed with its tags
}

// The object file alone answers: the head file is torn (a crash while it was written, on a file
// system that kept the rename) or corrupt. Counted as an error and removed, never served.
TEST_F(EdgeRefresh, DamagedHeadFileIsIgnoredAtOpen) {
  for (bool torn : {true, false}) {
    SCOPED_TRACE(torn ? "torn" : "corrupt");
    fs::remove_all(dir_);
    auto big = Big();
    {
      auto s = Open();
      s->Put(big);
      s->FlushDisk();
      s->Put(Refreshed(big, 1));
    }
    fs::path head = HeadFileOf(*big);
    if (torn) {
      fs::resize_file(head, SizeOf(head) - 3);
    } else {
      size_t at = Contents(head).find("X-Validated");
      ASSERT_NE(at, std::string::npos);
      FlipByte(head, at);
    }
    auto s = Open();
    StoreStats st = s->Stats();
    EXPECT_EQ(st.disk_objects, 1u);
    EXPECT_EQ(st.disk_errors, 1u);
    EXPECT_EQ(st.disk_bytes, SizeOf(FileOf(*big)));
    EXPECT_FALSE(fs::exists(head));
    ObjectPtr loaded = s->LoadFromDisk(big->key, FullRequest());
    ASSERT_TRUE(loaded);
    ExpectSameObject(*loaded, *big);
  }
}

// Indexed with its head file, which is damaged by the time it is read: not served, both files go.
TEST_F(EdgeRefresh, HeadFileDamagedWhileIndexedIsNotServed) {
  auto big = Big();
  {
    auto s = Open();
    s->Put(big);
    s->FlushDisk();
    s->Put(Refreshed(big, 1));
  }
  auto s = Open();
  fs::resize_file(HeadFileOf(*big), SizeOf(HeadFileOf(*big)) - 1);
  EXPECT_EQ(s->LoadFromDisk(big->key, FullRequest()), nullptr);
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  s->FlushDisk();
  EXPECT_EQ(Files(), 0u);
}

// A whole rewrite of the variant (a 200 with another body) removes the head file; and should a
// crash have kept it (between the rename and the unlink), it applies to another body: ignored.
TEST_F(EdgeRefresh, WholeRewriteSupersedesTheHeadFile) {
  auto big = Big();
  auto other = Refreshed(big, 5);
  other->body = std::make_shared<const std::string>("another body");
  std::string saved;
  {
    auto s = Open();
    s->Put(big);
    s->FlushDisk();
    s->Put(Refreshed(big, 1));
    s->FlushDisk();
    saved = Contents(HeadFileOf(*big));
    s->Put(other);
    s->FlushDisk();
    EXPECT_FALSE(fs::exists(HeadFileOf(*big)));
    EXPECT_EQ(s->Stats().disk_bytes, SizeOf(FileOf(*big)));
  }
  std::ofstream(HeadFileOf(*big), std::ios::binary) << saved;  // the crash's leftover
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_errors, 0u);  // a leftover, not damage
  EXPECT_FALSE(fs::exists(HeadFileOf(*big)));
  ObjectPtr loaded = s->LoadFromDisk(big->key, FullRequest());
  ASSERT_TRUE(loaded);
  ExpectSameObject(*loaded, *other);
}

// The same with a rewrite of the same bytes (a 200 whose body did not change, a new body
// object): the leftover head file was written for this body, but it is older than the file.
TEST_F(EdgeRefresh, OlderHeadFileLosesToTheObjectFile) {
  auto big = Big();
  auto again = Refreshed(big, 5);
  again->body = std::make_shared<const std::string>(*big->body);  // equal bytes, not the same
  std::string saved;
  {
    auto s = Open();
    s->Put(big);
    s->FlushDisk();
    s->Put(Refreshed(big, 1));
    s->FlushDisk();
    saved = Contents(HeadFileOf(*big));
    Age(FileOf(*big));
    FileState before = StateOf(FileOf(*big));
    s->Put(again);
    s->FlushDisk();
    EXPECT_FALSE(StateOf(FileOf(*big)) == before) << "another body object: written whole";
  }
  std::ofstream(HeadFileOf(*big), std::ios::binary) << saved;
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_errors, 0u);
  EXPECT_FALSE(fs::exists(HeadFileOf(*big)));
  ObjectPtr loaded = s->LoadFromDisk(big->key, FullRequest());
  ASSERT_TRUE(loaded);
  ExpectSameObject(*loaded, *again);
}

// A head file whose object file is gone (a crash between a removal's two unlinks): removed.
TEST_F(EdgeRefresh, OrphanHeadFileIsRemovedAtOpen) {
  auto big = Big();
  {
    auto s = Open();
    s->Put(big);
    s->FlushDisk();
    s->Put(Refreshed(big, 1));
  }
  fs::remove(FileOf(*big));
  auto s = Open();
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  EXPECT_EQ(Files(), 0u);
}

TEST_F(EdgeRefresh, PurgesRemoveBothFiles) {
  for (bool by_tag : {false, true}) {
    SCOPED_TRACE(by_tag ? "by tag" : "by key");
    auto big = Big();
    {
      auto s = Open();
      s->Put(big);
      s->FlushDisk();
      s->Put(Refreshed(big, 1));
      s->FlushDisk();
      ASSERT_TRUE(fs::exists(HeadFileOf(*big)));
      EXPECT_EQ(by_tag ? s->PurgeTag("user-1") : s->PurgeKey(big->key), 1u);
      s->SyncRemovals();
      EXPECT_EQ(Files(), 0u);
      EXPECT_EQ(s->Stats().disk_bytes, 0u);
    }
    EXPECT_EQ(Open()->LoadFromDisk(big->key, FullRequest()), nullptr);
  }
}

// The refresh is being written when the purge comes: its head file must not land.
TEST_F(EdgeRefresh, PurgeRacingARefreshWins) {
  auto big = Big();
  WriterGate gate;
  auto s = BlockedRefresh(big, &gate);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(s->PurgeKey(big->key), 1u);
  gate.Release();
  s->FlushDisk();
  EXPECT_EQ(Files(), 0u);
  s.reset();
  EXPECT_EQ(Open()->LoadFromDisk(big->key, FullRequest()), nullptr);
}

// The refresh is being written when a read finds the object file bad and drops it: the head
// file, which would apply to nothing, must not land (and the object file goes).
TEST_F(EdgeRefresh, RefreshOfAFileDroppedMeanwhileDoesNotLand) {
  auto big = Big();
  WriterGate gate;
  auto s = BlockedRefresh(big, &gate);
  ASSERT_FALSE(HasFailure());
  FlipByte(FileOf(*big), SizeOf(FileOf(*big)) - 40);  // in the body
  EXPECT_EQ(s->LoadFromDisk(big->key, FullRequest()), nullptr);
  EXPECT_EQ(s->Stats().disk_errors, 1u);
  gate.Release();
  s->FlushDisk();
  EXPECT_EQ(Files(), 0u);
  EXPECT_EQ(s->Stats().disk_objects, 0u);
  EXPECT_EQ(s->Stats().disk_bytes, 0u);
}

// The byte bound counts both files, and its eviction removes both.
TEST_F(EdgeRefresh, EvictionRemovesBothFiles) {
  auto a = Obj("GET /a h", std::string(4000, 'a'));
  auto b = Obj("GET /b h", std::string(4000, 'b'));
  uint64_t one = 0;
  {
    auto s = Open();
    s->Put(a);
    s->FlushDisk();
    one = s->Stats().disk_bytes;
  }
  fs::remove_all(dir_);
  StoreOptions o = Options();
  o.disk_bytes = one + one / 2;
  auto s = OpenObjectStore(o);
  s->Put(a);
  s->FlushDisk();
  s->Put(Refreshed(a, 1));
  s->FlushDisk();
  ASSERT_TRUE(fs::exists(HeadFileOf(*a)));
  s->Put(b);
  s->FlushDisk();
  EXPECT_FALSE(fs::exists(FileOf(*a)));
  EXPECT_FALSE(fs::exists(HeadFileOf(*a)));
  EXPECT_EQ(s->Stats().disk_objects, 1u);
  EXPECT_EQ(s->Stats().disk_bytes, SizeOf(FileOf(*b)));
  // A refresh of an object whose file is gone writes it whole again.
  s->Put(Refreshed(a, 2));
  s->FlushDisk();
  EXPECT_TRUE(fs::exists(FileOf(*a)));
  EXPECT_FALSE(fs::exists(HeadFileOf(*a)));
  s.reset();
  s = Open();
  ObjectPtr loaded = s->LoadFromDisk(a->key, Headers());
  ASSERT_TRUE(loaded);
  ExpectSameObject(*loaded, *Refreshed(a, 2));
}

// The format itself: which head file applies over which object file.
TEST_F(EdgeRefresh, HeadFileAppliesOnlyToItsBodyAndWhenNewer) {
  fs::create_directories(dir_);
  EXPECT_EQ(HeadFilePath("/d/0123.obj"), "/d/0123.head");
  EXPECT_EQ(HeadFilePath("/d/x"), "/d/x.head");
  auto full = Full();
  std::string path = (dir_ / "f.obj").string(), head_path = HeadFilePath(path);
  uint64_t object_bytes = 0, head_bytes = 0;
  std::string error;
  ASSERT_TRUE(WriteObjectFile(path, *full, 10, &object_bytes, &error)) << error;
  BodyStamp stamp;
  ASSERT_EQ(ReadBodyStamp(path, &stamp, &error), ReadStatus::kOk) << error;
  EXPECT_EQ(stamp.length, full->body->size());
  auto fresh = Refreshed(full, 1);
  ASSERT_TRUE(WriteHeadFile(head_path, *fresh, 11, stamp, &head_bytes, &error)) << error;
  EXPECT_EQ(head_bytes, SizeOf(head_path));
  for (bool whole : {false, true}) {
    ObjectFile f;
    ASSERT_EQ((whole ? ReadObjectFile : ReadObjectHead)(path, &f, &error), ReadStatus::kOk);
    EXPECT_EQ(f.head_file, HeadFile::kUsed) << f.head_file_error;
    EXPECT_EQ(f.seq, 11u);
    EXPECT_EQ(f.object_seq, 10u);
    EXPECT_EQ(f.object_bytes, object_bytes);
    EXPECT_EQ(f.file_bytes, object_bytes + head_bytes);
    EXPECT_EQ(f.object->headers, fresh->headers);
    EXPECT_EQ(f.object->meta.info.cc.max_age, fresh->meta.info.cc.max_age);
    if (whole) ExpectSameObject(*f.object, *fresh);
  }
  struct Case {
    const char* what;
    uint64_t seq;
    BodyStamp stamp;
    std::string key;
    HeadFile want;
  };
  BodyStamp other = stamp;
  other.sha[0] ^= 1;
  BodyStamp longer = stamp;
  ++longer.length;
  for (const Case& c : {Case{"older", 9, stamp, full->key, HeadFile::kIgnored},
                        Case{"as old", 10, stamp, full->key, HeadFile::kIgnored},
                        Case{"another body", 11, other, full->key, HeadFile::kIgnored},
                        Case{"another length", 11, longer, full->key, HeadFile::kIgnored},
                        Case{"another key", 11, stamp, "GET /x h", HeadFile::kBad}}) {
    SCOPED_TRACE(c.what);
    auto o = Refreshed(full, 2);
    o->key = c.key;
    ASSERT_TRUE(WriteHeadFile(head_path, *o, c.seq, c.stamp, &head_bytes, &error)) << error;
    for (bool whole : {false, true}) {
      ObjectFile f;
      ASSERT_EQ((whole ? ReadObjectFile : ReadObjectHead)(path, &f, &error), ReadStatus::kOk);
      EXPECT_EQ(f.head_file, c.want);
      EXPECT_FALSE(f.head_file_error.empty());
      EXPECT_EQ(f.seq, 10u);
      EXPECT_EQ(f.file_bytes, object_bytes);
      EXPECT_EQ(f.object->headers, full->headers);
      if (whole) EXPECT_EQ(BodyOf(f.object), *full->body);
    }
  }
  fs::remove(head_path);
  ObjectFile f;
  ASSERT_EQ(ReadObjectFile(path, &f, &error), ReadStatus::kOk);
  EXPECT_EQ(f.head_file, HeadFile::kNone);
  ExpectSameObject(*f.object, *full);
}

}  // namespace
}  // namespace millions::edge
