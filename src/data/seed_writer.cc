#include "data/seed_writer.h"

#include <algorithm>

namespace millions::data {
namespace {

struct Batch {
  std::string users, follows, photos;
  void Clear() {
    users.clear();
    follows.clear();
    photos.clear();
  }
};

void AppendUser(const SeedUser& u, const std::string& password_hash, std::string* out) {
  *out += std::to_string(u.id);
  *out += '\t';
  *out += pg::CopyText(u.handle);
  *out += "\tSeed user ";
  *out += std::to_string(u.index);
  *out += "\t\t";
  *out += pg::CopyText(password_hash);
  *out += '\t';
  *out += std::to_string(u.created_ms);
  *out += '\n';
}

void AppendEdge(int64_t follower, int64_t followee, int64_t ms, std::string* out) {
  *out += std::to_string(follower);
  *out += '\t';
  *out += std::to_string(followee);
  *out += '\t';
  *out += std::to_string(ms);
  *out += '\n';
}

void AppendPhoto(const SeedPhoto& p, int64_t owner_id, const SeedMedia& m, std::string* out) {
  *out += std::to_string(p.id);
  *out += '\t';
  *out += std::to_string(owner_id);
  *out += "\tseeded\t";
  *out += pg::CopyText(m.key);
  *out += '\t';
  *out += pg::CopyText(m.content_type);
  *out += '\t';
  *out += std::to_string(m.width);
  *out += '\t';
  *out += std::to_string(m.height);
  *out += '\t';
  *out += std::to_string(p.created_ms);
  *out += '\n';
}

// One table's rows of a batch: COPY into its temporary twin, then into the table, skipping
// rows already there. Adds the inserted count to `*inserted` and the skipped to `*skipped`.
Status Load(pg::Conn& conn, const std::string& table, const std::string& columns,
            const std::string& rows, int64_t* inserted, int64_t* skipped) {
  if (rows.empty()) return Ok();
  const std::string tmp = "seed_" + table;
  const std::string copy = "COPY " + tmp + "(" + columns + ") FROM STDIN";
  auto copied = conn.CopyIn(copy.c_str(), rows);
  if (!copied.ok()) return copied.error();
  const std::string insert_name = "seed_insert_" + table;
  const std::string insert = "INSERT INTO " + table + "(" + columns + ") SELECT " + columns +
                             " FROM " + tmp + " ON CONFLICT DO NOTHING";
  auto done = conn.Exec(insert_name.c_str(), insert.c_str(), {});
  if (!done.ok()) return done.error();
  *inserted += done->affected();
  *skipped += *copied - done->affected();
  const std::string clear = "TRUNCATE " + tmp;
  return conn.Simple(clear.c_str());
}

}  // namespace

Result<SeedCounts> WriteSeed(const SeedGenerator& gen, const ShardMap& map,
                             const std::string& cluster, pg::Conn& conn,
                             const SeedWriteOptions& options) {
  auto here = [&](int logical) { return map.ClusterOf(logical) == cluster; };
  // A bulk load need not wait for each batch's WAL flush: a crash loses at most the batches in
  // flight, which the same command run again writes (rows present are skipped).
  if (Status st = conn.Simple("SET synchronous_commit = off"); !st.ok()) return st.error();
  // Temporary twins without the real tables' keys and triggers: COPY into them cannot fail on
  // a row that is already there; the INSERT that follows decides.
  for (const char* t : {"users", "follows", "photos"}) {
    const std::string sql = std::string("CREATE TEMP TABLE IF NOT EXISTS seed_") + t + " (LIKE " +
                            t + " INCLUDING DEFAULTS)";
    if (Status st = conn.Simple(sql.c_str()); !st.ok()) return st.error();
  }
  if (!options.media.key.empty()) {
    auto blob = conn.ExecBinary(
        "seed_blob",
        "INSERT INTO blobs(key, content_type, bytes) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        {pg::P(options.media.key), pg::P(options.media.content_type),
         pg::Bytes(options.media.bytes)});
    if (!blob.ok()) return blob.error();
  }
  const int64_t n = gen.options().users;
  const int64_t step = std::max<int64_t>(options.batch_users, 1);
  SeedCounts c;
  Batch b;
  for (int64_t begin = 0; begin < n; begin += step) {
    b.Clear();
    const int64_t end = std::min(n, begin + step);
    for (int64_t i = begin; i < end; ++i) {
      const SeedUser u = gen.User(i);
      const bool mine = here(u.logical);
      if (mine) {
        AppendUser(u, options.password_hash, &b.users);
        for (const auto& p : gen.PhotosOf(i)) AppendPhoto(p, u.id, options.media, &b.photos);
      }
      for (int64_t f : gen.FolloweesOf(i)) {
        const SeedUser followee = gen.User(f);
        if (!mine && !here(followee.logical)) continue;
        AppendEdge(u.id, followee.id, std::max(u.created_ms, followee.created_ms) + 1, &b.follows);
      }
    }
    if (Status st = conn.Simple("BEGIN"); !st.ok()) return st.error();
    Status st = Load(conn, "users", "id, handle, display_name, bio, password_hash, created_ms",
                     b.users, &c.users, &c.skipped);
    if (st.ok())
      st = Load(conn, "follows", "follower, followee, created_ms", b.follows, &c.follows,
                &c.skipped);
    if (st.ok())
      st = Load(conn, "photos",
                "id, owner_id, caption, media_key, content_type, width, height, created_ms",
                b.photos, &c.photos, &c.skipped);
    if (st.ok()) st = conn.Simple("COMMIT");
    if (!st.ok()) {
      (void)conn.Simple("ROLLBACK");
      return st.error();
    }
    c.users_done = end;
    if (options.progress && !options.progress(c)) break;
  }
  return c;
}

}  // namespace millions::data
