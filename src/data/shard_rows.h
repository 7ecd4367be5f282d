// The owned tables as the reshard's ShardMover sees them (shard_mover.h): which rows of each
// are a logical shard's (the shard bits of an id, either end of a follow edge, or the hash of
// a key), how one row is named (its primary key), and the statements that read them from one
// cluster and upsert or delete them on another. Internal to the mover.
// Thread-safety: functions over a connection used by one thread. Ownership: none kept.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/pg.h"
#include "core/result.h"

namespace millions::data::shard_rows {

// How a table's rows are found to be the shard's, and how one row is named.
enum class Shard { kIdBits, kEdge, kHash };
enum class KeyKind { kInt, kIntInt, kText, kTextText };

struct Table {
  const char* name;
  const char* cols;      // every column; the key's columns first
  const char* conflict;  // the primary key
  const char* updates;   // ON CONFLICT DO UPDATE SET ...
  Shard shard;
  KeyKind key;
  const char* shard_col;  // kIdBits: the id whose bits name the shard; kHash: the routed key
  const char* group;      // the user (or what stands for one) a row belongs to, for Verify
  const char* digest;     // md5 of the row, as text, over alias t
};

// Every table the sharded store writes (store.h), in the order the clean-up deletes them.
inline constexpr Table kTables[] = {
    {"users", "id, handle, display_name, bio, password_hash, created_ms", "id",
     "handle = EXCLUDED.handle, display_name = EXCLUDED.display_name, bio = EXCLUDED.bio, "
     "password_hash = EXCLUDED.password_hash, created_ms = EXCLUDED.created_ms",
     Shard::kIdBits, KeyKind::kInt, "id", "t.id", "md5(t::text)"},
    {"photos", "id, owner_id, caption, media_key, content_type, width, height, created_ms", "id",
     "owner_id = EXCLUDED.owner_id, caption = EXCLUDED.caption, media_key = EXCLUDED.media_key, "
     "content_type = EXCLUDED.content_type, width = EXCLUDED.width, height = EXCLUDED.height, "
     "created_ms = EXCLUDED.created_ms",
     Shard::kIdBits, KeyKind::kInt, "id", "t.owner_id", "md5(t::text)"},
    {"photo_versions", "photo_id, job_id, media_key, width, height", "photo_id, job_id",
     "media_key = EXCLUDED.media_key, width = EXCLUDED.width, height = EXCLUDED.height",
     Shard::kIdBits, KeyKind::kIntInt, "photo_id", "t.photo_id", "md5(t::text)"},
    {"jobs",
     "id, photo_id, owner_id, status, ops, result_key, error, created_ms, finished_ms, attempts",
     "id",
     "photo_id = EXCLUDED.photo_id, owner_id = EXCLUDED.owner_id, status = EXCLUDED.status, "
     "ops = EXCLUDED.ops, result_key = EXCLUDED.result_key, error = EXCLUDED.error, "
     "created_ms = EXCLUDED.created_ms, finished_ms = EXCLUDED.finished_ms, "
     "attempts = EXCLUDED.attempts",
     Shard::kIdBits, KeyKind::kInt, "id", "t.owner_id", "md5(t::text)"},
    {"follows", "follower, followee, created_ms", "follower, followee",
     "created_ms = EXCLUDED.created_ms", Shard::kEdge, KeyKind::kIntInt, "follower", "t.follower",
     "md5(t::text)"},
    {"sessions", "token_hash, user_id, expires_ms", "token_hash",
     "user_id = EXCLUDED.user_id, expires_ms = EXCLUDED.expires_ms", Shard::kHash, KeyKind::kText,
     "token_hash", "t.user_id", "md5(t::text)"},
    {"idempotency_keys", "scope, key, fingerprint, status, body, created_ms", "scope, key",
     "fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body, "
     "created_ms = EXCLUDED.created_ms",
     Shard::kHash, KeyKind::kTextText, "scope", "t.scope", "md5(t::text)"},
    {"blobs", "key, content_type, bytes", "key",
     "content_type = EXCLUDED.content_type, bytes = EXCLUDED.bytes", Shard::kHash, KeyKind::kText,
     "key", "t.key", "md5(t.key || ':' || t.content_type || ':' || md5(t.bytes))"},
};

// One row's key: ints for ids, texts for hashed keys.
struct Key {
  int64_t i1 = 0, i2 = 0;
  std::string s1, s2;
  auto Tie() const { return std::tie(i1, i2, s1, s2); }
  bool operator<(const Key& o) const { return Tie() < o.Tie(); }
};
using KeySet = std::set<Key>;

const Table* FindTable(std::string_view name);
int KeyColumns(KeyKind k);
bool IntKey(KeyKind k);
Key KeyOfRow(const Table& t, const pg::Rows& r, int i);
// "col = ANY($1::bigint[])" or "(a, b) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))"
// over the table's key columns.
std::string KeyMatch(const Table& t);
// Runs a statement named `name` with the key arrays of `keys` as its first parameters.
Result<pg::Rows> ExecKeys(pg::Conn& c, const Table& t, const std::string& name,
                          const std::string& sql, const std::vector<Key>& keys);
// Row `i` as a line of COPY text (every column as PostgreSQL printed it: bytea in hex, which
// COPY reads back once its backslash is escaped).
void AppendCopy(const pg::Rows& r, int i, int columns, std::string* out);
int Columns(const Table& t);
// `body` in a transaction that the fence lets through (SET LOCAL millions.reshard = 'on').
Status InTx(pg::Conn& c, const std::function<Status()>& body);
// Upserts `copy` (COPY text of the table's columns) and deletes `gone`, in one such transaction.
Status WriteTarget(pg::Conn& c, const Table& t, const std::string& copy,
                   const std::vector<Key>& gone);
// SELECT `what` FROM the table (alias t) WHERE the row is the shard's ($1: its raw shard bits):
// for id and edge tables.
std::string SelectShard(const Table& t, const std::string& what);
// Every key of a hashed table on `c` that routes to `logical` (hashed here, on the client).
Result<std::vector<Key>> HashedKeys(pg::Conn& c, const Table& t, int logical, int logical_shards);

}  // namespace millions::data::shard_rows
