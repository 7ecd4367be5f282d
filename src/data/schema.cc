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
    // The reshard's change capture (docs/sharding.md, "Online resharding"), over the fence. A
    // logical shard's state on a cluster:
    //   owned     the cluster holds the shard and takes its writes;
    //   moving    the source of a move: writes go on, each appended to shard_changes (the
    //             copier replays them onto the target);
    //   frozen    the source at its cut-over: writes wait (MS002);
    //   incoming  the target of a move: refused (MS001) to all but the copier;
    //   gone      the source after its cut-over: refused (MS001) until its rows are cleaned up,
    //             but for a follow edge whose other end is owned here, which is taken and
    //             captured (the clean-up replays it onto the new owner).
    // A transaction with `SET LOCAL millions.reshard = 'on'` (the copier on the target, the
    // clean-up on the source) passes the fence without a check or a capture. Sessions,
    // idempotency keys and blobs are routed by StableHash (core/stable_hash.h) of their key
    // modulo the logical shards: millions_stable_hash is that function in SQL, computed only
    // while a reshard touches the cluster (a state other than `owned`), so that their common
    // write pays one look-up of a tiny table. The shard bits of ids are indexed for the copier
    // and the clean-up.
    {"{reshard}",
     "ALTER TABLE shard_ownership DROP CONSTRAINT shard_ownership_state_check;\n"
     "ALTER TABLE shard_ownership ADD CONSTRAINT shard_ownership_state_check\n"
     "  CHECK (state IN ('owned', 'moving', 'frozen', 'incoming', 'gone'));\n"
     "CREATE INDEX shard_ownership_unsettled ON shard_ownership(logical) WHERE state <> 'owned';\n"
     "CREATE TABLE shard_changes(\n"
     "  seq BIGSERIAL PRIMARY KEY, logical INT NOT NULL, tbl TEXT NOT NULL,\n"
     "  k1 BIGINT, k2 BIGINT, t1 TEXT, t2 TEXT);\n"
     "CREATE INDEX shard_changes_by_shard ON shard_changes(logical, seq);\n"
     "CREATE INDEX users_by_shard ON users(((id >> 10) & 8191));\n"
     "CREATE INDEX photos_by_shard ON photos(((id >> 10) & 8191));\n"
     "CREATE INDEX photo_versions_by_shard ON photo_versions(((photo_id >> 10) & 8191));\n"
     "CREATE INDEX jobs_by_shard ON jobs(((id >> 10) & 8191));\n"
     "CREATE INDEX follows_by_follower_shard ON follows(((follower >> 10) & 8191));\n"
     "CREATE INDEX follows_by_followee_shard ON follows(((followee >> 10) & 8191));\n"
     // FNV-1a over the key's bytes in two 32-bit halves (the prime is 2^40 + 435: no product
     // leaves BIGINT), then splitmix64's finaliser with its 64-bit products in NUMERIC.
     "CREATE FUNCTION millions_stable_hash(k TEXT) RETURNS BIGINT LANGUAGE plpgsql IMMUTABLE\n"
     "  STRICT AS $$\n"
     "DECLARE b BYTEA := convert_to(k, 'UTF8'); hi BIGINT := 342167472; lo BIGINT := 1939669891;\n"
     "  t BIGINT; u NUMERIC; x BIGINT;\n"
     "BEGIN\n"
     "  FOR i IN 0 .. length(b) - 1 LOOP\n"
     "    lo := lo # get_byte(b, i);\n"
     "    t := lo * 435;\n"
     "    hi := (hi * 435 + (t >> 32) + ((lo & 16777215) << 8)) & 4294967295;\n"
     "    lo := t & 4294967295;\n"
     "  END LOOP;\n"
     "  u := hi::NUMERIC * 4294967296 + lo;\n"
     "  x := (CASE WHEN u >= 9223372036854775808 THEN u - 18446744073709551616 ELSE u "
     "END)::BIGINT;\n"
     "  x := x # ((x >> 30) & 17179869183);\n"
     "  u := mod((CASE WHEN x < 0 THEN x::NUMERIC + 18446744073709551616 ELSE x END)\n"
     "           * 13787848793156543929, 18446744073709551616);\n"
     "  x := (CASE WHEN u >= 9223372036854775808 THEN u - 18446744073709551616 ELSE u "
     "END)::BIGINT;\n"
     "  x := x # ((x >> 27) & 137438953471);\n"
     "  u := mod((CASE WHEN x < 0 THEN x::NUMERIC + 18446744073709551616 ELSE x END)\n"
     "           * 10723151780598845931, 18446744073709551616);\n"
     "  x := (CASE WHEN u >= 9223372036854775808 THEN u - 18446744073709551616 ELSE u "
     "END)::BIGINT;\n"
     "  RETURN x # ((x >> 31) & 8589934591);\n"
     "END $$;\n"
     "CREATE FUNCTION millions_key_shard(k TEXT) RETURNS INT LANGUAGE plpgsql STABLE STRICT AS $$\n"
     "DECLARE x BIGINT := millions_stable_hash(k);\n"
     "BEGIN\n"
     "  RETURN mod(CASE WHEN x < 0 THEN x::NUMERIC + 18446744073709551616 ELSE x END,\n"
     "             millions_logical_shards())::INT;\n"
     "END $$;\n"
     "CREATE FUNCTION millions_logical_state(l INT) RETURNS TEXT LANGUAGE plpgsql STABLE AS $$\n"
     "DECLARE st TEXT;\n"
     "BEGIN\n"
     "  SELECT state INTO st FROM shard_ownership WHERE logical = l;\n"
     "  IF st IS NOT NULL THEN RETURN st; END IF;\n"
     "  IF NOT EXISTS (SELECT 1 FROM shard_ownership) THEN RETURN 'owned'; END IF;\n"
     "  RETURN 'absent';\n"
     "END $$;\n"
     // One function for every owned table: the row's logical shard (the id's bits, either end
     // of a follow edge, the hash of a key), its state here, and the capture of a moving one.
     "CREATE OR REPLACE FUNCTION millions_fence() RETURNS TRIGGER LANGUAGE plpgsql AS $$\n"
     "DECLARE a BIGINT; b BIGINT; la INT; lb INT; sa TEXT; sb TEXT; r RECORD;\n"
     "  k1 BIGINT; k2 BIGINT; t1 TEXT; t2 TEXT;\n"
     "BEGIN\n"
     "  IF current_setting('millions.reshard', true) = 'on' OR\n"
     "     (TG_TABLE_NAME IN ('sessions', 'idempotency_keys', 'blobs') AND\n"
     "      NOT EXISTS (SELECT 1 FROM shard_ownership WHERE state <> 'owned')) THEN\n"
     "    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
     "    RETURN NEW;\n"
     "  END IF;\n"
     "  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;\n"
     "  IF TG_TABLE_NAME IN ('sessions', 'idempotency_keys', 'blobs') THEN\n"
     "    IF TG_TABLE_NAME = 'sessions' THEN t1 := r.token_hash;\n"
     "    ELSIF TG_TABLE_NAME = 'idempotency_keys' THEN t1 := r.scope; t2 := r.key;\n"
     "    ELSE t1 := r.key; END IF;\n"
     "    la := millions_key_shard(t1);\n"
     "  ELSIF TG_TABLE_NAME = 'follows' THEN\n"
     "    a := r.follower; b := r.followee; k1 := a; k2 := b;\n"
     "  ELSIF TG_TABLE_NAME = 'photo_versions' THEN\n"
     "    a := r.photo_id; k1 := a; k2 := r.job_id;\n"
     "  ELSE\n"
     "    a := r.id; k1 := a;\n"
     "  END IF;\n"
     "  IF a IS NOT NULL THEN la := ((a >> 10) & 8191)::INT % millions_logical_shards(); END IF;\n"
     "  IF b IS NOT NULL THEN lb := ((b >> 10) & 8191)::INT % millions_logical_shards(); END IF;\n"
     "  sa := millions_logical_state(la);\n"
     "  sb := CASE WHEN lb IS NULL THEN sa ELSE millions_logical_state(lb) END;\n"
     "  IF sa = 'frozen' OR sb = 'frozen' THEN\n"
     "    RAISE EXCEPTION 'shard_frozen: logical shard % is being moved', la\n"
     "      USING ERRCODE = 'MS002';\n"
     "  END IF;\n"
     // A follow edge with one end owned here and the other moved away (`gone`) is taken, as
     // any edge towards another cluster, and captured: the writer's map may be stale (both
     // ends here, one write), so the clean-up replays it onto the end's new cluster.
     "  IF sa IN ('owned', 'moving') OR sb IN ('owned', 'moving') THEN\n"
     "    IF sa IN ('moving', 'gone') THEN\n"
     "      INSERT INTO shard_changes(logical, tbl, k1, k2, t1, t2)\n"
     "        VALUES (la, TG_TABLE_NAME, k1, k2, t1, t2);\n"
     "    END IF;\n"
     "    IF sb IN ('moving', 'gone') AND lb <> la THEN\n"
     "      INSERT INTO shard_changes(logical, tbl, k1, k2, t1, t2)\n"
     "        VALUES (lb, TG_TABLE_NAME, k1, k2, t1, t2);\n"
     "    END IF;\n"
     "    RETURN r;\n"
     "  END IF;\n"
     "  RAISE EXCEPTION 'wrong_shard: logical shard % is not on this cluster', la\n"
     "    USING ERRCODE = 'MS001';\n"
     "END $$;\n"
     "CREATE TRIGGER sessions_fence BEFORE INSERT OR UPDATE OR DELETE ON sessions\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();\n"
     "CREATE TRIGGER idempotency_keys_fence BEFORE INSERT OR UPDATE OR DELETE ON idempotency_keys\n"
     "  FOR EACH ROW EXECUTE FUNCTION millions_fence();\n"
     "CREATE TRIGGER blobs_fence BEFORE INSERT OR UPDATE OR DELETE ON blobs\n"
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
    R"sql(
{reshard}
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
