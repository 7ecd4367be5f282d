#include "data/shard_rows.h"

#include <algorithm>

#include "data/shard_mover.h"

namespace millions::data::shard_rows {

const Table* FindTable(std::string_view name) {
  for (const auto& t : kTables)
    if (name == t.name) return &t;
  return nullptr;
}

int KeyColumns(KeyKind k) { return k == KeyKind::kInt || k == KeyKind::kText ? 1 : 2; }
bool IntKey(KeyKind k) { return k == KeyKind::kInt || k == KeyKind::kIntInt; }

Key KeyOfRow(const Table& t, const pg::Rows& r, int i) {
  Key k;
  switch (t.key) {
    case KeyKind::kInt:
      k.i1 = r.Int(i, 0);
      break;
    case KeyKind::kIntInt:
      k.i1 = r.Int(i, 0);
      k.i2 = r.Int(i, 1);
      break;
    case KeyKind::kText:
      k.s1 = r.Text(i, 0);
      break;
    case KeyKind::kTextText:
      k.s1 = r.Text(i, 0);
      k.s2 = r.Text(i, 1);
      break;
  }
  return k;
}

// "col = ANY($1::bigint[])" or "(a, b) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))"
// over the table's key columns.
std::string KeyMatch(const Table& t) {
  const std::string type = IntKey(t.key) ? "bigint[]" : "text[]";
  std::string cols = t.conflict;
  if (KeyColumns(t.key) == 1) return cols + " = ANY($1::" + type + ")";
  return "(" + cols + ") IN (SELECT * FROM unnest($1::" + type + ", $2::" + type + "))";
}

namespace {

// The key parameters of a batch of keys: one or two array literals.
std::pair<std::string, std::string> KeyArrays(const Table& t, const std::vector<Key>& keys) {
  if (IntKey(t.key)) {
    std::vector<int64_t> a, b;
    for (const auto& k : keys) {
      a.push_back(k.i1);
      b.push_back(k.i2);
    }
    return {PgIntArray(a), PgIntArray(b)};
  }
  std::vector<std::string> a, b;
  for (const auto& k : keys) {
    a.push_back(k.s1);
    b.push_back(k.s2);
  }
  return {PgTextArray(a), PgTextArray(b)};
}

}  // namespace

// Runs a statement named `name` with the key arrays of `keys` as its first parameters.
Result<pg::Rows> ExecKeys(pg::Conn& c, const Table& t, const std::string& name,
                          const std::string& sql, const std::vector<Key>& keys) {
  auto [a, b] = KeyArrays(t, keys);
  if (KeyColumns(t.key) == 1) return c.Exec(name.c_str(), sql.c_str(), {pg::P(a)});
  return c.Exec(name.c_str(), sql.c_str(), {pg::P(a), pg::P(b)});
}

// The rows as COPY text (every column as PostgreSQL printed it: bytea in hex, which COPY reads
// back once its backslash is escaped).
void AppendCopy(const pg::Rows& r, int i, int columns, std::string* out) {
  for (int c = 0; c < columns; ++c) {
    if (c) *out += '\t';
    *out += pg::CopyText(r.Text(i, c));
  }
  *out += '\n';
}

int Columns(const Table& t) {
  return static_cast<int>(
             std::count(t.cols, t.cols + std::char_traits<char>::length(t.cols), ',')) +
         1;
}

Status InTx(pg::Conn& c, const std::function<Status()>& body) {
  if (Status st = c.Simple("BEGIN"); !st.ok()) return st;
  if (Status st = c.Simple("SET LOCAL millions.reshard = 'on'"); !st.ok()) {
    (void)c.Simple("ROLLBACK");
    return st;
  }
  Status st = body();
  if (st.ok()) st = c.Simple("COMMIT");
  if (!st.ok()) (void)c.Simple("ROLLBACK");
  return st;
}

// Upserts `copy` (COPY text of the table's columns) and deletes `gone`, in one transaction on
// the target that the fence lets through.
Status WriteTarget(pg::Conn& c, const Table& t, const std::string& copy,
                   const std::vector<Key>& gone) {
  const std::string name = t.name;
  return InTx(c, [&]() -> Status {
    if (!copy.empty()) {
      const std::string create =
          "CREATE TEMP TABLE IF NOT EXISTS rs_" + name + " (LIKE " + name + ")";
      if (Status st = c.Simple(create.c_str()); !st.ok()) return st;
      const std::string sql = "COPY rs_" + name + "(" + t.cols + ") FROM STDIN";
      if (auto n = c.CopyIn(sql.c_str(), copy); !n.ok()) return n.error();
      const std::string upsert = "INSERT INTO " + name + "(" + t.cols + ") SELECT " + t.cols +
                                 " FROM rs_" + name + " ON CONFLICT (" + t.conflict +
                                 ") DO UPDATE SET " + t.updates;
      if (auto r = c.Exec(("rs_upsert_" + name).c_str(), upsert.c_str(), {}); !r.ok())
        return r.error();
      const std::string clear = "TRUNCATE rs_" + name;
      if (Status st = c.Simple(clear.c_str()); !st.ok()) return st;
    }
    if (!gone.empty()) {
      const std::string del = "DELETE FROM " + name + " WHERE " + KeyMatch(t);
      if (auto r = ExecKeys(c, t, "rs_del_" + name, del, gone); !r.ok()) return r.error();
    }
    return Ok();
  });
}

// The shard's rows (or, with `keys_only`, their keys) of an id or edge table: the statement.
std::string SelectShard(const Table& t, const std::string& what) {
  std::string sql = "SELECT " + what + " FROM " + t.name + " t WHERE ";
  if (t.shard == Shard::kEdge)
    return sql + "((follower >> 10) & 8191) = ANY($1::int[]) OR " +
           "((followee >> 10) & 8191) = ANY($1::int[])";
  return sql + "((" + t.shard_col + " >> 10) & 8191) = ANY($1::int[])";
}

// Every key of a hashed table on `c` that routes to `logical`.
Result<std::vector<Key>> HashedKeys(pg::Conn& c, const Table& t, int logical, int logical_shards) {
  const std::string sql =
      std::string("SELECT ") + t.conflict + " FROM " + t.name + " ORDER BY " + t.conflict;
  auto r = c.Exec((std::string("rs_keys_") + t.name).c_str(), sql.c_str(), {});
  if (!r.ok()) return r.error();
  std::vector<Key> out;
  for (int i = 0; i < r->size(); ++i) {
    Key k = KeyOfRow(t, *r, i);
    if (LogicalShardOfKey(k.s1, logical_shards) == logical) out.push_back(std::move(k));
  }
  return out;
}

}  // namespace millions::data::shard_rows
