// One list of migrations for both dialects (schema.h). The rendered text is what each store
// ran before the schema was shared, byte for byte (schema_test.cc): databases already migrated
// see no difference.
#include "data/schema.h"

#include <iterator>
#include <string_view>

namespace millions::data {
namespace {

// The dialect differences, by name:
//   {int}     64-bit integer. SQLite spells it INTEGER, which also makes `{int} PRIMARY KEY` the
//             rowid (no second index); PostgreSQL's INTEGER would be 32-bit, hence BIGINT.
//   {int32}   a small integer (an HTTP status): INT in PostgreSQL, INTEGER in SQLite.
//   {bytes}   binary: BYTEA / BLOB.
//   {no_rowid} SQLite tables keyed by their primary key alone skip the hidden rowid.
//   {id_function} PostgreSQL makes IDs in the database (ids.h: one sequence per cluster, so
//             that every node writing to a cluster draws distinct IDs for the same logical
//             shard); SQLite has one process, whose IdGenerator does it, and runs a no-op.
struct Spelling {
  std::string_view name, postgres, sqlite;
};
constexpr Spelling kSpellings[] = {
    {"{int}", "BIGINT", "INTEGER"},
    {"{int32}", "INT", "INTEGER"},
    {"{bytes}", "BYTEA", "BLOB"},
    {"{no_rowid}", "", " WITHOUT ROWID"},
    // The layout of ids.h: 41 bits of ms since 2024-01-01 | 13 bits of shard | 10 of sequence.
    {"{id_function}",
     "CREATE SEQUENCE millions_id_seq;\n"
     "CREATE FUNCTION millions_next_id(shard INT) RETURNS BIGINT LANGUAGE SQL VOLATILE AS $$\n"
     "  SELECT ((FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT - 1704067200000)\n"
     "          << 23) | ((shard & 8191)::BIGINT << 10) | (nextval('millions_id_seq') % 1024)\n"
     "$$;",
     "SELECT 1;"},
};

const char* const kMigrations[] = {
    R"sql(
CREATE TABLE users(
  id {int} PRIMARY KEY, handle TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_ms {int} NOT NULL);
CREATE TABLE follows(
  follower {int} NOT NULL, followee {int} NOT NULL, created_ms {int} NOT NULL,
  PRIMARY KEY(follower, followee)){no_rowid};
CREATE INDEX follows_by_followee ON follows(followee, follower);
CREATE TABLE sessions(
  token_hash TEXT PRIMARY KEY, user_id {int} NOT NULL, expires_ms {int} NOT NULL);
CREATE TABLE blobs(key TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes {bytes} NOT NULL);
CREATE TABLE photos(
  id {int} PRIMARY KEY, owner_id {int} NOT NULL, caption TEXT NOT NULL,
  media_key TEXT NOT NULL, content_type TEXT NOT NULL, width {int} NOT NULL,
  height {int} NOT NULL, created_ms {int} NOT NULL);
CREATE INDEX photos_by_owner ON photos(owner_id, id DESC);
CREATE TABLE photo_versions(
  photo_id {int} NOT NULL, job_id {int} NOT NULL, media_key TEXT NOT NULL,
  width {int} NOT NULL, height {int} NOT NULL, PRIMARY KEY(photo_id, job_id));
CREATE TABLE jobs(
  id {int} PRIMARY KEY, photo_id {int} NOT NULL, owner_id {int} NOT NULL,
  status TEXT NOT NULL, ops TEXT NOT NULL, result_key TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_ms {int} NOT NULL, finished_ms {int} NOT NULL DEFAULT 0,
  attempts {int} NOT NULL DEFAULT 0);
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
)sql",
    R"sql(
CREATE TABLE idempotency_keys(
  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status {int32} NOT NULL,
  body TEXT NOT NULL, created_ms {int} NOT NULL, PRIMARY KEY(scope, key)){no_rowid};
)sql",
    R"sql(
{id_function}
)sql",
};

std::string Render(std::string_view text, Dialect dialect) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    bool replaced = false;
    if (text.front() == '{') {
      for (const auto& s : kSpellings) {
        if (text.starts_with(s.name)) {
          out += dialect == Dialect::kPostgres ? s.postgres : s.sqlite;
          text.remove_prefix(s.name.size());
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) {
      out += text.front();
      text.remove_prefix(1);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> Migrations(Dialect dialect) {
  std::vector<std::string> out;
  out.reserve(std::size(kMigrations));
  for (const char* m : kMigrations) out.push_back(Render(m, dialect));
  return out;
}

}  // namespace millions::data
