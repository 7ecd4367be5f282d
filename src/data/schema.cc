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
    // The fence of docs/sharding.md: every row a user owns is written only on a cluster that
    // owns the row's logical shard (from its id's shard bits, modulo the deployment's logical
    // shards, which `up` sets in millions_logical_shards()). `frozen` (a cut-over) raises MS002,
    // which the sharded store waits out; absent raises MS001 (a node with a stale map), which
    // it answers by re-reading the map. A cluster whose shard_ownership is empty is not sharded
    // and takes every write. Follow edges live on both users' clusters: either side owned here
    // will do. Sessions, idempotency keys and blobs are routed by a hash of their key, which
    // SQL does not compute: not fenced yet. SQLite is never sharded.
    {"{fence}",
     "CREATE TABLE shard_ownership(\n"
     "  logical INT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN ('owned', 'frozen')),\n"
     "  map_version BIGINT NOT NULL);\n"
     "CREATE FUNCTION millions_logical_shards() RETURNS INT LANGUAGE SQL IMMUTABLE AS\n"
     "  $$ SELECT 1024 $$;\n"
     "CREATE FUNCTION millions_shard_state(id BIGINT) RETURNS TEXT LANGUAGE plpgsql STABLE AS $$\n"
     "DECLARE st TEXT;\n"
     "BEGIN\n"
     "  SELECT state INTO st FROM shard_ownership\n"
     "   WHERE logical = ((id >> 10) & 8191)::INT % millions_logical_shards();\n"
     "  IF st IS NOT NULL THEN RETURN st; END IF;\n"
     "  IF NOT EXISTS (SELECT 1 FROM shard_ownership) THEN RETURN 'owned'; END IF;\n"
     "  RETURN 'absent';\n"
     "END $$;\n"
     "CREATE FUNCTION millions_fence() RETURNS TRIGGER LANGUAGE plpgsql AS $$\n"
     "DECLARE a BIGINT; b BIGINT; sa TEXT; sb TEXT;\n"
     "BEGIN\n"
     "  IF TG_TABLE_NAME = 'follows' THEN\n"
     "    IF TG_OP = 'DELETE' THEN a := OLD.follower; b := OLD.followee;\n"
     "    ELSE a := NEW.follower; b := NEW.followee; END IF;\n"
     "  ELSIF TG_TABLE_NAME = 'photo_versions' THEN\n"
     "    IF TG_OP = 'DELETE' THEN a := OLD.photo_id; ELSE a := NEW.photo_id; END IF;\n"
     "  ELSE\n"
     "    IF TG_OP = 'DELETE' THEN a := OLD.id; ELSE a := NEW.id; END IF;\n"
     "  END IF;\n"
     "  sa := millions_shard_state(a);\n"
     "  sb := CASE WHEN b IS NULL THEN sa ELSE millions_shard_state(b) END;\n"
     "  IF sa = 'frozen' OR sb = 'frozen' THEN\n"
     "    RAISE EXCEPTION 'shard_frozen: the logical shard of % is being moved', a\n"
     "      USING ERRCODE = 'MS002';\n"
     "  END IF;\n"
     "  IF sa = 'owned' OR sb = 'owned' THEN\n"
     "    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
     "    RETURN NEW;\n"
     "  END IF;\n"
     "  RAISE EXCEPTION 'wrong_shard: the logical shard of % is not on this cluster', a\n"
     "    USING ERRCODE = 'MS001';\n"
     "END $$;\n"
     "CREATE TRIGGER users_fence BEFORE INSERT OR UPDATE OR DELETE ON users\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();\n"
     "CREATE TRIGGER follows_fence BEFORE INSERT OR UPDATE OR DELETE ON follows\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();\n"
     "CREATE TRIGGER photos_fence BEFORE INSERT OR UPDATE OR DELETE ON photos\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();\n"
     "CREATE TRIGGER photo_versions_fence BEFORE INSERT OR UPDATE OR DELETE ON photo_versions\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();\n"
     "CREATE TRIGGER jobs_fence BEFORE INSERT OR UPDATE OR DELETE ON jobs\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();",
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
    R"sql(
{fence}
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
