// PhotoStore on PostgreSQL: photos, their versions and media blobs in bytea (SQL only; routing
// in pg_executor.h).
#include <cstdint>

#include "core/pg.h"
#include "data/pg_facets.h"
#include "data/sql_common.h"

namespace millions::data {
namespace {

using pg::Conn;
using pg::P;
using pg::Rows;

constexpr const char* kPhotoCols =
    "SELECT p.id, p.owner_id, p.caption, p.media_key, p.content_type, p.width, p.height,"
    " p.created_ms FROM ";

Result<std::vector<PhotoRow>> ReadPhotos(Conn& c, const Rows& r) {
  std::vector<PhotoRow> out;
  for (int i = 0; i < r.size(); ++i) {
    PhotoRow p;
    p.id = r.Int(i, 0);
    p.owner_id = r.Int(i, 1);
    p.caption = r.Text(i, 2);
    p.media_key = r.Text(i, 3);
    p.content_type = r.Text(i, 4);
    p.width = static_cast<int>(r.Int(i, 5));
    p.height = static_cast<int>(r.Int(i, 6));
    p.created_ms = r.Int(i, 7);
    auto v = c.Exec("versions",
                    "SELECT job_id, media_key, width, height FROM photo_versions"
                    " WHERE photo_id = $1 ORDER BY job_id",
                    {P(p.id)});
    if (!v.ok()) return v.error();
    for (int j = 0; j < v->size(); ++j)
      p.versions.push_back({v->Int(j, 0), v->Text(j, 1), static_cast<int>(v->Int(j, 2)),
                            static_cast<int>(v->Int(j, 3))});
    out.push_back(std::move(p));
  }
  return out;
}

class PgPhotos final : public PhotoStore {
 public:
  explicit PgPhotos(std::shared_ptr<PgExecutor> ex) : ex_(std::move(ex)) {}

  Status PutBlob(std::string_view key, std::string_view content_type,
                 std::string_view bytes) override {
    return ex_->Run("put_blob",
                    "INSERT INTO blobs(key, content_type, bytes) VALUES($1,$2,$3)"
                    " ON CONFLICT (key) DO NOTHING",
                    {P(key), P(content_type), pg::Bytes(bytes)});
  }

  Result<Blob> GetBlob(std::string_view key) override {
    // Content-addressed: a copy on any replica is the same bytes.
    return ex_->Read<Blob>(Consistency::kReplica, [&](Conn& c) -> Result<Blob> {
      auto r = c.ExecBinary("get_blob", "SELECT content_type, bytes FROM blobs WHERE key = $1",
                            {P(key)});
      if (!r.ok()) return r.error();
      if (r->empty()) return NotFound("media");
      return Blob{r->Text(0, 0), r->Text(0, 1)};
    });
  }

  Status CreatePhoto(const PhotoRow& p) override {
    return ex_->RunFor(
        p.owner_id, "create_photo",
        "INSERT INTO photos(id, owner_id, caption, media_key, content_type, width, height,"
        " created_ms) VALUES($1,$2,$3,$4,$5,$6,$7,$8)",
        {P(p.id), P(p.owner_id), P(p.caption), P(p.media_key), P(p.content_type),
         P(int64_t{p.width}), P(int64_t{p.height}), P(p.created_ms)});
  }

  Result<PhotoRow> GetPhoto(int64_t id, Consistency c) override {
    static const std::string sql = std::string(kPhotoCols) + "photos p WHERE p.id = $1";
    auto rows = ex_->Read<std::vector<PhotoRow>>(c, [&](Conn& conn) {
      return Photos(conn, "get_photo", sql, {P(id)}, /*empty_is_missing=*/true);
    });
    if (!rows.ok()) return rows.error();
    return std::move(rows->front());
  }

  Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                           Consistency c) override {
    static const std::string sql = std::string(kPhotoCols) +
                                   "photos p WHERE p.owner_id = $1 AND p.id < $2"
                                   " ORDER BY p.id DESC LIMIT $3";
    return ex_->ReadFor<std::vector<PhotoRow>>(owner_id, c, [&](Conn& conn) {
      return Photos(conn, "list_photos", sql,
                    {P(owner_id), P(before > 0 ? before : INT64_MAX), P(int64_t{limit})});
    });
  }

  Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                     Consistency c) override {
    // Fan-out on read: the photos of everyone the user follows, newest first.
    static const std::string sql = std::string(kPhotoCols) +
                                   "follows f JOIN photos p ON p.owner_id = f.followee"
                                   " WHERE f.follower = $1 AND p.id < $2"
                                   " ORDER BY p.id DESC LIMIT $3";
    return ex_->ReadFor<std::vector<PhotoRow>>(user_id, c, [&](Conn& conn) {
      return Photos(conn, "feed", sql,
                    {P(user_id), P(before > 0 ? before : INT64_MAX), P(int64_t{limit})});
    });
  }

 private:
  static Result<std::vector<PhotoRow>> Photos(Conn& conn, const char* name, const std::string& sql,
                                              std::initializer_list<pg::Param> params,
                                              bool empty_is_missing = false) {
    auto r = conn.Exec(name, sql.c_str(), params);
    if (!r.ok()) return r.error();
    if (empty_is_missing && r->empty()) return NotFound("photo");
    return ReadPhotos(conn, *r);
  }

  std::shared_ptr<PgExecutor> ex_;
};

}  // namespace

std::unique_ptr<PhotoStore> MakePgPhotoStore(std::shared_ptr<PgExecutor> executor) {
  return std::make_unique<PgPhotos>(std::move(executor));
}

}  // namespace millions::data
