// PhotoStore on SQLite: photos, their versions and media blobs (SQL only; connections in
// sqlite_executor.h).
#include <cstdint>

#include "data/sql_common.h"
#include "data/sqlite_facets.h"

namespace millions::data {
namespace {

using sqlite::Conn;
using sqlite::Stmt;

PhotoRow ReadPhoto(const Stmt& s) {
  PhotoRow p;
  p.id = s.Int(0);
  p.owner_id = s.Int(1);
  p.caption = s.Text(2);
  p.media_key = s.Text(3);
  p.content_type = s.Text(4);
  p.width = static_cast<int>(s.Int(5));
  p.height = static_cast<int>(s.Int(6));
  p.created_ms = s.Int(7);
  return p;
}

Status LoadVersions(Conn& c, PhotoRow* p) {
  Stmt s = c.Prepare(
      "SELECT job_id, media_key, width, height FROM photo_versions WHERE photo_id = ?"
      " ORDER BY job_id");
  s.Bind(1, p->id);
  for (;;) {
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) return Ok();
    p->versions.push_back(
        {s.Int(0), s.Text(1), static_cast<int>(s.Int(2)), static_cast<int>(s.Int(3))});
  }
}

Result<std::vector<PhotoRow>> ReadPhotos(Conn& c, Stmt& s) {
  std::vector<PhotoRow> out;
  for (;;) {
    auto r = s.Step();
    if (!r.ok()) return r.error();
    if (!*r) break;
    out.push_back(ReadPhoto(s));
  }
  for (auto& p : out)
    if (Status st = LoadVersions(c, &p); !st.ok()) return st.error();
  return out;
}

class SqlitePhotos final : public PhotoStore {
 public:
  explicit SqlitePhotos(std::shared_ptr<SqliteExecutor> ex) : ex_(std::move(ex)) {}

  Status PutBlob(std::string_view key, std::string_view content_type,
                 std::string_view bytes) override {
    return ex_->Run("INSERT OR IGNORE INTO blobs(key, content_type, bytes) VALUES(?,?,?)",
                    [&](Stmt& s) { s.Bind(1, key).Bind(2, content_type).BindBlob(3, bytes); });
  }

  Result<Blob> GetBlob(std::string_view key) override {
    return ex_->Read([&](Conn& c) -> Result<Blob> {
      Stmt s = c.Prepare("SELECT content_type, bytes FROM blobs WHERE key = ?");
      s.Bind(1, key);
      auto r = s.Step();
      if (!r.ok()) return r.error();
      if (!*r) return NotFound("media");
      return Blob{s.Text(0), s.Text(1)};
    });
  }

  Status CreatePhoto(const PhotoRow& p) override {
    return ex_->Run(
        "INSERT INTO photos(id, owner_id, caption, media_key, content_type, width, height,"
        " created_ms) VALUES(?,?,?,?,?,?,?,?)",
        [&](Stmt& s) {
          s.Bind(1, p.id).Bind(2, p.owner_id).Bind(3, p.caption).Bind(4, p.media_key);
          s.Bind(5, p.content_type).Bind(6, int64_t{p.width}).Bind(7, int64_t{p.height});
          s.Bind(8, p.created_ms);
        });
  }

  Result<PhotoRow> GetPhoto(int64_t id, Consistency) override {
    return ex_->Read([&](Conn& c) -> Result<PhotoRow> {
      Stmt s = c.Prepare(
          "SELECT id, owner_id, caption, media_key, content_type, width, height, created_ms"
          " FROM photos WHERE id = ?");
      s.Bind(1, id);
      auto rows = ReadPhotos(c, s);
      if (!rows.ok()) return rows.error();
      if (rows->empty()) return NotFound("photo");
      return std::move(rows->front());
    });
  }

  Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                           Consistency) override {
    return ex_->Read([&](Conn& c) {
      Stmt s = c.Prepare(
          "SELECT id, owner_id, caption, media_key, content_type, width, height, created_ms"
          " FROM photos WHERE owner_id = ? AND id < ? ORDER BY id DESC LIMIT ?");
      s.Bind(1, owner_id).Bind(2, before > 0 ? before : INT64_MAX).Bind(3, int64_t{limit});
      return ReadPhotos(c, s);
    });
  }

  Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                     Consistency) override {
    return ex_->Read([&](Conn& c) {
      // Fan-out on read: the photos of everyone the user follows, newest first.
      Stmt s = c.Prepare(
          "SELECT p.id, p.owner_id, p.caption, p.media_key, p.content_type, p.width, p.height,"
          " p.created_ms FROM follows f JOIN photos p ON p.owner_id = f.followee"
          " WHERE f.follower = ? AND p.id < ? ORDER BY p.id DESC LIMIT ?");
      s.Bind(1, user_id).Bind(2, before > 0 ? before : INT64_MAX).Bind(3, int64_t{limit});
      return ReadPhotos(c, s);
    });
  }

 private:
  std::shared_ptr<SqliteExecutor> ex_;
};

}  // namespace

std::unique_ptr<PhotoStore> MakeSqlitePhotoStore(std::shared_ptr<SqliteExecutor> executor) {
  return std::make_unique<SqlitePhotos>(std::move(executor));
}

}  // namespace millions::data
